"""Gradient clipping with Keras's formulas: per-leaf norm, global norm, value."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jopt.formulas.segments import Segments, leaf_sum, spread

__all__ = ["clip_by_global_norm", "clip_by_norm", "clip_by_value"]


def clip_by_norm(g: jax.Array, clipnorm: Any, segments: Segments | None = None) -> jax.Array:
    """Scales ``g`` so its L2 norm is at most ``clipnorm``: ``g * c / max(|g|, c)``.

    A zero gradient stays zero (Keras's two-sided ``where`` keeps NaN out of the sqrt).
    With ``segments``, ``g`` is a bucket of leaves laid end to end and each leaf is
    clipped by its own norm (see :mod:`jopt.formulas.segments`).

    Example:
        >>> clip_by_norm(jnp.array([3.0, 4.0]), 1.0)
        Array([0.6, 0.8], dtype=float32)
        >>> clip_by_norm(jnp.array([3.0, 4.0, 0.5]), 1.0, Segments((2, 1)))
        Array([0.6, 0.8, 0.5], dtype=float32)
    """
    if segments is None:
        l2sum = jnp.sum(jnp.square(g), keepdims=True)
    else:
        l2sum = leaf_sum(jnp.square(g), segments)
    positive = l2sum > 0
    l2norm = jnp.where(positive, jnp.sqrt(jnp.where(positive, l2sum, jnp.ones_like(l2sum))), l2sum)
    return g * clipnorm / spread(jnp.maximum(l2norm, clipnorm), segments)


def global_norm(grads: Sequence[jax.Array]) -> jax.Array:
    """``sqrt(sum of every leaf's squared sum)``, summed in Keras's order."""
    return jnp.sqrt(jnp.sum(jnp.stack([jnp.sum(jnp.square(g)) for g in grads])))


def clip_by_global_norm(
    grads: Sequence[jax.Array], clipnorm: Any, inverse: Any = None
) -> list[jax.Array]:
    """Scales every leaf by ``min(1, c / global_norm)``; a non-finite norm gives NaN, as Keras.

    ``clipnorm`` is a Python float or a scalar array; ``inverse`` is ``1 / clipnorm``
    (by default computed here: Keras computes it in Python, so a caller holding the
    value as an array passes Keras's rounding of it).

    Example:
        >>> clip_by_global_norm([jnp.array([3.0]), jnp.array([4.0])], 1.0)
        [Array([0.6], dtype=float32), Array([0.8], dtype=float32)]
    """
    norm = global_norm(grads)
    if inverse is None:
        inverse = 1.0 / clipnorm
    scale = clipnorm * jnp.minimum(1.0 / norm, inverse)
    scale = scale + (norm - norm)  # inf or NaN norm -> NaN scale, never a silent pass
    return [g * scale for g in grads]


def clip_by_value(g: jax.Array, clipvalue: Any) -> jax.Array:
    """Clips each element of ``g`` to ``[-clipvalue, clipvalue]``.

    Example:
        >>> clip_by_value(jnp.array([-3.0, 0.5]), 1.0)
        Array([-1. ,  0.5], dtype=float32)
    """
    return jnp.clip(g, -clipvalue, clipvalue)
