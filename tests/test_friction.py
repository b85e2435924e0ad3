"""Friction a new user hit in the first hour (issue 14): each fixed behaviour, tested.

TrainState speaks flax's keywords (``create(params=, tx=)``) and Keras's call form
(``state.lr()`` besides ``float(state.lr)``), and ``flax.serialization.to_bytes`` saves
it; a checkpoint restored without a target (a dict) is refused with a pointer to
``jopt.restore_state``.
"""

from __future__ import annotations

from typing import Any

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jopt


def trained(steps: int = 3) -> jopt.TrainState:
    state = jopt.TrainState.create(params={"w": jnp.ones(3)}, tx=jopt.Adam(0.1))
    for _ in range(steps):
        state = state.apply_gradients({"w": jnp.array([0.5, -1.0, 2.0])})
    return state


def test_create_takes_flax_keywords() -> None:
    state = jopt.TrainState.create(params={"w": jnp.ones(3)}, tx=jopt.Adam(0.1))
    same = jopt.TrainState.create({"w": jnp.ones(3)}, jopt.Adam(0.1))
    assert state.opt == same.opt and int(state.step) == 0
    with pytest.raises(TypeError, match="opt or flax's tx"):
        jopt.TrainState.create({"w": jnp.ones(3)}, jopt.Adam(), tx=jopt.Adam())
    with pytest.raises(TypeError, match="needs an optimizer"):
        jopt.TrainState.create({"w": jnp.ones(3)})


def test_lr_is_a_value_and_a_call_eager_and_under_jit() -> None:
    state = trained()
    expected = float(jopt.Adam(0.1).lr(3))
    assert float(state.lr) == float(state.lr()) == expected
    np.testing.assert_array_equal(np.asarray(state.lr), np.float32(expected))
    assert float(jax.jit(lambda s: s.lr())(state)) == expected
    assert float(jax.jit(lambda s: s.lr * 2)(state)) == 2 * np.float32(expected)


def test_flax_serialization_round_trip() -> None:
    state = trained()
    target = jopt.TrainState.create({"w": jnp.zeros(3)}, jopt.Adam(0.1))
    restored = flax.serialization.from_bytes(target, flax.serialization.to_bytes(state))
    for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(state), strict=True):
        np.testing.assert_array_equal(a, b)
    # Resuming from the restored state gives the uninterrupted run's numbers.
    grads = {"w": jnp.array([0.5, -1.0, 2.0])}
    np.testing.assert_array_equal(
        restored.apply_gradients(grads).params["w"], state.apply_gradients(grads).params["w"]
    )


def test_a_restored_dict_points_to_restore_state() -> None:
    opt = jopt.Adam(0.1)
    params = {"w": jnp.ones(3)}
    state = opt.init(params)
    restored = flax.serialization.msgpack_restore(flax.serialization.to_bytes(state))
    assert isinstance(restored, dict)  # what a restore without a target gives
    for call in (
        lambda: opt.lr(restored),
        lambda: opt.update(params, restored, params),
        lambda: opt.apply_gradients(params, restored, params),
    ):
        with pytest.raises(TypeError, match=r"jopt\.restore_state\(opt, restored, params\)"):
            call()
    rebuilt, _ = jopt.restore_state(opt, restored, params)
    assert float(opt.lr(rebuilt)) == pytest.approx(0.1)


PARAMS = {"w": jnp.ones(2)}


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda o, s: o.apply_gradients(PARAMS, PARAMS, s),
            TypeError,
            r"the order is opt\.apply_gradients\(grads, state, params\)",
        ),
        (
            lambda o, s: o.apply_gradients(PARAMS, o.init({"params": PARAMS}), PARAMS),
            ValueError,
            r"wrapped in \{'params': \.\.\.\}.*pass the same tree to init",
        ),
        (
            lambda o, s: o.apply_gradients(zip(PARAMS, PARAMS, strict=False), s),
            TypeError,
            "zip over dicts",
        ),
        (
            lambda o, s: jopt.set_hyperparams(o, learning_rate=1e-4),
            TypeError,
            r"takes the optimizer's state, got the optimizer",
        ),
        (lambda o, s: jopt.set_hyperparams(s, lr=1e-4), ValueError, "did you mean learning_rate"),
        (
            lambda o, s: jopt.set_hyperparams(s, beta_1=2.0),
            ValueError,
            r"beta_1 must be in \[0, 1\]",
        ),
        (lambda o, s: jopt.Adam(betas=(0.9, 0.99)), TypeError, "did you mean beta_1, beta_2"),
        (lambda o, s: jopt.Adam(b1=0.9), TypeError, "did you mean beta_1"),
        (lambda o, s: jopt.Adam(eps=1e-8), TypeError, "did you mean epsilon"),
        (lambda o, s: jopt.Adam(clip_norm=1.0), TypeError, "did you mean clipnorm"),
    ],
    ids=[
        "params-state-swapped",
        "init-of-wrapped-tree",
        "zip-of-dicts",
        "set-hyperparams-on-optimizer",
        "lr-alias",
        "beta-out-of-range",
        "betas",
        "b1",
        "eps",
        "clip_norm",
    ],
)
def test_first_hour_mistakes_get_a_message_that_names_the_fix(
    call: Any, error: type[Exception], match: str
) -> None:
    opt = jopt.Adam(1e-3)
    with pytest.raises(error, match=match):
        call(opt, opt.init(PARAMS))


def test_set_hyperparams_is_safe_for_nnx_optimizer_state() -> None:
    """The documented form on nnx keeps OptArray wrappers: no retrace, and the rate stays
    in ``nnx.state(optimizer, nnx.OptState)``, so a checkpoint filtered that way keeps it."""
    from flax import nnx

    x, y = jnp.ones((4, 3)), jnp.zeros((4, 2))
    model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, jopt.SGD(0.1), wrt=nnx.Param)
    traces = []

    @nnx.jit
    def step(model: nnx.Linear, optimizer: nnx.Optimizer) -> None:
        traces.append(1)
        grads = nnx.grad(lambda m: jnp.mean((m(x) - y) ** 2))(model)
        optimizer.update(model, grads)

    step(model, optimizer)
    optimizer.opt_state = jopt.set_hyperparams(optimizer.opt_state, learning_rate=0.5)
    before = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    grads = nnx.to_pure_dict(nnx.grad(lambda m: jnp.mean((m(x) - y) ** 2))(model))
    step(model, optimizer)
    expected = jax.tree.map(lambda p, g: p - np.float32(0.5) * g, before, grads)
    got = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), got, expected)
    assert len(traces) == 1  # the new rate did not recompile the step

    # An nnx checkpoint of the OptState filter carries the new rate.
    saved = nnx.to_pure_dict(nnx.state(optimizer, nnx.OptState))
    assert float(saved["opt_state"]["hyperparams"]["learning_rate"]) == 0.5
    fresh = nnx.Optimizer(nnx.Linear(3, 2, rngs=nnx.Rngs(1)), jopt.SGD(0.1), wrt=nnx.Param)
    restored = nnx.state(fresh, nnx.OptState)
    nnx.replace_by_pure_dict(restored, saved)
    nnx.update(fresh, restored)
    assert float(jopt.SGD(0.1).lr(fresh.opt_state)) == 0.5
    assert int(fresh.opt_state.step) == 2


@pytest.mark.parametrize(
    "opt",
    [
        jopt.SkipNonFinite(jopt.Adam()),
        jopt.LossScaleOptimizer(jopt.Adam()),
        jopt.partition({"a": jopt.Adam(), "b": jopt.SGD()}, {"w": "a"}),
    ],
    ids=["SkipNonFinite", "LossScaleOptimizer", "partition"],
)
def test_wrapper_and_group_states_display_as_their_summary(opt: Any) -> None:
    pretty = pytest.importorskip("IPython.lib.pretty")
    state = opt.init(PARAMS)
    shown = pretty.pretty(state)
    assert shown == str(jopt.summary(state)) and "Array(" not in shown
    assert "<table" in state._repr_html_()


def test_summary_of_an_optax_chain_state_shows_each_member_and_its_fields() -> None:
    import optax

    tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3))
    text = str(jopt.summary(tx.init({"w": jnp.ones(3)}), tx))
    assert "mu     1 array of 3 float32 (12 B)" in text and "count  0" in text
    assert "[1][0]" in text  # the adam member's ScaleByAdamState, by position


def test_summary_title_says_the_live_values_differ_from_the_constructors() -> None:
    opt = jopt.Adam(1e-3)
    state = jopt.set_hyperparams(opt.init({"w": jnp.ones(3)}), learning_rate=1e-4)
    text = str(jopt.summary(state, opt))
    assert "(constructor's values; live values below)" in text.splitlines()[0]
    assert "lr (next update)  0.0001" in text
    assert "live values" not in str(jopt.summary(opt.init({"w": jnp.ones(3)}), opt))
