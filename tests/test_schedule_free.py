"""jopt.ScheduleFree against optax's contrib.schedule_free run live around the same inner
optimizer, and ScheduleFree(jopt.AdamW(...)) against jopt.ScheduleFreeAdamW (Keras's),
for 25 steps on leaves of rank 0-4, eagerly and under jax.jit, within 1e-6 relative:
the params (y) and the params to evaluate at (x)."""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp
import optax
import pytest

import jopt
from tests.test_optimizers_catalogue import PARAMS, STEPS, grads_at


def run(opt: Any, eval_params: Any, jit: bool) -> tuple[list[Any], list[Any]]:
    update = jax.jit(opt.update) if jit else opt.update
    params = {k: jnp.asarray(v) for k, v in PARAMS.items()}
    state, ys, xs = opt.init(params), [], []
    for t in range(STEPS):
        updates, state = update(grads_at(params, t), state, params)
        params = optax.apply_updates(params, updates)
        ys.append(params), xs.append(eval_params(state, params))
    return ys, xs


def ours(opt: jopt.ScheduleFree) -> tuple[Any, Any]:
    return opt, opt.eval_params


def optax_sf(inner: Any, lr: Any) -> tuple[Any, Any]:
    return optax.contrib.schedule_free(inner, learning_rate=lr, b1=0.9), (
        optax.contrib.schedule_free_eval_params
    )


def keras_sf(opt: jopt.ScheduleFreeAdamW) -> tuple[Any, Any]:
    return opt, lambda state, params: opt.eval_params(params, state)


CASES = [
    (
        "jopt-Adam-vs-optax",
        lambda: ours(jopt.ScheduleFree(jopt.Adam(0.05, beta_1=0.0))),
        lambda: optax_sf(jopt.Adam(0.05, beta_1=0.0), 0.05),
    ),
    (
        "optax-adam-vs-optax",
        lambda: ours(jopt.ScheduleFree(optax.adam(0.05, b1=0.0), learning_rate=0.05)),
        lambda: optax_sf(optax.adam(0.05, b1=0.0), 0.05),
    ),
    (
        "jopt-SGD-power-vs-optax",
        lambda: ours(jopt.ScheduleFree(jopt.SGD(0.1), beta_1=0.8, weight_lr_power=1.0)),
        lambda: (
            optax.contrib.schedule_free(jopt.SGD(0.1), 0.1, b1=0.8, weight_lr_power=1.0),
            optax.contrib.schedule_free_eval_params,
        ),
    ),
    # Keras's AdamW computes 1 - beta_2 in Python (f32(1 - 0.999)), its ScheduleFreeAdamW
    # in float32 (1 - f32(0.999)): 1.3e-5 apart, which moves y by 1e-6 in 25 steps. With
    # a beta_2 exact in binary the two are the same number and the rules are compared.
    (
        "AdamW-vs-ScheduleFreeAdamW",
        lambda: ours(
            jopt.ScheduleFree(
                jopt.AdamW(0.05, weight_decay=0.0, beta_1=0.0, beta_2=0.875, epsilon=1e-8)
            )
        ),
        lambda: keras_sf(jopt.ScheduleFreeAdamW(0.05, beta_2=0.875, epsilon=1e-8)),
    ),
]


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("make, reference", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_schedule_free_matches_its_reference(make: Any, reference: Any, jit: bool) -> None:
    ys, xs = run(*make(), jit)
    ref_ys, ref_xs = run(*reference(), jit)
    chex.assert_trees_all_close(ys, ref_ys, rtol=1e-6, atol=0)
    chex.assert_trees_all_close(xs, ref_xs, rtol=1e-6, atol=0)


def test_schedule_free_state_is_named_and_one_compile_serves_every_step() -> None:
    opt = jopt.ScheduleFree(jopt.Adam(0.05, beta_1=0.0))
    params = {k: jnp.asarray(v) for k, v in PARAMS.items()}
    state = opt.init(params)
    assert state._fields == ("inner_state", "z", "weight_sum", "max_lr", "step")
    step = jax.jit(chex.assert_max_traces(opt.update, n=1))
    for t in range(3):
        updates, state = step(grads_at(params, t), state, params)
        params = jopt.apply_updates(params, updates)
    assert int(state.step) == 3 and int(state.inner_state.step) == 3
    chex.assert_trees_all_equal_dtypes(state.z, params)
