"""Per-leaf sums over a flat buffer of leaves laid end to end (a bucket of
:func:`jopt.bucketed`), so a rule that reads a leaf's norm runs on buckets too.

A rule asks for "the sum of ``x`` over its leaf" with :func:`leaf_sum` and spreads a
per-leaf value back over the elements with :func:`spread`: on a leaf of its own
(``segments`` is ``None``) that is ``jnp.sum`` and the identity, so the per-leaf
arithmetic is unchanged; on a bucket it is one segment sum (``k`` leaves in, ``k``
values out) and one gather. The sums then add the same numbers in another order: a
float32 rounding apart from the per-leaf sums.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["Segments", "leaf_size", "leaf_sum", "spread"]


@dataclasses.dataclass(frozen=True)
class Segments:
    """The sizes of the leaves laid end to end in a 1-D buffer, in order; static.

    Example:
        >>> import jax.numpy as jnp
        >>> seg = Segments((2, 3))
        >>> seg.sum(jnp.array([1.0, 2.0, 3.0, 4.0, 5.0]))
        Array([ 3., 12.], dtype=float32)
        >>> seg.spread(jnp.array([10.0, 20.0]))
        Array([10., 10., 20., 20., 20.], dtype=float32)
    """

    sizes: tuple[int, ...]

    @property
    def total(self) -> int:
        """The buffer's length."""
        return sum(self.sizes)

    def ids(self) -> np.ndarray:
        """Each element's leaf index: an int32 NumPy array of the buffer's length, a
        constant of the compiled step (4 bytes per element of the bucket). Computed in
        the program instead, from the leaf starts, it costs more: XLA folds the
        cumulative sum of constants slowly (> 1 s of compile for 68k elements), and at
        run time a CPU cumulative sum takes longer than the segment sum itself."""
        return np.repeat(np.arange(len(self.sizes), dtype=np.int32), self.sizes)

    def sum(self, x: jax.Array, dtype: Any = None) -> jax.Array:
        """The sum of ``x`` (the buffer's length) over each leaf: ``len(sizes)`` values
        in ``dtype`` (default ``x``'s), accumulated in at least float32."""
        dtype = jnp.dtype(x.dtype if dtype is None else dtype)
        # Accumulated in at least float32, as XLA's reductions of a 16-bit leaf are.
        wide = jnp.promote_types(dtype, jnp.float32)
        sums = jax.ops.segment_sum(
            x.astype(wide), self.ids(), num_segments=len(self.sizes), indices_are_sorted=True
        )
        return sums.astype(dtype)

    def spread(self, per_leaf: jax.Array) -> jax.Array:
        """One value per leaf repeated over the leaf's elements (the buffer's length)."""
        return jnp.take(per_leaf, self.ids(), indices_are_sorted=True, mode="clip")


def leaf_sum(x: jax.Array, segments: Segments | None, dtype: Any = None) -> jax.Array:
    """The sum of ``x`` over its leaf: ``jnp.sum(x, dtype=dtype)`` (a 0-d array) when
    ``segments`` is ``None``, else one sum per leaf of the bucket (:meth:`Segments.sum`).

    Example:
        >>> import jax.numpy as jnp
        >>> leaf_sum(jnp.ones((2, 3)), None), leaf_sum(jnp.ones(5), Segments((2, 3)))
        (Array(6., dtype=float32), Array([2., 3.], dtype=float32))
    """
    if segments is None:
        return jnp.sum(x, dtype=dtype)
    return segments.sum(x, dtype)


def spread(per_leaf: jax.Array, segments: Segments | None) -> jax.Array:
    """A per-leaf value from :func:`leaf_sum` ready to combine with the leaf's elements:
    itself when ``segments`` is ``None`` (it broadcasts), else repeated over each leaf's
    elements (:meth:`Segments.spread`).

    Example:
        >>> import jax.numpy as jnp
        >>> spread(jnp.array([1.0, 2.0]), Segments((1, 2)))
        Array([1., 2., 2.], dtype=float32)
    """
    return per_leaf if segments is None else segments.spread(per_leaf)


def leaf_size(x: Any, segments: Segments | None) -> np.ndarray:
    """The number of elements of ``x``'s leaf, as a NumPy int64 array shaped like
    :func:`leaf_sum`'s result (0-d, or one per leaf of the bucket).

    Example:
        >>> import jax.numpy as jnp
        >>> leaf_size(jnp.ones((2, 3)), None), leaf_size(jnp.ones(5), Segments((2, 3)))
        (array(6), array([2, 3]))
    """
    if segments is None:
        return np.asarray(np.size(x), np.int64)
    return np.asarray(segments.sizes, np.int64)
