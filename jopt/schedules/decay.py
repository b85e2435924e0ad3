"""Keras 3's six schedules, with Keras's arithmetic: the same numbers, bit for bit."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jopt.core.validation import check_bool, check_number, check_numbers
from jopt.schedules.schedule import LearningRateSchedule, _as_float_step, _f32

# Under jax.jit, XLA turns ``step / c`` for a constant ``c`` into ``step * (1 / c)`` (and
# may fuse ``1 - step * (1 / c)`` into one FMA), so at an exact multiple ``step = k * c`` the
# quotient can come out an ulp below or above ``k``: ``floor`` then gives ``k - 1``,
# ``ceil`` gives ``k + 1`` and ``(1 - p) ** 0.5`` of a tiny negative is NaN. Keras's
# schedules share the hazard (its tests run eagerly, where division is exact). These
# helpers keep Keras's float32 quotient wherever it is right and correct it only where
# the rewrite moved it across an integer, so the numbers stay Keras's (eager) bits.


def _floor_quotient(step: jax.Array, divisor: jax.Array, quotient: jax.Array) -> jax.Array:
    """``floor(step / divisor)``, right at exact multiples even when XLA rounds ``quotient``."""
    q = jnp.floor(quotient)
    return jnp.where(step >= (q + 1) * divisor, q + 1, q)


def _ceil_quotient(step: jax.Array, divisor: jax.Array, quotient: jax.Array) -> jax.Array:
    """``ceil(step / divisor)``, right at exact multiples even when XLA rounds ``quotient``."""
    q = jnp.ceil(quotient)
    return jnp.where(step <= (q - 1) * divisor, q - 1, q)


__all__ = [
    "CosineDecay",
    "CosineDecayRestarts",
    "ExponentialDecay",
    "InverseTimeDecay",
    "PiecewiseConstantDecay",
    "PolynomialDecay",
]


@dataclasses.dataclass(frozen=True)
class ExponentialDecay(LearningRateSchedule):
    """Keras's ``ExponentialDecay``: the rate decays by ``decay_rate`` every ``decay_steps``.

    Rule, computed in float32 as Keras does::

        p = step / decay_steps            # floor(p) if staircase
        rate = initial_learning_rate * decay_rate ** p

    Args:
        initial_learning_rate: rate at step 0, >= 0.
        decay_steps: > 0.
        decay_rate: > 0.
        staircase: decay in discrete intervals (default ``False``).
        name: Keras's name, kept for the config (default ``"ExponentialDecay"``).

    Example:
        >>> import jopt
        >>> s = jopt.schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
        >>> float(s(10))
        0.05000000074505806
    """

    initial_learning_rate: float
    decay_steps: float
    decay_rate: float
    staircase: bool = False
    name: str = "ExponentialDecay"

    def __post_init__(self) -> None:
        check_number("initial_learning_rate", self.initial_learning_rate, low=0.0)
        check_number("decay_steps", self.decay_steps, low=0.0, low_open=True)
        check_number("decay_rate", self.decay_rate, low=0.0, low_open=True)
        check_bool("staircase", self.staircase)

    def __call__(self, step: Any) -> jax.Array:
        initial = jnp.asarray(self.initial_learning_rate, jnp.float32)
        step = _as_float_step(step)
        decay_steps = jnp.asarray(self.decay_steps, jnp.float32)
        p = step / decay_steps
        if self.staircase:
            p = _floor_quotient(step, decay_steps, p)
        return initial * jnp.power(jnp.asarray(self.decay_rate, jnp.float32), p)


@dataclasses.dataclass(frozen=True)
class PiecewiseConstantDecay(LearningRateSchedule):
    """Keras's ``PiecewiseConstantDecay``: a step function of the step.

    Rule (a step equal to a boundary still gets the earlier value)::

        rate = values[0]    if step <= boundaries[0]
               values[i]    if boundaries[i-1] < step <= boundaries[i]
               values[-1]   if step > boundaries[-1]

    As in Keras, the boundaries are cast to the step's dtype before comparing, so an
    integer step compares exactly (no float32 rounding of large steps). The result is
    float32 even when ``values`` are ints (Keras would return int32 there).

    Args:
        boundaries: strictly increasing numbers, at least one (stored as a tuple;
            ``get_config`` returns a list, as Keras's does for a list).
        values: ``len(boundaries) + 1`` rates, each >= 0.
        name: Keras's name (default ``"PiecewiseConstant"``, Keras's default).

    Example:
        >>> import jopt
        >>> s = jopt.schedules.PiecewiseConstantDecay([10, 20], [0.1, 0.01, 0.001])
        >>> [round(float(s(t)), 6) for t in (0, 10, 11, 20, 21)]
        [0.1, 0.1, 0.01, 0.01, 0.001]
    """

    boundaries: Sequence[float]
    values: Sequence[float]
    name: str = "PiecewiseConstant"

    def __post_init__(self) -> None:
        boundaries = check_numbers("boundaries", self.boundaries, increasing=True, min_length=1)
        values = check_numbers("values", self.values, low=0.0)
        if len(values) != len(boundaries) + 1:
            raise ValueError(
                f"values must have len(boundaries) + 1 = {len(boundaries) + 1} entries, "
                f"got {len(values)} (boundaries={list(boundaries)}, values={list(values)})"
            )
        object.__setattr__(self, "boundaries", boundaries)
        object.__setattr__(self, "values", values)

    def get_config(self) -> dict[str, Any]:
        return {"boundaries": list(self.boundaries), "values": list(self.values), "name": self.name}

    def __call__(self, step: Any) -> jax.Array:
        step = jnp.asarray(step)
        bounds = [jnp.asarray(b).astype(step.dtype) for b in self.boundaries]
        values = [_f32(v) for v in self.values]
        # Keras's masked sum: one mask is 1 for a non-NaN step, so the sum is exact.
        result = jnp.zeros((), jnp.float32)
        result = result + (step <= bounds[0]).astype(jnp.float32) * values[0]
        result = result + (step > bounds[-1]).astype(jnp.float32) * values[-1]
        for low, high, value in zip(bounds[:-1], bounds[1:], values[1:-1], strict=True):
            result = result + ((step > low) & (step <= high)).astype(jnp.float32) * value
        return result


@dataclasses.dataclass(frozen=True)
class PolynomialDecay(LearningRateSchedule):
    """Keras's ``PolynomialDecay``: from ``initial_learning_rate`` to ``end_learning_rate``.

    Rule, in float32 as Keras computes it::

        if cycle:   # restart with a longer period each time the end is reached
            decay_steps = decay_steps * (1 if step == 0 else ceil(step / decay_steps))
        else:
            step = min(step, decay_steps)
        p = step / decay_steps
        rate = (initial_learning_rate - end_learning_rate) * (1 - p) ** power
               + end_learning_rate

    At and past the end ``1 - p`` is exactly 0, also under ``jax.jit``, where XLA's
    ``step * (1 / decay_steps)`` makes Keras's compiled schedule give ``1 - p = -1.5e-8``
    and NaN for a fractional ``power``; elsewhere the bits are Keras's.

    Args:
        initial_learning_rate: rate at step 0, >= 0.
        decay_steps: > 0.
        end_learning_rate: final rate, >= 0 (default ``0.0001``).
        power: >= 0 (default ``1.0``, linear decay).
        cycle: restart past ``decay_steps`` (default ``False``).
        name: Keras's name (default ``"PolynomialDecay"``).

    Example:
        >>> import jopt
        >>> s = jopt.schedules.PolynomialDecay(0.1, decay_steps=10, end_learning_rate=0.0)
        >>> [round(float(s(t)), 6) for t in (0, 5, 10, 20)]
        [0.1, 0.05, 0.0, 0.0]
    """

    initial_learning_rate: float
    decay_steps: float
    end_learning_rate: float = 0.0001
    power: float = 1.0
    cycle: bool = False
    name: str = "PolynomialDecay"

    def __post_init__(self) -> None:
        check_number("initial_learning_rate", self.initial_learning_rate, low=0.0)
        check_number("decay_steps", self.decay_steps, low=0.0, low_open=True)
        check_number("end_learning_rate", self.end_learning_rate, low=0.0)
        check_number("power", self.power, low=0.0)
        check_bool("cycle", self.cycle)

    def __call__(self, step: Any) -> jax.Array:
        initial = _f32(self.initial_learning_rate)
        end = _f32(self.end_learning_rate)
        power = _f32(self.power)  # a float32 array, so jnp.power uses lax.pow as Keras's does
        step = _as_float_step(step)
        decay_steps = _f32(self.decay_steps)
        if self.cycle:
            periods = _ceil_quotient(step, decay_steps, step / decay_steps)
            decay_steps = decay_steps * jnp.where(step == 0, 1.0, periods)
        # min(step, decay_steps) written as a select, and 1 - p set to exactly 0 at the end
        # (Keras's eager value): under jit 1 - step * (1 / decay_steps) can be -1e-8 there,
        # NaN for a fractional power. Past the end the gradient is 0, not 0 * inf = NaN.
        before_end = step < decay_steps
        p = jnp.where(before_end, step, decay_steps) / decay_steps
        remaining = jnp.where(before_end, 1 - p, 0.0)
        return (initial - end) * jnp.power(remaining, power) + end


@dataclasses.dataclass(frozen=True)
class InverseTimeDecay(LearningRateSchedule):
    """Keras's ``InverseTimeDecay``: the rate falls as ``1 / (1 + decay_rate * t)``.

    Rule, in float32::

        p = step / decay_steps            # floor(p) if staircase
        rate = initial_learning_rate / (1 + decay_rate * p)

    Args:
        initial_learning_rate: rate at step 0, >= 0.
        decay_steps: > 0.
        decay_rate: >= 0.
        staircase: decay in discrete intervals (default ``False``).
        name: Keras's name (default ``"InverseTimeDecay"``).

    Example:
        >>> import jopt
        >>> s = jopt.schedules.InverseTimeDecay(0.1, decay_steps=10, decay_rate=1.0)
        >>> [round(float(s(t)), 6) for t in (0, 10, 30)]
        [0.1, 0.05, 0.025]
    """

    initial_learning_rate: float
    decay_steps: float
    decay_rate: float
    staircase: bool = False
    name: str = "InverseTimeDecay"

    def __post_init__(self) -> None:
        check_number("initial_learning_rate", self.initial_learning_rate, low=0.0)
        check_number("decay_steps", self.decay_steps, low=0.0, low_open=True)
        check_number("decay_rate", self.decay_rate, low=0.0)
        check_bool("staircase", self.staircase)

    def __call__(self, step: Any) -> jax.Array:
        initial = _f32(self.initial_learning_rate)
        step = _as_float_step(step)
        decay_steps = _f32(self.decay_steps)
        p = step / decay_steps
        if self.staircase:
            p = _floor_quotient(step, decay_steps, p)
        return initial / (_f32(1) + _f32(self.decay_rate) * p)


def _half_cosine(fraction: jax.Array) -> jax.Array:
    return 0.5 * (1.0 + jnp.cos(_f32(math.pi) * fraction))


# CosineDecay's two branches, at module level so lax.cond's trace and compile are cached.
def _cosine_decay(
    step: jax.Array, decay_steps: jax.Array, peak: jax.Array, keep: jax.Array, alpha: jax.Array
) -> jax.Array:
    return peak * (keep * _half_cosine(step / decay_steps) + alpha)


def _cosine_after_warmup(
    step: jax.Array,
    warmup_steps: jax.Array,
    divisor: jax.Array,
    start: jax.Array,
    *decay: jax.Array,
) -> jax.Array:
    return _cosine_decay(step - warmup_steps, *decay)


def _cosine_warmup(
    step: jax.Array,
    warmup_steps: jax.Array,
    divisor: jax.Array,
    start: jax.Array,
    *decay: jax.Array,
) -> jax.Array:
    target = decay[1]
    return (target - start) * (step / divisor) + start


@dataclasses.dataclass(frozen=True)
class CosineDecay(LearningRateSchedule):
    """Keras's ``CosineDecay`` (SGDR without restarts), with Keras's optional linear warmup.

    Rule without ``warmup_target``, in float32::

        step = min(step, decay_steps)
        decayed = (1 - alpha) * 0.5 * (1 + cos(pi * step / decay_steps)) + alpha
        rate = initial_learning_rate * decayed

    With ``warmup_target``, the rate first rises linearly from ``initial_learning_rate``
    to ``warmup_target`` over ``warmup_steps`` steps, then decays from ``warmup_target``::

        step = min(step, warmup_steps + decay_steps)
        rate = (warmup_target - initial_learning_rate) * step / warmup_steps
               + initial_learning_rate                           if step < warmup_steps
               warmup_target * decayed(step - warmup_steps)      otherwise

    ``1 - alpha`` is computed in float64 and then rounded, as in Keras's code.
    Arguments keep Keras's positional order (``name`` before ``warmup_target``).

    Args:
        initial_learning_rate: rate at step 0, >= 0.
        decay_steps: length of the decay, > 0.
        alpha: final rate as a fraction of the peak, >= 0 (default ``0.0``).
        name: Keras's name (default ``"CosineDecay"``).
        warmup_target: peak after warmup, >= 0, or ``None`` for no warmup (default).
        warmup_steps: length of the warmup, >= 0 (default ``0``; ignored without
            ``warmup_target``, as in Keras).

    Example:
        >>> import jopt
        >>> s = jopt.schedules.CosineDecay(0.0, 100, warmup_target=0.1, warmup_steps=10)
        >>> [round(float(s(t)), 6) for t in (0, 5, 10, 60, 110, 500)]
        [0.0, 0.05, 0.1, 0.05, 0.0, 0.0]
    """

    initial_learning_rate: float
    decay_steps: float
    alpha: float = 0.0
    name: str = "CosineDecay"
    warmup_target: float | None = None
    warmup_steps: float = 0

    def __post_init__(self) -> None:
        check_number("initial_learning_rate", self.initial_learning_rate, low=0.0)
        check_number("decay_steps", self.decay_steps, low=0.0, low_open=True)
        check_number("alpha", self.alpha, low=0.0)
        if self.warmup_target is not None:
            check_number("warmup_target", self.warmup_target, low=0.0)
        check_number("warmup_steps", self.warmup_steps, low=0.0)

    def __call__(self, step: Any) -> jax.Array:
        initial = _f32(self.initial_learning_rate)
        decay_steps = _f32(self.decay_steps)
        step = _as_float_step(step)
        # Keras writes (1 - alpha) * c + alpha with Python floats: 1 - alpha in float64.
        keep, alpha = _f32(1 - self.alpha), _f32(self.alpha)
        if self.warmup_target is None:
            return _cosine_decay(jnp.minimum(step, decay_steps), decay_steps, initial, keep, alpha)
        if step.ndim > 0:
            # Keras's cond takes one step at a time, so Keras maps it over an array with
            # vmap; doing the same gives the same bits.
            return jax.vmap(self)(step.reshape(-1)).reshape(step.shape)
        warmup_steps = _f32(self.warmup_steps)
        step = jnp.minimum(step, decay_steps + warmup_steps)
        # warmup_steps = 0 takes the warmup branch only at negative steps; dividing by 1
        # there keeps that (unused) branch finite, so gradients never meet 0 / 0.
        divisor = warmup_steps if self.warmup_steps > 0 else _f32(1)
        args: tuple[Any, ...] = (step, warmup_steps, divisor, initial, decay_steps)
        args += (_f32(self.warmup_target), keep, alpha)
        # Keras's ops.cond: XLA compiles the taken branch as one fused kernel, which
        # rounds differently from op-by-op code; the same cond gives the same bits.
        return jax.lax.cond(step < warmup_steps, _cosine_warmup, _cosine_after_warmup, *args)


# CosineDecayRestarts' two ways to find the period, at module level so lax.cond's trace
# and compile are cached: (restart index, fraction of the current period).
def _restarts_periodic(
    fraction: jax.Array, t_mul: jax.Array, step: jax.Array, first: jax.Array
) -> tuple[jax.Array, jax.Array]:
    i_restart = _floor_quotient(step, first, fraction)
    return i_restart, fraction - i_restart


def _restarts_geometric(
    fraction: jax.Array, t_mul: jax.Array, step: jax.Array, first: jax.Array
) -> tuple[jax.Array, jax.Array]:
    i_restart = jnp.floor(jnp.log(1.0 - fraction * (1.0 - t_mul)) / jnp.log(t_mul))
    sum_r = (1.0 - jnp.power(t_mul, i_restart)) / (1.0 - t_mul)
    return i_restart, (fraction - sum_r) / jnp.power(t_mul, i_restart)


@dataclasses.dataclass(frozen=True)
class CosineDecayRestarts(LearningRateSchedule):
    """Keras's ``CosineDecayRestarts`` (SGDR): cosine decays, restarted with warm restarts.

    Period ``i`` lasts ``first_decay_steps * t_mul**i`` steps and starts at
    ``m_mul**i * initial_learning_rate``. Rule, in float32 as Keras computes it::

        f = step / first_decay_steps
        if t_mul == 1:  i = floor(f);  f = f - i
        else:           i = floor(log(1 - f * (1 - t_mul)) / log(t_mul))
                        f = (f - (1 - t_mul**i) / (1 - t_mul)) / t_mul**i
        decayed = (1 - alpha) * (0.5 * m_mul**i * (1 + cos(pi * f))) + alpha
        rate = initial_learning_rate * decayed

    With ``t_mul < 1`` the periods sum to ``first_decay_steps / (1 - t_mul)``; past that
    step the formula takes the log of a negative number and the rate is NaN, as in Keras.

    Args:
        initial_learning_rate: rate at step 0, >= 0.
        first_decay_steps: length of the first period, > 0.
        t_mul: period growth factor, > 0 (default ``2.0``).
        m_mul: peak decay factor per restart, >= 0 (default ``1.0``).
        alpha: floor of every period, as a fraction of ``initial_learning_rate``, >= 0
            (default ``0.0``).
        name: Keras's name (default ``"SGDRDecay"``, Keras's default).

    Example:
        >>> import jopt
        >>> s = jopt.schedules.CosineDecayRestarts(0.1, first_decay_steps=10, m_mul=0.5)
        >>> [round(float(s(t)), 6) for t in (0, 5, 10, 20, 30)]
        [0.1, 0.05, 0.05, 0.025, 0.025]
    """

    initial_learning_rate: float
    first_decay_steps: float
    t_mul: float = 2.0
    m_mul: float = 1.0
    alpha: float = 0.0
    name: str = "SGDRDecay"

    def __post_init__(self) -> None:
        check_number("initial_learning_rate", self.initial_learning_rate, low=0.0)
        check_number("first_decay_steps", self.first_decay_steps, low=0.0, low_open=True)
        check_number("t_mul", self.t_mul, low=0.0, low_open=True)
        check_number("m_mul", self.m_mul, low=0.0)
        check_number("alpha", self.alpha, low=0.0)

    def __call__(self, step: Any) -> jax.Array:
        initial = _f32(self.initial_learning_rate)
        alpha = _f32(self.alpha)
        t_mul = _f32(self.t_mul)
        m_mul = _f32(self.m_mul)
        step = _as_float_step(step)
        first = _f32(self.first_decay_steps)
        fraction = step / first
        # Keras's ops.cond on a constant: XLA compiles the branch as one fused kernel,
        # which rounds differently from op-by-op code; the same cond gives the same bits.
        i_restart, fraction = jax.lax.cond(
            t_mul == 1.0, _restarts_periodic, _restarts_geometric, fraction, t_mul, step, first
        )
        # At a restart the log ratio is an integer that rounding (XLA's multiply by
        # 1 / log(t_mul) under jit) can leave just below it: the period found then ends
        # here (its fraction is 1 to a few ulps), so the next one begins, as the exact
        # formula says. Only a step within 1e-6 of a period's length from its end moves.
        over = fraction >= 1.0 - 2.0**-20
        i_restart = jnp.where(over, i_restart + 1, i_restart)
        fraction = jnp.where(over, (fraction - 1.0) / t_mul, fraction)
        m_fac = jnp.power(m_mul, i_restart)
        cosine_decayed = 0.5 * m_fac * (1.0 + jnp.cos(_f32(math.pi) * fraction))
        return initial * ((1 - alpha) * cosine_decayed + alpha)
