"""Momentum accumulators: Keras's velocity form and the heavy-ball form of RMSprop."""

from __future__ import annotations

from typing import Any

import jax

__all__ = ["heavy_ball", "nesterov_update", "velocity"]


def velocity(v: jax.Array, g: jax.Array, lr: Any, momentum: Any) -> jax.Array:
    """Keras's SGD velocity ``v = momentum * v - lr * g``; the update is ``+v``."""
    return v * momentum - g * lr


def nesterov_update(v_new: jax.Array, g: jax.Array, lr: Any, momentum: Any) -> jax.Array:
    """Keras's Nesterov update from the new velocity: ``momentum * v_new - lr * g``."""
    return v_new * momentum - g * lr


def heavy_ball(m: jax.Array, increment: jax.Array, momentum: Any) -> jax.Array:
    """RMSprop's momentum ``m = momentum * m + increment``; the update is ``-m``."""
    return m * momentum + increment
