"""apply_gradients: compiled once and cached, Keras's zip form, donation, inside a user's jit."""

from __future__ import annotations

import re
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jopt

TRACES: list[str] = []


class CountingAdam(jopt.Adam):
    """Adam that records each trace of its rule (Python runs only while JAX traces)."""

    def leaf_update(self, g: Any, p: Any, slots: Any, ctx: Any) -> Any:
        TRACES.append("trace")
        return super().leaf_update(g, p, slots, ctx)


def _problem() -> tuple[dict[str, jax.Array], dict[str, jax.Array]]:
    params = {"w": jnp.arange(6.0).reshape(2, 3), "b": jnp.ones(3)}
    grads = {"w": jnp.full((2, 3), 0.5), "b": jnp.array([1.0, -2.0, 0.0])}
    return params, grads


def test_apply_gradients_compiles_once_for_many_steps() -> None:
    TRACES.clear()
    opt = CountingAdam(0.01)
    params, grads = _problem()
    state = opt.init(params)
    for _ in range(5):
        params, state = opt.apply_gradients(grads, state, params)
    assert len(TRACES) == 2  # one trace of the rule per leaf, once
    # An equal optimizer reuses the same compiled step.
    params, state = CountingAdam(0.01).apply_gradients(grads, state, params)
    assert len(TRACES) == 2
    assert int(state.step) == 6


def test_apply_gradients_equals_update_then_apply_updates() -> None:
    opt = jopt.RMSprop(0.01, momentum=0.9, centered=True)
    params, grads = _problem()
    s1 = s2 = opt.init(params)
    p1 = p2 = params
    for _ in range(3):
        p1, s1 = opt.apply_gradients(grads, s1, p1)
        updates, s2 = opt.update(grads, s2, p2)
        p2 = jopt.apply_updates(p2, updates)
    chex.assert_trees_all_close(p1, p2, rtol=1e-6)
    chex.assert_trees_all_close(s1, s2, rtol=1e-6)


def test_keras_zip_form_returns_variables_in_order() -> None:
    opt = jopt.SGD(0.1, momentum=0.9)
    var_list = [jnp.ones(2), jnp.zeros(3)]
    grads = [jnp.array([1.0, 2.0]), jnp.array([0.0, 1.0, -1.0])]
    state = opt.init(var_list)
    new_vars, state = opt.apply_gradients(zip(grads, var_list, strict=True), state)
    assert isinstance(new_vars, list) and len(new_vars) == 2
    expected, _ = opt.apply_gradients(grads, opt.init(var_list), var_list)
    chex.assert_trees_all_close(new_vars, expected)
    np.testing.assert_allclose(new_vars[0], [0.9, 0.8], rtol=1e-6)


def test_zip_form_rejects_items_that_are_not_pairs() -> None:
    opt = jopt.SGD()
    with pytest.raises(TypeError, match="item 0"):
        opt.apply_gradients([jnp.ones(2)], opt.init([jnp.ones(2)]))


def test_callers_arrays_stay_valid_by_default() -> None:
    opt = jopt.Adam()
    params, grads = _problem()
    state = opt.init(params)
    opt.apply_gradients(grads, state, params)
    assert not params["w"].is_deleted() and not state.slots["momentum"]["w"].is_deleted()
    np.testing.assert_array_equal(params["w"], np.arange(6.0).reshape(2, 3))


def test_donation_reuses_params_and_state_buffers() -> None:
    opt = jopt.Adam(0.01)
    params, grads = _problem()
    params = jax.tree.map(jnp.copy, params)
    state = opt.init(params)
    donated = {x.unsafe_buffer_pointer() for x in jax.tree.leaves((params, state))}
    expected, expected_state = opt.apply_gradients(grads, state, params)
    fresh = {x.unsafe_buffer_pointer() for x in jax.tree.leaves((expected, expected_state))}
    assert not fresh & donated  # without donation the step writes new buffers
    new_params, new_state = opt.apply_gradients(grads, state, params, donate=True)
    assert params["w"].is_deleted() and state.slots["velocity"]["w"].is_deleted()
    assert not grads["w"].is_deleted()  # grads are never donated
    # The update was written in place: every output lives in a donated buffer (XLA may
    # give an output any donated buffer of its shape), so no second copy was allocated.
    outputs = {x.unsafe_buffer_pointer() for x in jax.tree.leaves((new_params, new_state))}
    assert outputs <= donated
    chex.assert_trees_all_close(new_params, expected)


def test_apply_gradients_inside_a_users_jitted_step() -> None:
    opt = jopt.Adam(0.05, amsgrad=True)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def train_step(params: Any, state: Any, x: jax.Array) -> Any:
        loss = lambda p: jnp.sum((x @ p["w"] + p["b"]) ** 2)
        grads = jax.grad(loss)(params)
        return opt.apply_gradients(grads, state, params, donate=True)

    params, _ = _problem()
    params = {"w": params["w"].T, "b": params["b"][:2]}
    x = jnp.ones((4, 3))
    state = opt.init(params)
    p_ref, s_ref = params, state
    for _ in range(4):
        params, state = train_step(params, state, x)
        grads = jax.grad(lambda p: jnp.sum((x @ p["w"] + p["b"]) ** 2))(p_ref)
        p_ref, s_ref = opt.apply_gradients(grads, s_ref, p_ref)
    chex.assert_trees_all_close(params, p_ref, rtol=1e-6)
    assert int(state.step) == 4


def test_mismatched_grads_name_the_path() -> None:
    opt = jopt.Adam()
    params, grads = _problem()
    state = opt.init(params)
    with pytest.raises(ValueError, match=r"grads\['b'\] is missing"):
        opt.apply_gradients({"w": grads["w"]}, state, params)
    with pytest.raises(ValueError, match=r"grads\['w'\] has shape \(3, 2\) but params\['w'\]"):
        opt.apply_gradients({"w": grads["w"].T, "b": grads["b"]}, state, params)


@pytest.mark.parametrize("opt", [jopt.SGD(0.1, momentum=0.9), jopt.RMSprop(), jopt.Adam()])
def test_donated_step_writes_each_output_into_its_own_input_buffer(opt: Any) -> None:
    """Each output aliases the input it replaces, so XLA adds no full-size copies."""
    from jopt.core.compiled import _compiled_donating

    params = {f"w{i}": jnp.ones(1000) for i in range(4)}
    state = opt.init(params)
    hlo = _compiled_donating.lower(opt, params, params, state).compile().as_text()
    assert "f32[1000]{0} copy(" not in hlo
    n_grads = len(jax.tree.leaves(params))
    aliases = re.findall(r"\{(\d+)\}: \((\d+), \{\}, may-alias\)", hlo.splitlines()[0])
    assert len(aliases) == len(jax.tree.leaves((params, state)))
    assert all(int(inp) == int(out) + n_grads for out, inp in aliases)


def test_donate_must_be_a_bool_and_must_not_donate_the_grads() -> None:
    opt = jopt.SGD(0.1)
    params = {"w": jnp.ones(2)}
    state = opt.init(params)
    with pytest.raises(TypeError, match="donate must be True or False"):
        opt.apply_gradients(params, state, params, donate="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"params\['w'\] is also passed as a gradient"):
        opt.apply_gradients(params, state, params, donate=True)
    assert not params["w"].is_deleted()  # refused before anything was donated
