"""Live hyperparameters: every numeric hyperparameter is a float32 scalar in the state.

The oracle for a change made between steps is Keras itself, eager, with the same change
made the Keras way (assigning the optimizer's attribute, which its next ``apply`` reads).
The changed values are dyadic (0.75, 2**-10...), exact in float32 and with an exact
``1 - value``, so jopt's float32 live value is the number Keras computes with: eager
runs stay bit-identical and compiled ones within 1e-6, as in the parity tests. A value
that is not exact in float32 (0.99) is measured separately.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import chex
import jax
import jax.numpy as jnp
import keras
import numpy as np
import optax
import pytest

import jopt
from tests.problems import make_problem, relative_error

K = keras.optimizers
STEPS = 10
LR = ["learning_rate"]
ADAM = ["learning_rate", "beta_1", "beta_2", "epsilon"]
FTRL = [
    "learning_rate",
    "learning_rate_power",
    "l1_regularization_strength",
    "l2_regularization_strength",
    "l2_shrinkage_regularization_strength",
    "beta",
]
MUON = [
    "learning_rate",
    "adam_beta_1",
    "adam_beta_2",
    "adam_weight_decay",
    "epsilon",
    "muon_a",
    "muon_b",
    "muon_c",
    "adam_lr_ratio",
    "momentum",
    "rms_rate",
    "weight_decay",
]

# (optimizer, the names its state must hold): the rule's numeric arguments and the base
# options that are on; never booleans, step-shaping ints or init-only values.
HELD: list[tuple[jopt.Optimizer, list[str]]] = [
    (jopt.SGD(0.1), LR),
    (jopt.SGD(0.1, momentum=0.9, nesterov=True), [*LR, "momentum"]),
    (jopt.RMSprop(0.01), [*LR, "rho", "epsilon"]),
    (jopt.RMSprop(0.01, momentum=0.5, centered=True), [*LR, "rho", "momentum", "epsilon"]),
    (jopt.Adam(0.01, amsgrad=True), ADAM),
    (jopt.AdamW(0.01), [*ADAM, "weight_decay"]),
    (jopt.Adamax(0.01), ADAM),
    (jopt.Nadam(0.01), ADAM),
    (jopt.Lamb(0.01), ADAM),
    (jopt.Lion(0.01), [*LR, "beta_1", "beta_2"]),
    (jopt.Adagrad(0.01, initial_accumulator_value=0.5), [*LR, "epsilon"]),
    (jopt.Adadelta(1.0), [*LR, "rho", "epsilon"]),
    (jopt.Ftrl(0.01, learning_rate_power=-1), FTRL),
    (jopt.Adafactor(0.01), [*LR, "beta_2_decay", "epsilon_1", "epsilon_2", "clip_threshold"]),
    (jopt.Muon(0.01), MUON),
    (
        jopt.Muon(0.01, adam_weight_decay=None, weight_decay=0.0, rms_rate=None),
        MUON[:3] + MUON[4:10],
    ),
    (jopt.ScheduleFreeAdamW(0.01, warmup_steps=3), ADAM),
    (jopt.legacy.SGD(lr=0.1, momentum=0.9), [*LR, "momentum"]),
    (jopt.legacy.RMSprop(lr=0.01), [*LR, "rho", "epsilon"]),
    (jopt.legacy.Adam(lr=0.01, decay=0.01), ADAM),
    (
        jopt.Adam(0.01, weight_decay=0.1, clipnorm=1.0, use_ema=True, loss_scale_factor=8.0),
        [*ADAM, "weight_decay", "clipnorm", "ema_momentum", "loss_scale_factor"],
    ),
    (jopt.SGD(0.1, global_clipnorm=2.0, gradient_accumulation_steps=2), [*LR, "global_clipnorm"]),
    (jopt.SGD(0.1, clipvalue=0.5, weight_decay=0.0, ema_momentum=0.5), [*LR, "clipvalue"]),
    (
        jopt.Adam(jopt.schedules.ExponentialDecay(0.01, 3, 0.5)),
        ["learning_rate_scale", "beta_1", "beta_2", "epsilon"],
    ),
]
HELD_IDS = [repr(o) + ("-legacy" if type(o).__module__ == "jopt.legacy" else "") for o in HELD]


def _params(dtype: Any = jnp.float32) -> dict[str, jax.Array]:
    return {"w": jnp.ones((2, 3), dtype), "b": jnp.zeros(3, dtype)}


@pytest.mark.parametrize(("opt", "names"), HELD, ids=HELD_IDS)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_state_holds_each_numeric_hyperparameter_as_a_float32_scalar(
    opt: jopt.Optimizer, names: list[str], dtype: Any
) -> None:
    state = opt.init(_params(dtype))
    held = jopt.hyperparams(state)
    assert sorted(held) == sorted(names)
    config = opt.get_config()
    for name, value in held.items():
        assert value.dtype == jnp.float32 and value.shape == (), name
        expected = 1.0 if name == "learning_rate_scale" else config[name]
        assert value == np.float32(expected), name


def test_bfloat16_params_keep_beta_2_at_0_999_in_the_state() -> None:
    """optax's injected hyperparameters take the params' dtype (its issue #1414), where
    0.999 rounds to 1.0; jopt's stay float32."""
    state = jopt.Adam().init(_params(jnp.bfloat16))
    assert state.hyperparams["beta_2"] == np.float32(0.999) != 1.0
    assert jnp.bfloat16(0.999) == 1.0  # what a bfloat16 hyperparameter would hold


@pytest.mark.parametrize(("opt", "names"), HELD, ids=HELD_IDS)
def test_init_jits_without_static_arguments(opt: jopt.Optimizer, names: list[str]) -> None:
    """optax's inject_hyperparams needs static_args for this (its issue #412)."""
    params = _params()
    jitted = jax.jit(opt.init)(params)
    chex.assert_trees_all_equal(jitted, opt.init(params))
    assert sorted(jitted.hyperparams) == sorted(names)


# ---- a change between steps: the Keras oracle ---------------------------------------

# (id, jopt optimizer, Keras constructor, {step: {name: value}}): each change is made
# before that step. Values go back to the constructor's too (the Keras arithmetic again).
LIVE: list[tuple[str, jopt.Optimizer, Callable[[], Any], dict[int, dict[str, float]]]] = [
    (
        "adam_betas_epsilon",
        jopt.Adam(0.01),
        lambda: K.Adam(0.01),
        {2: {"beta_1": 0.75}, 4: {"beta_2": 0.875}, 6: {"epsilon": 2**-10}, 8: {"beta_1": 0.9}},
    ),
    (
        "rmsprop_rho_momentum_epsilon",
        jopt.RMSprop(0.01, momentum=0.5, centered=True),
        lambda: K.RMSprop(0.01, momentum=0.5, centered=True),
        {2: {"rho": 0.75}, 4: {"momentum": 0.25, "epsilon": 2**-12}},
    ),
    (
        "sgd_momentum",
        jopt.SGD(0.05, momentum=0.9, nesterov=True),
        lambda: K.SGD(0.05, momentum=0.9, nesterov=True),
        {3: {"momentum": 0.5}, 6: {"momentum": 0.0}},
    ),
    (
        "adamw_weight_decay",
        jopt.AdamW(0.01),
        lambda: K.AdamW(0.01),
        {3: {"weight_decay": 0.0625, "learning_rate": 0.02}},
    ),
    (
        "sgd_clipnorm",
        jopt.SGD(0.1, momentum=0.5, clipnorm=1.0),
        lambda: K.SGD(0.1, momentum=0.5, clipnorm=1.0),
        {3: {"clipnorm": 2**-6}},
    ),
    (
        "adam_global_clipnorm",
        jopt.Adam(0.01, global_clipnorm=2.0),
        lambda: K.Adam(0.01, global_clipnorm=2.0),
        {3: {"global_clipnorm": 2**-6}},
    ),
    (
        "sgd_clipvalue",
        jopt.SGD(0.1, clipvalue=1.0),
        lambda: K.SGD(0.1, clipvalue=1.0),
        {3: {"clipvalue": 2**-6}},
    ),
    (
        "adam_ema_loss_scale",
        jopt.Adam(0.01, use_ema=True, ema_overwrite_frequency=3, loss_scale_factor=2.0),
        lambda: K.Adam(0.01, use_ema=True, ema_overwrite_frequency=3, loss_scale_factor=2.0),
        {2: {"ema_momentum": 0.5, "loss_scale_factor": 4.0}},
    ),
    (
        "nadam_beta_1",
        jopt.Nadam(0.01),
        lambda: K.Nadam(0.01),
        {3: {"beta_1": 0.75}, 5: {"beta_2": 0.875}},
    ),
    (
        "adamax_lamb_betas",
        jopt.Adamax(0.01),
        lambda: K.Adamax(0.01),
        {3: {"beta_1": 0.75, "beta_2": 0.875}},
    ),
    ("lamb_betas", jopt.Lamb(0.01), lambda: K.Lamb(0.01), {3: {"beta_1": 0.75}}),
    ("lion_betas", jopt.Lion(0.01), lambda: K.Lion(0.01), {3: {"beta_1": 0.75, "beta_2": 0.5}}),
    ("adadelta_rho", jopt.Adadelta(1.0), lambda: K.Adadelta(1.0), {3: {"rho": 0.75}}),
    ("adagrad_epsilon", jopt.Adagrad(0.1), lambda: K.Adagrad(0.1), {3: {"epsilon": 2**-8}}),
    (
        "ftrl_strengths",
        jopt.Ftrl(0.1, l1_regularization_strength=0.01),
        lambda: K.Ftrl(0.1, l1_regularization_strength=0.01),
        {
            3: {"l1_regularization_strength": 0.0625, "l2_regularization_strength": 0.125},
            5: {"l2_shrinkage_regularization_strength": 0.25, "beta": 0.5},
            7: {"learning_rate_power": -0.25},
        },
    ),
    (
        "adafactor",
        jopt.Adafactor(0.1),
        lambda: K.Adafactor(0.1),
        {3: {"clip_threshold": 0.5, "epsilon_2": 2**-8}, 5: {"beta_2_decay": -0.5}},
    ),
    (
        "schedule_free_betas",
        jopt.ScheduleFreeAdamW(0.01, beta_2=0.99),
        lambda: K.ScheduleFreeAdamW(0.01, beta_2=0.99),
        {3: {"beta_1": 0.75, "epsilon": 2**-12}},
    ),
]


def _keras_run(make: Callable[[], Any], changes: dict[int, dict[str, float]]) -> np.ndarray:
    """Keras, eager, assigning each changed attribute before its step."""
    init, grads = make_problem(steps=STEPS)
    variables = [keras.Variable(x, name=f"v{j}") for j, x in enumerate(init)]
    opt = make()
    out = []
    for t in range(STEPS):
        for name, value in changes.get(t, {}).items():
            setattr(opt, name, value)
        opt.apply_gradients([(jnp.asarray(g[t]), v) for g, v in zip(grads, variables, strict=True)])
        out.append(np.concatenate([np.ravel(v.value) for v in variables]))
    return np.stack(out)


def _jopt_run(
    opt: jopt.Optimizer, changes: dict[int, dict[str, float]], mode: str
) -> tuple[np.ndarray, int]:
    """jopt, compiled (one ``jax.jit`` of ``apply``) or eager; returns the params after
    each step and the number of traces."""
    init, grads = make_problem(steps=STEPS)
    params = [jnp.asarray(x) for x in init]
    state = opt.init(params)
    traces = []

    @jax.jit
    def step(g: Any, state: Any, params: Any) -> Any:
        traces.append(1)  # runs only while JAX traces
        return opt.apply(g, state, params)

    out = []
    for t in range(STEPS):
        if t in changes:
            state = opt.set_hyperparams(state, **changes[t])
        g_t = [jnp.asarray(g[t]) for g in grads]
        if mode == "compiled":
            params, state = step(g_t, state, params)
        else:
            with jax.disable_jit():
                params, state = opt.apply(g_t, state, params)
        out.append(np.concatenate([np.ravel(p) for p in params]))
    return np.stack(out), len(traces)


@pytest.mark.parametrize(
    ("opt", "make_keras", "changes"), [c[1:] for c in LIVE], ids=[c[0] for c in LIVE]
)
def test_a_change_between_steps_matches_keras_making_it_and_compiles_once(
    opt: jopt.Optimizer, make_keras: Callable[[], Any], changes: dict[int, dict[str, float]]
) -> None:
    expected = _keras_run(make_keras, changes)
    compiled, traces = _jopt_run(opt, changes, "compiled")
    assert traces == 1
    assert relative_error(compiled, expected) <= 1e-6
    eager, _ = _jopt_run(opt, changes, "eager")
    np.testing.assert_array_equal(eager, expected)
    # The change took effect: without it the run differs after the first changed step.
    unchanged, _ = _jopt_run(opt, {}, "compiled")
    first = min(changes)
    np.testing.assert_array_equal(unchanged[:first], compiled[:first])
    assert relative_error(unchanged[-1], compiled[-1]) > 1e-6


def test_a_value_not_exact_in_float32_is_used_as_its_float32_rounding() -> None:
    """beta_2 = 0.99 set live: jopt computes 1 - f32(0.99) in float32, Keras rounds
    1 - 0.99 from float64, 1e-6 apart (relative); the runs agree within the compiled
    tolerance, not bit for bit (measured: 1.5e-8 after 10 steps)."""
    changes = {2: {"beta_2": 0.99}}
    expected = _keras_run(lambda: K.Adam(0.01), changes)
    eager, _ = _jopt_run(jopt.Adam(0.01), changes, "eager")
    assert 0 < relative_error(eager, expected) <= 1e-6


def test_set_hyperparams_checks_values_as_the_constructor_does() -> None:
    opt = jopt.Adam(0.01)
    state = opt.init(_params())
    with pytest.raises(ValueError, match=r"beta_1 must be in \[0, 1\), got 1"):
        opt.set_hyperparams(state, beta_1=1.0)
    with pytest.raises(ValueError, match=r"epsilon must be in \[0, inf\), got -1"):
        opt.set_hyperparams(state, epsilon=-1.0)
    with pytest.raises(ValueError, match="amsgrad is fixed by the constructor"):
        opt.set_hyperparams(state, amsgrad=True)
    with pytest.raises(ValueError, match="no live hyperparameter 'rho'"):
        opt.set_hyperparams(state, rho=0.5)
    clipped = jopt.SGD(0.1, clipnorm=1.0)
    with pytest.raises(ValueError, match=r"clipnorm must be in \(0, inf\), got 0"):
        clipped.set_hyperparams(clipped.init(_params()), clipnorm=0.0)
    new = opt.set_hyperparams(state, beta_1=0.8, epsilon=jnp.float32(1e-6))
    assert float(new.hyperparams["beta_1"]) == np.float32(0.8)
    assert float(new.hyperparams["epsilon"]) == np.float32(1e-6)
    assert float(state.hyperparams["beta_1"]) == np.float32(0.9)  # a new state


@pytest.mark.parametrize(
    ("opt", "name"),
    [
        (jopt.SGD(0.1), "momentum"),
        (jopt.RMSprop(0.01), "momentum"),
        (jopt.Adam(0.01), "weight_decay"),
        (jopt.Muon(0.01, rms_rate=None), "rms_rate"),
    ],
)
def test_a_value_the_constructor_turned_off_cannot_be_switched_on_live(
    opt: jopt.Optimizer, name: str
) -> None:
    state = opt.init(_params())
    with pytest.raises(ValueError, match="cannot be switched on live"):
        opt.set_hyperparams(state, **{name: 0.5})
    with pytest.raises(ValueError, match=f"no optimizer state holds hyperparameter '{name}'"):
        jopt.set_hyperparams(state, **{name: 0.5})


def test_a_value_set_to_0_live_gives_the_numbers_of_the_rule_without_it() -> None:
    """SGD's momentum set to 0 live keeps its slot (the step is compiled with it), and
    gives plain SGD's numbers: bit for bit eagerly (compiled, XLA may fuse the two
    programs differently, by an ulp)."""
    opt = jopt.SGD(0.1, momentum=0.9)
    params = _params()
    grads = jax.tree.map(lambda p: jnp.full_like(p, 0.3), params)
    state = opt.set_hyperparams(opt.init(params), momentum=0.0)
    plain = jopt.SGD(0.1)
    with jax.disable_jit():
        with_slot, _ = opt.apply(grads, state, params)
        without, _ = plain.apply(grads, plain.init(params), params)
    chex.assert_trees_all_equal(with_slot, without)


def test_generic_set_hyperparams_checks_only_that_numbers_are_finite() -> None:
    opt = jopt.Muon(0.01)
    state = jopt.set_hyperparams(opt.init(_params()), muon_b=-5.0, momentum=0.5)
    assert float(state.hyperparams["muon_b"]) == -5.0
    with pytest.raises(ValueError, match="momentum must be finite"):
        jopt.set_hyperparams(state, momentum=float("nan"))
    with pytest.raises(ValueError, match=r"learning_rate must be in \[0, inf\)"):
        jopt.set_hyperparams(state, learning_rate=-0.1)


def test_a_state_with_other_hyperparameters_is_refused() -> None:
    state = jopt.Adam(0.01).init(_params())
    with pytest.raises(ValueError, match=r"holds hyperparameters .* differently configured"):
        jopt.Adam(0.01, clipnorm=1.0).update(_params(), state, _params())


def test_set_hyperparams_under_jit_takes_traced_values() -> None:
    opt = jopt.Adam(0.01)
    params = _params()
    grads = jax.tree.map(jnp.ones_like, params)

    @jax.jit
    def step(beta_1: jax.Array, state: Any) -> Any:
        return opt.update(grads, jopt.set_hyperparams(state, beta_1=beta_1), params)

    live, _ = step(jnp.float32(0.5), opt.init(params))
    rebuilt = jopt.Adam(0.01, beta_1=0.5)
    fixed, _ = rebuilt.update(grads, rebuilt.init(params), params)
    chex.assert_trees_all_close(live, fixed, rtol=1e-6)


# ---- chains and wrappers --------------------------------------------------------------


def test_hyperparams_are_read_and_set_by_name_inside_a_chain() -> None:
    tx = jopt.chain(optax.clip_by_global_norm(1.0), jopt.Adam(0.01), jopt.SGD(1.0, momentum=0.9))
    params = _params()
    state = tx.init(params)
    held = jopt.hyperparams(state)
    assert sorted(held) == ["['adam']", "['sgd']"]
    assert sorted(held["['adam']"]) == sorted(ADAM)
    assert sorted(held["['sgd']"]) == ["learning_rate", "momentum"]

    state = jopt.set_hyperparams(state, beta_1=0.75, momentum=0.5)
    assert float(state["adam"].hyperparams["beta_1"]) == 0.75
    assert float(state["sgd"].hyperparams["momentum"]) == 0.5
    state = jopt.set_hyperparams(state, learning_rate=0.5)  # held by both
    assert float(state["adam"].hyperparams["learning_rate"]) == 0.5
    assert float(state["sgd"].hyperparams["learning_rate"]) == 0.5
    assert isinstance(state["0"], optax.ClipByGlobalNormState)

    # The chain's compiled update uses the live values: as the two optimizers rebuilt.
    grads = jax.tree.map(lambda p: jnp.full_like(p, 0.7), params)
    updates, _ = jax.jit(tx.update)(grads, state, params)
    expected = jopt.chain(
        optax.clip_by_global_norm(1.0),
        jopt.Adam(0.5, beta_1=0.75),
        jopt.SGD(0.5, momentum=0.5),
    )
    expected_updates, _ = expected.update(grads, expected.init(params), params)
    chex.assert_trees_all_close(updates, expected_updates, rtol=1e-6)


def test_hyperparams_of_a_wrapped_optimizer_are_found_in_its_state() -> None:
    opt = jopt.SkipNonFinite(jopt.SGD(0.1, momentum=0.9))
    state = opt.init(_params())
    assert jopt.hyperparams(state) == {".inner": {"learning_rate": 0.1, "momentum": 0.9}}
    state = jopt.set_hyperparams(state, momentum=0.25)
    assert float(state.inner.hyperparams["momentum"]) == 0.25
