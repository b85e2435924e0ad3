"""Keras behaviours jopt follows (issue 14), each against Keras 3 run live.

``get(None)``, Keras's lowercase ``class_name``, a zero-argument callable learning rate,
``None`` gradients skipped with a warning (Keras's ``zip`` form and jopt's pytree form,
eager and under ``jit``), ``scale_loss`` on every optimizer, and ``LossScaleOptimizer``'s
``name``/``dynamic``/config round trip and its ``ValueError`` for misplaced arguments.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import chex
import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

import jopt

CLASSES = [
    "SGD",
    "RMSprop",
    "Adam",
    "AdamW",
    "Adadelta",
    "Adagrad",
    "Adamax",
    "Adafactor",
    "Nadam",
    "Ftrl",
    "Lion",
    "Lamb",
    "Muon",
    "ScheduleFreeAdamW",
]


def test_get_none_is_none_as_in_keras() -> None:
    assert keras.optimizers.get(None) is None
    assert jopt.optimizers.get(None) is None


@pytest.mark.parametrize("form", ["get", "deserialize"])
def test_lowercase_class_name_is_accepted_as_in_keras(form: str) -> None:
    config = {"class_name": "adam", "config": {"learning_rate": 0.01, "amsgrad": True}}
    ours = getattr(jopt.optimizers, form)(config)
    theirs = getattr(keras.optimizers, form)(config)
    assert type(ours).__name__ == type(theirs).__name__ == "Adam"
    assert ours == jopt.Adam(learning_rate=0.01, amsgrad=True)
    assert float(theirs.learning_rate) == pytest.approx(0.01)


def keras_steps(opt: Any, values: list[np.ndarray], grads: list[list[Any]]) -> list[np.ndarray]:
    variables = [keras.Variable(v) for v in values]
    for step in grads:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            opt.apply_gradients(
                [
                    (None if g is None else jnp.asarray(g), v)
                    for g, v in zip(step, variables, strict=True)
                ]
            )
    return [np.asarray(v.value) for v in variables]


def test_zero_argument_callable_learning_rate_is_keras_callable_form() -> None:
    values = [np.array([1.0, 2.0], np.float32)]
    grads = [[np.array([0.5, -1.0], np.float32)]] * 3
    expected = keras_steps(keras.optimizers.Adam(learning_rate=lambda: 0.05), values, grads)
    opt = jopt.Adam(learning_rate=lambda: 0.05)
    params, state = values, opt.init(values)
    for g in grads:
        params, state = opt.apply_gradients(g, state, params)
    np.testing.assert_allclose(params[0], expected[0], rtol=1e-6)
    assert float(opt.lr(state)) == pytest.approx(0.05)
    assert hash(opt) == hash(jopt.Adam(learning_rate=opt.learning_rate))  # still a static arg


# Two steps: both params get gradients, then the second gets None (Keras skips it).
VALUES = [np.array([1.0, 2.0], np.float32), np.array([[3.0], [-4.0]], np.float32)]
GRADS = [
    [np.array([0.1, -0.2], np.float32), np.array([[0.3], [0.4]], np.float32)],
    [np.array([0.5, 0.6], np.float32), None],
    [np.array([0.5, 0.6], np.float32), None],
]


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop"])
@pytest.mark.parametrize("form", ["zip", "pytree", "pytree-jit"])
def test_none_gradients_are_skipped_with_a_warning_as_in_keras(name: str, form: str) -> None:
    kwargs = {"momentum": 0.9} if name == "SGD" else {}
    with pytest.warns(UserWarning, match="Gradients do not exist"):
        keras_opt = getattr(keras.optimizers, name)(learning_rate=0.1, **kwargs)
        variables = [keras.Variable(v) for v in VALUES]
        for step in GRADS:
            keras_opt.apply_gradients(
                [
                    (None if g is None else jnp.asarray(g), v)
                    for g, v in zip(step, variables, strict=True)
                ]
            )
    expected = [np.asarray(v.value) for v in variables]

    opt = getattr(jopt, name)(learning_rate=0.1, **kwargs)
    params: Any = {"a": jnp.asarray(VALUES[0]), "b": jnp.asarray(VALUES[1])}
    if form == "zip":
        params = list(params.values())
    state = opt.init(params)
    step_fn = jax.jit(opt.apply_gradients) if form == "pytree-jit" else opt.apply_gradients
    slots_before_skip = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i, step in enumerate(GRADS):
            if i == 1:
                slots_before_skip = state.slots
            if form == "zip":
                params, state = opt.apply_gradients(zip(step, params, strict=True), state)
            else:
                params, state = step_fn(dict(zip(("a", "b"), step, strict=True)), state, params)
    # Under jit the warning comes when the step is traced (once), as with any Python warning.
    messages = [str(w.message) for w in caught if "Gradients do not exist" in str(w.message)]
    assert len(messages) == (1 if form == "pytree-jit" else 2)
    assert "['b']" in messages[0] or "[1]" in messages[0]
    got = list(params.values()) if isinstance(params, dict) else params
    for ours, theirs in zip(got, expected, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)
    assert int(state.step) == len(GRADS) == int(keras_opt.iterations.value)
    # The skipped param's slots are untouched, bit for bit.
    key = 1 if form == "zip" else "b"
    for slot, tree in state.slots.items():
        chex.assert_trees_all_equal(tree[key], slots_before_skip[slot][key])


@pytest.mark.parametrize("name", CLASSES)
def test_scale_loss_is_on_every_optimizer(name: str) -> None:
    for factor in (None, 4.0):
        theirs = getattr(keras.optimizers, name)(loss_scale_factor=factor)
        ours = getattr(jopt, name)(loss_scale_factor=factor)
        expected = float(theirs.scale_loss(jnp.float32(2.5)))
        assert float(ours.scale_loss(jnp.float32(2.5))) == expected
        state = ours.init({"w": jnp.ones((2, 2))})
        assert float(ours.scale_loss(jnp.float32(2.5), state)) == expected
    live = jopt.set_hyperparams(state, loss_scale_factor=8.0)
    assert float(ours.scale_loss(jnp.float32(2.5), live)) == 20.0


def test_loss_scale_optimizer_config_round_trip_name_and_dynamic_as_keras() -> None:
    theirs = keras.optimizers.LossScaleOptimizer(
        keras.optimizers.SGD(0.5), initial_scale=3.0, dynamic_growth_steps=2, name="test_opt"
    )
    ours = jopt.LossScaleOptimizer(
        jopt.SGD(0.5), initial_scale=3.0, dynamic_growth_steps=2, name="test_opt", dynamic=True
    )
    config = ours.get_config()
    assert set(config) == set(theirs.get_config())
    assert config["name"] == "test_opt"
    assert jopt.LossScaleOptimizer.from_config(config) == ours
    # A config Keras wrote rebuilds the same optimizer.
    written = keras.optimizers.serialize(theirs)
    # Keras numbers repeated names per process ("sgd_5"); the config keeps its name.
    named = jopt.LossScaleOptimizer(
        jopt.SGD(0.5, name=theirs.inner_optimizer.name), 3.0, 2, name="test_opt"
    )
    assert jopt.optimizers.deserialize(written) == named
    assert jopt.LossScaleOptimizer.from_config(written["config"]) == named


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dynamic": False}, "set `loss_scale_factor`"),
        ({"foo": True, "bar": 3}, "arguments: `foo`, `bar`"),
        ({"clipnorm": 0.5}, "clipnorm=0.5.*on the `inner_optimizer`"),
        ({"gradient_accumulation_steps": 2}, "on the `inner_optimizer`"),
    ],
)
def test_loss_scale_optimizer_misplaced_arguments_are_value_errors_as_in_keras(
    kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError):
        keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(), **kwargs)
    with pytest.raises(ValueError, match=match):
        jopt.LossScaleOptimizer(jopt.SGD(), **kwargs)


@pytest.mark.parametrize(
    "tx",
    [
        jopt.partition(
            {"a": jopt.Adam(1e-2), "b": jopt.SGD(0.1, momentum=0.9), "f": jopt.freeze()},
            [(r"bias", "b"), (r"emb", "f")],
            default="a",
        ),
        jopt.partition(
            {"a": jopt.Adam(), "b": jopt.partition({"x": jopt.SGD(0.5)}, "x")},
            {"kernel": "a", "bias": "b", "emb": "b"},
        ),
    ],
    ids=["patterns-freeze-default", "label-tree-nested"],
)
def test_partition_serializes_like_keras_multi_optimizer_configs(tx: Any) -> None:
    written = json.loads(json.dumps(jopt.optimizers.serialize(tx)))
    rebuilt = jopt.optimizers.deserialize(written)
    assert rebuilt == tx and jopt.optimizers.get(written) == tx
    params = {"kernel": jnp.ones((2, 2)), "bias": jnp.ones(2), "emb": jnp.ones(3)}
    grads = jax.tree.map(lambda p: jnp.full_like(p, 0.5), params)
    ours = tx.apply_gradients(grads, tx.init(params), params)[0]
    again = rebuilt.apply_gradients(grads, rebuilt.init(params), params)[0]
    chex.assert_trees_all_equal(ours, again)


def test_partition_with_a_label_function_refuses_to_serialize() -> None:
    tx = jopt.partition({"a": jopt.Adam()}, lambda params: jax.tree.map(lambda _: "a", params))
    with pytest.raises(ValueError, match=r"labels given as a function .* cannot be serialized"):
        jopt.optimizers.serialize(tx)


@pytest.mark.parametrize("name", ["Adagrad", "Adafactor", "Muon", "Ftrl", "Adam"])
def test_option_slots_start_at_zero_for_rules_with_their_own_slot_init(name: str) -> None:
    """Gradient accumulation and EMA on a rule whose own slots start elsewhere (Adagrad's
    accumulator at 0.1, Adafactor's factored moments, Muon's placeholder) match Keras."""
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal((4, 3)).astype(np.float32) for _ in range(6)]
    kwargs = dict(gradient_accumulation_steps=3, use_ema=True, ema_momentum=0.5)
    theirs = getattr(keras.optimizers, name)(learning_rate=0.01, **kwargs)
    variable = keras.Variable(np.ones((4, 3), np.float32))
    ours = getattr(jopt, name)(learning_rate=0.01, **kwargs)
    params = [jnp.ones((4, 3))]
    state = ours.init(params)
    for g in grads:
        theirs.apply_gradients([(jnp.asarray(g), variable)])
        params, state = ours.apply_gradients([jnp.asarray(g)], state, params)
    np.testing.assert_allclose(params[0], np.asarray(variable.value), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        ours.averaged_params(state)[0],
        np.asarray(theirs._model_variables_moving_average[0].value),
        rtol=1e-5,
        atol=1e-6,
    )
