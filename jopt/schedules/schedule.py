"""The schedule protocol: the base class, its registry, and Keras's serialized form."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jopt.core.validation import check_step

__all__ = ["LearningRateSchedule", "Schedule", "deserialize", "serialize"]

Schedule = Callable[[Any], ArrayLike]


@dataclasses.dataclass(frozen=True)
class LearningRateSchedule:
    """Base class of jopt's schedules: a frozen dataclass whose fields are Keras's config."""

    _registry: ClassVar[dict[str, type[LearningRateSchedule]]] = {}
    _module: ClassVar[str] = "keras.optimizers.schedules"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        LearningRateSchedule._registry[cls.__name__] = cls
        # dataclass() would write a repr of every field (name='ExponentialDecay' too) unless
        # the class has its own: give each schedule the short one below.
        if "__repr__" not in cls.__dict__:
            cls.__repr__ = LearningRateSchedule.__repr__  # type: ignore[method-assign]
        if "__call__" in cls.__dict__:
            cls.__call__ = _checking_step(cls.__dict__["__call__"])  # type: ignore[method-assign, assignment]

    def __repr__(self) -> str:
        """The class and the fields that differ from their defaults, as an optimizer's."""
        shown = [
            f"{f.name}={getattr(self, f.name)!r}"
            for f in dataclasses.fields(self)
            if f.default is dataclasses.MISSING or getattr(self, f.name) != f.default
        ]
        return f"{type(self).__name__}({', '.join(shown)})"

    def __call__(self, step: Any) -> jax.Array:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """Returns Keras's config dict for this schedule."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LearningRateSchedule:
        """Rebuilds a schedule from :meth:`get_config`'s (or Keras's) dict."""
        return cls(**config)


def _checking_step(call: Callable[[Any, Any], jax.Array]) -> Callable[[Any, Any], jax.Array]:
    """``call``, refusing a step that is not a real number with a message naming it."""

    @functools.wraps(call)
    def checked(self: Any, step: Any) -> jax.Array:
        check_step(step)
        return call(self, step)

    return checked


def _f32(x: Any) -> jax.Array:
    return jnp.asarray(x, jnp.float32)


def _as_float_step(step: Any) -> jax.Array:
    return jnp.asarray(step).astype(jnp.float32)


# Blends of two rates along a phase, from the phase's elapsed fraction ``p`` and remaining
# fraction ``q = 1 - p``, each computed from the step directly (neither as ``1 - other``).
# Both are sums of non-negative terms, so each keeps float32's relative accuracy at both
# ends of the phase: torch's ``end + (start - end) / 2 * (1 + cos(pi * p))`` cancels
# there (float32 would lose half its digits a few steps before the end of a cosine).


def _linear_blend(start: Any, end: Any, p: jax.Array, q: jax.Array) -> jax.Array:
    """``start -> end`` linearly: ``start * q + end * p``."""
    return _f32(start) * q + _f32(end) * p


def _cosine_blend(start: Any, end: Any, p: jax.Array, q: jax.Array) -> jax.Array:
    """``start -> end`` along half a cosine: ``start * (1 + cos(pi p)) / 2 + end * (1 -
    cos(pi p)) / 2``, written as ``start * sin(pi q / 2)**2 + end * sin(pi p / 2)**2``."""
    half_pi = _f32(math.pi / 2)
    keep, move = jnp.sin(half_pi * q), jnp.sin(half_pi * p)
    return _f32(start) * (keep * keep) + _f32(end) * (move * move)


def _f64_power(base: float, n: int) -> float:
    try:
        return base**n
    except OverflowError:
        return math.inf


def _scaled_power(scale: float, base: float, k: jax.Array) -> jax.Array:
    """``scale * base**k`` in float32 for an integer array ``k >= 0``, within a few float32
    roundings of the exact value at any int32 ``k``.

    ``base**k`` in float32 (``exp(k * log(base))``) carries ``log``'s rounding times
    ``k``: 3e-6 relative by ``0.1**10``. Instead each hexadecimal digit ``d`` of ``k``
    picks ``base**(d * 16**j)`` from a table computed in float64 and rounded once, and
    the factors are multiplied: exact rounding for ``k < 16``, one more rounding per
    further non-zero digit.
    """
    if scale == 0:
        return jnp.zeros(jnp.shape(k), jnp.float32)
    k = jnp.maximum(k, 0).astype(jnp.int32)
    with np.errstate(over="ignore"):
        first = np.asarray([scale * _f64_power(base, d) for d in range(16)], np.float32)
        rate = jnp.take(jnp.asarray(first), k & 15)
        for j in range(1, 8):
            table = np.asarray([_f64_power(base, d * 16**j) for d in range(16)], np.float32)
            rate = rate * jnp.take(jnp.asarray(table), (k >> (4 * j)) & 15)
    return rate


def _fractions(step: jax.Array, start: float, length: float) -> tuple[jax.Array, jax.Array]:
    """``(p, q)``: the elapsed and remaining fractions of the phase ``[start, start +
    length]`` at ``step``, each clamped to ``[0, 1]`` (under ``jit`` XLA divides by a
    constant as a multiply by its reciprocal, a rounding that may step past 1). A phase
    of length <= 0 is over: ``(1, 0)``."""
    if length <= 0:
        return jnp.ones_like(step), jnp.zeros_like(step)
    p = (step - _f32(start)) / _f32(length)
    q = (_f32(start + length) - step) / _f32(length)
    return jnp.clip(p, 0.0, 1.0), jnp.clip(q, 0.0, 1.0)


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
