"""jopt.SAM against optax's contrib.sam (its default transparent mode, adversary
normalize + sgd(rho)) run live around the same inner optimizer, for 26 calls (13 SAM
steps of 2, or 8 of 3) on leaves of rank 0-4, eagerly and under jax.jit, within 1e-6."""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp
import optax
import pytest

import jopt
from tests.test_optimizers_catalogue import PARAMS, STEPS, grads_at

CALLS = STEPS + 1

CASES = [
    ("Adam-2", lambda: jopt.Adam(0.05), 0.05, 2),
    ("SGD-momentum-3", lambda: jopt.SGD(0.1, momentum=0.9), 0.1, 3),
    ("optax-adam-2", lambda: optax.adam(0.05), 0.02, 2),
]


def run(opt: Any, jit: bool) -> list[Any]:
    update = jax.jit(opt.update) if jit else opt.update
    params = {k: jnp.asarray(v) for k, v in PARAMS.items()}
    state, path = opt.init(params), []
    for t in range(CALLS):
        updates, state = update(grads_at(params, t % STEPS), state, params)
        params = optax.apply_updates(params, updates)
        path.append(params)
    return path


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("make, rho, period", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_sam_matches_optax(make: Any, rho: float, period: int, jit: bool) -> None:
    ours = run(jopt.SAM(make(), rho=rho, sync_period=period), jit)
    adversary = optax.chain(optax.contrib.normalize(), optax.sgd(rho))
    theirs = run(optax.contrib.sam(make(), adversary, sync_period=period), jit)
    chex.assert_trees_all_close(ours, theirs, rtol=1e-6, atol=0)


def test_sam_state_is_named_and_one_compile_serves_every_call() -> None:
    opt = jopt.SAM(jopt.Adam(0.05))
    params = {k: jnp.asarray(v) for k, v in PARAMS.items()}
    state = opt.init(params)
    assert state._fields == ("inner_state", "cache", "steps_since_sync")
    step = jax.jit(chex.assert_max_traces(opt.update, n=1))
    starts = []
    for t in range(4):
        starts.append(params)
        updates, state = step(grads_at(params, t), state, params)
        params = jopt.apply_updates(params, updates)
    assert int(state.inner_state.step) == 2  # two SAM steps of two calls
    chex.assert_trees_all_equal(state.cache, starts[2])  # where the second one began
