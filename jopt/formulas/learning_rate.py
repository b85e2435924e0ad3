"""The learning rate an update uses: schedule or constant, legacy ``decay``, Adam's correction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jopt.core.validation import check_step

__all__ = ["adam_step_size", "rate_at"]


def rate_at(
    learning_rate: float | Callable[[Any], Any],
    live: dict[str, jax.Array],
    step: Any,
    decay: float,
) -> jax.Array:
    """The float32 rate for the update that follows ``step`` applied updates.

    ``learning_rate`` is a number, or a schedule called at ``step`` as Keras does. The
    live values held in the optimizer state override it: ``live["learning_rate"]``
    replaces a number, ``live["learning_rate_scale"]`` multiplies a schedule (exactly,
    while it is 1.0). A legacy ``decay > 0`` then divides by ``1 + decay * step``, in
    float32 as tf.keras 2 did.
    """
    check_step(step)
    step = jnp.asarray(step)
    if callable(learning_rate):
        rate = jnp.asarray(learning_rate(step), jnp.float32)
        if "learning_rate_scale" in live:
            rate = rate * live["learning_rate_scale"]
    else:
        rate = jnp.asarray(live.get("learning_rate", learning_rate), jnp.float32)
    if decay > 0.0:
        rate = rate / (1.0 + jnp.float32(decay) * step.astype(jnp.float32))
    # An array of steps gets an array of rates, constant or not.
    return jnp.broadcast_to(rate, jnp.broadcast_shapes(rate.shape, step.shape))


def adam_step_size(lr: jax.Array, beta_1: Any, beta_2: Any, t: jax.Array) -> jax.Array:
    """Adam's bias-corrected step ``lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)``, t from 1."""
    return lr * jnp.sqrt(1 - jnp.power(beta_2, t)) / (1 - jnp.power(beta_1, t))
