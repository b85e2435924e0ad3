"""Step-for-step parity with Keras 3 (JAX backend) for Adagrad, Adadelta, Ftrl and Lamb.

Keras is the oracle (``tests/keras_oracle.py``): every case runs the Keras optimizer and
the jopt one on the same gradient sequence over leaves of ranks 1 to 4, and jopt must
reproduce every step's params, compiled within 1e-6 and eagerly bit for bit (Ftrl
too: it assigns the new param as Keras does, ``Optimizer.assigns_params``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import keras
import numpy as np
import pytest

import jopt
from jopt.optimizers.adadelta import Adadelta
from jopt.optimizers.adagrad import Adagrad
from jopt.optimizers.ftrl import Ftrl
from jopt.optimizers.lamb import Lamb
from tests.keras_oracle import assert_config_matches_keras, jopt_run, keras_run
from tests.problems import make_problem, relative_error

# Compiled: XLA fuses a few ops, so float32 rounding accumulates over the steps (measured
# worst here: 6.0e-7, Ftrl with learning_rate_power=-3; all others <= 2.3e-7). Eager runs
# Keras's ops in Keras's order and must be bit-identical.
TOL = {"compiled": 1e-6, "eager": 0.0}

BF16_TOL = 2.0**-8  # one bf16 ulp of slack for XLA fusing bf16 ops (measured: 0)


# 20 steps (the harness's default is 25) keep this file's ~50 runs fast on 2 cores.
STEPS = 20


def _exp() -> dict[str, Any]:
    return dict(initial_learning_rate=0.1, decay_steps=5, decay_rate=0.5)


def _pair(name: str, *args: Any, **kwargs: Any) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """The jopt and Keras constructors of one configuration; an "exp" rate is a schedule."""
    jopt_cls = {"Adagrad": Adagrad, "Adadelta": Adadelta, "Ftrl": Ftrl, "Lamb": Lamb}[name]
    if args and args[0] == "exp":
        rest = args[1:]
        return (
            lambda: jopt_cls(jopt.schedules.ExponentialDecay(**_exp()), *rest, **kwargs),
            lambda: getattr(keras.optimizers, name)(
                keras.optimizers.schedules.ExponentialDecay(**_exp()), *rest, **kwargs
            ),
        )
    return (
        lambda: jopt_cls(*args, **kwargs),
        lambda: getattr(keras.optimizers, name)(*args, **kwargs),
    )


CASES: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
    "adagrad_defaults": _pair("Adagrad"),
    "adagrad": _pair("Adagrad", 0.1),
    "adagrad_initial_accumulator": _pair("Adagrad", 0.1, initial_accumulator_value=2.0),
    "adagrad_zero_accumulator_epsilon": _pair(
        "Adagrad", 0.1, initial_accumulator_value=0.0, epsilon=1e-3
    ),
    "adagrad_schedule": _pair("Adagrad", "exp"),
    "adadelta_paper": _pair("Adadelta", 1.0),
    "adadelta_rho_epsilon": _pair("Adadelta", 1.0, rho=0.8, epsilon=1e-4),
    "adadelta_schedule": _pair("Adadelta", "exp"),
    "ftrl": _pair("Ftrl", 0.1),
    "ftrl_defaults": _pair("Ftrl"),
    "ftrl_fixed_rate_power": _pair("Ftrl", 0.1, learning_rate_power=0.0),
    "ftrl_rate_power": _pair("Ftrl", 0.1, learning_rate_power=-0.75),
    "ftrl_int_rate_power": _pair("Ftrl", 0.1, learning_rate_power=-3),
    "ftrl_initial_accumulator": _pair("Ftrl", 0.1, initial_accumulator_value=0.5),
    "ftrl_zero_accumulator": _pair("Ftrl", 0.1, initial_accumulator_value=0.0),
    "ftrl_l1": _pair("Ftrl", 0.1, l1_regularization_strength=0.05),
    "ftrl_l2": _pair("Ftrl", 0.1, l2_regularization_strength=0.5),
    "ftrl_shrinkage": _pair("Ftrl", 0.1, l2_shrinkage_regularization_strength=0.2),
    "ftrl_beta": _pair("Ftrl", 0.1, beta=0.5),
    "ftrl_all": _pair(
        "Ftrl",
        0.1,
        learning_rate_power=-0.25,
        l1_regularization_strength=0.01,
        l2_regularization_strength=0.1,
        l2_shrinkage_regularization_strength=0.05,
        beta=0.5,
    ),
    "ftrl_schedule": _pair("Ftrl", "exp", l1_regularization_strength=0.01),
    "lamb_defaults": _pair("Lamb"),
    "lamb": _pair("Lamb", 0.01),
    "lamb_betas_epsilon": _pair("Lamb", 0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-3),
    "lamb_schedule": _pair("Lamb", "exp"),
}
BF16_CASES = ["adagrad", "adadelta_paper", "ftrl_all", "lamb"]


@functools.cache
def keras_trajectory(case_id: str, dtype: str = "float32") -> list[np.ndarray]:
    return keras_run(CASES[case_id][1], dtype, steps=STEPS)


@pytest.mark.parametrize("mode", ["compiled", "eager"])
@pytest.mark.parametrize("case_id", list(CASES))
def test_matches_keras_step_for_step(case_id: str, mode: str) -> None:
    expected = keras_trajectory(case_id)
    actual = jopt_run(CASES[case_id][0](), mode, steps=STEPS)
    tol = TOL[mode]
    for j, (a, e) in enumerate(zip(actual, expected, strict=True)):
        assert np.all(np.isfinite(e))
        err = relative_error(a, e)
        assert err <= tol, f"{case_id} leaf {j}: worst error {err:.3g} > {tol:g}"
        # The trajectory really moved: parity is not two optimizers standing still.
        assert relative_error(e[-1], make_problem(steps=STEPS)[0][j]) > 1e-4


@pytest.mark.parametrize("case_id", BF16_CASES)
def test_bfloat16_params_match_keras_and_keep_dtype(case_id: str) -> None:
    """With bfloat16 variables Keras keeps slots and arithmetic in bfloat16; so does jopt."""
    expected = keras_trajectory(case_id, "bfloat16")
    actual = jopt_run(CASES[case_id][0](), "compiled", jnp.bfloat16, steps=STEPS)
    for a, e in zip(actual, expected, strict=True):
        assert relative_error(a, e) <= BF16_TOL


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize(
    ("make", "keras_make"),
    [
        (
            lambda: Adagrad(initial_accumulator_value=0.3),
            lambda: keras.optimizers.Adagrad(initial_accumulator_value=0.3),
        ),
        (
            lambda: Ftrl(initial_accumulator_value=0.7),
            lambda: keras.optimizers.Ftrl(initial_accumulator_value=0.7),
        ),
    ],
    ids=["adagrad", "ftrl"],
)
def test_slots_start_where_keras_builds_them(make: Any, keras_make: Any, dtype: str) -> None:
    shapes = [(3,), (2, 2)]
    variables = [keras.Variable(np.ones(s, np.float32), dtype=dtype) for s in shapes]
    keras_opt = keras_make()
    keras_opt.build(variables)
    state = make().init([jnp.ones(s, dtype) for s in shapes])
    names = make().slot_names()
    for name in names:
        keras_slots = [v for v in keras_opt.variables if v.name.endswith(f"_{name}")]
        for ours, theirs in zip(state.slots[name], keras_slots, strict=True):
            assert ours.dtype == theirs.value.dtype
            np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs.value))


def test_lamb_trust_ratio_is_one_for_a_zero_param_or_a_zero_step() -> None:
    """A zero leaf, and a leaf whose step is zero, take Keras's ratio-1 branch."""
    init = [np.zeros(3, np.float32), np.ones((2, 2), np.float32)]
    grads = [np.array([0.5, -1.0, 2.0], np.float32), np.zeros((2, 2), np.float32)]
    variables = [keras.Variable(x) for x in init]
    keras.optimizers.Lamb(0.1).apply_gradients(list(zip(grads, variables, strict=True)))
    opt = Lamb(0.1)
    params = [jnp.asarray(x) for x in init]
    params, _ = opt.apply_gradients([jnp.asarray(g) for g in grads], opt.init(params), params)
    for p, v in zip(params, variables, strict=True):
        np.testing.assert_array_equal(np.asarray(p), np.asarray(v.value))
    assert np.all(np.asarray(params[0]) != 0)  # the zero leaf moved, by lr * u


@pytest.mark.parametrize("opt", [Ftrl(), Lamb()], ids=["Ftrl", "Lamb"])
def test_rules_that_read_the_params_need_them(opt: Any) -> None:
    params = {"w": jnp.ones(2)}
    with pytest.raises(ValueError, match=f"{type(opt).__name__} needs params"):
        opt.update({"w": jnp.ones(2)}, opt.init(params))


@pytest.mark.parametrize(
    ("make", "keras_make"),
    [
        (
            lambda: Adagrad(0.05, initial_accumulator_value=0.2, epsilon=1e-5),
            lambda: keras.optimizers.Adagrad(0.05, initial_accumulator_value=0.2, epsilon=1e-5),
        ),
        (
            lambda: Adadelta(1.0, rho=0.9, epsilon=1e-6),
            lambda: keras.optimizers.Adadelta(1.0, rho=0.9, epsilon=1e-6),
        ),
        (
            lambda: Ftrl(0.1, -0.25, 0.2, 0.01, 0.02, 0.03, 0.5),
            lambda: keras.optimizers.Ftrl(0.1, -0.25, 0.2, 0.01, 0.02, 0.03, 0.5),
        ),
        (
            lambda: Lamb(0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-6),
            lambda: keras.optimizers.Lamb(0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-6),
        ),
    ],
    ids=["Adagrad", "Adadelta", "Ftrl", "Lamb"],
)
def test_config_matches_keras_and_round_trips(make: Any, keras_make: Any) -> None:
    assert_config_matches_keras(make, keras_make)
    assert make().get_config()["name"] == type(make()).keras_name


def test_default_names_are_keras_auto_names() -> None:
    assert [o.name for o in (Adagrad(), Adadelta(), Ftrl(), Lamb())] == [
        "adagrad",
        "adadelta",
        "ftrl",
        "lamb",
    ]


def test_ftrl_keeps_an_int_rate_power_an_int_as_keras_does() -> None:
    assert type(Ftrl(learning_rate_power=-2).learning_rate_power) is int
    assert type(Ftrl(learning_rate_power=-0.5).learning_rate_power) is float


@pytest.mark.parametrize(
    ("make", "error", "pattern"),
    [
        (lambda: Adagrad(learning_rate=-1.0), ValueError, r"learning_rate must be in \[0, inf\)"),
        (
            lambda: Adagrad(initial_accumulator_value=-0.1),
            ValueError,
            r"initial_accumulator_value must be in \[0, inf\), got -0.1",
        ),
        (lambda: Adagrad(epsilon=-1e-7), ValueError, r"epsilon must be in \[0, inf\)"),
        (lambda: Adagrad(epsilon="tiny"), TypeError, "epsilon must be a real number"),
        (lambda: Adagrad(initial_accumulator_value=None), TypeError, "initial_accumulator_value"),
        (lambda: Adadelta(rho=1.5), ValueError, r"rho must be in \[0, 1\], got 1.5"),
        (lambda: Adadelta(rho=-0.1), ValueError, r"rho must be in \[0, 1\]"),
        (lambda: Adadelta(epsilon=float("nan")), ValueError, "epsilon must be finite"),
        (lambda: Adadelta(rho="high"), TypeError, "rho must be a real number"),
        (
            lambda: Ftrl(learning_rate_power=0.5),
            ValueError,
            r"learning_rate_power must be in \(-inf, 0\], got 0.5",
        ),
        (
            lambda: Ftrl(initial_accumulator_value=-1.0),
            ValueError,
            r"initial_accumulator_value must be in \[0, inf\)",
        ),
        (
            lambda: Ftrl(l1_regularization_strength=-0.1),
            ValueError,
            r"l1_regularization_strength must be in \[0, inf\)",
        ),
        (
            lambda: Ftrl(l2_regularization_strength=-0.1),
            ValueError,
            r"l2_regularization_strength must be in \[0, inf\)",
        ),
        (
            lambda: Ftrl(l2_shrinkage_regularization_strength=-0.1),
            ValueError,
            r"l2_shrinkage_regularization_strength must be in \[0, inf\)",
        ),
        (lambda: Ftrl(beta=-1.0), ValueError, r"beta must be in \[0, inf\)"),
        (lambda: Ftrl(beta=float("inf")), ValueError, "beta must be finite"),
        (lambda: Ftrl(learning_rate_power=None), TypeError, "learning_rate_power"),
        (lambda: Ftrl(l1_regularization_strength=True), TypeError, "l1_regularization_strength"),
        (lambda: Lamb(beta_1=1.0), ValueError, r"beta_1 must be in \[0, 1\), got 1"),
        (lambda: Lamb(beta_2=-0.5), ValueError, r"beta_2 must be in \[0, 1\)"),
        (lambda: Lamb(epsilon=-1.0), ValueError, r"epsilon must be in \[0, inf\)"),
        (lambda: Lamb(epsilon=None), TypeError, "epsilon must be a real number"),
        (lambda: Lamb(beta1=0.9), TypeError, "beta1"),
        (lambda: Adagrad(lr=0.1, learning_rate=0.2), TypeError, "not both"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(make: Any, error: type, pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        make()


def test_legacy_spelling_lr_and_epsilon_none() -> None:
    assert Adagrad(lr=0.1, epsilon=None) == Adagrad(0.1, epsilon=1e-7)
    assert Adadelta(lr=1.0, epsilon=None) == Adadelta(1.0)
