"""Beyond Keras: schedules built from schedules (warmup, join) and a constant."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jopt.core.validation import check_number, check_numbers
from jopt.schedules.schedule import (
    LearningRateSchedule,
    Schedule,
    _as_float_step,
    _f32,
    deserialize,
    serialize,
)

__all__ = ["Constant", "Join", "Warmup", "constant", "join", "warmup"]


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
