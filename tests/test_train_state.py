"""jopt.TrainState and jopt.summary: Keras's numbers, a pytree for jit/vmap, readable output.

Oracles: Keras 3 (params, ``iterations`` and ``learning_rate`` after each step of the
same gradients), NumPy (SGD's formula, byte counts), and plain behaviour checks.
"""

from __future__ import annotations

import functools
import re

import chex
import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest
from IPython.lib.pretty import pretty

import jopt
from tests.problems import make_problem

STEPS = 12


@functools.cache  # one Keras run per case serves both the eager and the jitted test
def _keras_trajectory(case: str) -> tuple[list[list[np.ndarray]], list[int], list[float]]:
    """Keras's params, iterations and learning rate after each step of the shared problem."""
    init, grads = make_problem(steps=STEPS)
    variables = [keras.Variable(x) for x in init]
    opt = CASES[case][1]()
    params, steps, rates = [], [], []
    for t in range(STEPS):
        opt.apply_gradients([(jnp.asarray(g[t]), v) for g, v in zip(grads, variables, strict=True)])
        params.append([np.asarray(v.value) for v in variables])
        steps.append(int(opt.iterations.value))
        rates.append(float(np.asarray(opt.learning_rate)))
    return params, steps, rates


CASES = {
    "sgd_nesterov": (
        lambda: jopt.SGD(0.05, momentum=0.9, nesterov=True),
        lambda: keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
    ),
    "adam_schedule_amsgrad": (
        lambda: jopt.Adam(jopt.schedules.ExponentialDecay(0.1, 4, 0.5), amsgrad=True),
        lambda: keras.optimizers.Adam(
            keras.optimizers.schedules.ExponentialDecay(0.1, 4, 0.5), amsgrad=True
        ),
    ),
    "rmsprop_centered_clipnorm": (
        lambda: jopt.RMSprop(0.01, centered=True, momentum=0.5, clipnorm=1.0),
        lambda: keras.optimizers.RMSprop(0.01, centered=True, momentum=0.5, clipnorm=1.0),
    ),
}


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_train_state_steps_like_keras(case: str, jit: bool) -> None:
    """Params, step and lr after each step equal Keras's (``iterations``, ``learning_rate``)."""
    expected_params, expected_steps, expected_rates = _keras_trajectory(case)
    init, grads = make_problem(steps=STEPS)
    state = jopt.TrainState.create([jnp.asarray(x) for x in init], CASES[case][0]())

    def step(state: jopt.TrainState, g: list[jax.Array]) -> jopt.TrainState:
        return state.apply_gradients(g)

    if jit:
        chex.clear_trace_counter()
        step = chex.assert_max_traces(step, n=1)
        step = jax.jit(step)
    for t in range(STEPS):
        state = step(state, [jnp.asarray(g[t]) for g in grads])
        assert isinstance(state, jopt.TrainState)
        chex.assert_trees_all_close(state.params, expected_params[t], rtol=1e-6, atol=1e-7)
        assert int(state.step) == expected_steps[t]
        np.testing.assert_allclose(float(state.lr), expected_rates[t], rtol=1e-7)


def test_the_optimizer_is_static_data_and_the_arrays_are_the_leaves() -> None:
    params = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}
    state = jopt.TrainState.create(params, jopt.Adam())
    leaves, treedef = jax.tree.flatten(state)
    assert all(isinstance(x, jax.Array) for x in leaves)
    assert len(leaves) == len(jax.tree.leaves(params)) + len(jax.tree.leaves(state.opt_state))
    rebuilt = jax.tree.unflatten(treedef, leaves)
    assert rebuilt.opt == jopt.Adam() and rebuilt.opt_state.slots.keys() == {"momentum", "velocity"}
    # Equal optimizers share a compiled program; a different one is a new program.
    chex.clear_trace_counter()
    traced = jax.jit(chex.assert_max_traces(lambda s: s.apply_gradients(s.params), n=2))
    for opt in (jopt.Adam(), jopt.Adam(), jopt.Adam(beta_1=0.8), jopt.Adam(beta_1=0.8)):
        traced(jopt.TrainState.create(params, opt))


def test_a_vmapped_sweep_of_train_states_follows_sgd_formula() -> None:
    """K learning rates in one vmapped step: each run is NumPy's ``p - lr * g``."""
    rates = np.array([0.1, 0.01, 0.5], np.float32)
    params, opt_state = jopt.sweep_init(jopt.SGD(), {"w": jnp.ones(2)}, learning_rate=rates)
    state = jopt.TrainState(params, opt_state, jopt.SGD())
    step = jax.jit(jax.vmap(lambda s: s.apply_gradients({"w": s.params["w"] ** 2})))
    expected = np.ones((3, 2), np.float32)
    for _ in range(3):
        state = step(state)
        expected = expected - rates[:, None] * expected**2
    np.testing.assert_allclose(state.params["w"], expected, rtol=1e-6)
    np.testing.assert_array_equal(state.step, [3, 3, 3])
    np.testing.assert_array_equal(state.lr, rates)


def test_a_skipped_step_is_not_counted_as_keras_loss_scale_iterations() -> None:
    opt = jopt.LossScaleOptimizer(jopt.SGD(0.5), initial_scale=2.0)
    state = jopt.TrainState.create({"w": jnp.ones(2)}, opt)
    state = state.apply_gradients({"w": jnp.array([jnp.inf, 1.0])})
    assert int(state.step) == 0 and float(state.opt_state.scale) == 1.0
    np.testing.assert_array_equal(state.params["w"], [1.0, 1.0])
    state = state.apply_gradients({"w": jnp.array([2.0, 2.0])})  # unscaled: 2 / 1
    assert int(state.step) == 1
    np.testing.assert_array_equal(state.params["w"], [0.0, 0.0])


def test_partition_lr_is_each_groups_rate_and_a_chain_reports_its_members() -> None:
    params = {"kernel": jnp.ones((2, 2)), "bias": jnp.zeros(2), "embed": jnp.ones(3)}
    tx = jopt.partition(
        {"adam": jopt.Adam(1e-3), "sgd": jopt.SGD(0.1), "frozen": jopt.freeze()},
        [("bias", "sgd"), ("kernel", "adam"), ("embed", "frozen")],
    )
    state = jopt.TrainState.create(params, tx).apply_gradients(params)
    chex.assert_trees_all_close(state.lr, {"adam": 1e-3, "sgd": 0.1})
    chex.assert_trees_all_equal(state.params["embed"], params["embed"])
    assert int(state.step) == 1
    chained = jopt.TrainState.create(params, jopt.chain(jopt.clip_by_norm(1.0), jopt.SGD(0.1)))
    chained = chained.apply_gradients(params)
    assert int(chained.step) == 1
    # A chain reports the rate of its one member that has one (issue 13).
    np.testing.assert_allclose(float(chained.lr), 0.1)
    assert "lr=0.1, opt=chain(clip_by_norm=clip_by_norm(1.0), sgd=SGD(" in repr(chained)
    unrated = jopt.TrainState.create(params, jopt.chain(jopt.clip_by_norm(1.0)))
    with pytest.raises(TypeError, match="reports a learning rate"):
        _ = unrated.lr


def test_set_hyperparams_changes_the_rate_without_recompiling_and_checks_values() -> None:
    state = jopt.TrainState.create({"w": jnp.ones(2)}, jopt.SGD(0.1, momentum=0.9))
    chex.clear_trace_counter()
    step = jax.jit(chex.assert_max_traces(lambda s: s.apply_gradients({"w": jnp.ones(2)}), n=1))
    state = step(state.set_hyperparams(learning_rate=0.5, momentum=0.0))
    np.testing.assert_allclose(state.params["w"], [0.5, 0.5])
    state = step(state.set_hyperparams(learning_rate=0.25))
    np.testing.assert_allclose(state.params["w"], [0.25, 0.25])
    assert float(state.lr) == 0.25 and float(state.hyperparams["learning_rate"]) == 0.25
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\]"):
        state.set_hyperparams(momentum=1.5)


def test_bad_input_names_what_is_wrong() -> None:
    with pytest.raises(TypeError, match="opt must be a transformation with init and update"):
        jopt.TrainState.create({"w": jnp.ones(2)}, 0.1)  # type: ignore[arg-type]
    state = jopt.TrainState.create({"enc": {"w": jnp.ones(2), "b": jnp.ones(1)}}, jopt.Adam())
    with pytest.raises(ValueError, match=r"\['enc'\]\['b'\]"):
        state.apply_gradients({"enc": {"w": jnp.ones(2)}})
    with pytest.raises(TypeError, match="no jopt step count"):
        _ = jopt.TrainState.create(
            {"w": jnp.ones(2)},
            jopt.GradientTransformation(lambda p: (), lambda g, s, p=None: (g, s)),
        ).step


def test_donated_apply_gradients_gives_the_same_numbers() -> None:
    opt = jopt.Adam(0.1)
    plain = jopt.TrainState.create({"w": jnp.arange(3.0)}, opt)
    donated = jopt.TrainState.create({"w": jnp.arange(3.0)}, opt)
    for _ in range(3):
        plain = plain.apply_gradients({"w": jnp.ones(3)})
        donated = donated.apply_gradients({"w": jnp.ones(3)}, donate=True)
    chex.assert_trees_all_equal(plain.params, donated.params)
    chex.assert_trees_all_equal(plain.opt_state, donated.opt_state)


def test_summary_shows_step_lr_live_values_and_bytes_by_slot() -> None:
    params = {"w": jnp.ones((4, 3), jnp.bfloat16), "b": jnp.zeros(3)}
    opt = jopt.Adam(
        jopt.schedules.ExponentialDecay(0.1, 1, 0.5), slot_dtypes={"velocity": "float32"}
    )
    state = jopt.TrainState.create(params, opt).apply_gradients(params)
    text = str(state.summary())
    assert "step              1" in text
    assert "lr (next update)  0.05" in text  # 0.1 * 0.5 ** 1
    assert "beta_2=0.999" in text and "learning_rate_scale=1.0" in text
    # NumPy's byte counts: momentum takes each param's dtype, velocity is float32.
    momentum = 12 * np.dtype(jnp.bfloat16).itemsize + 3 * 4
    assert f"slot momentum     2 arrays of 15 float32, bfloat16 ({momentum} B)" in text
    assert "slot velocity     2 arrays of 15 float32 (60 B)" in text
    total = sum(x.nbytes for x in jax.tree.leaves(state.opt_state))
    assert re.search(rf"total\s+{total} B in 9 arrays", text)
    html = state._repr_html_()
    assert html.startswith("<table>") and "lr (next update)" in html and "&#x27;" not in text
    # IPython shows the summary; plain repr of the functional state is unchanged.
    assert pretty(state) == text
    assert pretty(state.opt_state) == str(jopt.summary(state.opt_state))
    assert repr(state.opt_state).startswith("OptimizerState(step=Array(1, dtype=int32)")
    assert repr(state).startswith("TrainState(step=1, lr=0.05, opt=Adam(")


def test_summary_of_traced_abstract_and_wrapped_states() -> None:
    params = {"w": jnp.ones(3)}
    seen = []
    state = jopt.TrainState.create(params, jopt.SkipNonFinite(jopt.Nadam()))
    jax.jit(lambda s: seen.append(str(s.summary())) or s)(state)
    assert "step              traced int32[]" in seen[0] and "skipped" in seen[0]
    assert "scalar u_product" in seen[0]
    with pytest.raises(TypeError, match=r"takes an optimizer's state first, got the optimizer"):
        jopt.summary(jopt.Adam())
    abstract = jax.eval_shape(jopt.Adam().init, params)
    assert re.search(r"slot velocity\s+1 array of 3 float32 \(12 B\)", str(jopt.summary(abstract)))


def test_an_orbax_checkpoint_resumes_a_train_state_bit_for_bit(tmp_path: object) -> None:
    """Saved mid-run and restored onto its abstract shape, a TrainState continues exactly
    as the run that was never interrupted."""
    import orbax.checkpoint as ocp

    opt = jopt.Adam(jopt.schedules.ExponentialDecay(0.1, 2, 0.5), amsgrad=True)
    state = jopt.TrainState.create({"w": jnp.arange(3.0), "b": jnp.ones(2)}, opt)
    grads = {"w": jnp.array([1.0, -2.0, 0.5]), "b": jnp.array([0.1, 3.0])}
    state = state.apply_gradients(grads)
    path = f"{tmp_path}/state"
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(path, state)
    with ocp.StandardCheckpointer() as checkpointer:
        restored = checkpointer.restore(path, jax.eval_shape(lambda: state))
    assert isinstance(restored, jopt.TrainState) and restored.opt == opt
    for _ in range(3):
        state, restored = state.apply_gradients(grads), restored.apply_gradients(grads)
    chex.assert_trees_all_equal(restored, state)
    assert int(restored.step) == 4 and float(restored.lr) == float(opt.lr(4))
