"""ReduceLROnPlateau against Keras's callback run live, and torch's where they agree.

Keras's ``keras.callbacks.ReduceLROnPlateau`` drives a Keras optimizer over the same
metric sequence (a model stub holds the optimizer; ``on_epoch_end`` gets the metric in
its logs): the rate after every call, and the callback's ``best``, ``wait`` and
``cooldown_counter``, are the expected values. torch's ``ReduceLROnPlateau`` with
``threshold_mode="abs"``, ``patience - 1`` and ``cooldown - 1`` gives the same rates
(see the class docstring for why).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import chex
import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest
import torch

import jopt
from jopt import schedules as S

RTOL = 1e-6


class _Stub:
    """What the callback reads of a model: ``optimizer`` (and nothing named ``metrics``)."""

    def __init__(self, optimizer: Any) -> None:
        self.optimizer = optimizer


class _Multi:
    """An optimizer with ``optimizers``: Keras's callback cuts each of them."""

    def __init__(self, *optimizers: Any) -> None:
        self.optimizers = list(optimizers)


def keras_run(
    metrics: np.ndarray, rates: tuple[float, ...], monitor: str = "val_loss", **kwargs: Any
) -> tuple[np.ndarray, list[tuple[float, int, int]]]:
    """Keras's rates (one column per optimizer) and (best, wait, cooldown) per call."""
    optimizers = [
        keras.optimizers.SGD(learning_rate=r, name=f"sgd_{i}") for i, r in enumerate(rates)
    ]
    model = _Stub(optimizers[0] if len(optimizers) == 1 else _Multi(*optimizers))
    callback = keras.callbacks.ReduceLROnPlateau(monitor=monitor, **kwargs)
    callback.set_model(model)
    callback.on_train_begin()
    out, counters = [], []
    for epoch, value in enumerate(metrics):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Keras's own float(variable), on numpy 2
            callback.on_epoch_end(epoch, {monitor: float(value)})
        out.append([float(o.learning_rate.value) for o in optimizers])
        counters.append((float(callback.best), callback.wait, callback.cooldown_counter))
    return np.asarray(out), counters


def torch_run(metrics: np.ndarray, rate: float, **kwargs: Any) -> np.ndarray:
    """torch's rates with Keras's meaning of patience and cooldown (see the module doc)."""
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=rate)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt,
        mode="max" if kwargs.get("mode") == "max" else "min",
        factor=kwargs.get("factor", 0.1),
        patience=kwargs.get("patience", 10) - 1,
        threshold=kwargs.get("min_delta", 1e-4),
        threshold_mode="abs",
        cooldown=max(kwargs.get("cooldown", 0) - 1, 0),
        min_lr=kwargs.get("min_lr", 0.0),
        eps=0.0,
    )
    out = []
    for value in metrics:
        opt.step()
        scheduler.step(float(value))
        out.append(opt.param_groups[0]["lr"])
    return np.asarray(out)


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    return float(np.max(np.abs(actual - expected) / np.abs(expected)))


RNG = np.random.default_rng(0)
# (id, metrics, initial rate, the rule's arguments). Each is run by jopt on a plain SGD,
# eager and jitted, against Keras; torch runs the ones where its semantics match.
SEQUENCES: list[tuple[str, np.ndarray, float, dict[str, Any]]] = [
    (
        "patience",
        np.r_[1.0, 0.9, np.full(12, 0.95), 0.5, np.full(25, 0.6)],
        0.1,
        dict(patience=3),
    ),
    ("patience-0", np.r_[1.0, 0.9, 1.0, 0.8, 0.85, 0.85], 0.1, dict(patience=0, factor=0.5)),
    ("cooldown", np.r_[1.0, np.full(30, 1.2)], 0.1, dict(patience=2, cooldown=3)),
    ("cooldown-1", np.r_[1.0, np.full(30, 1.2)], 0.1, dict(patience=2, cooldown=1)),
    (
        "min-lr",
        np.r_[1.0, np.full(40, 1.0)],
        0.1,
        dict(patience=2, factor=0.5, min_lr=0.01),
    ),
    # Improvements of 3e-5 a call, under min_delta = 1e-4: a plateau all the same (one
    # improvement in four calls, when the best is 1.2e-4 behind).
    ("min-delta", 1.0 - 3e-5 * np.arange(40), 0.1, dict(patience=3, min_delta=1e-4)),
    ("min-delta-0", 1.0 - 3e-5 * np.arange(40), 0.1, dict(patience=3, min_delta=0.0)),
    (
        "max",
        np.r_[0.5, 0.6, np.full(20, 0.59), 0.7, np.full(10, 0.65)],
        0.05,
        dict(patience=4, mode="max", factor=0.2),
    ),
    (
        "auto-loss",
        np.r_[0.5, 0.4, np.full(20, 0.45)],
        0.05,
        dict(patience=4, mode="auto", monitor="val_loss"),
    ),
    (
        "nan",
        np.r_[1.0, 0.9, np.nan, np.nan, 0.8, np.nan, np.nan, np.nan, 0.85, 0.7],
        0.1,
        dict(patience=2),
    ),
    ("nan-first", np.r_[np.nan, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4], 0.1, dict(patience=2)),
    (
        "negative-loss",
        np.r_[-1.0, -1.5, -1.49995, -1.4, -1.6, np.full(10, -1.55)],
        0.1,
        dict(patience=2),
    ),
    (
        "random-walk",
        np.cumsum(RNG.normal(0, 0.1, 200)),
        0.3,
        dict(patience=3, cooldown=2, factor=0.7, min_lr=1e-4),
    ),
]
SEQUENCE_IDS = [s[0] for s in SEQUENCES]
# torch differs where: patience 0 (torch would need -1), a first NaN (torch's best
# starts at inf, Keras's at the first metric).
NOT_TORCH = {"patience-0", "nan-first"}


def jopt_run(
    metrics: np.ndarray, rate: float, how: str = "jit", **kwargs: Any
) -> tuple[np.ndarray, list[jopt.PlateauState]]:
    opt = jopt.SGD(rate)
    opt_state = opt.init({"w": jnp.ones(2)})
    plateau = jopt.ReduceLROnPlateau(**kwargs)
    pstate = plateau.init()
    update = jax.jit(plateau.update) if how == "jit" else plateau.update
    rates, states = [], []
    for value in metrics:
        opt_state, pstate = update(np.float32(value), pstate, opt_state)
        rates.append(float(opt.lr(opt_state)))
        states.append(pstate)
    return np.asarray(rates), states


def keras_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {"mode": "min", **kwargs}


def worst_keras_error(seq_id: str, how: str = "jit") -> float:
    """The worst relative error of a sequence against Keras (tests/lr_control_report.py)."""
    _, metrics, rate, kwargs = SEQUENCES[SEQUENCE_IDS.index(seq_id)]
    metrics = np.asarray(metrics, np.float32)
    expected, _ = keras_run(metrics, (rate,), **keras_kwargs(kwargs))
    return relative_error(jopt_run(metrics, rate, how, **kwargs)[0], expected[:, 0])


def worst_torch_error(seq_id: str) -> float:
    _, metrics, rate, kwargs = SEQUENCES[SEQUENCE_IDS.index(seq_id)]
    metrics = np.asarray(metrics, np.float32)
    kwargs = {k: v for k, v in kwargs.items() if k != "monitor"}
    return relative_error(jopt_run(metrics, rate, **kwargs)[0], torch_run(metrics, rate, **kwargs))


@pytest.mark.parametrize("how", ["eager", "jit"])
@pytest.mark.parametrize("seq_id", SEQUENCE_IDS)
def test_rates_and_counters_equal_keras_callback(seq_id: str, how: str) -> None:
    _, metrics, rate, kwargs = SEQUENCES[SEQUENCE_IDS.index(seq_id)]
    metrics = np.asarray(metrics, np.float32)
    expected, counters = keras_run(metrics, (rate,), **keras_kwargs(kwargs))
    actual, states = jopt_run(metrics, rate, how, **kwargs)
    np.testing.assert_array_equal(actual, expected[:, 0])  # the same float32 numbers
    assert np.count_nonzero(np.diff(expected[:, 0])) >= 1 or seq_id.startswith("min-delta-0")
    for (best, wait, cooldown), s in zip(counters, states, strict=True):
        np.testing.assert_array_equal(s.best, np.float32(best))
        assert (int(s.wait), int(s.cooldown_counter)) == (wait, cooldown)
    reductions = int(np.count_nonzero(np.diff(np.r_[np.float32(rate), expected[:, 0]])))
    assert int(states[-1].reductions) == reductions and int(states[-1].seen) == len(metrics)


@pytest.mark.parametrize("seq_id", [s for s in SEQUENCE_IDS if s not in NOT_TORCH])
def test_rates_equal_torch_with_keras_meaning_of_patience_and_cooldown(seq_id: str) -> None:
    assert worst_torch_error(seq_id) <= RTOL


@pytest.mark.parametrize("factor", [0.1, 0.2, 0.5, 0.7, 0.3333, 0.99, 1e-3])
def test_a_cut_rounds_once_as_kerass_float64_product(factor: float) -> None:
    """Keras computes ``float(lr) * factor`` in float64 and stores it in float32; jopt's
    cut gives the same float32 number, eager and jitted, over a million rates."""
    rng = np.random.default_rng(1)
    rates = np.r_[rng.uniform(1e-6, 1.0, 10**6), rng.uniform(1e-30, 1e-20, 10**4)]
    rates = rates.astype(np.float32)
    expected = (rates.astype(np.float64) * factor).astype(np.float32)
    plateau = jopt.ReduceLROnPlateau(factor=factor)
    np.testing.assert_array_equal(plateau._times_factor(jnp.asarray(rates)), expected)
    np.testing.assert_array_equal(jax.jit(plateau._times_factor)(jnp.asarray(rates)), expected)


def test_min_delta_sequence_never_improves_enough() -> None:
    """min_delta=1e-4 sees a plateau where min_delta=0 sees steady progress."""
    metrics = (1.0 - 3e-5 * np.arange(40)).astype(np.float32)
    assert jopt_run(metrics, 0.1, patience=3)[0][-1] < 1e-3
    assert jopt_run(metrics, 0.1, patience=3, min_delta=0.0)[0][-1] == np.float32(0.1)


def test_auto_mode_reads_the_monitor_name() -> None:
    assert jopt.ReduceLROnPlateau(mode="auto").minimize
    assert jopt.ReduceLROnPlateau(mode="auto", monitor="loss").minimize
    assert not jopt.ReduceLROnPlateau(mode="auto", monitor="val_accuracy").minimize
    assert not jopt.ReduceLROnPlateau(mode="auto", monitor="sparse_categorical_accuracy").minimize
    # ...as Keras's max mode does.
    metrics = np.r_[0.5, 0.6, np.full(20, 0.59)].astype(np.float32)
    expected, _ = keras_run(metrics, (0.05,), patience=4, mode="max")
    actual, _ = jopt_run(metrics, 0.05, patience=4, mode="auto", monitor="val_accuracy")
    assert relative_error(actual, expected[:, 0]) <= RTOL
    with pytest.raises(ValueError, match="pass mode='min' or mode='max'"):
        jopt.ReduceLROnPlateau(mode="auto", monitor="val_f1")


# ---- every kind of state ---------------------------------------------------------------

PARAMS = {"dense": {"kernel": jnp.ones((2, 3)), "bias": jnp.zeros(3)}}
GRADS = jax.tree.map(lambda p: jnp.full_like(p, 0.1), PARAMS)
PLATEAU_METRICS = np.r_[1.0, 0.9, np.full(12, 0.95)].astype(np.float32)
PLATEAU_ARGS: dict[str, Any] = dict(patience=2, factor=0.5, min_lr=0.02)


def live_rates(state: Any) -> list[float]:
    """Every live ``learning_rate`` in a state, sorted (``jopt.hyperparams`` reads them)."""
    live = jopt.hyperparams(state)
    per_state = [live] if "learning_rate" in live else list(live.values())
    return sorted(float(h["learning_rate"]) for h in per_state if "learning_rate" in h)


def run_plateau(tx: Any, state: Any, plateau: Any) -> list[list[float]]:
    """Steps ``tx`` once per metric and calls the rule, in one compiled step; returns
    the live rates after each call."""

    @jax.jit
    def step(state: Any, pstate: Any, value: jax.Array) -> tuple[Any, Any]:
        _, state = tx.update(GRADS, state, PARAMS)
        return plateau.update(value, pstate, state)

    pstate = plateau.init()
    out = []
    for value in PLATEAU_METRICS:
        state, pstate = step(state, pstate, jnp.float32(value))
        out.append(live_rates(state))
    return out


def keras_rates(*rates: float) -> list[list[float]]:
    expected, _ = keras_run(PLATEAU_METRICS, rates, mode="min", **PLATEAU_ARGS)
    return [sorted(row) for row in expected.tolist()]


@pytest.mark.parametrize(
    "make",
    [
        lambda: jopt.SGD(0.1, momentum=0.9),
        lambda: jopt.chain(jopt.clip_by_global_norm(1.0), jopt.Adam(0.1)),
        lambda: jopt.SkipNonFinite(jopt.Adam(0.1)),
        lambda: jopt.LossScaleOptimizer(jopt.SGD(0.1)),
        lambda: jopt.bucketed(jopt.Adam(0.1)),
        lambda: jopt.SkipNonFinite(jopt.bucketed(jopt.RMSprop(0.1))),
    ],
    ids=["plain", "chain", "skip-non-finite", "loss-scale", "bucketed", "skip-bucketed"],
)
def test_any_state_with_one_rate_follows_keras(make: Callable[[], Any]) -> None:
    tx = make()
    actual = run_plateau(tx, tx.init(PARAMS), jopt.ReduceLROnPlateau(**PLATEAU_ARGS))
    for a, e in zip(actual, keras_rates(0.1), strict=True):
        assert relative_error(a, e) <= RTOL


def test_a_partition_cuts_each_group_as_keras_cuts_each_optimizer() -> None:
    """Keras's callback on an optimizer with ``optimizers``: each rate above min_lr is cut,
    one at min_lr stays; here one group reaches the floor before the other."""
    tx = jopt.partition(
        {"kernel": jopt.Adam(0.1), "bias": jopt.SGD(0.03)},
        {"dense": {"kernel": "kernel", "bias": "bias"}},
    )
    plateau = jopt.ReduceLROnPlateau(**(PLATEAU_ARGS | {"min_lr": 0.01}))
    actual = run_plateau(tx, tx.init(PARAMS), plateau)
    expected, _ = keras_run(
        PLATEAU_METRICS, (0.1, 0.03), mode="min", **(PLATEAU_ARGS | {"min_lr": 0.01})
    )
    assert any(low == np.float32(0.01) < high for low, high in np.sort(expected))
    for a, e in zip(actual, np.sort(expected), strict=True):
        assert relative_error(a, e) <= RTOL


def test_a_train_state_is_updated_in_place_of_its_opt_state() -> None:
    plateau = jopt.ReduceLROnPlateau(**PLATEAU_ARGS)
    state = jopt.TrainState.create(PARAMS, jopt.Adam(0.1))
    pstate = plateau.init()
    update = jax.jit(plateau.update)
    rates = []
    for value in PLATEAU_METRICS:
        state = state.apply_gradients(GRADS)
        state, pstate = update(value, pstate, state)
        assert isinstance(state, jopt.TrainState)
        rates.append(float(state.lr))
    assert relative_error(rates, np.asarray(keras_rates(0.1))[:, 0]) <= RTOL


# ---- a schedule as the rate: learning_rate_scale and min_lr on the effective rate ----


def scheduled_oracle(
    schedule: Any, metrics: np.ndarray, **kwargs: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Keras's callback applied to the effective rate: before each call the Keras
    optimizer's rate is set to ``schedule(step) * scale``; after it, ``scale`` becomes
    its new rate over ``schedule(step)``. Returns the scales and effective rates."""
    opt = keras.optimizers.SGD(learning_rate=0.1)
    callback = keras.callbacks.ReduceLROnPlateau(mode="min", **kwargs)
    callback.set_model(_Stub(opt))
    callback.on_train_begin()
    scale, scales, rates = 1.0, [], []
    for step, value in enumerate(metrics, start=1):
        at = float(schedule(step))
        opt.learning_rate = at * scale
        before = float(opt.learning_rate.value)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Keras's own float(variable), on numpy 2
            callback.on_epoch_end(step, {"val_loss": float(value)})
        after = float(opt.learning_rate.value)
        if after != before:
            scale = after / at
        scales.append(scale)
        rates.append(at * scale)
    return np.asarray(scales), np.asarray(rates)


@pytest.mark.parametrize("holder", ["opt_state", "train_state"])
def test_a_schedule_is_scaled_and_min_lr_bounds_its_effective_rate(holder: str) -> None:
    schedule = S.ExponentialDecay(0.1, 100, 0.5)
    opt = jopt.SGD(schedule)
    plateau = jopt.ReduceLROnPlateau(**PLATEAU_ARGS)
    scales, rates = scheduled_oracle(schedule, PLATEAU_METRICS, **PLATEAU_ARGS)
    if holder == "train_state":  # a TrainState brings its optimizer
        state: Any = jopt.TrainState.create(PARAMS, opt)
        update = jax.jit(plateau.update)
    else:
        state = opt.init(PARAMS)
        update = jax.jit(lambda v, p, s: plateau.update(v, p, s, opt))
    pstate = plateau.init()
    got_scales, got_rates = [], []
    for value in PLATEAU_METRICS:
        if holder == "train_state":
            state = state.apply_gradients(GRADS)
        else:
            _, state = opt.update(GRADS, state, PARAMS)
        state, pstate = update(jnp.float32(value), pstate, state)
        opt_state = state.opt_state if holder == "train_state" else state
        got_scales.append(float(opt_state.hyperparams["learning_rate_scale"]))
        got_rates.append(float(opt.lr(opt_state)))
    assert relative_error(got_scales, scales) <= 2 * RTOL
    assert relative_error(got_rates, rates) <= 2 * RTOL
    # A cut that min_lr bounded: the effective rate lands on it (the schedule's own decay
    # takes it lower afterwards).
    cuts = np.flatnonzero(np.diff(np.r_[1.0, scales]))
    assert len(cuts) >= 3 and rates[cuts[-1]] == pytest.approx(0.02, rel=1e-6)
    assert rates[-1] < 0.02


def test_a_schedule_without_its_optimizer() -> None:
    """The effective rate needs the schedule: min_lr > 0 asks for the optimizer; with
    min_lr = 0 the scale is cut (a scale > 0 counts as above the floor)."""
    opt = jopt.SGD(S.ExponentialDecay(0.1, 20, 0.5))
    state = jopt.chain(jopt.clip_by_norm(1.0), opt).init(PARAMS)
    with pytest.raises(ValueError, match=r"pass it, plateau\.update"):
        jopt.ReduceLROnPlateau(min_lr=0.01).update(1.0, jopt.ReduceLROnPlateau().init(), state)
    plateau = jopt.ReduceLROnPlateau(patience=1, factor=0.5)
    pstate = plateau.init()
    for value in (1.0, 2.0, 2.0):
        state, pstate = plateau.update(value, pstate, state)
    assert float(jopt.hyperparams(state)["['sgd']"]["learning_rate_scale"]) == 0.25


# ---- inside a compiled step ------------------------------------------------------------


def test_changes_the_rate_inside_one_compiled_step_without_recompiling() -> None:
    opt = jopt.Adam(0.01)
    plateau = jopt.ReduceLROnPlateau(patience=2, factor=0.5, cooldown=1)

    def loss_fn(params: Any, x: jax.Array) -> jax.Array:
        return jnp.mean((params["w"] * x - 1.0) ** 2)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def train_step(
        params: Any, opt_state: Any, pstate: Any, x: jax.Array, val_loss: jax.Array
    ) -> tuple[Any, ...]:
        grads = jax.grad(loss_fn)(params, x)
        params, opt_state = opt.apply_gradients(grads, opt_state, params)
        opt_state, pstate = plateau.update(val_loss, pstate, opt_state)
        return params, opt_state, pstate

    chex.clear_trace_counter()
    params = {"w": jnp.zeros(4)}
    opt_state, pstate = opt.init(params), plateau.init()
    rates = []
    for i in range(40):
        # A validation loss that falls for 5 evaluations, then stays on a plateau.
        val_loss = jnp.float32(max(1.0 - 0.1 * i, 0.5))
        params, opt_state, pstate = train_step(params, opt_state, pstate, jnp.ones(4), val_loss)
        rates.append(float(opt.lr(opt_state)))
    assert train_step._cache_size() == 1
    assert int(pstate.reductions) >= 5 and rates[-1] <= rates[0] / 2**5
    assert len(set(rates)) == int(pstate.reductions) + 1


def test_a_sweep_vmaps_the_rule_per_model() -> None:
    opt = jopt.SGD(0.1)
    plateau = jopt.ReduceLROnPlateau(patience=1, factor=0.5)
    _, states = jopt.sweep_init(opt, PARAMS, learning_rate=jnp.array([0.1, 0.2, 0.4]))
    pstates = jax.vmap(lambda _: plateau.init())(jnp.arange(3))
    update = jax.jit(jax.vmap(plateau.update))
    for values in ([1.0, 1.0, 1.0], [0.5, 2.0, 2.0], [0.4, 2.0, 0.1]):
        states, pstates = update(jnp.asarray(values), pstates, states)
    np.testing.assert_allclose(states.hyperparams["learning_rate"], [0.1, 0.05, 0.2], rtol=1e-6)
    np.testing.assert_array_equal(pstates.reductions, [0, 2, 1])


def test_the_rule_and_its_state_read_well() -> None:
    plateau = jopt.ReduceLROnPlateau(factor=0.5, patience=3, cooldown=2)
    assert hash(plateau) == hash(jopt.ReduceLROnPlateau(factor=0.5, patience=3, cooldown=2))
    assert jopt.ReduceLROnPlateau.from_config(plateau.get_config()) == plateau
    assert plateau.get_config() == {
        "factor": 0.5,
        "patience": 3,
        "mode": "min",
        "min_delta": 1e-4,
        "cooldown": 2,
        "min_lr": 0.0,
        "monitor": "val_loss",
    }
    pstate = plateau.init()
    assert pstate._fields == ("best", "wait", "cooldown_counter", "seen", "reductions")
    _, pstate = plateau.update(0.25, pstate, jopt.SGD(0.1).init(PARAMS))
    assert repr(pstate) == (
        "PlateauState(best=0.25, wait=0, cooldown_counter=0, seen=1, reductions=0)"
    )
