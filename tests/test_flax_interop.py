"""A jopt optimizer as flax's ``tx``: linen's TrainState and nnx's Optimizer.

Each trains the same small MLP from the same weights on the same data, and must give
jopt's own functional loop's numbers (``update`` + ``apply_updates``, what both flax
classes call). Independent oracles check that loop itself: Keras 3's optimizers (Adam,
RMSprop) and optax's SGD with (Nesterov) momentum, run in lockstep on the same model.
"""

from __future__ import annotations

import functools
import itertools
from typing import Any

import chex
import jax
import jax.numpy as jnp
import keras
import numpy as np
import optax
import pytest
from flax import linen as nn
from flax import nnx
from flax.training import train_state

import jopt

STEPS = 15
SIZES = (6, 16, 3)


def _data() -> tuple[jax.Array, jax.Array]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, SIZES[0])).astype(np.float32)
    y = np.tanh(x @ rng.standard_normal((SIZES[0], SIZES[-1]))).astype(np.float32)
    return jnp.asarray(x), jnp.asarray(y)


def _init_params() -> dict[str, dict[str, jax.Array]]:
    rng = np.random.default_rng(1)
    return {
        f"l{i}": {
            "kernel": jnp.asarray(rng.standard_normal((a, b)).astype(np.float32) / np.sqrt(a)),
            "bias": jnp.asarray(0.1 * rng.standard_normal(b).astype(np.float32)),
        }
        for i, (a, b) in enumerate(itertools.pairwise(SIZES))
    }


def mlp(params: Any, x: jax.Array) -> jax.Array:
    """What linen's Dense and nnx's Linear compute: x @ kernel + bias, tanh between."""
    h = jnp.tanh(x @ params["l0"]["kernel"] + params["l0"]["bias"])
    return h @ params["l1"]["kernel"] + params["l1"]["bias"]


def loss_fn(params: Any, x: jax.Array, y: jax.Array) -> jax.Array:
    return jnp.mean((mlp(params, x) - y) ** 2)


class LinenMLP(nn.Module):
    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h = jnp.tanh(nn.Dense(SIZES[1], name="l0")(x))
        return nn.Dense(SIZES[2], name="l1")(h)


class NnxMLP(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        self.l0 = nnx.Linear(SIZES[0], SIZES[1], rngs=rngs)
        self.l1 = nnx.Linear(SIZES[1], SIZES[2], rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.l1(jnp.tanh(self.l0(x)))


OPTIMIZERS = {
    "adam": lambda: jopt.Adam(jopt.schedules.ExponentialDecay(0.05, 5, 0.5), amsgrad=True),
    "sgd_nesterov": lambda: jopt.SGD(0.1, momentum=0.9, nesterov=True),
    "rmsprop_weight_decay": lambda: jopt.RMSprop(0.01, momentum=0.5, weight_decay=0.1),
    "adamw_ema": lambda: jopt.AdamW(0.01, use_ema=True, ema_overwrite_frequency=4),
}


@functools.cache
def functional_loop(name: str) -> tuple[Any, ...]:
    """jopt's own loop, the numbers both flax classes must give: params after each step."""
    opt = OPTIMIZERS[name]()
    x, y = _data()

    @jax.jit
    def step(params: Any, state: Any) -> tuple[Any, Any]:
        grads = jax.grad(loss_fn)(params, x, y)
        updates, state = opt.update(grads, state, params)
        return jopt.apply_updates(params, updates), state

    params = _init_params()
    state = opt.init(params)
    out = []
    for _ in range(STEPS):
        params, state = step(params, state)
        out.append(params)
    return tuple(out)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_linen_train_state_with_a_jopt_tx_gives_the_functional_loops_numbers(name: str) -> None:
    x, y = _data()
    model = LinenMLP()
    variables = model.init(jax.random.key(0), x)
    chex.assert_trees_all_equal_shapes(variables["params"], _init_params())
    opt = OPTIMIZERS[name]()
    state = train_state.TrainState.create(apply_fn=model.apply, params=_init_params(), tx=opt)

    @jax.jit
    def step(state: train_state.TrainState) -> train_state.TrainState:
        def loss(p: Any) -> jax.Array:
            return jnp.mean((state.apply_fn({"params": p}, x) - y) ** 2)

        return state.apply_gradients(grads=jax.grad(loss)(state.params))

    expected = functional_loop(name)
    for t in range(STEPS):
        state = step(state)
        chex.assert_trees_all_close(state.params, expected[t], rtol=1e-6, atol=1e-7)
    assert int(state.step) == STEPS == int(state.opt_state.step)
    np.testing.assert_allclose(float(opt.lr(state.opt_state)), float(opt.lr(STEPS)))


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_nnx_optimizer_with_a_jopt_tx_gives_the_functional_loops_numbers(name: str) -> None:
    x, y = _data()
    model = NnxMLP(nnx.Rngs(0))
    params = nnx.state(model, nnx.Param)
    nnx.replace_by_pure_dict(params, _init_params())
    nnx.update(model, params)
    opt = OPTIMIZERS[name]()
    optimizer = nnx.Optimizer(model, opt, wrt=nnx.Param)

    @nnx.jit
    def step(model: NnxMLP, optimizer: nnx.Optimizer) -> None:
        grads = nnx.grad(lambda m: jnp.mean((m(x) - y) ** 2))(model)
        optimizer.update(model, grads)

    expected = functional_loop(name)
    for t in range(STEPS):
        step(model, optimizer)
        got = nnx.to_pure_dict(nnx.state(model, nnx.Param))
        chex.assert_trees_all_close(got, expected[t], rtol=1e-6, atol=1e-7)
    # jopt's readers work on the state nnx holds (its leaves are nnx variables).
    assert int(optimizer.opt_state.step[...]) == STEPS
    np.testing.assert_allclose(float(opt.lr(optimizer.opt_state)), float(opt.lr(STEPS)))
    assert "lr (next update)" in str(jopt.summary(optimizer.opt_state, opt))


# ---- the functional loop against independent implementations --------------------------


def _keras_loop(make_keras: Any) -> list[np.ndarray]:
    """Keras's optimizer on keras.Variables, gradients of the same loss by jax.grad."""
    x, y = _data()
    init = _init_params()
    names = [(layer, kind) for layer in sorted(init) for kind in ("bias", "kernel")]
    variables = [keras.Variable(init[layer][kind]) for layer, kind in names]
    opt = make_keras()
    grad = jax.jit(jax.grad(loss_fn))
    for _ in range(STEPS):
        params: dict[str, dict[str, Any]] = {layer: {} for layer in init}
        for (layer, kind), v in zip(names, variables, strict=True):
            params[layer][kind] = v.value
        g = grad(params, x, y)
        opt.apply_gradients(
            [(g[layer][kind], v) for (layer, kind), v in zip(names, variables, strict=True)]
        )
    return [np.asarray(v.value) for v in variables]


def _leaves(params: Any) -> list[np.ndarray]:
    return [
        np.asarray(params[layer][kind]) for layer in sorted(params) for kind in ("bias", "kernel")
    ]


@pytest.mark.parametrize(
    ("name", "make_keras"),
    [
        (
            "adam",
            lambda: keras.optimizers.Adam(
                keras.optimizers.schedules.ExponentialDecay(0.05, 5, 0.5), amsgrad=True
            ),
        ),
        (
            "rmsprop_weight_decay",
            lambda: keras.optimizers.RMSprop(0.01, momentum=0.5, weight_decay=0.1),
        ),
    ],
)
def test_the_functional_loop_trains_as_keras_does(name: str, make_keras: Any) -> None:
    expected = _keras_loop(make_keras)
    got = _leaves(functional_loop(name)[-1])
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, rtol=2e-5, atol=1e-6)


def test_the_functional_loop_trains_as_optax_sgd_with_nesterov_momentum_does() -> None:
    x, y = _data()
    tx = optax.sgd(0.1, momentum=0.9, nesterov=True)
    params = _init_params()
    state = tx.init(params)
    grad = jax.jit(jax.grad(loss_fn))
    for _ in range(STEPS):
        updates, state = tx.update(grad(params, x, y), state)
        params = optax.apply_updates(params, updates)
    chex.assert_trees_all_close(functional_loop("sgd_nesterov")[-1], params, rtol=2e-5, atol=1e-6)


def test_nnx_changes_a_live_hyperparameter_in_place_without_recompiling() -> None:
    """nnx's idiom (assign the state's variable) sets jopt's live rate: SGD's step is -lr * g."""
    x, y = _data()
    model = NnxMLP(nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, jopt.SGD(0.1), wrt=nnx.Param)
    traces = []

    @nnx.jit
    def step(model: NnxMLP, optimizer: nnx.Optimizer) -> None:
        traces.append(1)
        grads = nnx.grad(lambda m: jnp.mean((m(x) - y) ** 2))(model)
        optimizer.update(model, grads)

    for lr in (0.1, 0.5):
        optimizer.opt_state.hyperparams["learning_rate"][...] = lr
        before = nnx.to_pure_dict(nnx.state(model, nnx.Param))
        grads = jax.grad(loss_fn)(before, x, y)
        step(model, optimizer)
        expected = jax.tree.map(lambda p, g, lr=lr: p - np.float32(lr) * g, before, grads)
        got = nnx.to_pure_dict(nnx.state(model, nnx.Param))
        chex.assert_trees_all_close(got, expected, rtol=1e-6, atol=1e-7)
    assert len(traces) == 1
