"""PyTorch's schedulers as jopt schedules, with torch's numbers.

``torch.optim.lr_scheduler``'s ``OneCycleLR``, ``CyclicLR``, ``StepLR`` and ``MultiStepLR``
as frozen, hashable callables of the step, like Keras's schedules: jopt's step ``t``
(updates applied) is torch's ``last_epoch`` after ``t`` calls of ``scheduler.step()``,
so ``schedule(t)`` is torch's ``get_last_lr()`` there, within a few float32 roundings.

Torch updates a rate from the previous one (``StepLR`` multiplies the last rate by
``gamma``) in float64; jopt computes each step's rate in closed form in float32,
arranged so that no formula cancels (see each class). Torch's schedulers also cycle
momentum (``cycle_momentum``); these give the rate only.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from jopt.core.validation import check_bool, check_int, check_number, check_numbers
from jopt.schedules.schedule import (
    LearningRateSchedule,
    _as_float_step,
    _cosine_blend,
    _f32,
    _fractions,
    _linear_blend,
    _scaled_power,
)

__all__ = ["CyclicLR", "MultiStepDecay", "OneCycle", "StepDecay"]

_LARGEST_INT32_FLOAT = 2147483520.0  # the largest float32 below 2**31


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r:.100}")
    return value


def _whole_steps(step: jax.Array, size: float) -> jax.Array:
    """``floor(step / size)`` as int32 for steps >= 0: exact integer division for an integer
    step and size (no float32 rounding of large steps), else in float32."""
    if jnp.issubdtype(step.dtype, jnp.integer) and float(size).is_integer():
        return (jnp.maximum(step, 0) // jnp.asarray(int(size), step.dtype)).astype(jnp.int32)
    whole = jnp.floor(jnp.maximum(_as_float_step(step), 0.0) / _f32(size))
    return jnp.minimum(whole, _LARGEST_INT32_FLOAT).astype(jnp.int32)


@dataclasses.dataclass(frozen=True)
class OneCycle(LearningRateSchedule):
    """torch's ``OneCycleLR``: up from ``max / div_factor`` to ``max``, then far below.

    With ``T = total_steps``, ``initial = max_learning_rate / div_factor`` and ``minimum =
    initial / final_div_factor`` (in float64, as torch), the phases end at steps::

        two phases:   e1 = pct_start * T - 1 (initial -> max),  e2 = T - 1 (max -> minimum)
        three_phase:  e1 (initial -> max),  e2 = 2 * pct_start * T - 2 (max -> initial),
                      e3 = T - 1 (initial -> minimum)

    Step ``t`` falls in the first phase with ``t <= e_i`` (or the last); with ``p = (t -
    e_{i-1}) / (e_i - e_{i-1})`` (``e_0 = 0``) the rate moves from the phase's start to
    its end value ``a -> b``::

        "cos":     rate = b + (a - b) / 2 * (1 + cos(pi * p))
        "linear":  rate = a + (b - a) * p

    computed as ``a * sin(pi (1 - p) / 2)**2 + b * sin(pi p / 2)**2`` and ``a * (1 - p) + b
    * p``, with ``1 - p`` from the step itself: sums of positive terms, which keep float32's
    relative accuracy where torch's form cancels (the last steps of the cosine).

    Past the end the rate stays at its value at step ``T - 1``; torch computes step ``T``
    by extrapolating the last phase (``p > 1``: back up the cosine, or, linearly, below
    ``minimum`` and possibly below 0) and raises after it. A phase of zero length (``e_i
    = e_{i-1}``, where torch divides by zero) gives its end value. Torch's
    ``cycle_momentum`` also cycles momentum; this is the rate alone.

    Args:
        max_learning_rate: the peak, >= 0 (torch's ``max_lr``).
        total_steps: the number of steps of the cycle, an integer >= 1.
        pct_start: the fraction of the cycle spent rising, in [0, 1] (default ``0.3``).
        anneal_strategy: ``"cos"`` (default) or ``"linear"``.
        div_factor: ``initial = max_learning_rate / div_factor``, > 0 (default ``25.0``).
        final_div_factor: ``minimum = initial / final_div_factor``, > 0 (default ``1e4``).
        three_phase: come back down to ``initial`` before annealing to ``minimum``
            (default ``False``).
        name: kept for the config (default ``"OneCycle"``).

    Example:
        >>> import jopt
        >>> s = jopt.schedules.OneCycle(0.1, total_steps=100)
        >>> [float(f"{float(s(t)):.4g}") for t in (0, 15, 29, 70, 99, 200)]
        [0.004, 0.0546, 0.1, 0.0367, 4e-07, 4e-07]
    """

    _module: ClassVar[str] = "jopt.schedules"

    max_learning_rate: float
    total_steps: int
    pct_start: float = 0.3
    anneal_strategy: str = "cos"
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    three_phase: bool = False
    name: str = "OneCycle"

    def __post_init__(self) -> None:
        check_number("max_learning_rate", self.max_learning_rate, low=0.0)
        check_int("total_steps", self.total_steps, 1)
        check_number("pct_start", self.pct_start, low=0.0, high=1.0)
        _check_choice("anneal_strategy", self.anneal_strategy, ("cos", "linear"))
        check_number("div_factor", self.div_factor, low=0.0, low_open=True)
        check_number("final_div_factor", self.final_div_factor, low=0.0, low_open=True)
        check_bool("three_phase", self.three_phase)

    def phases(self) -> list[tuple[float, float, float]]:
        """Each phase's ``(end_step, start_rate, end_rate)``, in float64 as torch's.

        Example:
            >>> import jopt
            >>> jopt.schedules.OneCycle(1.0, 10, div_factor=10.0).phases()
            [(2.0, 0.1, 1.0), (9.0, 1.0, 1e-05)]
        """
        peak = float(self.max_learning_rate)
        initial = peak / self.div_factor
        minimum = initial / self.final_div_factor
        end_1 = float(self.pct_start * self.total_steps) - 1
        last = float(self.total_steps - 1)
        if self.three_phase:
            end_2 = float(2 * self.pct_start * self.total_steps) - 2
            return [(end_1, initial, peak), (end_2, peak, initial), (last, initial, minimum)]
        return [(end_1, initial, peak), (last, peak, minimum)]

    def __call__(self, step: Any) -> jax.Array:
        t = jnp.clip(_as_float_step(step), 0.0, _f32(self.total_steps - 1))
        blend = _cosine_blend if self.anneal_strategy == "cos" else _linear_blend
        phases = self.phases()
        starts = [0.0] + [end for end, _, _ in phases[:-1]]
        rates = [
            blend(a, b, *_fractions(t, start, end - start))
            for start, (end, a, b) in zip(starts, phases, strict=True)
        ]
        # torch's search: the first phase whose end is not before the step, else the last.
        rate = rates[-1]
        for (end, _, _), phase_rate in reversed(list(zip(phases[:-1], rates[:-1], strict=True))):
            rate = jnp.where(t <= _f32(end), phase_rate, rate)
        return rate


def _step_power(base: float, step: jax.Array) -> jax.Array:
    """``base**step`` in float32, from float64 tables (see :func:`_scaled_power`)."""
    if jnp.issubdtype(step.dtype, jnp.integer):
        return _scaled_power(1.0, base, jnp.maximum(step, 0))
    # The whole part from the tables, only the fraction by exp (its error stays small).
    t = jnp.maximum(_as_float_step(step), 0.0)
    whole = jnp.floor(t)
    fraction = jnp.exp((t - whole) * _f32(math.log(base)))
    return (
        _scaled_power(1.0, base, jnp.minimum(whole, _LARGEST_INT32_FLOAT).astype(jnp.int32))
        * fraction
    )


@dataclasses.dataclass(frozen=True)
class CyclicLR(LearningRateSchedule):
    """torch's ``CyclicLR``: triangles between ``base_learning_rate`` and a peak.

    A cycle rises for ``step_size_up`` steps and falls for ``step_size_down`` (default:
    the same). With ``total = up + down``, ``cycle = floor(t / total) + 1`` and ``x = t -
    (cycle - 1) * total`` (the position in the cycle)::

        f = x / up                    if x <= up
            (total - x) / down        otherwise
        rate = base + (max - base) * f * scale
        scale = 1                           "triangular"
                1 / 2**(cycle - 1)          "triangular2" (each cycle's peak halves)
                gamma**t                    "exp_range"   (decays with every step)

    as torch computes it (with its ``x`` as a fraction of the cycle; jopt keeps the
    position in steps, exactly, with integer arithmetic for integer steps). ``gamma**t``
    is computed from float64 tables (no ``log(gamma) * t`` rounding growing with ``t``).
    Torch's ``cycle_momentum`` also cycles momentum; this is the rate alone.

    Args:
        base_learning_rate: the low end, >= 0 (torch's ``base_lr``).
        max_learning_rate: the high end, >= ``base_learning_rate`` (torch's ``max_lr``).
        step_size_up: steps rising, > 0 (default ``2000``).
        step_size_down: steps falling, > 0, or ``None`` for ``step_size_up`` (default).
        mode: ``"triangular"`` (default), ``"triangular2"`` or ``"exp_range"``.
        gamma: ``exp_range``'s decay per step, in (0, 1] (default ``1.0``).
        name: kept for the config (default ``"CyclicLR"``).

    Example:
        >>> import jopt
        >>> s = jopt.schedules.CyclicLR(0.01, 0.1, step_size_up=5, mode="triangular2")
        >>> [round(float(s(t)), 6) for t in (0, 5, 10, 15, 20)]
        [0.01, 0.1, 0.01, 0.055, 0.01]
    """

    _module: ClassVar[str] = "jopt.schedules"

    base_learning_rate: float
    max_learning_rate: float
    step_size_up: float = 2000
    step_size_down: float | None = None
    mode: str = "triangular"
    gamma: float = 1.0
    name: str = "CyclicLR"

    def __post_init__(self) -> None:
        base = check_number("base_learning_rate", self.base_learning_rate, low=0.0)
        peak = check_number("max_learning_rate", self.max_learning_rate, low=0.0)
        if peak < base:
            raise ValueError(
                f"max_learning_rate must be >= base_learning_rate ({base:g}), got {peak:g}"
            )
        check_number("step_size_up", self.step_size_up, low=0.0, low_open=True)
        if self.step_size_down is not None:
            check_number("step_size_down", self.step_size_down, low=0.0, low_open=True)
        _check_choice("mode", self.mode, ("triangular", "triangular2", "exp_range"))
        check_number("gamma", self.gamma, low=0.0, high=1.0, low_open=True)

    def __call__(self, step: Any) -> jax.Array:
        step = jnp.asarray(step)
        up = float(self.step_size_up)
        down = up if self.step_size_down is None else float(self.step_size_down)
        total = up + down
        cycles = _whole_steps(step, total)  # cycle - 1
        if jnp.issubdtype(step.dtype, jnp.integer) and total.is_integer():
            x = (jnp.maximum(step, 0) - cycles.astype(step.dtype) * int(total)).astype(jnp.float32)
        else:
            x = _as_float_step(jnp.maximum(step, 0)) - cycles.astype(jnp.float32) * _f32(total)
            x = jnp.clip(x, 0.0, _f32(total))
        rising = jnp.clip(x / _f32(up), 0.0, 1.0)
        falling = jnp.clip((_f32(total) - x) / _f32(down), 0.0, 1.0)
        f = jnp.where(x <= _f32(up), rising, falling)
        height = _f32(self.max_learning_rate - self.base_learning_rate) * f
        if self.mode == "triangular2":
            height = height * jnp.ldexp(jnp.ones_like(height), -cycles)
        elif self.mode == "exp_range":
            height = height * _step_power(self.gamma, step)
        return _f32(self.base_learning_rate) + height


@dataclasses.dataclass(frozen=True)
class StepDecay(LearningRateSchedule):
    """torch's ``StepLR``: the rate is multiplied by ``gamma`` every ``step_size`` steps.

    Rule::

        rate = initial_learning_rate * gamma ** floor(step / step_size)

    Torch multiplies the previous rate by ``gamma`` at each multiple of ``step_size`` in
    float64; the closed form above gives the same value within float64 roundings, and
    jopt rounds it to float32 at most a few times (``gamma**k`` from float64 tables, see
    :class:`CyclicLR`): not ``exp(k * log(gamma))``, whose error grows with ``k``.

    Args:
        initial_learning_rate: rate at step 0, >= 0 (torch's ``lr``).
        step_size: the period, an integer >= 1.
        gamma: the factor, >= 0 (default ``0.1``).
        name: kept for the config (default ``"StepDecay"``).

    Example:
        >>> import jopt
        >>> s = jopt.schedules.StepDecay(0.1, step_size=30)
        >>> [round(float(s(t)), 6) for t in (0, 29, 30, 60)]
        [0.1, 0.1, 0.01, 0.001]
    """

    _module: ClassVar[str] = "jopt.schedules"

    initial_learning_rate: float
    step_size: int
    gamma: float = 0.1
    name: str = "StepDecay"

    def __post_init__(self) -> None:
        check_number("initial_learning_rate", self.initial_learning_rate, low=0.0)
        check_int("step_size", self.step_size, 1)
        check_number("gamma", self.gamma, low=0.0)

    def __call__(self, step: Any) -> jax.Array:
        k = _whole_steps(jnp.asarray(step), self.step_size)
        return _scaled_power(float(self.initial_learning_rate), float(self.gamma), k)


@dataclasses.dataclass(frozen=True)
class MultiStepDecay(LearningRateSchedule):
    """torch's ``MultiStepLR``: the rate is multiplied by ``gamma`` at each milestone.

    Rule (a step equal to a milestone already gets the lower rate; a milestone listed
    twice multiplies twice, as torch counts it)::

        rate = initial_learning_rate * gamma ** (number of milestones <= step)

    Each rate is computed in float64 and rounded once (with 16 milestones or more, a few
    times: see :class:`StepDecay`).
    Note the contrast with :class:`PiecewiseConstantDecay`, where a step equal to a
    boundary keeps the earlier value, as in Keras. As there, integer steps compare
    exactly with whole-number milestones.

    Args:
        initial_learning_rate: rate at step 0, >= 0 (torch's ``lr``).
        milestones: non-decreasing steps >= 0 (stored as a tuple; ``get_config``
            returns a list).
        gamma: the factor, >= 0 (default ``0.1``).
        name: kept for the config (default ``"MultiStepDecay"``).

    Example:
        >>> import jopt
        >>> s = jopt.schedules.MultiStepDecay(0.1, milestones=[30, 80])
        >>> [round(float(s(t)), 6) for t in (0, 29, 30, 79, 80)]
        [0.1, 0.1, 0.01, 0.01, 0.001]
    """

    _module: ClassVar[str] = "jopt.schedules"

    initial_learning_rate: float
    milestones: Sequence[float]
    gamma: float = 0.1
    name: str = "MultiStepDecay"

    def __post_init__(self) -> None:
        check_number("initial_learning_rate", self.initial_learning_rate, low=0.0)
        milestones = check_numbers("milestones", self.milestones, low=0.0)
        for i in range(1, len(milestones)):
            if milestones[i] < milestones[i - 1]:
                raise ValueError(
                    f"milestones must be non-decreasing, got {list(milestones)} "
                    f"(milestones[{i}] = {milestones[i]} < {milestones[i - 1]})"
                )
        object.__setattr__(self, "milestones", milestones)
        check_number("gamma", self.gamma, low=0.0)

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "milestones": list(self.milestones),
            "gamma": self.gamma,
            "name": self.name,
        }

    def __call__(self, step: Any) -> jax.Array:
        step = jnp.asarray(step)
        exact = jnp.issubdtype(step.dtype, jnp.integer) and all(
            float(m).is_integer() for m in self.milestones
        )
        if not exact:
            step = _as_float_step(step)
        passed = jnp.zeros(step.shape, jnp.int32)
        for m in self.milestones:
            bound = jnp.asarray(int(m) if exact else m).astype(step.dtype)
            passed = passed + (step >= bound).astype(jnp.int32)
        return _scaled_power(float(self.initial_learning_rate), float(self.gamma), passed)
