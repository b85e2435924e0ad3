"""Learning-rate schedules: frozen, hashable callables of the step, with Keras's formulas.

A schedule maps the number of updates already applied (Keras's ``iterations``) to a
float32 rate. Every schedule here is a pure JAX function of the step: it works on
Python ints, NumPy and JAX scalars, arrays of steps (broadcasting), traced steps under
``jax.jit`` and ``jax.vmap``. Any other callable ``step -> rate`` is accepted wherever
a schedule is.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from jopt.validation import check_bool, check_number

__all__ = [
    "ExponentialDecay",
    "LearningRateSchedule",
    "deserialize",
    "serialize",
]


@dataclasses.dataclass(frozen=True)
class LearningRateSchedule:
    """Base class of jopt's schedules: a frozen dataclass whose fields are Keras's config."""

    _registry: ClassVar[dict[str, type[LearningRateSchedule]]] = {}

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


def serialize(schedule: LearningRateSchedule) -> dict[str, Any]:
    """Returns Keras's serialized form ``{"class_name": ..., "config": ...}``.

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
        "module": "keras.optimizers.schedules",
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
