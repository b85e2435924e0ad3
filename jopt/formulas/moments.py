"""Exponential moving averages, in the two arithmetic forms Keras and TensorFlow use.

The two forms are equal in exact arithmetic and differ by float32 rounding, which is
what a step-for-step parity with Keras is measured in, so each optimizer picks the form
its reference computes. The complement ``1 - decay`` is an argument for the same reason:
Keras 3 computes it in Python float64 and rounds once (``f32(1 - 0.999)``), while
TensorFlow's kernels subtract in float32 (``1 - f32(0.999)``), which differs by 1e-5
relative for ``0.999``.
"""

from __future__ import annotations

from typing import Any

import jax

__all__ = ["ema_mix", "ema_step"]


def ema_mix(average: jax.Array, x: jax.Array, decay: Any, one_minus_decay: Any) -> jax.Array:
    """``decay * average + (1 - decay) * x`` (Keras 3's RMSprop, tf.keras 2's Python paths)."""
    return decay * average + one_minus_decay * x


def ema_step(average: jax.Array, x: jax.Array, one_minus_decay: Any) -> jax.Array:
    """``average + (x - average) * (1 - decay)`` (Keras 3's Adam, TensorFlow's kernels)."""
    return average + (x - average) * one_minus_decay
