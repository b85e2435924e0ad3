"""The exponential moving average of the params (Keras's ``use_ema``)."""

from __future__ import annotations

from typing import Any

import jax

__all__ = ["every", "param_average"]


def param_average(
    average: jax.Array, p: jax.Array, ema_momentum: Any, applied: jax.Array
) -> jax.Array:
    """``m * average + (1 - m) * p`` with ``m = ema_momentum``, or ``p`` itself on the first step.

    ``applied`` is the number of updates applied before this one (Keras's ``iterations``).
    """
    momentum = (applied != 0).astype(p.dtype) * ema_momentum
    return momentum * average + (1 - momentum) * p


def every(n: int | None, applied: jax.Array) -> jax.Array | bool:
    """Whether the update after ``applied`` ones is a multiple of ``n`` (``False`` if None)."""
    return False if n is None else (applied + 1) % n == 0
