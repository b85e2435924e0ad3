"""Packed params: a model's params kept as a few flat buffers, for the fastest steps."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from jopt.core.packing import Layout
from jopt.core.pytrees import check_float_leaves

__all__ = ["Packed", "pack"]

PyTree = Any


@jax.tree_util.register_pytree_with_keys_class
class Packed:
    """A pytree held as flat buckets (one 1-D buffer per dtype and group).

    Its leaves are the buckets, so an optimizer given a ``Packed`` updates a few long
    buffers, the fastest layout there is for elementwise rules; ``unpack()`` returns
    the original structure (slices of the buckets) for the model to read. Gradients
    taken with respect to a ``Packed`` are a ``Packed`` too, and so is each of an
    optimizer's slots: ``state.slots["momentum"].unpack()`` shows them per param.

    Elementwise rules give the same numbers as on the unpacked tree. Rules that read a
    leaf's shape or norm (Lamb, Adafactor, Muon, ``clipnorm``) would see a whole bucket
    as one leaf: use :func:`jopt.bucketed` or the plain tree for those. Weight decay
    exclusions match the buckets' paths (``.buckets['float32/no_decay']``): name
    groups with ``pack``'s ``group`` argument.

    Example:
        >>> import jax, jax.numpy as jnp, jopt
        >>> params = jopt.layout.pack({"b": jnp.zeros(2), "w": jnp.ones((2, 2))})
        >>> loss = lambda packed: jnp.sum(packed.unpack()["w"] ** 2)
        >>> grads = jax.grad(loss)(params)
        >>> opt = jopt.SGD(0.25)
        >>> params, state = opt.apply_gradients(grads, opt.init(params), params)
        >>> params.unpack()["w"]
        Array([[0.5, 0.5],
               [0.5, 0.5]], dtype=float32)
    """

    def __init__(self, buckets: dict[str, jax.Array], layout: Layout) -> None:
        self.buckets = buckets
        self.layout = layout

    def unpack(self, offsets: PyTree | None = None) -> PyTree:
        """The params in their original structure, each leaf a slice of its bucket.

        Differentiable: the gradient of the slices is the concatenation of their
        cotangents, one pass per bucket (by default each slice's gradient would be a
        bucket-sized buffer, summed: quadratic in the number of leaves).

        Under ``jit`` each slice starts at a run-time value, so that XLA compiles one
        kernel per leaf size instead of one per leaf (much faster to compile with many
        leaves): made inside the program (:meth:`jopt.layout.Layout.traced_offsets`), or
        taken from ``offsets`` (:meth:`offsets`, passed into your jitted step) if given.
        """
        return _unpack(self.layout, self.buckets, offsets)

    def offsets(self) -> PyTree:
        """Each leaf's int32 start in its bucket, as device arrays in the params'
        structure, for :meth:`unpack` (optional: a traced ``unpack`` makes its own)."""
        return self.layout.offsets()

    def tree_flatten_with_keys(self) -> tuple[Any, Layout]:
        key = jax.tree_util.GetAttrKey("buckets")
        return ((key, self.buckets),), self.layout

    @classmethod
    def tree_unflatten(cls, layout: Layout, children: Any) -> Packed:
        return cls(children[0], layout)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{name}: {size}" for name, _, size in self.layout.buckets)
        return f"Packed({len(self.layout.places)} leaves in {{{sizes}}})"


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _unpack(layout: Layout, buckets: dict[str, jax.Array], offsets: PyTree) -> PyTree:
    return layout.unpack(buckets, offsets)


def _unpack_fwd(
    layout: Layout, buckets: dict[str, jax.Array], offsets: PyTree
) -> tuple[PyTree, PyTree]:
    return layout.unpack(buckets, offsets), offsets


def _unpack_bwd(layout: Layout, offsets: PyTree, cotangents: PyTree) -> tuple[Any, Any]:
    # Integer offsets take no cotangent (float0 zeros).
    zeros = jax.tree.map(lambda o: np.zeros(np.shape(o), jax.dtypes.float0), offsets)
    return layout.pack(cotangents), zeros


_unpack.defvjp(_unpack_fwd, _unpack_bwd)


def pack(tree: PyTree, group: Callable[[str, Any], str | None] | None = None) -> Packed:
    """``tree``'s leaves packed into flat buckets, one per dtype (and ``group`` label).

    ``group(path, leaf)`` may return a label to keep leaves apart, e.g.
    ``lambda path, leaf: "no_decay" if leaf.ndim < 2 else None`` with
    ``AdamW(exclude_from_weight_decay=["no_decay"])``.

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> jopt.layout.pack({"b": jnp.zeros(2), "w": jnp.ones((2, 3))})
        Packed(2 leaves in {float32: 8})
    """
    check_float_leaves(tree, "tree")
    layout = Layout.of(tree, group)
    return Packed(layout.pack(tree), layout)
