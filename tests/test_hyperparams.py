"""Live learning rates: read and set between steps, no recompilation, NumPy-exact numbers."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt

TRACES: list[int] = []


class CountingSGD(jopt.SGD):
    def leaf_update(self, g: Any, p: Any, slots: Any, ctx: Any) -> Any:
        TRACES.append(1)  # runs only while JAX traces
        return super().leaf_update(g, p, slots, ctx)


def test_changing_the_rate_every_step_compiles_once_and_matches_numpy() -> None:
    TRACES.clear()
    opt = CountingSGD(0.1, momentum=0.9)
    rates = np.float32([0.1, 0.05, 0.2, 0.01, 0.3, 0.0, 0.07])
    grads = np.float32([[1.0, -2.0], [0.5, 0.5], [3.0, 0.0], [-1.0, 1.0]] * 2)[: len(rates)]
    params = {"w": jnp.array([1.0, 2.0])}
    state = opt.init(params)
    w, v = np.float32([1.0, 2.0]), np.zeros(2, np.float32)
    for rate, g in zip(rates, grads, strict=True):
        state = jopt.set_hyperparams(state, learning_rate=float(rate))
        assert float(opt.lr(state)) == rate
        params, state = opt.apply_gradients({"w": jnp.asarray(g)}, state, params)
        v = np.float32(0.9) * v - g * rate  # Keras's velocity form, float32
        w = w + v
    np.testing.assert_allclose(params["w"], w, rtol=1e-6)
    assert len(TRACES) == 1


def test_schedule_rates_are_scaled_by_learning_rate_scale() -> None:
    schedule = jopt.schedules.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5)
    opt = jopt.Adam(schedule)
    state = opt.init({"w": jnp.ones(2)})
    assert jopt.hyperparams(state)["learning_rate_scale"] == 1.0
    state = jopt.set_hyperparams(state, learning_rate_scale=0.25)
    np.testing.assert_allclose(opt.lr(state), 0.25 * 0.1, rtol=1e-7)
    with pytest.raises(ValueError, match="set learning_rate_scale"):
        jopt.set_hyperparams(state, learning_rate=0.1)


def test_hyperparams_inside_a_chain_are_read_and_set_by_name() -> None:
    tx = jopt.chain(optax.clip_by_global_norm(1.0), jopt.Adam(0.01))
    state = tx.init({"w": jnp.ones(2)})
    assert jopt.hyperparams(state)["['adam']"]["learning_rate"] == pytest.approx(0.01)
    state = jopt.set_hyperparams(state, learning_rate=0.5)
    assert float(state["adam"].hyperparams["learning_rate"]) == 0.5
    assert isinstance(state["0"], optax.ClipByGlobalNormState)


def test_bad_hyperparameter_values_and_names_raise() -> None:
    state = jopt.SGD().init({"w": jnp.ones(1)})
    with pytest.raises(ValueError, match=r"learning_rate must be in \[0, inf\), got -1"):
        jopt.set_hyperparams(state, learning_rate=-1.0)
    with pytest.raises(ValueError, match="no optimizer state holds hyperparameter 'beta_9'"):
        jopt.set_hyperparams(state, beta_9=0.5)
    with pytest.raises(TypeError, match="no jopt OptimizerState"):
        jopt.hyperparams({"w": jnp.ones(1)})
