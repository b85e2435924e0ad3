"""Schedules against Keras 3's, eager, jitted, vmapped and broadcast, plus serialization.

Keras is the oracle for its six schedules; ``warmup``, ``join`` and ``constant`` are
checked against NumPy float64 formulas written here.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

import jopt
from jopt import schedules as S

K = keras.optimizers.schedules
I32_MAX = 2**31 - 1

# (class name, Keras kwargs, key steps): each case is checked at steps 0-3, at each key
# step and its integer neighbours, at 10**6 and at the int32 maximum.
CASES: list[tuple[str, dict[str, Any], list[float]]] = [
    ("ExponentialDecay", dict(initial_learning_rate=0.1, decay_steps=5, decay_rate=0.5), [5]),
    (
        "ExponentialDecay",
        dict(initial_learning_rate=0.1, decay_steps=5, decay_rate=0.5, staircase=True),
        [5, 10],
    ),
    (
        "ExponentialDecay",
        dict(initial_learning_rate=3e-4, decay_steps=1000, decay_rate=0.96, staircase=True),
        [1000, 12345],
    ),
    ("ExponentialDecay", dict(initial_learning_rate=1.0, decay_steps=7.5, decay_rate=1.5), [7.5]),
    ("PiecewiseConstantDecay", dict(boundaries=[10, 20], values=[1.0, 0.5, 0.1]), [10, 20]),
    (
        "PiecewiseConstantDecay",
        dict(boundaries=[100000, 110000], values=[1.0, 0.5, 0.1]),
        [100000, 110000],
    ),
    (
        "PiecewiseConstantDecay",
        dict(boundaries=[2.5, 7.5, 9.0], values=[0.3, 0.2, 0.1, 0.05]),
        [2.5, 7.5, 9],
    ),
    # Past 2**24 float32 cannot tell the steps apart; Keras compares integer steps exactly.
    ("PiecewiseConstantDecay", dict(boundaries=[2**24 + 1], values=[1.0, 0.5]), [2**24 + 1]),
    ("PolynomialDecay", dict(initial_learning_rate=0.1, decay_steps=100), [50, 100]),
    (
        "PolynomialDecay",
        dict(initial_learning_rate=0.1, decay_steps=100, end_learning_rate=0.01, power=0.5),
        [100],
    ),
    (
        "PolynomialDecay",
        dict(
            initial_learning_rate=0.1,
            decay_steps=100,
            end_learning_rate=0.001,
            power=2.0,
            cycle=True,
        ),
        [100, 200, 300],
    ),
    (
        "PolynomialDecay",
        dict(initial_learning_rate=1.0, decay_steps=7.5, power=1.7, cycle=True),
        [7.5, 15, 22.5],
    ),
    (
        "PolynomialDecay",
        dict(initial_learning_rate=0.01, decay_steps=50, end_learning_rate=0.1, power=3.0),
        [50],
    ),
    ("InverseTimeDecay", dict(initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5), [10]),
    (
        "InverseTimeDecay",
        dict(initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5, staircase=True),
        [10, 20],
    ),
    ("InverseTimeDecay", dict(initial_learning_rate=1.0, decay_steps=7.5, decay_rate=2.0), [7.5]),
    ("CosineDecay", dict(initial_learning_rate=0.1, decay_steps=100), [50, 100]),
    ("CosineDecay", dict(initial_learning_rate=0.1, decay_steps=100, alpha=0.1), [50, 100]),
    ("CosineDecay", dict(initial_learning_rate=1.0, decay_steps=7.5, alpha=0.3), [7.5]),
    (
        "CosineDecay",
        dict(
            initial_learning_rate=0.0,
            decay_steps=100,
            alpha=0.1,
            warmup_target=1.0,
            warmup_steps=10,
        ),
        [5, 10, 60, 110],
    ),
    (
        "CosineDecay",
        dict(initial_learning_rate=0.01, decay_steps=1000, warmup_target=0.1, warmup_steps=7),
        [7, 507, 1007],
    ),
    (
        "CosineDecay",
        dict(initial_learning_rate=0.01, decay_steps=100, warmup_target=0.1, warmup_steps=0),
        [100],
    ),
    ("CosineDecayRestarts", dict(initial_learning_rate=0.1, first_decay_steps=10), [10, 30, 70]),
    (
        "CosineDecayRestarts",
        dict(initial_learning_rate=0.1, first_decay_steps=10, t_mul=1.0, m_mul=0.9),
        [10, 20, 30],
    ),
    (
        "CosineDecayRestarts",
        dict(initial_learning_rate=0.1, first_decay_steps=10, t_mul=1.5, m_mul=0.8, alpha=0.1),
        [10, 25, 47.5],
    ),
    (
        "CosineDecayRestarts",
        dict(initial_learning_rate=1.0, first_decay_steps=7, t_mul=3.0, m_mul=1.2, alpha=0.05),
        [7, 28, 91],
    ),
]
CASE_IDS = [f"{n}-{i}" for i, (n, _, _) in enumerate(CASES)]
# Rates that grow without bound by design (decay_rate > 1, m_mul > 1) are not finite-checked.
GROWING = {"ExponentialDecay-3", "CosineDecayRestarts-25"}


def steps_for(keys: list[float]) -> list[int]:
    steps = {0, 1, 2, 3, 10**6, I32_MAX}
    for k in keys:
        steps |= {math.floor(k) - 1, math.floor(k), math.ceil(k), math.ceil(k) + 1}
    return sorted(steps)


def evaluate(schedule: Callable[[Any], Any], steps: list[int], mode: str) -> np.ndarray:
    """A schedule's values at ``steps``, in one of the ways a user calls it.

    XLA rounds ``pow``/``cos`` differently when scalar, vectorized or fused, so each of
    jopt's modes is compared with Keras's twin in the same mode.
    """
    if mode == "eager":
        return np.array([float(schedule(s)) for s in steps], np.float32)
    if mode == "jit":
        return np.asarray(jax.jit(jax.vmap(schedule))(jnp.asarray(steps)))
    if mode == "vmap":
        return np.asarray(jax.vmap(schedule)(jnp.asarray(steps)))
    if mode == "array":
        return np.asarray(schedule(jnp.asarray(steps)))
    assert mode == "float"
    return np.asarray(schedule(jnp.asarray(steps, jnp.float32)))


def keras_values(oracle: Callable[[Any], Any], steps: list[int], mode: str) -> np.ndarray:
    """Keras's values in ``mode``; compiled, its exact (eager) value where jit rounds it off.

    Under jit XLA turns ``step / decay_steps`` into a multiply, so at an exact multiple
    Keras's compiled ``PolynomialDecay`` gives ``1 - p = +-1e-8`` (NaN for a fractional
    power) where its eager value (and its own test) is exactly the end rate. jopt keeps
    the exact value there (``tests/test_schedule_boundaries.py``) and Keras's compiled
    bits everywhere else.
    """
    values = evaluate(oracle, steps, mode)
    if mode == "jit":
        eager = evaluate(oracle, steps, "eager")
        values = np.where(steps_at_the_end(oracle, steps), eager, values)
    return values


def steps_at_the_end(oracle: Any, steps: list[int]) -> np.ndarray:
    """Steps at or past a ``PolynomialDecay``'s end (or at a cycle's end): 1 - p is 0 there."""
    if type(oracle).__name__ != "PolynomialDecay":
        return np.zeros(len(steps), bool)
    t, d = np.asarray(steps, np.float64), float(oracle.decay_steps)
    if oracle.cycle:
        return (t > 0) & (np.ceil(t / d) * d == t)
    return t >= d


def keras_has_no_array_form(name: str, config: dict[str, Any]) -> bool:
    """Keras's CosineDecay warmup is an ``ops.cond``, which rejects an array of steps."""
    return name == "CosineDecay" and config.get("warmup_target") is not None


@pytest.mark.parametrize("mode", ["eager", "jit", "vmap", "array", "float"])
@pytest.mark.parametrize(("name", "config", "keys"), CASES, ids=CASE_IDS)
def test_values_equal_keras_to_the_bit(
    name: str, config: dict[str, Any], keys: list[float], mode: str
) -> None:
    steps = steps_for(keys)
    ours = evaluate(getattr(S, name)(**config), steps, mode)
    oracle = getattr(K, name)(**config)
    if mode in ("array", "float") and keras_has_no_array_form(name, config):
        mode = "vmap"  # how Keras must map its cond over steps; jopt does the same inside
    np.testing.assert_array_equal(ours, keras_values(oracle, steps, mode))
    assert ours.dtype == np.float32


def np_exponential(t: np.ndarray) -> np.ndarray:
    return 0.1 * 0.5 ** (t / 10.0)


def np_cosine(peak: float, d: float, alpha: float) -> Callable[[np.ndarray], np.ndarray]:
    def f(t: np.ndarray) -> np.ndarray:
        t = np.minimum(t, d)
        return peak * ((1 - alpha) * 0.5 * (1 + np.cos(np.pi * t / d)) + alpha)

    return f


def np_warmup(inner: Callable, w: float, start: float) -> Callable[[np.ndarray], np.ndarray]:
    def f(t: np.ndarray) -> np.ndarray:
        peak = inner(np.zeros_like(t))
        return np.where(t < w, start + (peak - start) * t / w, inner(np.maximum(t - w, 0)))

    return f


def np_join(inners: list[Callable], bounds: list[float]) -> Callable[[np.ndarray], np.ndarray]:
    def f(t: np.ndarray) -> np.ndarray:
        out = inners[0](t)
        for inner, b in zip(inners[1:], bounds, strict=True):
            out = np.where(t >= b, inner(np.maximum(t - b, 0)), out)
        return out

    return f


EXP = S.ExponentialDecay(0.1, 10, 0.5)
COS = S.CosineDecay(0.2, 50, alpha=0.1)
np_cos = np_cosine(0.2, 50, 0.1)
COMPOSED: list[tuple[str, Any, Callable[[np.ndarray], np.ndarray]]] = [
    ("constant", S.constant(0.3), lambda t: np.full_like(t, 0.3)),
    ("warmup-exp", S.warmup(EXP, 10), np_warmup(np_exponential, 10, 0.0)),
    ("warmup-cos-start", S.warmup(COS, 7, start_value=0.05), np_warmup(np_cos, 7, 0.05)),
    ("warmup-float-steps", S.warmup(COS, 2.5, 0.01), np_warmup(np_cos, 2.5, 0.01)),
    ("warmup-0", S.warmup(EXP, 0), np_exponential),
    (
        "warmup-callable",
        S.warmup(lambda t: 0.1 * 0.5 ** (t / 10), 10),
        np_warmup(np_exponential, 10, 0),
    ),
    (
        "join-3",
        S.join([S.constant(0.1), COS, EXP], [20, 100]),
        np_join([lambda t: np.full_like(t, 0.1), np_cos, np_exponential], [20, 100]),
    ),
    ("join-1", S.join([EXP], []), np_exponential),
    (
        "join-warmup-callable",
        S.join([S.warmup(EXP, 5, 0.01), lambda t: jnp.float32(0.02)], [30]),
        np_join([np_warmup(np_exponential, 5, 0.01), lambda t: np.full_like(t, 0.02)], [30]),
    ),
]
COMPOSED_STEPS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 19, 20, 21, 29, 30, 31, 69, 70, 71, 99]
COMPOSED_STEPS += [100, 101, 150, 1000, 10**6, I32_MAX]


@pytest.mark.parametrize("mode", ["eager", "jit", "array", "float"])
@pytest.mark.parametrize(
    ("schedule", "oracle"), [c[1:] for c in COMPOSED], ids=[c[0] for c in COMPOSED]
)
def test_warmup_join_constant_match_a_float64_formula(
    schedule: Any, oracle: Callable[[np.ndarray], np.ndarray], mode: str
) -> None:
    expected = oracle(np.asarray(COMPOSED_STEPS, np.float64))
    # pow(0.5, t / 10) in float32 carries t / 10's rounding: ~1e-5 relative by t = 1000.
    np.testing.assert_allclose(
        evaluate(schedule, COMPOSED_STEPS, mode), expected, rtol=2e-5, atol=1e-9
    )


@pytest.mark.parametrize("mode", ["eager", "jit"])
def test_warmup_of_cosine_decay_is_keras_cosine_warmup(mode: str) -> None:
    steps = [*range(0, 130, 9), 9, 10, 11, 10**6]
    schedule = S.warmup(S.CosineDecay(1.0, 100, alpha=0.1), 10, start_value=0.05)
    keras_twin = K.CosineDecay(0.05, 100, alpha=0.1, warmup_target=1.0, warmup_steps=10)
    ours, expected = evaluate(schedule, steps, mode), evaluate(keras_twin, steps, mode)
    if mode == "jit":
        np.testing.assert_array_equal(ours, expected)
    else:  # Keras's eager cond compiles its branch; the wrapped CosineDecay runs op by op
        np.testing.assert_allclose(ours, expected, rtol=1e-6, atol=1e-8)


def test_join_switches_at_the_boundary_and_restarts_the_clock() -> None:
    s = S.join([S.constant(1.0), S.PolynomialDecay(0.5, 10, 0.0)], [5])
    assert [float(s(t)) for t in (4, 5, 10, 15, 20)] == [1.0, 0.5, 0.25, 0.0, 0.0]
    # PiecewiseConstantDecay keeps the earlier value at a boundary, as Keras does.
    assert float(S.PiecewiseConstantDecay([5], [1.0, 0.5])(5)) == 1.0


def test_join_keeps_integer_steps_exact() -> None:
    inner = S.PiecewiseConstantDecay([2**24 + 1], [0.5, 0.25])
    s = S.join([S.constant(1.0), inner], [10])
    steps = jnp.asarray([2**24 + 11, 2**24 + 12])
    np.testing.assert_array_equal(jax.jit(s)(steps), [0.5, 0.25])


# Beyond Keras: torch's schedulers and warmup-stable-decay (their values are checked in
# tests/test_schedules_pytorch.py); the properties below hold for them too.
BEYOND_KERAS: list[tuple[str, Any]] = [
    ("OneCycle", S.OneCycle(0.1, 100)),
    ("OneCycle-three-phase-linear", S.OneCycle(0.1, 30, 0.4, "linear", three_phase=True)),
    ("CyclicLR-triangular2", S.CyclicLR(0.01, 0.1, 5, 3, mode="triangular2")),
    ("CyclicLR-exp-range", S.CyclicLR(0.0, 0.1, 7.5, mode="exp_range", gamma=0.97)),
    ("StepDecay", S.StepDecay(0.1, 7, gamma=0.5)),
    ("MultiStepDecay", S.MultiStepDecay(0.1, [0, 5, 5, 20])),
    ("WSD-linear", S.WarmupStableDecay(0.1, 10, 30, 20, 0.01)),
    ("WSD-cosine", S.WarmupStableDecay(0.1, 0, 5.5, 20, 0.0, "cosine")),
    ("WSD-1-sqrt", S.WarmupStableDecay(0.1, 5, 0, 50, 0.0, "1-sqrt")),
]


def all_schedules() -> list[Any]:
    return (
        [getattr(S, n)(**c) for n, c, _ in CASES]
        + [c[1] for c in COMPOSED]
        + [s for _, s in BEYOND_KERAS]
    )


ALL = all_schedules()
ALL_IDS = CASE_IDS + [c[0] for c in COMPOSED] + [i for i, _ in BEYOND_KERAS]


@pytest.mark.parametrize("schedule", ALL, ids=ALL_IDS)
def test_any_kind_of_step_gives_a_float32_rate(schedule: Any) -> None:
    expected = float(schedule(7))
    for step in (7, 7.0, np.int64(7), np.int32(7), np.float32(7), jnp.int32(7), jnp.float32(7)):
        value = schedule(step)
        assert value.dtype == jnp.float32 and value.shape == ()
        assert float(value) == expected
    grid = jnp.arange(12).reshape(3, 4)
    assert schedule(grid).shape == (3, 4) and schedule(grid).dtype == jnp.float32
    np.testing.assert_allclose(jax.jit(schedule)(grid), schedule(grid), rtol=1e-6)


@pytest.mark.parametrize("schedule", ALL, ids=ALL_IDS)
def test_schedules_are_frozen_hashable_and_static_jit_arguments(schedule: Any) -> None:
    assert hash(schedule) == hash(dataclasses.replace(schedule))
    assert schedule == dataclasses.replace(schedule)
    with pytest.raises(dataclasses.FrozenInstanceError):
        schedule.name = "other"

    @jax.jit
    def rate(step: jax.Array) -> jax.Array:
        return schedule(step)

    np.testing.assert_array_equal(
        rate(5), jax.jit(lambda t, s: s(t), static_argnums=1)(5, schedule)
    )


@pytest.mark.parametrize("schedule", ALL, ids=ALL_IDS)
def test_gradient_with_respect_to_a_float_step_is_finite(schedule: Any) -> None:
    steps = jnp.asarray([0.0, 0.5, 4.5, 9.5, 10.0, 55.5, 100.0, 150.0])
    grads = jax.vmap(jax.grad(schedule))(steps)
    one_by_one = np.array([float(jax.grad(schedule)(t)) for t in steps])
    assert np.isfinite(one_by_one).all() and np.isfinite(grads).all(), (grads, one_by_one)


@pytest.mark.parametrize(
    "schedule", [s for s, i in zip(ALL, ALL_IDS, strict=True) if i not in GROWING]
)
def test_schedules_stay_finite_at_huge_steps(schedule: Any) -> None:
    for step in (10**6, I32_MAX):
        assert np.isfinite(float(schedule(step)))
    assert np.isfinite(jax.jit(jax.vmap(schedule))(jnp.asarray([10**6, I32_MAX]))).all()


@pytest.mark.parametrize(("name", "config", "keys"), CASES, ids=CASE_IDS)
def test_config_is_keras_and_keras_dicts_deserialize(
    name: str, config: dict[str, Any], keys: list[float]
) -> None:
    schedule = getattr(S, name)(**config)
    oracle = getattr(K, name)(**config)
    assert schedule.get_config() == oracle.get_config()
    assert type(schedule).from_config(schedule.get_config()) == schedule

    written = K.serialize(oracle)
    rebuilt = S.deserialize(written)
    assert rebuilt == schedule and S.serialize(rebuilt) == written
    steps = steps_for(keys)
    np.testing.assert_array_equal(
        evaluate(rebuilt, steps, "jit"), keras_values(oracle, steps, "jit")
    )
    # ...and back: Keras reads jopt's dict.
    keras_again = K.deserialize(json.loads(json.dumps(S.serialize(schedule))))
    assert keras_again.get_config() == oracle.get_config()


def test_piecewise_constant_stores_tuples_and_returns_keras_lists() -> None:
    a = S.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1])
    b = S.PiecewiseConstantDecay((10, 20), (1.0, 0.5, 0.1))
    assert a == b and hash(a) == hash(b) and a.boundaries == (10, 20)
    assert a.get_config() == {
        "boundaries": [10, 20],
        "values": [1.0, 0.5, 0.1],
        "name": "PiecewiseConstant",
    }


@pytest.mark.parametrize(
    "schedule",
    [c[1] for c in COMPOSED if "callable" not in c[0]],
    ids=[c[0] for c in COMPOSED if "callable" not in c[0]],
)
def test_composed_schedules_serialize_nested(schedule: Any) -> None:
    written = json.loads(json.dumps(S.serialize(schedule)))
    assert written["module"] == "jopt.schedules"
    rebuilt = S.deserialize(written)
    assert rebuilt == schedule and hash(rebuilt) == hash(schedule)
    assert type(schedule).from_config(schedule.get_config()) == schedule
    np.testing.assert_array_equal(rebuilt(jnp.arange(200)), schedule(jnp.arange(200)))


def test_nested_form_is_keras_form() -> None:
    inner = K.CosineDecay(0.1, 100)
    written = S.serialize(S.warmup(S.CosineDecay(0.1, 100), 10))
    assert written["config"]["schedule"] == K.serialize(inner)
    assert written["config"] | {"schedule": None} == {
        "schedule": None,
        "warmup_steps": 10,
        "start_value": 0.0,
        "name": "Warmup",
    }


@pytest.mark.parametrize(
    ("make", "where"),
    [
        (lambda: S.warmup(lambda t: 0.1, 5), "Warmup.schedule"),
        (lambda: S.join([EXP, lambda t: 0.1], [5]), r"Join.schedules\[1\]"),
        (lambda: S.join([S.warmup(lambda t: 0.1, 5)], []), "Warmup.schedule"),
    ],
)
def test_only_jopt_schedules_serialize(make: Callable[[], Any], where: str) -> None:
    schedule = make()
    float(schedule(3))  # usable all the same
    with pytest.raises(TypeError, match=f"{where} holds .* only jopt LearningRateSchedule"):
        S.serialize(schedule)
    with pytest.raises(TypeError, match="takes a jopt LearningRateSchedule"):
        S.serialize(lambda t: 0.1)  # type: ignore[arg-type]


EXP_ARGS = dict(initial_learning_rate=0.1, decay_steps=5, decay_rate=0.5)
BAD: list[tuple[Callable[[], Any], str]] = [
    (
        lambda: S.ExponentialDecay(**EXP_ARGS | dict(decay_steps=0)),
        r"decay_steps must be in \(0, inf\)",
    ),
    (lambda: S.ExponentialDecay(**EXP_ARGS | dict(decay_steps=-5)), "decay_steps"),
    (lambda: S.ExponentialDecay(**EXP_ARGS | dict(decay_rate=0.0)), "decay_rate"),
    (
        lambda: S.ExponentialDecay(**EXP_ARGS | dict(initial_learning_rate=-0.1)),
        r"initial_learning_rate must be in \[0, inf\)",
    ),
    (
        lambda: S.ExponentialDecay(**EXP_ARGS | dict(initial_learning_rate=math.inf)),
        "initial_learning_rate must be finite",
    ),
    (
        lambda: S.PiecewiseConstantDecay([10, 10], [1, 2, 3]),
        "boundaries must be strictly increasing",
    ),
    (lambda: S.PiecewiseConstantDecay([20, 10], [1, 2, 3]), r"boundaries\[1\] = 10 <= 20"),
    (
        lambda: S.PiecewiseConstantDecay([10], [1, 2, 3]),
        r"values must have len\(boundaries\) \+ 1 = 2",
    ),
    (
        lambda: S.PiecewiseConstantDecay([10, 20], [1.0]),
        r"values must have len\(boundaries\) \+ 1 = 3",
    ),
    (lambda: S.PiecewiseConstantDecay([10], [0.1, -0.1]), r"values\[1\] must be in \[0, inf\)"),
    (lambda: S.PiecewiseConstantDecay([math.nan], [0.1, 0.2]), r"boundaries\[0\] must be finite"),
    (lambda: S.PiecewiseConstantDecay([], [0.1]), "boundaries must have at least 1"),
    (lambda: S.PolynomialDecay(0.1, 0), "decay_steps must be in"),
    (lambda: S.PolynomialDecay(0.1, 10, end_learning_rate=-1e-4), "end_learning_rate must be in"),
    (lambda: S.PolynomialDecay(0.1, 10, power=-1.0), "power must be in"),
    (lambda: S.PolynomialDecay(math.nan, 10), "initial_learning_rate must be finite"),
    (lambda: S.InverseTimeDecay(0.1, -1, 0.5), "decay_steps must be in"),
    (lambda: S.InverseTimeDecay(0.1, 10, -0.5), "decay_rate must be in"),
    (lambda: S.CosineDecay(0.1, 0), "decay_steps must be in"),
    (lambda: S.CosineDecay(0.1, 10, alpha=-0.1), "alpha must be in"),
    (
        lambda: S.CosineDecay(0.1, 10, warmup_target=-1.0, warmup_steps=5),
        "warmup_target must be in",
    ),
    (lambda: S.CosineDecay(0.1, 10, warmup_target=math.inf), "warmup_target must be finite"),
    (lambda: S.CosineDecay(0.1, 10, warmup_target=1.0, warmup_steps=-1), "warmup_steps must be in"),
    (lambda: S.CosineDecayRestarts(0.1, 0), r"first_decay_steps must be in \(0, inf\)"),
    (lambda: S.CosineDecayRestarts(0.1, 10, t_mul=0.0), "t_mul must be in"),
    (lambda: S.CosineDecayRestarts(0.1, 10, m_mul=-1.0), "m_mul must be in"),
    (lambda: S.CosineDecayRestarts(0.1, 10, alpha=-0.5), "alpha must be in"),
    (lambda: S.warmup(EXP, -1), r"warmup_steps must be in \[0, inf\)"),
    (lambda: S.warmup(EXP, math.nan), "warmup_steps must be finite"),
    (lambda: S.warmup(EXP, 5, start_value=-0.1), "start_value must be in"),
    (lambda: S.join([EXP, EXP], [5, 10]), r"boundaries must have len\(schedules\) - 1 = 1"),
    (lambda: S.join([EXP, EXP], []), r"boundaries must have len\(schedules\) - 1 = 1"),
    (lambda: S.join([EXP, EXP, EXP], [10, 10]), "boundaries must be strictly increasing"),
    (lambda: S.join([EXP, EXP, EXP], [10, 5]), "boundaries must be strictly increasing"),
    (lambda: S.join([EXP, EXP], [-1]), r"boundaries\[0\] must be in \[0, inf\)"),
    (lambda: S.join([], []), "schedules must hold at least one"),
    (lambda: S.constant(-1.0), r"value must be in \[0, inf\)"),
    (lambda: S.constant(math.inf), "value must be finite"),
]


@pytest.mark.parametrize(("make", "pattern"), BAD, ids=[p for _, p in BAD])
def test_bad_arguments_raise_naming_the_argument(make: Callable[[], Any], pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        make()


@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (lambda: S.warmup(0.1, 5), "schedule must be a schedule"),  # type: ignore[arg-type]
        (lambda: S.join([EXP, "x"], [5]), r"schedules\[1\] must be a schedule"),  # type: ignore[list-item]
        (lambda: S.PiecewiseConstantDecay("ab", [1, 2, 3]), "boundaries must be a list or tuple"),
        (
            lambda: S.ExponentialDecay(0.1, 5, 0.5, staircase="yes"),
            "staircase must be True or False",
        ),
        (lambda: S.CosineDecay("0.1", 10), "initial_learning_rate must be a real number"),
    ],
)
def test_wrong_types_raise_type_error(make: Callable[[], Any], pattern: str) -> None:
    with pytest.raises(TypeError, match=pattern):
        make()


def test_deserialize_rejects_unknown_classes() -> None:
    with pytest.raises(ValueError, match="unknown schedule class_name 'Nope'"):
        jopt.schedules.deserialize({"class_name": "Nope", "config": {}})


def test_an_optimizer_round_trips_a_nested_schedule() -> None:
    opt = jopt.SGD(S.warmup(S.join([S.constant(0.1), COS], [50]), 10), momentum=0.9)
    assert jopt.SGD.from_config(json.loads(json.dumps(opt.get_config()))) == opt


# ---- every schedule inside an optimizer -------------------------------------------------

KERAS_SCHEDULES = keras.optimizers.schedules


@pytest.mark.parametrize(
    ("name", "kwargs", "optimizer"),
    [
        ("PiecewiseConstantDecay", dict(boundaries=[4, 10], values=[0.1, 0.05, 0.01]), "SGD"),
        ("PolynomialDecay", dict(initial_learning_rate=0.05, decay_steps=12, cycle=True), "Adam"),
        (
            "InverseTimeDecay",
            dict(initial_learning_rate=0.02, decay_steps=3, decay_rate=0.5, staircase=True),
            "RMSprop",
        ),
        (
            "CosineDecay",
            dict(
                initial_learning_rate=0.0,
                decay_steps=15,
                alpha=0.1,
                warmup_target=0.05,
                warmup_steps=5,
            ),
            "Adam",
        ),
        (
            "CosineDecayRestarts",
            dict(initial_learning_rate=0.05, first_decay_steps=4, t_mul=1.5, m_mul=0.8, alpha=0.05),
            "SGD",
        ),
    ],
)
def test_each_schedule_drives_an_optimizer_like_keras(
    name: str, kwargs: dict, optimizer: str
) -> None:
    from tests.keras_oracle import jopt_run, keras_run
    from tests.problems import relative_error

    extra = {"momentum": 0.9} if optimizer != "Adam" else {}
    expected = keras_run(
        lambda: getattr(keras.optimizers, optimizer)(
            getattr(KERAS_SCHEDULES, name)(**kwargs), **extra
        )
    )
    schedule = getattr(jopt.schedules, name)(**kwargs)
    opt = getattr(jopt, optimizer)(schedule, **extra)
    for a, e in zip(jopt_run(opt), expected, strict=True):
        assert relative_error(a, e) <= 1e-6
    # opt.lr at any step, and of the next update from a state, is the schedule's value.
    oracle = getattr(KERAS_SCHEDULES, name)(**kwargs)
    steps = np.arange(30)
    np.testing.assert_array_equal(
        jax.vmap(opt.lr)(jnp.asarray(steps)), jax.vmap(oracle)(jnp.asarray(steps))
    )
    state = opt.init({"w": jnp.ones(2)})._replace(step=jnp.int32(17))
    assert float(opt.lr(state)) == pytest.approx(float(oracle(17)), rel=1e-6)
