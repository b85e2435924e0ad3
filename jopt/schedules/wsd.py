"""Warmup-stable-decay (WSD): warm up, hold the peak, then cool down to the end."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from jopt.core.validation import check_number
from jopt.schedules.schedule import (
    LearningRateSchedule,
    _as_float_step,
    _cosine_blend,
    _f32,
    _fractions,
    _linear_blend,
)

__all__ = ["WarmupStableDecay"]

DECAY_SHAPES = ("linear", "cosine", "1-sqrt")


@dataclasses.dataclass(frozen=True)
class WarmupStableDecay(LearningRateSchedule):
    """Warmup-stable-decay: a linear warmup, a long stable phase at the peak, a short decay.

    The schedule of large-model trainers (MiniCPM; Hägele et al. 2024, "Scaling Laws and
    Compute-Optimal Training Beyond Fixed Training Durations"): the stable phase can run
    for as long as wanted, and a checkpoint taken in it can be cooled down at any time.
    With ``W, S, D`` the three lengths, ``peak`` and ``end`` the rates, and ``p = (step -
    W - S) / D`` the fraction of the decay done::

        rate = peak * step / W                        step < W
               peak                                   W <= step < W + S
               end + (peak - end) * shape(p)          W + S <= step < W + S + D
               end                                    step >= W + S + D

        shape(p) = 1 - p                       "linear"
                   (1 + cos(pi * p)) / 2       "cosine"
                   1 - sqrt(p)                 "1-sqrt" (Hägele et al.'s cooldown)

    In float32 the decay is computed as sums of positive terms (``peak * (1 - p) + end *
    p``; ``peak * sin(pi (1 - p) / 2)**2 + end * sin(pi p / 2)**2``; ``peak * (1 - p) /
    (1 + sqrt(p)) + end * sqrt(p)``), with ``1 - p`` from the step itself, so the last
    steps keep float32's relative accuracy. A length of 0 skips its phase.

    Args:
        peak_learning_rate: the rate of the stable phase, >= 0.
        warmup_steps: ``W``, >= 0 (the warmup starts from 0).
        stable_steps: ``S``, >= 0.
        decay_steps: ``D``, >= 0.
        end_learning_rate: the rate after the decay, >= 0 (default ``0.0``).
        decay_shape: ``"linear"`` (default), ``"cosine"`` or ``"1-sqrt"``.
        name: kept for the config (default ``"WarmupStableDecay"``).

    Example:
        >>> import jopt
        >>> s = jopt.schedules.WarmupStableDecay(0.1, 10, 80, 10, decay_shape="1-sqrt")
        >>> [round(float(s(t)), 6) for t in (0, 5, 10, 90, 91, 99, 100)]
        [0.0, 0.05, 0.1, 0.1, 0.068377, 0.005132, 0.0]
    """

    _module: ClassVar[str] = "jopt.schedules"

    peak_learning_rate: float
    warmup_steps: float
    stable_steps: float
    decay_steps: float
    end_learning_rate: float = 0.0
    decay_shape: str = "linear"
    name: str = "WarmupStableDecay"

    def __post_init__(self) -> None:
        check_number("peak_learning_rate", self.peak_learning_rate, low=0.0)
        check_number("warmup_steps", self.warmup_steps, low=0.0)
        check_number("stable_steps", self.stable_steps, low=0.0)
        check_number("decay_steps", self.decay_steps, low=0.0)
        check_number("end_learning_rate", self.end_learning_rate, low=0.0)
        if self.decay_shape not in DECAY_SHAPES:
            raise ValueError(
                f"decay_shape must be one of {list(DECAY_SHAPES)}, got {self.decay_shape!r:.100}"
            )

    def __call__(self, step: Any) -> jax.Array:
        t = jnp.maximum(_as_float_step(step), 0.0)
        peak, end = self.peak_learning_rate, self.end_learning_rate
        warmup, stable = float(self.warmup_steps), float(self.stable_steps)
        p, q = _fractions(t, warmup + stable, float(self.decay_steps))
        if self.decay_shape == "linear":
            rate = _linear_blend(peak, end, p, q)
        elif self.decay_shape == "cosine":
            rate = _cosine_blend(peak, end, p, q)
        else:
            # sqrt's derivative is infinite at 0: keep that point out of the traced sqrt so
            # a gradient through the unselected branches stays finite.
            positive = p > 0
            root = jnp.where(positive, jnp.sqrt(jnp.where(positive, p, 1.0)), 0.0)
            rate = _f32(peak) * (q / (1.0 + root)) + _f32(end) * root
        rate = jnp.where(t < _f32(warmup + stable), _f32(peak), rate)
        if warmup > 0:
            rising = _f32(peak) * jnp.clip(t / _f32(warmup), 0.0, 1.0)
            rate = jnp.where(t < _f32(warmup), rising, rate)
        return rate
