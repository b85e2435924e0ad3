"""Flat buckets: the leaves of a pytree that share a dtype (and a group) laid end to end
in one 1-D buffer.

An optimizer step is memory traffic plus a fixed cost per leaf: on a model with
thousands of small leaves that fixed cost (one kernel launch, one buffer per leaf and
slot) dominates, and every distinct kernel costs compile time. A :class:`Layout` turns
a pytree into a few long buffers that elementwise rules update in one pass each.

Slicing a bucket back into leaves with constant offsets makes one distinct kernel per
leaf, which XLA compiles one by one (about 5 ms each on a CPU); with the offsets given
as runtime values (:meth:`Layout.offsets`) every leaf of a size shares one kernel.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["Layout", "Place"]

PyTree = Any


@dataclasses.dataclass(frozen=True)
class Place:
    """Where one leaf lives: its pytree path, shape and dtype, its bucket, and its
    ``[offset, offset + size)`` range in that bucket.

    Example:
        >>> import jax.numpy as jnp
        >>> from jopt.layout import Layout
        >>> Layout.of({"b": jnp.zeros(2), "w": jnp.ones((2, 2))}).places[1]
        Place(path="['w']", shape=(2, 2), dtype='float32', bucket='float32', offset=2, size=4)
    """

    path: str
    shape: tuple[int, ...]
    dtype: str
    bucket: str
    offset: int
    size: int


@dataclasses.dataclass(frozen=True)
class Layout:
    """How a pytree's leaves are laid out in flat buckets; frozen and hashable.

    Build one with :meth:`of`; :meth:`pack` concatenates a tree of that structure into
    ``{bucket: 1-D array}``, :meth:`unpack` slices the buckets back into the tree.
    Buckets are named after their dtype, then their group when a ``group`` function
    puts leaves of one dtype apart (``"float32"``, ``"float32/no_decay"``), and keep
    the leaves in pytree order.

    Example:
        >>> import jax.numpy as jnp
        >>> from jopt.layout import Layout
        >>> tree = {"b": jnp.zeros(2), "w": jnp.ones((2, 2))}
        >>> layout = Layout.of(tree)
        >>> buckets = layout.pack(tree)
        >>> buckets["float32"]
        Array([0., 0., 1., 1., 1., 1.], dtype=float32)
        >>> layout.unpack(buckets)["w"].shape
        (2, 2)
    """

    treedef: Any
    places: tuple[Place, ...]
    buckets: tuple[tuple[str, str, int], ...]  # (name, dtype, size), sorted by name
    # Buckets holding one leaf in its own shape (not raveled): see ``keep_shape``.
    shaped: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls,
        tree: PyTree,
        group: Callable[[str, Any], str | None] | None = None,
        keep_shape: Callable[[str, Any], bool] | None = None,
    ) -> Layout:
        """The layout of ``tree``'s leaves (arrays or ``ShapeDtypeStruct``s).

        ``group(path, leaf)`` may return a label that keeps leaves apart (leaves with
        different weight decay, say); ``None`` (or no ``group``) puts a leaf in its
        dtype's bucket. ``keep_shape(path, leaf)`` true gives the leaf a bucket of its
        own, named after its dtype, its path and its label, that holds it in its own
        shape (a rule that reads a matrix's rows and columns sees the matrix).
        """
        flat, treedef = jax.tree_util.tree_flatten_with_path(tree)
        sizes: dict[str, int] = {}
        dtypes: dict[str, str] = {}
        places = []
        shaped: set[str] = set()
        for path_keys, leaf in flat:
            path = jax.tree_util.keystr(path_keys)
            dtype = jnp.dtype(jnp.result_type(leaf)).name
            label = None if group is None else group(path, leaf)
            bucket = dtype if label is None else f"{dtype}/{label}"
            if keep_shape is not None and keep_shape(path, leaf):
                bucket = f"{dtype}/{path}" if label is None else f"{dtype}/{path}/{label}"
                shaped.add(bucket)
            shape = tuple(int(d) for d in np.shape(leaf))
            size = int(np.prod(shape, dtype=np.int64))
            offset = sizes.get(bucket, 0)
            places.append(Place(path, shape, dtype, bucket, offset, size))
            sizes[bucket] = offset + size
            dtypes[bucket] = dtype
        # Sorted by name: the order in which jax flattens the ``{bucket: buffer}`` dict.
        buckets = tuple((name, dtypes[name], sizes[name]) for name in sorted(sizes))
        return cls(treedef, tuple(places), buckets, frozenset(shaped))

    @property
    def bucket_names(self) -> tuple[str, ...]:
        return tuple(name for name, _, _ in self.buckets)

    def pack(self, tree: PyTree) -> dict[str, jax.Array]:
        """``{bucket: 1-D buffer}``: the leaves of each bucket raveled and concatenated.

        Leaves keep their dtype when a bucket's leaves share one (grads of the params'
        dtype, the usual case); mixed dtypes are promoted as ``jnp.concatenate`` does.
        """
        leaves = self.treedef.flatten_up_to(tree)
        parts: dict[str, list[jax.Array]] = {name: [] for name in self.bucket_names}
        for place, leaf in zip(self.places, leaves, strict=True):
            leaf = jnp.asarray(leaf)
            parts[place.bucket].append(leaf if place.bucket in self.shaped else jnp.ravel(leaf))
        return {name: xs[0] if len(xs) == 1 else jnp.concatenate(xs) for name, xs in parts.items()}

    def unpack(self, buckets: dict[str, jax.Array], offsets: PyTree | None = None) -> PyTree:
        """The tree back from ``{bucket: buffer}`` (``pack``'s inverse).

        With ``offsets`` (the tree :meth:`offsets` returns, as arrays carried at run
        time) each leaf is a ``dynamic_slice``, so equal-sized leaves share one compiled
        kernel; without, a static slice per leaf.
        """
        starts = (
            [None] * len(self.places) if offsets is None else self.treedef.flatten_up_to(offsets)
        )
        leaves = []
        for place, start in zip(self.places, starts, strict=True):
            buffer = buckets[place.bucket]
            if place.bucket in self.shaped:  # the leaf's own (a slot of another shape too)
                leaves.append(buffer)
                continue
            if place.size == buffer.shape[-1]:
                flat = buffer
            elif start is None:
                flat = jax.lax.slice_in_dim(buffer, place.offset, place.offset + place.size)
            else:
                flat = jax.lax.dynamic_slice_in_dim(buffer, start, place.size)
            leaves.append(flat.reshape(place.shape))
        return self.treedef.unflatten(leaves)

    def offsets(self) -> PyTree:
        """Each leaf's start in its bucket, as int32 scalar arrays in the tree's
        structure: run-time values for :meth:`unpack`."""
        return self.treedef.unflatten([jnp.int32(place.offset) for place in self.places])
