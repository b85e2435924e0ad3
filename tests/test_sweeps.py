"""Sweeps: K models with K learning rates, trained by one vmapped compiled step.

The oracle is K separate runs of the single-model step, each with its rate set by
``jopt.set_hyperparams``: whole training steps compiled (within float32 rounding), and
the update alone, eager (bit for bit) and compiled. A trace counter shows one compile
for all steps, rate changes and new sweeps. Changing one model's rate every step is
tests/test_hyperparams.py's; here the rates change on a batched state. Last, the
benchmark's quick run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt
from jopt import demo
from jopt.tools.sweeps import sweep_init
from tests.problems import relative_error

ROOT = Path(__file__).parent.parent

# name -> (optimizer, swept hyperparameter, K values, K values set halfway through)
SWEEPS: dict[str, tuple[jopt.Optimizer, str, list[float], list[float]]] = {
    "SGD(momentum=0.9)": (
        jopt.SGD(0.1, momentum=0.9),
        "learning_rate",
        [0.01, 0.05, 0.1, 0.3],
        [0.2, 0.0, 0.02, 0.1],
    ),
    "Adam": (jopt.Adam(), "learning_rate", [1e-4, 1e-3, 3e-3, 1e-2], [1e-2, 1e-3, 0.0, 3e-4]),
    "RMSprop": (jopt.RMSprop(), "learning_rate", [1e-4, 1e-3, 3e-3, 1e-2], [3e-3, 0.0, 1e-4, 1e-3]),
    "Adam(ExponentialDecay)": (
        jopt.Adam(jopt.schedules.ExponentialDecay(0.01, decay_steps=3, decay_rate=0.5)),
        "learning_rate_scale",
        [0.1, 0.5, 1.0, 2.0],
        [1.0, 0.25, 3.0, 0.0],
    ),
}
STEPS = 8  # the second set of rates takes over at STEPS // 2


def batched(states: list[Any]) -> Any:
    """Stacks K single-model pytrees on a new axis 0 (the layout vmap gives)."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *states)


def member(tree: Any, k: int) -> Any:
    return jax.tree.map(lambda x: x[k], tree)


def minibatches() -> list[tuple[jax.Array, jax.Array]]:
    """STEPS minibatches of digit-like data for the demo's MLP, the same for every model."""
    rng = np.random.default_rng(0)
    return [
        (
            jnp.asarray(rng.uniform(0.0, 1.0, (32, demo.LAYER_SIZES[0])), jnp.float32),
            jnp.asarray(rng.integers(0, demo.LAYER_SIZES[-1], 32), jnp.int32),
        )
        for _ in range(STEPS)
    ]


def counted(fn: Callable[..., Any], traces: list[str], tag: str) -> Callable[..., Any]:
    """``fn``, noting ``tag`` in ``traces`` each time JAX traces it (Python runs only then)."""

    def traced(*args: Any) -> Any:
        traces.append(tag)
        return fn(*args)

    return traced


@pytest.mark.parametrize("name", list(SWEEPS))
def test_one_vmapped_step_trains_k_models_like_k_separate_runs(name: str) -> None:
    opt, hyper, values, later = SWEEPS[name]
    k = len(values)
    params = demo.init_mlp(jax.random.key(0))
    traces: list[str] = []

    def train_step(params: Any, state: Any, x: jax.Array, y: jax.Array) -> Any:
        loss, grads = jax.value_and_grad(demo.loss_fn)(params, x, y)
        params, state = opt.apply(grads, state, params)
        return params, state, loss

    sweep_step = jax.jit(jax.vmap(counted(train_step, traces, "sweep"), in_axes=(0, 0, None, None)))
    single_step = jax.jit(counted(train_step, traces, "single"))

    # The K states, as the issue writes them: vmap over init + set_hyperparams.
    state_k = jax.vmap(lambda v: jopt.set_hyperparams(opt.init(params), **{hyper: v}))(
        jnp.asarray(values)
    )
    params_k = jax.tree.map(lambda p: jnp.broadcast_to(p, (k, *p.shape)), params)
    losses_k = []
    for t, (x, y) in enumerate(minibatches()):
        if t == STEPS // 2:  # new rates on the batched state: still the same program
            state_k = jopt.set_hyperparams(state_k, **{hyper: jnp.asarray(later)})
        params_k, state_k, loss = sweep_step(params_k, state_k, x, y)
        losses_k.append(loss)

    runs = []
    for v, w in zip(values, later, strict=True):
        p, s = params, jopt.set_hyperparams(opt.init(params), **{hyper: v})
        losses = []
        for t, (x, y) in enumerate(minibatches()):
            if t == STEPS // 2:
                s = jopt.set_hyperparams(s, **{hyper: w})
            p, s, loss = single_step(p, s, x, y)
            losses.append(loss)
        runs.append((p, s, jnp.stack(losses)))

    assert traces == ["sweep", "single"], "a rate change or a new model recompiled"
    chex.assert_trees_all_equal_shapes_and_dtypes(state_k, batched([s for _, s, _ in runs]))
    np.testing.assert_array_equal(state_k.step, STEPS)
    np.testing.assert_array_equal(jopt.hyperparams(state_k)[hyper], np.float32(later))
    # Not bit-identical: the gradients of K models come from XLA's batched matmul, which
    # may sum in another order than the single one (1 ulp; it depends on K, the batch
    # and the data). Measured: relative error (tests/problems.py) <= 7.3e-8 after 8
    # steps. The optimizer's own arithmetic is checked alone in the next test.
    for i, (p, s, losses) in enumerate(runs):
        for got, want in (
            (member(params_k, i), p),
            (member(state_k, i), s),
            (jnp.stack(losses_k)[:, i], losses),
        ):
            for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
                assert relative_error(a, b) <= 1e-6, (name, i)


@pytest.mark.parametrize("mode", ["eager", "jit"])
@pytest.mark.parametrize("name", list(SWEEPS))
def test_the_vmapped_update_is_the_arithmetic_of_k_separate_updates(name: str, mode: str) -> None:
    """The update alone, on gradients given per model: the same arithmetic as K runs."""
    opt, hyper, values, later = SWEEPS[name]
    k = len(values)
    rng = np.random.default_rng(1)
    params = {"dense": {"kernel": jnp.ones((3, 2)), "bias": jnp.zeros(2)}, "scale": jnp.ones(())}
    grads = [  # per model and step, as a loss of K different models would give
        jax.tree.map(lambda p: jnp.asarray(rng.normal(size=(k, *p.shape)), jnp.float32), params)
        for _ in range(STEPS)
    ]
    traces: list[str] = []
    update = jax.vmap(counted(lambda p, s, g: opt.apply(g, s, p), traces, "sweep"))
    single = opt.apply_gradients  # jopt's compiled step
    if mode == "eager":
        single = opt.apply
    else:
        update = jax.jit(update)
    params_k, state_k = sweep_init(opt, params, **{hyper: values})
    for t in range(STEPS):
        if t == STEPS // 2:
            state_k = jopt.set_hyperparams(state_k, **{hyper: jnp.asarray(later)})
        params_k, state_k = update(params_k, state_k, grads[t])
    assert traces == ["sweep"] * (STEPS if mode == "eager" else 1)

    for i, (v, w) in enumerate(zip(values, later, strict=True)):
        p, s = params, jopt.set_hyperparams(opt.init(params), **{hyper: v})
        for t in range(STEPS):
            if t == STEPS // 2:
                s = jopt.set_hyperparams(s, **{hyper: w})
            p, s = single(member(grads[t], i), s, p)
        # Eager, a batched op is the single op on more elements: bit-identical, except a
        # schedule's power, which XLA's CPU code evaluates vectorized for K steps (1 ulp).
        # Compiled, XLA fuses the batched program its own way, so a multiply-add may round
        # differently. Measured (jax 0.10.2, CPU): bit-identical for SGD and RMSprop; Adam
        # bit-identical with only the learning rate live, 1 ulp (5e-10) in its velocity
        # once its betas are live too.
        if mode == "eager" and hyper == "learning_rate":
            chex.assert_trees_all_equal(member(params_k, i), p)
            chex.assert_trees_all_equal(member(state_k, i), s)
            continue
        for got, want in ((member(params_k, i), p), (member(state_k, i), s)):
            for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
                assert relative_error(a, b) <= 1e-6, (name, i)


def test_sweep_init_is_vmap_over_init_and_set_hyperparams() -> None:
    opt = jopt.Adam(jopt.schedules.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5))
    params = {"w": jnp.arange(3.0), "b": jnp.ones(())}
    scales = np.float32([0.5, 1.0, 2.0])
    params_k, state_k = sweep_init(opt, params, learning_rate_scale=scales)
    expected = jax.vmap(lambda v: jopt.set_hyperparams(opt.init(params), learning_rate_scale=v))(
        jnp.asarray(scales)
    )
    chex.assert_trees_all_equal(state_k, expected)
    chex.assert_trees_all_equal(params_k, jax.tree.map(lambda p: jnp.stack([p] * 3), params))
    # The rate of each model, batched or one at a time, is the schedule times its scale.
    np.testing.assert_allclose(opt.lr(state_k), 0.1 * scales, rtol=1e-7)
    np.testing.assert_allclose(jax.vmap(opt.lr)(state_k), 0.1 * scales, rtol=1e-7)


def test_sweep_init_sets_every_jopt_state_in_a_chain() -> None:
    tx = jopt.chain(optax.clip_by_global_norm(1.0), jopt.SGD(), jopt.Adam())
    params = {"w": jnp.ones(2)}
    rates = [0.1, 0.2]
    params_k, state_k = sweep_init(tx, params, learning_rate=rates)
    for path in ("['sgd']", "['adam']"):
        np.testing.assert_array_equal(
            jopt.hyperparams(state_k)[path]["learning_rate"], np.float32(rates)
        )
    step = jax.jit(jax.vmap(lambda p, s, g: tx.update(g, s, p)[0], in_axes=(0, 0, None)))
    updates = step(params_k, state_k, {"w": jnp.ones(2)})
    assert updates["w"].shape == (2, 2) and np.isfinite(updates["w"]).all()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({}, TypeError, "at least one hyperparameter"),
        ({"learning_rate": 0.1}, ValueError, r"1-D sequence .* got shape \(\)"),
        ({"learning_rate": []}, ValueError, r"non-empty 1-D .* got shape \(0,\)"),
        ({"learning_rate": np.ones((2, 2))}, ValueError, r"got shape \(2, 2\)"),
        (
            {"learning_rate": [0.1, -0.1]},
            ValueError,
            r"learning_rate\[1\]: .*-0.1",  # set_hyperparams' own message follows
        ),
        ({"learning_rate": [0.1, np.nan]}, ValueError, r"learning_rate\[1\]: .*nan"),
        ({"beta_9": [0.1]}, ValueError, r"beta_9\[0\]: .*beta_9"),
    ],
)
def test_sweep_init_rejects_bad_values_naming_them(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        sweep_init(jopt.SGD(), {"w": jnp.ones(2)}, **kwargs)


def test_sweep_init_lengths_must_agree() -> None:
    with pytest.raises(ValueError, match=r"same number of values, got \{'learning_rate': 2"):
        sweep_init(jopt.SGD(), {"w": jnp.ones(1)}, learning_rate=[0.1, 0.2], momentum=[0.9])


def test_hyperparams_benchmark_quick_run(tmp_path: Path) -> None:
    """The benchmark runs (quick mode), so it never rots; timings are never asserted."""
    out = tmp_path / "hyperparams.json"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "hyperparams.py"),
            "--quick",
            "--json",
            str(out),
        ],
        check=True,
        capture_output=True,
        timeout=120,
        cwd=ROOT,
    )
    result = json.loads(out.read_text())
    assert result["meta"]["quick"] is True
    sweep = result["sweep"]
    assert sweep["K"] == 16
    for r in sweep["results"]:
        assert r["swept"] in ("learning_rate", "learning_rate_scale")
        assert len(r["values"]) == 16
        assert set(r["step_s"]) == {"vmapped", "sequential"}
        assert r["speedup"] > 0
        assert r["max_abs_diff_vs_sequential"] <= 1e-5  # the same training, up to rounding
    pairs = {r["pair"] for r in result["live_cost"]["results"]}
    assert {"jopt Adam", "optax adam"} <= pairs
    for r in result["live_cost"]["results"]:
        assert set(r["step_s"]) == {"live", "baked"} and r["ratio"] > 0


def test_a_batched_state_in_an_unbatched_step_is_a_clear_error() -> None:
    opt = jopt.Adam()
    params = {"w": jnp.ones((3, 4))}
    _, state_k = jopt.sweep_init(opt, params, learning_rate=jnp.array([1e-3, 1e-2, 0.1, 1.0]))
    with pytest.raises(ValueError, match=r"this state is batched \(step has shape \(4,\)\)"):
        opt.apply_gradients({"w": jnp.ones((3, 4))}, state_k, params)
