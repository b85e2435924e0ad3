"""Invariants every optimizer keeps, the Keras spelling of arguments, and bad input."""

from __future__ import annotations

from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

import jopt
from tests.keras_oracle import assert_config_matches_keras

OPTIMIZERS = [
    jopt.SGD(0.1),
    jopt.SGD(0.1, momentum=0.9, nesterov=True),
    jopt.RMSprop(0.01, momentum=0.5, centered=True),
    jopt.Adam(0.01, amsgrad=True),
    jopt.Adam(jopt.schedules.ExponentialDecay(0.01, 3, 0.5), decay=0.1),
    jopt.legacy.SGD(lr=0.1, momentum=0.9),
    jopt.legacy.RMSprop(lr=0.01),
    jopt.legacy.RMSprop(lr=0.01, momentum=0.9, centered=True),
    jopt.legacy.Adam(lr=0.01, decay=0.01),
    jopt.AdamW(0.01),
    jopt.Adamax(0.01),
    # bf16 rounds the default beta_2=0.999 to 1.0, which makes Keras's Nadam NaN too.
    jopt.Nadam(0.01, beta_2=0.99),
    jopt.Lion(0.01),
    jopt.Adagrad(0.01),
    jopt.Adadelta(1.0),
    jopt.Ftrl(0.01, l1_regularization_strength=0.01),
    jopt.Lamb(0.01),
    jopt.Adam(0.01, weight_decay=0.1, clipnorm=1.0, use_ema=True, gradient_accumulation_steps=2),
    jopt.Adafactor(0.01),
    jopt.Muon(0.01),
    # As in Keras, bf16 rounds the default beta_2=0.999 to 1.0 and gives 0/0.
    jopt.ScheduleFreeAdamW(0.01, beta_2=0.99),
    # The catalogue beyond Keras (tests/test_optimizers_catalogue.py has their references).
    jopt.RAdam(0.01, nesterov=True),
    jopt.AdaBelief(0.01),
    jopt.Yogi(0.01),
    jopt.LARS(1.0, nesterov=True, coupled_weight_decay=0.01),
    jopt.Adan(0.01),
    jopt.ADOPT(0.01),
    jopt.AdEMAMix(0.01),
    jopt.Prodigy(),
    jopt.Rprop(0.01),
    jopt.SignSGD(0.01, momentum=0.9),
]
IDS = [repr(o) + ("-legacy" if type(o).__module__ == "jopt.legacy" else "") for o in OPTIMIZERS]


class Block(NamedTuple):
    kernel: jax.Array
    scale: Any


def nested_params() -> dict[str, Any]:
    return {
        "enc": [Block(jnp.ones((2, 3)), jnp.float32(2.0)), Block(jnp.ones((3,)), None)],
        "dec": (jnp.arange(4.0).reshape(2, 2, 1), {"bias": jnp.zeros(1)}),
        "bf16": jnp.ones(5, jnp.bfloat16),
    }


def grads_like(params: Any, seed: int) -> Any:
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    return treedef.unflatten(
        [
            jax.random.normal(k, jnp.shape(x), jnp.result_type(x))
            for k, x in zip(keys, leaves, strict=True)
        ]
    )


def run(opt: jopt.Optimizer, params: Any, steps: int, jit: bool) -> tuple[Any, Any]:
    update = jax.jit(opt.update) if jit else opt.update
    state = opt.init(params)
    for t in range(steps):
        updates, state = update(grads_like(params, t), state, params)
        params = jopt.apply_updates(params, updates)
    return params, state


@pytest.mark.parametrize("opt", OPTIMIZERS, ids=IDS)
def test_eager_equals_jit_and_structure_and_dtypes_are_kept(opt: jopt.Optimizer) -> None:
    params = nested_params()
    eager_params, eager_state = run(opt, params, 4, jit=False)
    jit_params, jit_state = run(opt, params, 4, jit=True)
    chex.assert_trees_all_close(eager_params, jit_params, rtol=1e-6, atol=1e-7)
    chex.assert_trees_all_close(eager_state, jit_state, rtol=1e-6, atol=1e-7)
    chex.assert_trees_all_equal_structs(params, eager_params)
    chex.assert_trees_all_equal_dtypes(params, eager_params)
    chex.assert_tree_all_finite(eager_params)
    for slot in eager_state.slots.values():
        chex.assert_trees_all_equal_dtypes(params, slot)
    assert eager_state.step.dtype == jnp.int32 and int(eager_state.step) == 4


@pytest.mark.parametrize("opt", OPTIMIZERS, ids=IDS)
def test_nested_tree_gives_the_numbers_of_its_flat_leaves(opt: jopt.Optimizer) -> None:
    """Each leaf is updated independently of the container it sits in."""
    params = nested_params()
    nested, _ = run(opt, params, 3, jit=True)
    leaves, treedef = jax.tree.flatten(params)

    state = opt.init(leaves)
    flat = leaves
    for t in range(3):
        grads = jax.tree.leaves(grads_like(params, t))
        flat, state = opt.apply_gradients(grads, state, flat)
    # Two different compiled programs: a reduction (Adafactor's RMS) may round by an ulp,
    # so near-zero values get the same 1e-7 absolute slack as eager-vs-jit above.
    chex.assert_trees_all_close(nested, treedef.unflatten(flat), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("opt", OPTIMIZERS, ids=IDS)
def test_optimizers_are_frozen_hashable_static_jit_arguments(opt: jopt.Optimizer) -> None:
    twin = type(opt)(**dict(opt._config))
    assert twin == opt and hash(twin) == hash(opt)
    with pytest.raises(AttributeError, match="frozen"):
        opt.learning_rate = 1.0  # type: ignore[misc]
    params = {"w": jnp.ones(3)}
    chex.assert_trees_all_close(
        jax.jit(type(opt).update, static_argnums=0)(opt, params, opt.init(params), params)[0],
        opt.update(params, opt.init(params), params)[0],
        rtol=1e-6,
    )


@pytest.mark.parametrize("opt", OPTIMIZERS, ids=IDS)
def test_init_jits_and_evaluates_abstractly(opt: jopt.Optimizer) -> None:
    params = nested_params()
    chex.assert_trees_all_equal(jax.jit(opt.init)(params), opt.init(params))
    abstract = jax.eval_shape(opt.init, params)
    chex.assert_trees_all_equal_shapes_and_dtypes(abstract, opt.init(params))


def test_lr_reports_the_rate_at_a_step_or_of_the_next_update() -> None:
    assert jopt.Adam(lr=0.001).lr() == pytest.approx(0.001)
    assert jopt.Adam(lr=0.001).learning_rate == 0.001
    schedule = jopt.schedules.ExponentialDecay(0.1, decay_steps=4, decay_rate=0.5)
    oracle = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=4, decay_rate=0.5)
    opt = jopt.SGD(schedule, momentum=0.9)
    assert opt.learning_rate is schedule
    steps = np.arange(12)
    expected = np.array([float(oracle(int(t))) for t in steps])
    np.testing.assert_allclose(opt.lr(steps), expected, rtol=1e-7)
    np.testing.assert_allclose(jax.jit(opt.lr)(jnp.int32(7)), expected[7], rtol=1e-7)
    np.testing.assert_allclose(jax.vmap(opt.lr)(jnp.asarray(steps)), expected, rtol=1e-7)

    params = {"w": jnp.ones(2)}
    state = opt.init(params)
    for _ in range(5):
        params, state = opt.apply_gradients({"w": jnp.ones(2)}, state, params)
    np.testing.assert_allclose(opt.lr(state), expected[5], rtol=1e-7)


def test_legacy_decay_composes_with_the_rate_as_in_tf_keras_2() -> None:
    opt = jopt.SGD(lr=0.5, decay=0.1)
    steps = np.arange(6)
    np.testing.assert_allclose(opt.lr(steps), 0.5 / (1 + 0.1 * steps), rtol=1e-6)
    np.testing.assert_allclose(jopt.SGD(lr=0.5, decay=None).lr(steps), np.full(6, 0.5))


def test_legacy_spelling_on_the_keras_3_classes() -> None:
    assert jopt.SGD(lr=0.3) == jopt.SGD(learning_rate=0.3)
    assert jopt.SGD(lr=0.01, momentum=None, decay=None, nesterov=False) == jopt.SGD()
    assert jopt.RMSprop(lr=0.001, rho=0.9, epsilon=None, decay=0.0) == jopt.RMSprop()
    assert (
        jopt.Adam(lr=0.001, beta_1=0.9, beta_2=0.999, epsilon=None, decay=0.0, amsgrad=False)
        == jopt.Adam()
    )
    with pytest.raises(TypeError, match="not both"):
        jopt.Adam(learning_rate=0.1, lr=0.1)
    with pytest.raises(TypeError, match="not both"):
        jopt.SGD(0.01, lr=0.1)  # even when the positional value equals the default


@pytest.mark.parametrize(
    ("make", "keras_make"),
    [
        (
            lambda: jopt.SGD(0.05, momentum=0.9, nesterov=True),
            lambda: keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
        ),
        (
            lambda: jopt.RMSprop(0.01, rho=0.8, momentum=0.2, epsilon=1e-4, centered=True),
            lambda: keras.optimizers.RMSprop(
                0.01, rho=0.8, momentum=0.2, epsilon=1e-4, centered=True
            ),
        ),
        (
            lambda: jopt.Adam(jopt.schedules.ExponentialDecay(0.1, 5, 0.5), amsgrad=True),
            lambda: keras.optimizers.Adam(
                keras.optimizers.schedules.ExponentialDecay(0.1, 5, 0.5), amsgrad=True
            ),
        ),
    ],
)
def test_config_matches_keras_and_round_trips(make: Any, keras_make: Any) -> None:
    assert_config_matches_keras(make, keras_make)
    assert (
        type(make()).from_config(keras_make().get_config() | {"name": make().name}).lr()
        == make().lr()
    )


def test_default_names_are_keras_auto_names() -> None:
    assert [o.name for o in (jopt.SGD(), jopt.RMSprop(), jopt.Adam())] == [
        "sgd",
        "rm_sprop",
        "adam",
    ]
    assert [o.name for o in (jopt.legacy.SGD(), jopt.legacy.RMSprop(), jopt.legacy.Adam())] == [
        "SGD",
        "RMSprop",
        "Adam",
    ]


def test_repr_shows_the_class_and_its_non_default_arguments() -> None:
    assert repr(jopt.Adam()) == "Adam()"
    assert repr(jopt.SGD(0.1, momentum=0.9)) == "SGD(learning_rate=0.1, momentum=0.9)"
    assert repr(jopt.RMSprop(lr=0.01, decay=1e-4)) == "RMSprop(learning_rate=0.01, decay=0.0001)"


@pytest.mark.parametrize(
    ("make", "error", "pattern"),
    [
        (
            lambda: jopt.SGD(learning_rate=-1.0),
            ValueError,
            r"learning_rate must be in \[0, inf\), got -1",
        ),
        (lambda: jopt.SGD(learning_rate="fast"), TypeError, "learning_rate must be a real number"),
        (lambda: jopt.SGD(learning_rate=float("nan")), ValueError, "learning_rate must be finite"),
        (lambda: jopt.SGD(momentum=1.5), ValueError, r"momentum must be in \[0, 1\], got 1.5"),
        (lambda: jopt.SGD(momentum=-0.1), ValueError, r"momentum must be in \[0, 1\]"),
        (lambda: jopt.SGD(nesterov="yes"), TypeError, "nesterov must be True or False"),
        (lambda: jopt.SGD(decay=-0.1), ValueError, r"decay must be in \[0, inf\)"),
        (lambda: jopt.RMSprop(rho=1.0), ValueError, r"rho must be in \[0, 1\), got 1"),
        (lambda: jopt.RMSprop(epsilon=-1e-7), ValueError, r"epsilon must be in \[0, inf\)"),
        (lambda: jopt.RMSprop(momentum=2), ValueError, r"momentum must be in \[0, 1\]"),
        (lambda: jopt.Adam(beta_1=1.0), ValueError, r"beta_1 must be in \[0, 1\)"),
        (lambda: jopt.Adam(beta_2=-0.5), ValueError, r"beta_2 must be in \[0, 1\)"),
        (lambda: jopt.Adam(amsgrad=1), TypeError, "amsgrad must be True or False"),
        (lambda: jopt.Adam(decay=float("inf")), ValueError, "decay must be finite"),
        (lambda: jopt.Adam(learnin_rate=0.1), TypeError, "learnin_rate"),
        (lambda: jopt.legacy.Adam(clip_norm=1.0), TypeError, "clip_norm"),
        (
            lambda: jopt.SGD(clipnorm=1.0, clipvalue=1.0),
            ValueError,
            "at most one of clipnorm, clipvalue, global_clipnorm",
        ),
        (lambda: jopt.SGD(clipnorm=0.0), ValueError, r"clipnorm must be in \(0, inf\)"),
        (lambda: jopt.Adam(weight_decay=-1), ValueError, r"weight_decay must be in \[0, inf\)"),
        (lambda: jopt.Adam(ema_momentum=1.5), ValueError, r"ema_momentum must be in \[0, 1\]"),
        (
            lambda: jopt.Adam(gradient_accumulation_steps=1),
            ValueError,
            "gradient_accumulation_steps must be None or an integer >= 2",
        ),
        (
            lambda: jopt.Adam(exclude_from_weight_decay="bias"),
            TypeError,
            "exclude_from_weight_decay",
        ),
    ],
)
def test_bad_arguments_raise_naming_the_argument(make: Any, error: type, pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        make()


def test_bad_params_grads_and_state_raise_clear_errors() -> None:
    opt = jopt.Adam()
    params = {"enc": {"kernel": jnp.ones((2, 2)), "bias": jnp.ones(2)}}
    state = opt.init(params)
    with pytest.raises(ValueError, match=r"grads\['enc'\]\['bias'\] is missing \(params has it\)"):
        opt.update({"enc": {"kernel": jnp.ones((2, 2))}}, state)
    with pytest.raises(ValueError, match=r"grads\['dec'\] is not in params"):
        opt.update({"enc": params["enc"], "dec": jnp.ones(1)}, state)
    with pytest.raises(ValueError, match=r"grads\['enc'\]\['kernel'\] has shape \(4,\)"):
        opt.update({"enc": {"kernel": jnp.ones(4), "bias": jnp.ones(2)}}, state)
    with pytest.raises(TypeError, match=r"params\['step'\] has dtype int32"):
        opt.init({"w": jnp.ones(2), "step": jnp.int32(0)})
    with pytest.raises(TypeError, match="expects the OptimizerState"):
        opt.update(params, ())
    with pytest.raises(ValueError, match="differently configured optimizer"):
        jopt.Adam(amsgrad=True).update(params, state)
