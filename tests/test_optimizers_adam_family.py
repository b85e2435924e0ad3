"""Step-for-step parity with Keras 3 (JAX backend) for AdamW, Adamax, Nadam and Lion.

The oracle is Keras itself, run on ``keras.Variable``s with the shared gradient
sequence (tests/keras_oracle.py); jopt must reproduce every step's params, compiled
within float32 rounding and eagerly bit for bit. Plus bfloat16 params, Nadam's
optimizer-wide product and its dtype, configs and names, and bad arguments.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

import jopt
from jopt.optimizers.adamax import Adamax
from jopt.optimizers.adamw import AdamW
from jopt.optimizers.lion import Lion
from jopt.optimizers.nadam import Nadam
from tests.keras_oracle import assert_config_matches_keras, jopt_run, keras_run
from tests.problems import make_problem, relative_error

# As in test_keras_parity.py: compiled, XLA may fuse and reassociate, so allow float32
# rounding accumulated over 25 steps (measured worst here: 1.2e-7); eager runs Keras's
# ops in Keras's order and must be bit-identical (measured: 0 in every case).
TOL = {"compiled": 1e-6, "eager": 0.0}
# bfloat16: one bf16 ulp of slack for XLA fusing bf16 ops differently (measured: 0).
BF16_TOL = 2.0**-8

K = keras.optimizers


def _exp(initial: float = 0.01) -> dict[str, Any]:
    return dict(initial_learning_rate=initial, decay_steps=5, decay_rate=0.5)


def _schedules(initial: float = 0.01, staircase: bool = False) -> tuple[Any, Any]:
    config = _exp(initial) | {"staircase": staircase}
    return (
        jopt.schedules.ExponentialDecay(**config),
        K.schedules.ExponentialDecay(**config),
    )


# (id, jopt constructor, Keras constructor). AdamW runs with weight_decay=0.0 here, so
# these cases test its rule and arguments; its weight decay (the base class's) is
# tested apart, in test_adamw_weight_decay_matches_keras.
CASES: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = [
    ("adamw", lambda: AdamW(weight_decay=0.0), lambda: K.AdamW(weight_decay=0.0)),
    (
        "adamw_betas_epsilon_amsgrad",
        lambda: AdamW(0.01, 0.0, beta_1=0.8, beta_2=0.99, epsilon=1e-3, amsgrad=True),
        lambda: K.AdamW(0.01, 0.0, beta_1=0.8, beta_2=0.99, epsilon=1e-3, amsgrad=True),
    ),
    (
        "adamw_schedule",
        lambda: AdamW(_schedules()[0], weight_decay=0.0),
        lambda: K.AdamW(_schedules()[1], weight_decay=0.0),
    ),
    ("adamax", lambda: Adamax(), lambda: K.Adamax()),
    (
        "adamax_betas_epsilon",
        lambda: Adamax(0.01, beta_1=0.8, beta_2=0.95, epsilon=1e-3),
        lambda: K.Adamax(0.01, beta_1=0.8, beta_2=0.95, epsilon=1e-3),
    ),
    (
        # beta_2 = 1 is allowed: u is then the running maximum of |g|.
        "adamax_beta_2_one",
        lambda: Adamax(0.01, beta_2=1.0),
        lambda: K.Adamax(0.01, beta_2=1.0),
    ),
    (
        "adamax_schedule_staircase",
        lambda: Adamax(_schedules(staircase=True)[0]),
        lambda: K.Adamax(_schedules(staircase=True)[1]),
    ),
    ("nadam", lambda: Nadam(), lambda: K.Nadam()),
    (
        "nadam_betas_epsilon",
        lambda: Nadam(0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-3),
        lambda: K.Nadam(0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-3),
    ),
    (
        "nadam_schedule",
        lambda: Nadam(_schedules()[0]),
        lambda: K.Nadam(_schedules()[1]),
    ),
    ("lion", lambda: Lion(), lambda: K.Lion()),
    (
        "lion_betas",
        lambda: Lion(0.01, beta_1=0.5, beta_2=0.9),
        lambda: K.Lion(0.01, beta_1=0.5, beta_2=0.9),
    ),
    (
        # The edges Keras allows: beta_1 = 1 (the sign of the momentum alone), beta_2 = 0.
        "lion_beta_1_one_beta_2_zero",
        lambda: Lion(0.01, beta_1=1.0, beta_2=0.0),
        lambda: K.Lion(0.01, beta_1=1.0, beta_2=0.0),
    ),
    (
        "lion_schedule",
        lambda: Lion(_schedules(0.001)[0]),
        lambda: K.Lion(_schedules(0.001)[1]),
    ),
]
MAKE = {c[0]: (c[1], c[2]) for c in CASES}


@functools.cache
def keras_trajectory(case_id: str, dtype: str = "float32") -> list[np.ndarray]:
    return keras_run(MAKE[case_id][1], dtype)


def assert_matches(
    case_id: str, actual: list[np.ndarray], expected: list[np.ndarray], tol: float
) -> None:
    init = make_problem()[0]
    for j, (a, e) in enumerate(zip(actual, expected, strict=True)):
        assert np.all(np.isfinite(e)), f"{case_id}: Keras's trajectory is not finite"
        err = relative_error(a, e)
        assert err <= tol, f"{case_id} leaf {j}: worst error {err:.3g} > {tol:g}"
        # The trajectory really moved: parity is not two optimizers standing still.
        assert relative_error(e[-1], init[j]) > 1e-4, f"{case_id} leaf {j} did not move"


@pytest.mark.parametrize("mode", ["compiled", "eager"])
@pytest.mark.parametrize("case_id", list(MAKE))
def test_matches_keras_step_for_step(case_id: str, mode: str) -> None:
    actual = jopt_run(MAKE[case_id][0](), mode)
    assert_matches(case_id, actual, keras_trajectory(case_id), TOL[mode])


@pytest.mark.parametrize(
    "case_id",
    ["adamw_betas_epsilon_amsgrad", "adamax_betas_epsilon", "nadam_betas_epsilon", "lion_betas"],
)
def test_bfloat16_params_match_keras_and_keep_dtype(case_id: str) -> None:
    """With bfloat16 variables Keras keeps slots and arithmetic in bfloat16; so does jopt."""
    actual = jopt_run(MAKE[case_id][0](), "compiled", jnp.bfloat16)
    assert_matches(case_id, actual, keras_trajectory(case_id, "bfloat16"), BF16_TOL)


def test_nadam_bfloat16_with_default_beta_2_is_nan_as_in_keras() -> None:
    """Keras's quirk, kept: Nadam rounds beta_2 to the variable's dtype, and bfloat16
    rounds 0.999 to 1.0, so ``1 - beta_2**t`` is 0 and every step is NaN (Adam, which
    computes ``1 - beta_2`` in Python, has no such problem)."""
    expected = keras_trajectory("nadam", "bfloat16")
    actual = jopt_run(Nadam(), "compiled", jnp.bfloat16)
    for a, e in zip(actual, expected, strict=True):
        assert np.all(np.isnan(e))
        np.testing.assert_array_equal(np.isnan(a), np.isnan(e))


# AdamW's weight decay is the base class's (`w -= w * weight_decay * lr` before the
# rule): these cases need it. Keras's AdamW with its default 0.004 (and its twin with no
# decay in CASES, "adamw"), a large decay with AMSGrad (also in bfloat16), and a decay
# that follows a learning-rate schedule.
WEIGHT_DECAY_CASES: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = [
    ("adamw_default_decay", lambda: AdamW(), lambda: K.AdamW()),
    (
        "adamw_large_decay_amsgrad",
        lambda: AdamW(0.01, weight_decay=0.1, amsgrad=True),
        lambda: K.AdamW(0.01, weight_decay=0.1, amsgrad=True),
    ),
    (
        "adamw_schedule_decay",
        lambda: AdamW(_schedules(0.1)[0], weight_decay=0.5),
        lambda: K.AdamW(_schedules(0.1)[1], weight_decay=0.5),
    ),
]


@pytest.mark.parametrize(("case_id", "make", "make_keras"), WEIGHT_DECAY_CASES)
def test_adamw_weight_decay_matches_keras(
    case_id: str, make: Callable[[], Any], make_keras: Callable[[], Any]
) -> None:
    expected = keras_run(make_keras)
    for mode in ("compiled", "eager"):
        assert_matches(f"{case_id} {mode}", jopt_run(make(), mode), expected, TOL[mode])
    if case_id == "adamw_default_decay":
        # Even the default decay is visible: the trajectory differs from weight_decay=0.
        undecayed = keras_trajectory("adamw")
        assert max(relative_error(a, e) for a, e in zip(undecayed, expected, strict=True)) > 1e-5
    if case_id == "adamw_large_decay_amsgrad":
        bf16 = jopt_run(make(), "compiled", jnp.bfloat16)
        assert_matches(f"{case_id} bfloat16", bf16, keras_run(make_keras, "bfloat16"), BF16_TOL)


def test_nadam_product_is_shared_and_kept_in_the_first_variables_dtype() -> None:
    """Keras builds ``_u_product`` in the dtype of its first variable; each leaf casts it.

    A bfloat16 leaf first makes the product bfloat16, which then also rounds the
    float32 leaves' updates: jopt must do the same to match Keras (compiled, too: XLA
    would otherwise skip that rounding, an error of 2e-6 on the float32 leaves).
    """
    shapes = ((2, 3), (3,), (2, 2, 2))
    dtypes = ("bfloat16", "float32", "float32")
    init, grads = make_problem(shapes=shapes)
    steps = grads[0].shape[0]

    variables = [keras.Variable(x, dtype=d) for x, d in zip(init, dtypes, strict=True)]
    keras_opt = K.Nadam(0.01, beta_2=0.99)  # bfloat16 rounds 0.999 to 1: see above
    expected: list[list[np.ndarray]] = [[] for _ in shapes]
    for t in range(steps):
        keras_opt.apply_gradients(
            [(jnp.asarray(g[t], v.dtype), v) for g, v in zip(grads, variables, strict=True)]
        )
        for j, v in enumerate(variables):
            expected[j].append(np.asarray(jnp.asarray(v.value, jnp.float32)))

    opt = Nadam(0.01, beta_2=0.99)
    for mode in ("compiled", "eager"):
        params = [jnp.asarray(x, d) for x, d in zip(init, dtypes, strict=True)]
        state = opt.init(params)
        assert state.scalars["u_product"].dtype == jnp.bfloat16
        actual: list[list[np.ndarray]] = [[] for _ in shapes]
        for t in range(steps):
            g_t = [jnp.asarray(g[t], p.dtype) for g, p in zip(grads, params, strict=True)]
            if mode == "compiled":
                params, state = opt.apply_gradients(g_t, state, params)
            else:
                with jax.disable_jit():
                    updates, state = opt.update(g_t, state, params)
                    params = jopt.apply_updates(params, updates)
            for j, p in enumerate(params):
                actual[j].append(np.asarray(p.astype(jnp.float32)))

        assert float(state.scalars["u_product"]) == float(keras_opt._u_product.value)
        for j, d in enumerate(dtypes):
            tol = BF16_TOL if d == "bfloat16" and mode == "compiled" else TOL[mode]
            err = relative_error(np.stack(actual[j]), np.stack(expected[j]))
            assert err <= tol, f"{mode} leaf {j} ({d}): worst error {err:.3g} > {tol:g}"


def test_nadam_product_waits_for_accumulated_steps() -> None:
    """With gradient accumulation (a base option) Keras restores ``_u_product`` on the
    steps that only accumulate; jopt's product must advance only on applied steps."""
    # Keras's accumulation is slow eagerly (a lax.cond per call): a short run suffices.
    run = dict(shapes=((2, 3),), steps=12)
    expected = keras_run(lambda: K.Nadam(0.01, gradient_accumulation_steps=3), **run)
    for mode in ("compiled", "eager"):
        actual = jopt_run(Nadam(0.01, gradient_accumulation_steps=3), mode, **run)
        err = relative_error(actual[0], expected[0])
        assert err <= TOL[mode], f"{mode}: worst error {err:.3g} > {TOL[mode]:g}"
    assert relative_error(expected[0][-1], expected[0][0]) > 1e-3  # it moved after step 1


def test_nadam_product_state_under_jit_and_eval_shape() -> None:
    opt = Nadam()
    params = {"b": jnp.zeros(2, jnp.float32), "a": jnp.zeros(3, jnp.bfloat16)}
    # jax.tree.leaves sorts dict keys: "a" (bfloat16) is the first leaf.
    assert opt.init(params).scalars["u_product"].dtype == jnp.bfloat16
    assert Nadam().init([]).scalars["u_product"].dtype == jnp.float32
    abstract = jax.eval_shape(opt.init, params)
    assert abstract.scalars["u_product"].dtype == jnp.bfloat16
    state = jax.jit(opt.init)(params)
    grads = jax.tree.map(jnp.ones_like, params)
    update = jax.jit(opt.update)
    _, state = update(grads, state, params)
    _, state = update(grads, state, params)
    assert state.scalars["u_product"].dtype == jnp.bfloat16
    mu = [0.9 * (1 - 0.5 * 0.96**t) for t in (1, 2)]
    assert float(state.scalars["u_product"]) == pytest.approx(mu[0] * mu[1], rel=2.0**-7)


@pytest.mark.parametrize(
    ("make", "make_keras"),
    [
        (lambda: AdamW(), lambda: K.AdamW()),
        (
            lambda: AdamW(_schedules()[0], 0.1, beta_1=0.8, amsgrad=True),
            lambda: K.AdamW(_schedules()[1], 0.1, beta_1=0.8, amsgrad=True),
        ),
        (lambda: Adamax(0.01, beta_2=0.9, epsilon=1e-4), lambda: K.Adamax(0.01, 0.9, 0.9, 1e-4)),
        (lambda: Nadam(0.002, beta_1=0.8, epsilon=1e-5), lambda: K.Nadam(0.002, 0.8, 0.999, 1e-5)),
        (lambda: Lion(0.0003, beta_1=0.95, beta_2=0.98), lambda: K.Lion(0.0003, 0.95, 0.98)),
        (lambda: Lion(weight_decay=0.05), lambda: K.Lion(weight_decay=0.05)),
    ],
)
def test_config_and_name_match_keras_and_round_trip(make: Any, make_keras: Any) -> None:
    assert_config_matches_keras(make, make_keras)
    assert make().get_config()["name"] == type(make()).keras_name


def test_slots_have_keras_names() -> None:
    params = {"w": jnp.ones(2)}
    assert sorted(AdamW().init(params).slots) == ["momentum", "velocity"]
    assert sorted(AdamW(amsgrad=True).init(params).slots) == [
        "momentum",
        "velocity",
        "velocity_hat",
    ]
    assert sorted(Adamax().init(params).slots) == ["momentum", "norm"]
    assert sorted(Nadam().init(params).slots) == ["momentum", "velocity"]
    assert sorted(Nadam().init(params).scalars) == ["u_product"]
    assert sorted(Lion().init(params).slots) == ["momentum"]


def test_adamw_defaults_are_keras_defaults() -> None:
    opt, theirs = AdamW(), K.AdamW()
    assert isinstance(opt, jopt.Adam)
    assert opt.weight_decay == theirs.weight_decay == 0.004
    assert (opt.beta_1, opt.beta_2, opt.epsilon, opt.amsgrad) == (
        theirs.beta_1,
        theirs.beta_2,
        theirs.epsilon,
        theirs.amsgrad,
    )
    assert AdamW(lr=0.001, epsilon=None) == AdamW()


@pytest.mark.parametrize(
    ("make", "error", "pattern"),
    [
        (lambda: AdamW(weight_decay=None), ValueError, "weight_decay must be a number >= 0"),
        (lambda: AdamW(weight_decay=-0.1), ValueError, r"weight_decay must be in \[0, inf\)"),
        (lambda: AdamW(beta_1=1.0), ValueError, r"beta_1 must be in \[0, 1\), got 1"),
        (lambda: AdamW(beta_2=1.5), ValueError, r"beta_2 must be in \[0, 1\)"),
        (lambda: AdamW(epsilon=-1.0), ValueError, r"epsilon must be in \[0, inf\)"),
        (lambda: AdamW(amsgrad="yes"), TypeError, "amsgrad must be True or False"),
        (lambda: AdamW(learning_rate=-1.0), ValueError, r"learning_rate must be in \[0, inf\)"),
        (lambda: Adamax(beta_1=1.0), ValueError, r"beta_1 must be in \[0, 1\), got 1"),
        (lambda: Adamax(beta_1=-0.1), ValueError, r"beta_1 must be in \[0, 1\)"),
        (lambda: Adamax(beta_2=1.01), ValueError, r"beta_2 must be in \[0, 1\], got 1.01"),
        (lambda: Adamax(epsilon=float("nan")), ValueError, "epsilon must be finite"),
        (lambda: Adamax(beta_1="0.9"), TypeError, "beta_1 must be a real number"),
        (lambda: Nadam(beta_1=1.0), ValueError, r"beta_1 must be in \[0, 1\), got 1"),
        (lambda: Nadam(beta_2=1.0), ValueError, r"beta_2 must be in \[0, 1\), got 1"),
        (lambda: Nadam(epsilon=-1e-7), ValueError, r"epsilon must be in \[0, inf\)"),
        (lambda: Nadam(beta_2=None), TypeError, "beta_2 must be a real number"),
        (lambda: Lion(beta_1=0.0), ValueError, r"beta_1 must be in \(0, 1\], got 0"),
        (lambda: Lion(beta_1=1.5), ValueError, r"beta_1 must be in \(0, 1\], got 1.5"),
        (lambda: Lion(beta_2=-0.1), ValueError, r"beta_2 must be in \[0, 1\], got -0.1"),
        (lambda: Lion(beta_2=True), TypeError, "beta_2 must be a real number"),
        (lambda: Lion(epsilon=1e-7), TypeError, "epsilon"),
        (lambda: Nadam(amsgrad=True), TypeError, "amsgrad"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(make: Any, error: type, pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        make()


def test_keras_refuses_what_jopt_refuses_where_keras_checks() -> None:
    """Keras checks only AdamW's weight_decay and Lion's beta_1; jopt refuses the same."""
    with pytest.raises(ValueError, match="weight_decay"):
        K.AdamW(weight_decay=None)
    for beta_1 in (0.0, 1.5):
        with pytest.raises(ValueError, match="beta_1"):
            K.Lion(beta_1=beta_1)
