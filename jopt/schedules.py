"""Learning-rate schedules: frozen, hashable callables of the step, with Keras's formulas.

A schedule maps the number of updates already applied (Keras's ``iterations``) to a
float32 rate. Every schedule here is a pure JAX function of the step: it works on
Python ints, NumPy and JAX scalars, arrays of steps (broadcasting), traced steps under
``jax.jit`` and ``jax.vmap``, and ``jax.grad`` with respect to a float step. Any other
callable ``step -> rate`` is accepted wherever a schedule is.

Keras 3's six schedules keep Keras's names, arguments, defaults, configs and arithmetic
(operation order and float32 constants), so they give Keras's numbers. Three more,
:func:`warmup`, :func:`join` and :func:`constant`, compose schedules; they serialize
in the same ``{"class_name", "config"}`` form, with wrapped schedules nested.

Steps are expected to be >= 0: at negative steps a few formulas differ from Keras's
(which are meaningless there anyway).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jopt.validation import check_bool, check_number, check_numbers

__all__ = [
    "Constant",
    "CosineDecay",
    "CosineDecayRestarts",
    "ExponentialDecay",
    "InverseTimeDecay",
    "Join",
    "LearningRateSchedule",
    "PiecewiseConstantDecay",
    "PolynomialDecay",
    "Warmup",
    "constant",
    "deserialize",
    "join",
    "serialize",
    "warmup",
]

Schedule = Callable[[Any], ArrayLike]


@dataclasses.dataclass(frozen=True)
class LearningRateSchedule:
    """Base class of jopt's schedules: a frozen dataclass whose fields are Keras's config."""

    _registry: ClassVar[dict[str, type[LearningRateSchedule]]] = {}
    _module: ClassVar[str] = "keras.optimizers.schedules"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        LearningRateSchedule._registry[cls.__name__] = cls

    def __call__(self, step: Any) -> jax.Array:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """Returns Keras's config dict for this schedule."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LearningRateSchedule:
        """Rebuilds a schedule from :meth:`get_config`'s (or Keras's) dict."""
        return cls(**config)


def _f32(x: Any) -> jax.Array:
    return jnp.asarray(x, jnp.float32)


def _as_float_step(step: Any) -> jax.Array:
    return jnp.asarray(step).astype(jnp.float32)


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
        p = _as_float_step(step) / jnp.asarray(self.decay_steps, jnp.float32)
        if self.staircase:
            p = jnp.floor(p)
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
            multiplier = jnp.where(step == 0, 1.0, jnp.ceil(step / decay_steps))
            decay_steps = decay_steps * multiplier
        else:
            # min(step, decay_steps), written as a select: past the end the gradient is 0,
            # where minimum's would be 0 * inf = NaN for power < 1.
            step = jnp.where(step < decay_steps, step, decay_steps)
        p = step / decay_steps
        return (initial - end) * jnp.power(1 - p, power) + end


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
        p = _as_float_step(step) / _f32(self.decay_steps)
        if self.staircase:
            p = jnp.floor(p)
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
        args = (step, warmup_steps, divisor, initial, decay_steps, _f32(self.warmup_target))
        args += (keep, alpha)
        # Keras's ops.cond: XLA compiles the taken branch as one fused kernel, which
        # rounds differently from op-by-op code; the same cond gives the same bits.
        return jax.lax.cond(step < warmup_steps, _cosine_warmup, _cosine_after_warmup, *args)


# CosineDecayRestarts' two ways to find the period, at module level so lax.cond's trace
# and compile are cached: (restart index, fraction of the current period).
def _restarts_periodic(fraction: jax.Array, t_mul: jax.Array) -> tuple[jax.Array, jax.Array]:
    i_restart = jnp.floor(fraction)
    return i_restart, fraction - i_restart


def _restarts_geometric(fraction: jax.Array, t_mul: jax.Array) -> tuple[jax.Array, jax.Array]:
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
        fraction = _as_float_step(step) / _f32(self.first_decay_steps)
        # Keras's ops.cond on a constant: XLA compiles the branch as one fused kernel,
        # which rounds differently from op-by-op code; the same cond gives the same bits.
        i_restart, fraction = jax.lax.cond(
            t_mul == 1.0, _restarts_periodic, _restarts_geometric, fraction, t_mul
        )
        m_fac = jnp.power(m_mul, i_restart)
        cosine_decayed = 0.5 * m_fac * (1.0 + jnp.cos(_f32(math.pi) * fraction))
        return initial * ((1 - alpha) * cosine_decayed + alpha)


def _check_schedule(name: str, schedule: Any) -> None:
    if not callable(schedule):
        raise TypeError(
            f"{name} must be a schedule (a callable step -> rate), got {schedule!r:.100}"
        )


def _serialize_nested(owner: str, schedule: Any) -> dict[str, Any]:
    if not isinstance(schedule, LearningRateSchedule):
        raise TypeError(
            f"{owner} holds {schedule!r:.100} ({type(schedule).__name__}), which cannot be "
            "serialized: only jopt LearningRateSchedule objects serialize"
        )
    return serialize(schedule)


def _local_step(step: jax.Array, start: float | None, end: float | None) -> jax.Array:
    """``step - start``, clamped to the wrapped schedule's own range ``[0, end - start]``.

    Unselected branches of a ``jnp.where`` still get a zero cotangent, and ``0 * inf``
    is NaN: clamping keeps every branch finite, so gradients stay clean. ``start=None``
    neither shifts nor clamps from below. Integer steps stay integer when the bounds are
    whole numbers (exact at large steps, as integer comparisons in Keras are).
    """
    bounds = [b for b in (start, end) if b is not None]
    if not (jnp.issubdtype(step.dtype, jnp.integer) and all(float(b).is_integer() for b in bounds)):
        step = step.astype(jnp.float32)

    def const(b: float) -> jax.Array:
        return jnp.asarray(int(b) if float(b).is_integer() else b).astype(step.dtype)

    if end is not None:
        step = jnp.minimum(step, const(end))
    if start is not None:
        step = jnp.maximum(step, const(start)) - const(start)
    return step


def _rate(value: ArrayLike, step: jax.Array) -> jax.Array:
    """A wrapped schedule's value as float32, broadcast against the step's shape."""
    value = jnp.asarray(value, jnp.float32)
    return jnp.broadcast_to(value, jnp.broadcast_shapes(value.shape, step.shape))


@dataclasses.dataclass(frozen=True)
class Warmup(LearningRateSchedule):
    """Linear warmup in front of a schedule, which then runs on its own clock.

    Made by :func:`warmup`. With ``peak = schedule(0)`` and ``w = warmup_steps``::

        rate = (peak - start_value) * step / w + start_value   if step < w
               schedule(step - w)                              if step >= w

    So the rate is ``start_value`` at step 0, reaches the wrapped schedule's initial
    value exactly at step ``w`` (no jump), and the wrapped schedule then runs its whole
    course, shifted by ``w`` steps. ``warmup(CosineDecay(peak, d, alpha), w, start)``
    gives Keras's ``CosineDecay(start, d, alpha, warmup_target=peak, warmup_steps=w)``
    (the same bits under ``jax.jit``).

    Args:
        schedule: any schedule (a callable ``step -> rate``); only jopt schedules
            serialize.
        warmup_steps: length of the warmup, >= 0 (``0``: the schedule itself).
        start_value: rate at step 0, >= 0 (default ``0.0``).
        name: kept for the config (default ``"Warmup"``).

    Example:
        >>> import jopt
        >>> s = jopt.schedules.Warmup(jopt.schedules.constant(0.1), warmup_steps=4)
        >>> [round(float(s(t)), 6) for t in (0, 1, 2, 4, 100)]
        [0.0, 0.025, 0.05, 0.1, 0.1]
    """

    _module: ClassVar[str] = "jopt.schedules"

    schedule: Schedule
    warmup_steps: float
    start_value: float = 0.0
    name: str = "Warmup"

    def __post_init__(self) -> None:
        _check_schedule("schedule", self.schedule)
        check_number("warmup_steps", self.warmup_steps, low=0.0)
        check_number("start_value", self.start_value, low=0.0)

    def get_config(self) -> dict[str, Any]:
        return {
            "schedule": _serialize_nested("Warmup.schedule", self.schedule),
            "warmup_steps": self.warmup_steps,
            "start_value": self.start_value,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Warmup:
        config = dict(config)
        if isinstance(config.get("schedule"), dict):
            config["schedule"] = deserialize(config["schedule"])
        return cls(**config)

    def __call__(self, step: Any) -> jax.Array:
        step = jnp.asarray(step)
        if self.warmup_steps == 0:
            return _rate(self.schedule(step), step)
        after = _f32(self.schedule(_local_step(step, self.warmup_steps, None)))
        peak = _f32(self.schedule(jnp.zeros((), step.dtype)))
        start = _f32(self.start_value)
        # Keras's CosineDecay warmup arithmetic: compiled, the two agree to the bit.
        fraction = _as_float_step(step) / _f32(self.warmup_steps)
        warm = (peak - start) * fraction + start
        return jnp.where(step < self.warmup_steps, warm, after)


@dataclasses.dataclass(frozen=True)
class Join(LearningRateSchedule):
    """Schedules run one after another, each on its own clock.

    Made by :func:`join`. With ``b = boundaries`` (``b[-1] = 0`` for the first)::

        rate = schedules[i](step - b[i-1])   for b[i-1] <= step < b[i]

    Schedule ``i`` takes over *at* its boundary, at step 0 of its own clock (optax's
    ``join_schedules`` convention). Note the contrast with
    :class:`PiecewiseConstantDecay`, where a step equal to a boundary keeps the
    earlier value, as in Keras.

    Args:
        schedules: one or more schedules (callables ``step -> rate``).
        boundaries: ``len(schedules) - 1`` strictly increasing steps, each >= 0.
        name: kept for the config (default ``"Join"``).

    Example:
        >>> import jopt
        >>> s = jopt.schedules.Join(
        ...     (jopt.schedules.constant(0.1), jopt.schedules.PolynomialDecay(0.1, 10, 0.0)),
        ...     boundaries=(5,))
        >>> [round(float(s(t)), 6) for t in (0, 4, 5, 10, 15)]
        [0.1, 0.1, 0.1, 0.05, 0.0]
    """

    _module: ClassVar[str] = "jopt.schedules"

    schedules: Sequence[Schedule]
    boundaries: Sequence[float]
    name: str = "Join"

    def __post_init__(self) -> None:
        if isinstance(self.schedules, (str, bytes)) or not isinstance(self.schedules, Sequence):
            raise TypeError(f"schedules must be a list or tuple, got {self.schedules!r:.100}")
        if not self.schedules:
            raise ValueError("schedules must hold at least one schedule, got none")
        for i, s in enumerate(self.schedules):
            _check_schedule(f"schedules[{i}]", s)
        boundaries = check_numbers("boundaries", self.boundaries, low=0.0, increasing=True)
        if len(boundaries) != len(self.schedules) - 1:
            raise ValueError(
                f"boundaries must have len(schedules) - 1 = {len(self.schedules) - 1} "
                f"entries, got {len(boundaries)}: {list(boundaries)}"
            )
        object.__setattr__(self, "schedules", tuple(self.schedules))
        object.__setattr__(self, "boundaries", boundaries)

    def get_config(self) -> dict[str, Any]:
        return {
            "schedules": [
                _serialize_nested(f"Join.schedules[{i}]", s) for i, s in enumerate(self.schedules)
            ],
            "boundaries": list(self.boundaries),
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Join:
        config = dict(config)
        config["schedules"] = tuple(
            deserialize(s) if isinstance(s, dict) else s for s in config["schedules"]
        )
        return cls(**config)

    def __call__(self, step: Any) -> jax.Array:
        step = jnp.asarray(step)
        starts = (None, *self.boundaries)
        ends = (*self.boundaries, None)
        rate = _rate(self.schedules[0](_local_step(step, None, ends[0])), step)
        for schedule, start, end in zip(self.schedules[1:], starts[1:], ends[1:], strict=True):
            value = _f32(schedule(_local_step(step, start, end)))
            rate = jnp.where(step >= start, value, rate)
        return rate


@dataclasses.dataclass(frozen=True)
class Constant(LearningRateSchedule):
    """A constant rate, as a schedule (to join, warm up or serialize).

    Made by :func:`constant`. Rule: ``rate = value`` at every step, float32, shaped like
    the step.

    Args:
        value: the rate, >= 0.
        name: kept for the config (default ``"Constant"``).

    Example:
        >>> import jax.numpy as jnp
        >>> import jopt
        >>> jopt.schedules.Constant(0.5)(jnp.arange(3))
        Array([0.5, 0.5, 0.5], dtype=float32)
    """

    _module: ClassVar[str] = "jopt.schedules"

    value: float
    name: str = "Constant"

    def __post_init__(self) -> None:
        check_number("value", self.value, low=0.0)

    def __call__(self, step: Any) -> jax.Array:
        return jnp.full(jnp.shape(step), self.value, jnp.float32)


def warmup(schedule: Schedule, warmup_steps: float, start_value: float = 0.0) -> Warmup:
    """Linear warmup from ``start_value`` to ``schedule(0)``, then ``schedule`` on its clock.

    Rule (``w = warmup_steps``, ``peak = schedule(0)``)::

        rate = (peak - start_value) * step / w + start_value   if step < w
               schedule(step - w)                              if step >= w

    Args:
        schedule: any schedule (callable ``step -> rate``).
        warmup_steps: >= 0.
        start_value: rate at step 0, >= 0 (default ``0.0``).

    Returns:
        A frozen, hashable, serializable :class:`Warmup`.

    Example:
        >>> import jopt
        >>> s = jopt.schedules.warmup(jopt.schedules.ExponentialDecay(0.1, 10, 0.5), 10)
        >>> [round(float(s(t)), 6) for t in (0, 5, 10, 20)]
        [0.0, 0.05, 0.1, 0.05]
    """
    return Warmup(schedule, warmup_steps, start_value)


def join(schedules: Sequence[Schedule], boundaries: Sequence[float]) -> Join:
    """Runs ``schedules[i]`` from step ``boundaries[i-1]``, restarting its clock there.

    Rule (``b[-1] = 0``): ``rate = schedules[i](step - b[i-1])`` for
    ``b[i-1] <= step < b[i]``; a step equal to a boundary belongs to the later schedule.

    Args:
        schedules: one or more schedules (callables ``step -> rate``).
        boundaries: ``len(schedules) - 1`` strictly increasing steps >= 0.

    Returns:
        A frozen, hashable, serializable :class:`Join`.

    Example:
        >>> import jopt
        >>> s = jopt.schedules.join(
        ...     [jopt.schedules.constant(0.1), jopt.schedules.constant(0.01)], [100])
        >>> [round(float(s(t)), 6) for t in (99, 100)]
        [0.1, 0.01]
    """
    return Join(tuple(schedules), tuple(boundaries))


def constant(value: float) -> Constant:
    """The schedule ``step -> value`` (float32), frozen and serializable.

    Args:
        value: the rate, >= 0.

    Returns:
        A :class:`Constant`.

    Example:
        >>> import jopt
        >>> float(jopt.schedules.constant(0.25)(1000))
        0.25
    """
    return Constant(value)


def serialize(schedule: LearningRateSchedule) -> dict[str, Any]:
    """Returns Keras's serialized form ``{"class_name": ..., "config": ...}``.

    Wrapped schedules (in :class:`Warmup` and :class:`Join`) are serialized nested, in
    the same form; jopt's own classes name ``"jopt.schedules"`` as their module.

    Raises:
        TypeError: ``schedule`` (or one it wraps) is not a jopt ``LearningRateSchedule``.

    Example:
        >>> import jopt
        >>> jopt.schedules.serialize(jopt.schedules.ExponentialDecay(0.1, 10, 0.5))["class_name"]
        'ExponentialDecay'
    """
    if not isinstance(schedule, LearningRateSchedule):
        raise TypeError(
            f"serialize takes a jopt LearningRateSchedule, got {type(schedule).__name__}"
        )
    return {
        "module": type(schedule)._module,
        "class_name": type(schedule).__name__,
        "config": schedule.get_config(),
        "registered_name": None,
    }


def deserialize(config: dict[str, Any]) -> LearningRateSchedule:
    """Rebuilds a schedule from :func:`serialize`'s dict or from one Keras wrote.

    Example:
        >>> import jopt
        >>> d = {"class_name": "ExponentialDecay",
        ...      "config": {"initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.5}}
        >>> jopt.schedules.deserialize(d) == jopt.schedules.ExponentialDecay(0.1, 10, 0.5)
        True
    """
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(
            f"deserialize expects a dict with 'class_name' and 'config', got {config!r:.200}"
        )
    cls = LearningRateSchedule._registry.get(config["class_name"])
    if cls is None:
        known = ", ".join(sorted(LearningRateSchedule._registry))
        raise ValueError(f"unknown schedule class_name {config['class_name']!r}; known: {known}")
    return cls.from_config(dict(config.get("config", {})))
