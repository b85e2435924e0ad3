"""Schedules against Keras 3's, eager, jitted, vmapped and broadcast, plus serialization."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

import jopt
from jopt.schedules import ExponentialDecay

CONFIGS = [
    dict(initial_learning_rate=0.1, decay_steps=5, decay_rate=0.5),
    dict(initial_learning_rate=0.1, decay_steps=5, decay_rate=0.5, staircase=True),
    dict(initial_learning_rate=3e-4, decay_steps=1000, decay_rate=0.96, staircase=True),
    dict(initial_learning_rate=1.0, decay_steps=7.5, decay_rate=1.5),
]
STEPS = [0, 1, 4, 5, 6, 9, 10, 11, 999, 1000, 1001, 12345, 10**6]


def keras_values(config: dict[str, Any], steps: list[int], mode: str = "scalar") -> np.ndarray:
    """Keras's values, one step at a time, on an array of steps, or compiled.

    XLA's vectorized and fused ``pow`` round differently from its scalar one (6e-6
    apart at ``1.5 ** 133``), so each of jopt's modes is compared with Keras's twin.
    """
    oracle = keras.optimizers.schedules.ExponentialDecay(**config)
    if mode == "jit":
        return np.asarray(jax.jit(jax.vmap(oracle))(jnp.asarray(steps)))
    if mode == "array":
        return np.asarray(oracle(jnp.asarray(steps)))
    return np.array([float(oracle(s)) for s in steps], np.float32)


@pytest.mark.parametrize("config", CONFIGS)
def test_exponential_decay_matches_keras_eager_jit_vmap(config: dict[str, Any]) -> None:
    schedule = ExponentialDecay(**config)
    expected = keras_values(config, STEPS)
    eager = np.array([float(schedule(s)) for s in STEPS], np.float32)
    np.testing.assert_allclose(eager, expected, rtol=1e-6)
    steps = jnp.asarray(STEPS)
    np.testing.assert_allclose(
        jax.jit(jax.vmap(schedule))(steps), keras_values(config, STEPS, "jit"), rtol=1e-6
    )
    on_array = keras_values(config, STEPS, "array")
    np.testing.assert_allclose(schedule(np.asarray(STEPS)), on_array, rtol=1e-6)
    np.testing.assert_allclose(schedule(steps.astype(jnp.float32)), on_array, rtol=1e-6)
    assert schedule(3).dtype == jnp.float32


def test_schedules_are_frozen_and_hashable() -> None:
    a, b = ExponentialDecay(0.1, 5, 0.5), ExponentialDecay(0.1, 5, 0.5)
    assert a == b and hash(a) == hash(b)
    with pytest.raises(AttributeError):
        a.decay_rate = 0.9  # type: ignore[misc]


@pytest.mark.parametrize("config", CONFIGS)
def test_keras_serialized_schedule_deserializes_to_the_same_values(config: dict) -> None:
    written = keras.optimizers.schedules.serialize(
        keras.optimizers.schedules.ExponentialDecay(**config)
    )
    schedule = jopt.schedules.deserialize(written)
    np.testing.assert_allclose(
        schedule(jnp.asarray(STEPS)), keras_values(config, STEPS, "array"), rtol=1e-6
    )
    assert jopt.schedules.deserialize(jopt.schedules.serialize(schedule)) == schedule
    assert ExponentialDecay.from_config(schedule.get_config()) == schedule
    assert schedule.get_config() == written["config"]


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        (dict(decay_steps=0), r"decay_steps must be in \(0, inf\)"),
        (dict(decay_steps=-5), "decay_steps"),
        (dict(decay_rate=0.0), "decay_rate"),
        (dict(initial_learning_rate=-0.1), r"initial_learning_rate must be in \[0, inf\)"),
        (dict(initial_learning_rate=float("inf")), "initial_learning_rate must be finite"),
    ],
)
def test_bad_schedule_arguments_raise_naming_the_argument(kwargs: dict, pattern: str) -> None:
    config = dict(initial_learning_rate=0.1, decay_steps=5, decay_rate=0.5) | kwargs
    with pytest.raises(ValueError, match=pattern):
        ExponentialDecay(**config)


def test_deserialize_rejects_unknown_classes() -> None:
    with pytest.raises(ValueError, match="unknown schedule class_name 'Nope'"):
        jopt.schedules.deserialize({"class_name": "Nope", "config": {}})
