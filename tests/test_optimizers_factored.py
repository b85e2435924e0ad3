"""Step-for-step parity with Keras 3 (JAX backend) for Adafactor, Muon and ScheduleFreeAdamW.

The oracle is Keras itself, run on ``keras.Variable``s with the shared gradient
sequence (tests/keras_oracle.py); jopt must reproduce every step's params, compiled
within float32 rounding and eagerly bit for bit, except where noted. Plus bfloat16
params, the slots' shapes, Muon's choice of rule by path and rank, configs and names,
and bad arguments.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

import jopt
from jopt.formulas.orthogonalize import newton_schulz
from jopt.optimizers.adafactor import Adafactor
from jopt.optimizers.muon import Muon
from jopt.optimizers.schedule_free import ScheduleFreeAdamW
from tests.keras_oracle import assert_config_matches_keras, jopt_run, keras_run
from tests.problems import SHAPES, STEPS, make_problem, relative_error

# Compiled, XLA fuses and reassociates, so allow float32 rounding accumulated over 25
# steps (measured worst here: 6.3e-7, Adafactor with lr 0.5); eager runs Keras's ops in
# Keras's order and is bit-identical (measured: 0), except for Muon below.
TOL = {"compiled": 1e-6, "eager": 0.0}
# Muon, eager: Keras calls jnp.linalg.norm as one jitted computation, where XLA fuses
# x*x into its sum; jopt's eager mode (jax.disable_jit) runs the multiply and then a
# standalone reduce, which XLA's CPU backend sums in another order, so the Frobenius
# norm in Newton-Schulz can differ in its last bit. With that one norm computed jitted,
# eager is bit-identical (checked by hand). relative_error <= 2**-23 allows one float32
# ulp at every element; measured worst: 1.19e-7, one ulp (0 for Keras's defaults).
MUON_EAGER_TOL = 2.0**-23
# bfloat16, compiled: one bf16 ulp for XLA keeping fused bf16 intermediates in float32
# (measured: 2**-8 for Adafactor and Muon, 0 for ScheduleFreeAdamW). Eager, not run here
# to keep the file fast: bit-identical for Adafactor and ScheduleFreeAdamW, 4.9e-4 for
# Muon (the Frobenius norm's summation order, as in float32).
BF16_TOL = 2.0**-8

# Muon orthogonalizes 2-D leaves only: add a tall one (transposed inside Newton-Schulz).
MUON_SHAPES = ((3,), (2, 3), (4, 2), (2, 2, 2), (4, 1, 2, 1))

K = keras.optimizers


def _schedules(initial: float = 0.1) -> tuple[Any, Any]:
    config = dict(initial_learning_rate=initial, decay_steps=5, decay_rate=0.5)
    return jopt.schedules.ExponentialDecay(**config), K.schedules.ExponentialDecay(**config)


class Case:
    """One parity case: a jopt and a Keras constructor taking the same arguments."""

    def __init__(
        self,
        case_id: str,
        jopt_cls: type,
        keras_cls: Callable[..., Any],
        *args: Any,
        shapes: Sequence[tuple[int, ...]] = SHAPES,
        schedule: float | None = None,
        **kwargs: Any,
    ) -> None:
        self.id, self.shapes = case_id, tuple(shapes)
        self._jopt, self._keras, self._args, self._kwargs = jopt_cls, keras_cls, args, kwargs
        self._schedule = schedule

    def make_jopt(self) -> Any:
        lr = _schedules(self._schedule)[0] if self._schedule else None
        return self._jopt(*((lr,) if lr else self._args), **self._kwargs)

    def make_keras(self) -> Any:
        lr = _schedules(self._schedule)[1] if self._schedule else None
        return self._keras(*((lr,) if lr else self._args), **self._kwargs)


CASES = [
    Case("adafactor", Adafactor, K.Adafactor),
    # lr > 1/sqrt(t) from t = 5 on: the relative-step cap binds.
    Case("adafactor_relative_step_binds", Adafactor, K.Adafactor, 0.5),
    # An int exponent: jnp.power takes integer_pow, in Keras and here.
    Case(
        "adafactor_relative_step_off_int_decay",
        Adafactor,
        K.Adafactor,
        0.5,
        relative_step=False,
        beta_2_decay=-1,
    ),
    Case(
        "adafactor_rule_arguments",
        Adafactor,
        K.Adafactor,
        0.05,
        beta_2_decay=-0.5,
        epsilon_1=1e-6,
        epsilon_2=0.1,
        clip_threshold=0.5,
    ),
    Case("adafactor_schedule", Adafactor, K.Adafactor, schedule=0.1),
    # Keras's default: both weight decays 0.004.
    Case("muon", Muon, K.Muon, shapes=MUON_SHAPES),
    Case(
        "muon_weight_decay",
        Muon,
        K.Muon,
        0.05,
        weight_decay=0.2,
        adam_weight_decay=0.2,
        shapes=MUON_SHAPES,
    ),
    Case(
        "muon_momentum_no_nesterov_no_rms_rate",
        Muon,
        K.Muon,
        0.01,
        momentum=0.8,
        nesterov=False,
        rms_rate=None,
        shapes=MUON_SHAPES,
    ),
    Case(
        "muon_newton_schulz_arguments",
        Muon,
        K.Muon,
        0.01,
        ns_steps=3,
        muon_a=2.0,
        muon_b=-1.5,
        muon_c=0.5,
        rms_rate=0.5,
        shapes=MUON_SHAPES,
    ),
    Case(
        "muon_adam_arguments_no_weight_decay",
        Muon,
        K.Muon,
        0.01,
        adam_beta_1=0.8,
        adam_beta_2=0.99,
        epsilon=1e-3,
        adam_lr_ratio=0.1,
        weight_decay=None,
        adam_weight_decay=None,
        shapes=MUON_SHAPES,
    ),
    Case("muon_schedule", Muon, K.Muon, schedule=0.1, shapes=MUON_SHAPES),
    Case("schedule_free", ScheduleFreeAdamW, K.ScheduleFreeAdamW),
    Case("schedule_free_warmup", ScheduleFreeAdamW, K.ScheduleFreeAdamW, 0.05, warmup_steps=7),
    Case(
        "schedule_free_rule_arguments",
        ScheduleFreeAdamW,
        K.ScheduleFreeAdamW,
        0.05,
        beta_1=0.8,
        beta_2=0.99,
        epsilon=1e-3,
    ),
    Case("schedule_free_schedule", ScheduleFreeAdamW, K.ScheduleFreeAdamW, schedule=0.1),
    # The base decays y before the rule; the rule recovers x from the decayed y, as Keras.
    # The EMA and its overwrite act on y, and the rule reads the overwritten y next step.
    Case(
        "schedule_free_weight_decay_ema",
        ScheduleFreeAdamW,
        K.ScheduleFreeAdamW,
        0.05,
        weight_decay=0.1,
        use_ema=True,
        ema_overwrite_frequency=5,
    ),
]
BY_ID = {c.id: c for c in CASES}
# Muon with different decays for its two rules; Keras's default uses one value for both.
UNEQUAL_DECAYS = Case(
    "muon_unequal_weight_decays",
    Muon,
    K.Muon,
    0.05,
    weight_decay=0.1,
    adam_weight_decay=None,
    shapes=MUON_SHAPES,
)
BY_ID[UNEQUAL_DECAYS.id] = UNEQUAL_DECAYS


@functools.cache
def keras_trajectory(case_id: str, dtype: str = "float32") -> list[np.ndarray]:
    case = BY_ID[case_id]
    return keras_run(case.make_keras, dtype, case.shapes)


def assert_matches(
    name: str, actual: list[np.ndarray], expected: list[np.ndarray], tol: float
) -> None:
    init = make_problem(shapes=tuple(np.shape(e)[1:] for e in expected))[0]
    for j, (a, e) in enumerate(zip(actual, expected, strict=True)):
        assert np.all(np.isfinite(e)), f"{name} leaf {j}: Keras gave non-finite values"
        err = relative_error(a, e)
        assert err <= tol, f"{name} leaf {j}: worst error {err:.3g} > {tol:g}"
        # The trajectory really moved: parity is not two optimizers standing still.
        assert relative_error(e[-1], init[j]) > 1e-4, f"{name} leaf {j} did not move"


def _eager_tol(case_id: str) -> float:
    return MUON_EAGER_TOL if case_id.startswith("muon") else TOL["eager"]


PARITY = [
    *[
        pytest.param(c.id, mode, id=f"{c.id}-{mode}")
        for c in CASES
        for mode in ("compiled", "eager")
    ],
    pytest.param(UNEQUAL_DECAYS.id, "compiled", id=f"{UNEQUAL_DECAYS.id}-compiled"),
    pytest.param(UNEQUAL_DECAYS.id, "eager", id=f"{UNEQUAL_DECAYS.id}-eager"),
]


@pytest.mark.parametrize(("case_id", "mode"), PARITY)
def test_matches_keras_step_for_step(case_id: str, mode: str) -> None:
    case = BY_ID[case_id]
    actual = jopt_run(case.make_jopt(), mode, shapes=case.shapes)
    tol = TOL["compiled"] if mode == "compiled" else _eager_tol(case_id)
    assert_matches(f"{case_id} {mode}", actual, keras_trajectory(case_id), tol)


# Fewer leaves in bfloat16: each new (op, shape, dtype) costs Keras a compile.
BF16_CASES = [
    Case("adafactor_bf16", Adafactor, K.Adafactor, 0.1, shapes=((3,), (2, 3), (2, 2, 2))),
    Case("muon_bf16", Muon, K.Muon, 0.01, shapes=((3,), (2, 3), (4, 2))),
    # beta_2 = 0.99: bfloat16 rounds the default 0.999 to 1 (see the test below).
    Case("schedule_free_bf16", ScheduleFreeAdamW, K.ScheduleFreeAdamW, 0.05, beta_2=0.99),
]
BY_ID.update({c.id: c for c in BF16_CASES})


@pytest.mark.parametrize("case_id", [c.id for c in BF16_CASES])
def test_bfloat16_params_match_keras_and_keep_dtype(case_id: str) -> None:
    """With bfloat16 variables Keras keeps slots and arithmetic in bfloat16; so does jopt
    (Muon's orthogonalized step alone is float32, rounded once onto the param)."""
    case = BY_ID[case_id]
    actual = jopt_run(case.make_jopt(), "compiled", jnp.bfloat16, case.shapes)
    assert_matches(case_id, actual, keras_trajectory(case_id, "bfloat16"), BF16_TOL)


def test_schedule_free_bfloat16_with_default_beta_2_is_nan_as_in_keras() -> None:
    """Keras casts beta_2 = 0.999 to bfloat16, which is 1.0: the second moment never
    moves and its bias correction 1 - beta_2**t is 0, so every step is 0/0. Matched."""
    expected = keras_run(lambda: K.ScheduleFreeAdamW(0.05), "bfloat16", steps=4)
    actual = jopt_run(ScheduleFreeAdamW(0.05), "compiled", jnp.bfloat16, steps=4)
    for a, e in zip(actual, expected, strict=True):
        assert np.all(np.isnan(e)) and np.all(np.isnan(a))


# ---- Muon's choice of rule, from the pytree path --------------------------------------

NAMED_SHAPES = {"token_embedding": (4, 2), "dense_kernel": (2, 3), "head": (3, 2), "bias": (3,)}


def _run_named(make: Callable[[], Any], keras_side: bool) -> dict[str, np.ndarray]:
    """Like keras_run/jopt_run, with named leaves: Keras variables named ``name``, jopt
    params ``{name: ...}`` (path ``"['name']"``), so path rules see the same words."""
    names = list(NAMED_SHAPES)
    init, grads = make_problem(shapes=tuple(NAMED_SHAPES.values()))
    out: dict[str, list[np.ndarray]] = {n: [] for n in names}
    opt = make()
    if keras_side:
        variables = [keras.Variable(x, name=n) for n, x in zip(names, init, strict=True)]
        for t in range(STEPS):
            pairs = zip(grads, variables, strict=True)
            opt.apply_gradients([(jnp.asarray(g[t]), v) for g, v in pairs])
            for n, v in zip(names, variables, strict=True):
                out[n].append(np.asarray(v.value))
    else:
        params = {n: jnp.asarray(x) for n, x in zip(names, init, strict=True)}
        state = opt.init(params)
        for t in range(STEPS):
            g_t = {n: jnp.asarray(g[t]) for n, g in zip(names, grads, strict=True)}
            params, state = opt.apply_gradients(g_t, state, params)
            for n in names:
                out[n].append(np.asarray(params[n]))
    return {n: np.stack(o) for n, o in out.items()}


def test_muon_rule_by_path_matches_keras_by_variable_path() -> None:
    """The leaf "head" takes AdamW by name; "token_embedding" Muon (embeddings not excluded)."""
    kwargs = dict(exclude_layers=["head"], exclude_embeddings=False)
    expected = _run_named(lambda: K.Muon(0.01, **kwargs), keras_side=True)
    actual = _run_named(lambda: Muon(0.01, **kwargs), keras_side=False)
    for name in NAMED_SHAPES:
        err = relative_error(actual[name], expected[name])
        assert err <= TOL["compiled"], f"{name}: worst error {err:.3g}"


def test_muon_decides_each_rule_from_path_and_rank_and_records_it_in_the_state() -> None:
    params = {
        "token_embedding": jnp.ones((4, 2)),
        "dense": {"kernel": jnp.ones((2, 3)), "bias": jnp.ones(3)},
        "conv": jnp.ones((2, 2, 2)),
        "head": {"kernel": jnp.ones((3, 2))},
    }
    velocity = Muon(exclude_layers=[r"\['head'\]"]).init(params).slots["velocity"]
    shapes = jax.tree.map(jnp.shape, velocity)
    # AdamW leaves (embedding, rank != 2, excluded) hold a velocity; Muon leaves none.
    assert shapes == {
        "token_embedding": (4, 2),
        "dense": {"kernel": (1,), "bias": (3,)},
        "conv": (2, 2, 2),
        "head": {"kernel": (3, 2)},
    }
    kept = Muon(exclude_embeddings=False).init(params).slots["velocity"]
    assert kept["token_embedding"].shape == (1,)


def test_newton_schulz_is_keras_muons_iteration() -> None:
    rng = np.random.default_rng(0)
    keras_muon = K.Muon()
    x = jnp.asarray(rng.standard_normal((3, 4, 2)), jnp.float32)  # a batch of tall matrices
    expected = keras_muon.zeropower_via_newtonschulz5(x, 5)
    actual = jax.jit(newton_schulz, static_argnums=(1, 2, 3, 4))(x, 5, 3.4445, -4.7750, 2.0315)
    assert actual.shape == x.shape and actual.dtype == x.dtype
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-6)
    # It does orthogonalize: the singular values of the output are near 1.
    s = np.linalg.svd(
        newton_schulz(jnp.asarray(rng.standard_normal((8, 4))), 5, 3.4445, -4.7750, 2.0315),
        compute_uv=False,
    )
    assert np.all((s > 0.6) & (s < 1.3)), s
    with pytest.raises(ValueError, match="rank >= 2"):
        newton_schulz(jnp.ones(3), 5, 3.4445, -4.7750, 2.0315)


# ---- slots, state and params ----------------------------------------------------------


def test_adafactor_factors_the_last_two_axes_and_keeps_scalar_placeholders() -> None:
    params = {"w": jnp.ones((4, 2, 3), jnp.bfloat16), "k": jnp.ones((2, 3)), "b": jnp.ones(3)}
    state = Adafactor().init(params)
    assert sorted(state.slots) == ["c", "r", "velocity"]
    shapes = {n: jax.tree.map(jnp.shape, s) for n, s in state.slots.items()}
    assert shapes["r"] == {"w": (4, 2), "k": (2,), "b": ()}
    assert shapes["c"] == {"w": (4, 3), "k": (3,), "b": ()}
    assert shapes["velocity"] == jax.tree.map(jnp.shape, params)
    assert state.slots["r"]["w"].dtype == jnp.bfloat16
    assert jax.eval_shape(Adafactor().init, params) == jax.eval_shape(lambda p: state, params)


def test_schedule_free_momentum_starts_at_the_params_and_eval_params_recovers_x() -> None:
    opt = ScheduleFreeAdamW(0.05, beta_1=0.8)
    init, grads = make_problem()
    params = [jnp.asarray(x) for x in init]
    state = opt.init(params)
    for z, p in zip(state.slots["momentum"], params, strict=True):
        np.testing.assert_array_equal(z, p)
    for t in range(3):
        params, state = opt.apply_gradients([jnp.asarray(g[t]) for g in grads], state, params)
    for x, y, z in zip(
        opt.eval_params(params, state), params, state.slots["momentum"], strict=True
    ):
        y64, z64 = np.asarray(y, np.float64), np.asarray(z, np.float64)
        np.testing.assert_allclose(x, (y64 - 0.2 * z64) / 0.8, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("opt", "name"),
    [
        (Adafactor(), "Adafactor"),
        (ScheduleFreeAdamW(), "ScheduleFreeAdamW"),
        (Muon(), "Muon with weight_decay"),
    ],
)
def test_rules_that_read_the_params_say_so(opt: Any, name: str) -> None:
    params = {"w": jnp.ones((2, 2))}
    with pytest.raises(ValueError, match=f"{name}.* needs params: call update"):
        opt.update(params, opt.init(params))


def test_muon_without_weight_decay_needs_no_params() -> None:
    opt = Muon(0.1, weight_decay=None, adam_weight_decay=None)
    params = {"w": jnp.ones((2, 2)), "b": jnp.ones(2)}
    updates, _ = opt.update(params, opt.init(params))
    assert jax.tree.map(jnp.shape, updates) == jax.tree.map(jnp.shape, params)


# ---- configs, names, arguments --------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "make_keras"),
    [
        (
            lambda: Adafactor(0.01, beta_2_decay=-0.5, clip_threshold=2.0, relative_step=False),
            lambda: K.Adafactor(0.01, beta_2_decay=-0.5, clip_threshold=2.0, relative_step=False),
        ),
        (
            lambda: Muon(exclude_layers=["head"], ns_steps=3, rms_rate=None, nesterov=False),
            lambda: K.Muon(exclude_layers=["head"], ns_steps=3, rms_rate=None, nesterov=False),
        ),
        (
            lambda: ScheduleFreeAdamW(_schedules()[0], warmup_steps=10, weight_decay=0.01),
            lambda: K.ScheduleFreeAdamW(_schedules()[1], warmup_steps=10, weight_decay=0.01),
        ),
    ],
)
def test_config_and_name_match_keras_and_round_trip(make: Any, make_keras: Any) -> None:
    assert_config_matches_keras(make, make_keras)


def test_defaults_and_names_are_keras_s() -> None:
    from keras.src.utils.naming import to_snake_case

    for cls, keras_cls in [
        (Adafactor, K.Adafactor),
        (Muon, K.Muon),
        (ScheduleFreeAdamW, K.ScheduleFreeAdamW),
    ]:
        assert cls.keras_name == to_snake_case(keras_cls.__name__)
        ours, theirs = cls().get_config(), keras_cls().get_config()
        for key in ours.keys() - {"name", "learning_rate"}:
            assert ours[key] == theirs[key], (cls.__name__, key)
        assert ours["learning_rate"] == pytest.approx(theirs["learning_rate"], rel=1e-7)


@pytest.mark.parametrize(
    ("make", "error", "pattern"),
    [
        (lambda: Adafactor(beta_2_decay=0.5), ValueError, "beta_2_decay must be in"),
        (lambda: Adafactor(epsilon_1=-1.0), ValueError, "epsilon_1 must be in"),
        (lambda: Adafactor(epsilon_2="small"), TypeError, "epsilon_2 must be a real number"),
        (lambda: Adafactor(clip_threshold=0.0), ValueError, "clip_threshold must be in"),
        (lambda: Adafactor(relative_step=1), TypeError, "relative_step must be True or False"),
        (lambda: Adafactor(learning_rate=-1.0), ValueError, "learning_rate must be"),
        (lambda: Muon(adam_beta_1=1.0), ValueError, "adam_beta_1 must be in"),
        (lambda: Muon(adam_beta_2=-0.1), ValueError, "adam_beta_2 must be in"),
        (lambda: Muon(adam_weight_decay=-1.0), ValueError, "adam_weight_decay must be in"),
        (lambda: Muon(weight_decay=-1.0), ValueError, "weight_decay must be in"),
        (lambda: Muon(epsilon=-1.0), ValueError, "epsilon must be in"),
        (lambda: Muon(exclude_layers="head"), TypeError, "exclude_layers must be a list"),
        (lambda: Muon(exclude_layers=["("]), ValueError, "exclude_layers: '\\(' is not a valid"),
        (lambda: Muon(exclude_embeddings=None), TypeError, "exclude_embeddings must be True"),
        (lambda: Muon(muon_a=float("nan")), ValueError, "muon_a must be finite"),
        (lambda: Muon(muon_b=None), TypeError, "muon_b must be a real number"),
        (lambda: Muon(muon_c="2"), TypeError, "muon_c must be a real number"),
        (lambda: Muon(adam_lr_ratio=-0.1), ValueError, "adam_lr_ratio must be in"),
        (lambda: Muon(momentum=1.5), ValueError, "momentum must be in"),
        (lambda: Muon(ns_steps=2.5), ValueError, "ns_steps must be an integer >= 0"),
        (lambda: Muon(ns_steps=-1), ValueError, "ns_steps must be an integer >= 0"),
        (lambda: Muon(nesterov="yes"), TypeError, "nesterov must be True or False"),
        (lambda: Muon(rms_rate=0.0), ValueError, "rms_rate must be in"),
        (lambda: ScheduleFreeAdamW(beta_1=0.0), ValueError, "beta_1 must be in"),
        (lambda: ScheduleFreeAdamW(beta_2=1.0), ValueError, "beta_2 must be in"),
        (lambda: ScheduleFreeAdamW(epsilon=-1e-8), ValueError, "epsilon must be in"),
        (lambda: ScheduleFreeAdamW(warmup_steps=-1), ValueError, "warmup_steps must be an"),
        (lambda: ScheduleFreeAdamW(warmup_steps=2.5), ValueError, "warmup_steps must be an"),
        (lambda: ScheduleFreeAdamW(momentum=0.9), TypeError, "unexpected keyword"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(make: Any, error: type, pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        make()
