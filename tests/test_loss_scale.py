"""Non-finite gradients: Keras's LossScaleOptimizer, jopt's SkipNonFinite, and plain NaN.

Documented behaviour: a plain optimizer propagates NaN (as Keras does); SkipNonFinite and
LossScaleOptimizer skip the step, leaving params and the inner state untouched.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

import jopt
from tests.problems import make_problem, relative_error

BAD_STEPS = (2, 3, 9, 15)


def problem() -> tuple[list[np.ndarray], list[np.ndarray]]:
    init, grads = make_problem()
    for t in BAD_STEPS:  # one non-finite element poisons the whole step
        grads[t % len(grads)][t].flat[0] = np.inf if t % 2 else np.nan
    return init, grads


def keras_loss_scale_run(initial_scale: float, growth: int) -> tuple[list[np.ndarray], list[float]]:
    """Keras's LossScaleOptimizer(Adam) via its jitted stateless_apply (what fit runs)."""
    init, grads = problem()
    variables = [keras.Variable(x) for x in init]
    opt = keras.optimizers.LossScaleOptimizer(
        keras.optimizers.Adam(0.01), initial_scale=initial_scale, dynamic_growth_steps=growth
    )
    opt.build(variables)
    step = jax.jit(opt.stateless_apply)
    opt_values = [v.value for v in opt.variables]
    values = [v.value for v in variables]
    out: list[list[np.ndarray]] = [[] for _ in variables]
    scales = []
    for t in range(grads[0].shape[0]):
        values, opt_values = step(opt_values, [jnp.asarray(g[t]) for g in grads], values)
        for j, v in enumerate(values):
            out[j].append(np.asarray(v))
        scales.append(
            float(opt_values[[v.path for v in opt.variables].index(opt.dynamic_scale.path)])
        )
    return [np.stack(o) for o in out], scales


@pytest.mark.parametrize(("initial_scale", "growth"), [(8.0, 3), (32768.0, 2000), (1.0, 1)])
def test_loss_scale_optimizer_matches_keras(initial_scale: float, growth: int) -> None:
    expected, expected_scales = keras_loss_scale_run(initial_scale, growth)
    opt = jopt.LossScaleOptimizer(jopt.Adam(0.01), initial_scale, growth)
    init, grads = problem()
    params = [jnp.asarray(x) for x in init]
    state = opt.init(params)
    for t in range(grads[0].shape[0]):
        params, state = opt.apply_gradients([jnp.asarray(g[t]) for g in grads], state, params)
        assert float(state.scale) == expected_scales[t], f"scale at step {t}"
        for j, p in enumerate(params):
            assert relative_error(p, expected[j][t]) <= 1e-6
    assert int(state.inner.step) == grads[0].shape[0] - len(BAD_STEPS)
    chex_finite = all(bool(jnp.all(jnp.isfinite(p))) for p in params)
    assert chex_finite


def test_skip_non_finite_equals_keras_run_on_the_finite_steps_only() -> None:
    init, grads = problem()
    finite_steps = [t for t in range(grads[0].shape[0]) if t not in BAD_STEPS]
    variables = [keras.Variable(x) for x in init]
    oracle = keras.optimizers.RMSprop(0.01, momentum=0.9)
    for t in finite_steps:
        oracle.apply_gradients(
            [(jnp.asarray(g[t]), v) for g, v in zip(grads, variables, strict=True)]
        )
    opt = jopt.SkipNonFinite(jopt.RMSprop(0.01, momentum=0.9))
    params = [jnp.asarray(x) for x in init]
    state = opt.init(params)
    for t in range(grads[0].shape[0]):
        before = (params, state.inner)
        params, state = opt.apply_gradients([jnp.asarray(g[t]) for g in grads], state, params)
        if t in BAD_STEPS:  # untouched, bit for bit
            jax.tree.map(np.testing.assert_array_equal, (params, state.inner), before)
    assert int(state.skipped) == len(BAD_STEPS)
    assert float(opt.lr(state)) == pytest.approx(0.01)
    for p, v in zip(params, variables, strict=True):
        assert relative_error(p, np.asarray(v.value)) <= 1e-6


@pytest.mark.parametrize("opt", [jopt.SGD(0.1, momentum=0.9), jopt.Adam(), jopt.RMSprop()])
def test_plain_optimizers_propagate_nan_as_keras_does(opt: Any) -> None:
    params = {"w": jnp.ones(3)}
    grads = {"w": jnp.array([1.0, jnp.nan, 1.0])}
    new, _ = opt.apply_gradients(grads, opt.init(params), params)
    assert bool(jnp.isnan(new["w"][1])) and bool(jnp.all(jnp.isfinite(new["w"][::2])))


def test_update_form_gives_zero_updates_on_a_skipped_step() -> None:
    opt = jopt.SkipNonFinite(jopt.Adam())
    params = {"w": jnp.ones(2)}
    updates, state = opt.update({"w": jnp.array([jnp.inf, 1.0])}, opt.init(params), params)
    np.testing.assert_array_equal(updates["w"], np.zeros(2))
    assert int(state.skipped) == 1


def test_loss_scale_arguments_are_validated() -> None:
    with pytest.raises(ValueError, match="initial_scale must be in"):
        jopt.LossScaleOptimizer(jopt.SGD(), initial_scale=0.0)
    with pytest.raises(ValueError, match="dynamic_growth_steps must be an integer >= 1"):
        jopt.LossScaleOptimizer(jopt.SGD(), dynamic_growth_steps=0)
    with pytest.raises(ValueError, match="without loss_scale_factor"):
        jopt.LossScaleOptimizer(jopt.SGD(loss_scale_factor=2.0))
