"""Building blocks: a chain of them gives the numbers of Keras's base options."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import keras
import numpy as np
import optax
import pytest

import jopt
from tests.keras_oracle import keras_run
from tests.problems import STEPS, make_problem, relative_error


def chain_run(tx: Any, steps: int = STEPS) -> tuple[list[np.ndarray], Any]:
    init, grads = make_problem(steps=steps)
    params = [jnp.asarray(x) for x in init]
    state = tx.init(params)
    out: list[list[np.ndarray]] = [[] for _ in params]
    for t in range(steps):
        params, state = jopt.apply_gradients(tx, [jnp.asarray(g[t]) for g in grads], state, params)
        for j, p in enumerate(params):
            out[j].append(np.asarray(p))
    return [np.stack(o) for o in out], state


@pytest.mark.parametrize(
    ("block", "keras_make"),
    [
        (jopt.clip_by_norm(0.5), lambda: keras.optimizers.Adam(0.01, clipnorm=0.5)),
        (jopt.clip_by_value(0.3), lambda: keras.optimizers.Adam(0.01, clipvalue=0.3)),
        (jopt.clip_by_global_norm(1.0), lambda: keras.optimizers.Adam(0.01, global_clipnorm=1.0)),
    ],
)
def test_clipping_blocks_in_a_chain_equal_keras_clip_options(block: Any, keras_make: Any) -> None:
    actual, _ = chain_run(jopt.chain(block, jopt.Adam(0.01)))
    for a, e in zip(actual, keras_run(keras_make), strict=True):
        assert relative_error(a, e) <= 1e-6


def test_ema_block_keeps_keras_average() -> None:
    def average(opt: Any) -> list[np.ndarray]:
        return [np.asarray(a.value) for a in opt._model_variables_moving_average]

    expected = keras_run(
        lambda: keras.optimizers.SGD(0.05, momentum=0.5, use_ema=True, ema_momentum=0.8),
        final=average,
    )
    actual, state = chain_run(jopt.chain(jopt.SGD(0.05, momentum=0.5), avg=jopt.ema(0.8)))
    for a, e in zip(actual, expected[:-1], strict=True):
        assert relative_error(a, e) <= 1e-6
    for a, e in zip(state["avg"].slots["average"], expected[-1], strict=True):
        assert relative_error(a, e) <= 1e-6


def test_scale_and_add_decayed_weights_against_numpy() -> None:
    tx = jopt.chain(jopt.add_decayed_weights(0.1, exclude=["bias"]), jopt.scale(-0.5))
    params = {"kernel": jnp.array([1.0, -2.0]), "bias": jnp.array([3.0])}
    grads = {"kernel": jnp.array([0.5, 0.5]), "bias": jnp.array([1.0])}
    updates, _ = tx.update(grads, tx.init(params), params)
    np.testing.assert_allclose(
        updates["kernel"], -0.5 * (np.array([0.5, 0.5]) + 0.1 * np.array([1.0, -2.0])), rtol=1e-6
    )
    np.testing.assert_allclose(updates["bias"], [-0.5])


def test_block_thresholds_are_live_hyperparameters() -> None:
    traces: list[int] = []
    tx = jopt.chain(clip=jopt.clip_by_value(1.0), sgd=jopt.SGD(1.0))

    @jax.jit
    def step(grads: Any, state: Any) -> Any:
        traces.append(1)
        return tx.update(grads, state)

    state = tx.init({"w": jnp.zeros(1)})
    for limit in (1.0, 0.5, 0.25):
        state = jopt.set_hyperparams(state, clipvalue=limit)
        updates, state = step({"w": jnp.array([3.0])}, state)
        assert float(updates["w"][0]) == -limit
    assert len(traces) == 1


def test_blocks_work_in_optax_chain_and_validate_arguments() -> None:
    tx = optax.chain(jopt.clip_by_norm(1.0), optax.sgd(0.1))
    updates, _ = tx.update({"w": jnp.array([3.0, 4.0])}, tx.init({"w": jnp.zeros(2)}))
    np.testing.assert_allclose(updates["w"], [-0.06, -0.08], rtol=1e-6)
    with pytest.raises(ValueError, match="clipnorm must be in"):
        jopt.clip_by_norm(0.0)
    with pytest.raises(ValueError, match="ema_momentum must be in"):
        jopt.ema(1.5)
    with pytest.raises(ValueError, match="needs params"):
        blk = jopt.add_decayed_weights(0.1)
        blk.update({"w": jnp.ones(1)}, blk.init(None))
    assert jopt.scale(2.0) == jopt.scale(2.0) and hash(jopt.scale(2.0)) == hash(jopt.scale(2.0))
