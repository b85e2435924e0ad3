"""Small constants that must survive low precision."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["nonzero"]


def nonzero(value: Any, dtype: Any) -> jax.Array:
    """``value`` in ``dtype``; a positive value that would round to 0 becomes the smallest
    positive ``dtype`` number instead.

    Keras adds ``epsilon`` as a Python float, so in float16 an ``epsilon`` of 1e-8
    rounds to 0 and a zero gradient gives ``0 / 0 = NaN`` (optax had the same bug, its
    PR #1755). Values that do not round to zero are unchanged, bit for bit. ``value`` is
    a Python number or an array (a live hyperparameter).

    Example:
        >>> float(nonzero(1e-8, jnp.float16)) > 0
        True
        >>> nonzero(1e-7, jnp.float32) == jnp.float32(1e-7)
        Array(True, dtype=bool)
        >>> float(nonzero(jnp.float32(1e-8), jnp.float16)) > 0
        True
    """
    rounded = jnp.asarray(value, dtype)
    tiny = jnp.finfo(dtype).smallest_subnormal
    if isinstance(value, jax.Array):
        return jnp.where((rounded == 0) & (value > 0), tiny, rounded)
    if value > 0:
        rounded = jnp.where(rounded == 0, tiny, rounded)
    return rounded
