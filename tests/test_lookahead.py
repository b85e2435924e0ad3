"""jopt.Lookahead against optax's lookahead run live around the same inner optimizer,
for 25 steps on leaves of rank 0-4, eagerly and under jax.jit: the fast params and the
slow weights within 1e-6 relative (bit for bit where the arithmetic is the same)."""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt
from tests.test_optimizers_catalogue import PARAMS, STEPS, grads_at

CASES = [
    ("Adam-6-0.5", lambda: jopt.Adam(0.05), 6, 0.5),
    (
        "chain-SGD-3-0.8",
        lambda: jopt.chain(jopt.clip_by_global_norm(1.0), jopt.SGD(0.1, momentum=0.9)),
        3,
        0.8,
    ),
    ("RAdam-1-0.3", lambda: jopt.RAdam(0.05), 1, 0.3),
]


def run(
    jit: bool, make: Any, period: int, alpha: float
) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
    ours = jopt.Lookahead(make(), sync_period=period, slow_step_size=alpha)
    theirs = optax.lookahead(make(), sync_period=period, slow_step_size=alpha)
    ours_update = jax.jit(ours.update) if jit else ours.update
    theirs_update = jax.jit(theirs.update) if jit else theirs.update
    params = {k: jnp.asarray(v) for k, v in PARAMS.items()}
    ref = optax.LookaheadParams.init_synced(params)
    state, ref_state = ours.init(params), theirs.init(ref)
    fast, slow, ref_fast, ref_slow = [], [], [], []
    for t in range(STEPS):
        updates, state = ours_update(grads_at(params, t), state, params)
        params = jopt.apply_updates(params, updates)
        ref_updates, ref_state = theirs_update(grads_at(ref.fast, t), ref_state, ref)
        ref = optax.apply_updates(ref, ref_updates)
        fast.append(params), slow.append(ours.slow_params(state))
        ref_fast.append(ref.fast), ref_slow.append(ref.slow)
    return fast, slow, ref_fast, ref_slow


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("make, period, alpha", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_lookahead_matches_optax(make: Any, period: int, alpha: float, jit: bool) -> None:
    fast, slow, ref_fast, ref_slow = run(jit, make, period, alpha)
    chex.assert_trees_all_close(fast, ref_fast, rtol=1e-6, atol=0)
    chex.assert_trees_all_close(slow, ref_slow, rtol=1e-6, atol=0)
    # the slow weights moved, and (period > 1) differ from the fast ones between syncs
    assert not np.allclose(slow[-1]["r2"], PARAMS["r2"])
    if period > 1:
        assert not np.allclose(fast[period]["r2"], slow[period]["r2"])


def test_lookahead_state_is_named_and_one_compile_serves_every_step() -> None:
    opt = jopt.Lookahead(jopt.Adam(0.05), sync_period=2)
    params = {k: jnp.asarray(v) for k, v in PARAMS.items()}
    state = opt.init(params)
    assert set(state._fields) == {"inner_state", "slow", "steps_since_sync"}
    assert isinstance(state.inner_state, jopt.OptimizerState)
    update = chex.assert_max_traces(opt.update, n=1)
    step = jax.jit(update)
    for t in range(4):
        updates, state = step(grads_at(params, t), state, params)
        params = jopt.apply_updates(params, updates)
    assert int(state.steps_since_sync) == 0 and int(state.inner_state.step) == 4
    chex.assert_trees_all_equal_dtypes(state.slow, params)
