"""When a vmapped learning-rate sweep pays off, and what "the same numbers" means there.

Run ``python benchmarks/sweep_models.py`` (about a minute on 2 CPU cores). For each
model, a K-member sweep of Adam learning rates is trained two ways in one process, with
interleaved repetitions: **vmapped** (one compiled step updates all K models,
``jopt.sweep_init`` + ``jax.vmap``) and **sequential** (K separate compiled runs). It
prints the median time per sweep step (K model updates) and the ratio, and how far sweep
member 0 has drifted from its own separate run after 20 and after ``--steps`` steps.

Models: the demo's MLP (64-64-10, matmuls) and a small CNN (two 3x3 convolutions, 8 and
16 channels, on 8x8 images, then a dense layer). vmap turns K matmuls into one batched
matmul, which XLA runs well on a CPU; K convolutions become one grouped convolution,
which XLA's CPU backend runs slower than K plain ones, so there the sweep can lose.

Drift: the vmapped and separate runs compute the same formulas, but batched kernels sum
in a different order, so member 0 starts about 1 ulp away and a chaotic training run
amplifies that; measured, not asserted (``tests/test_sweeps.py`` checks a sweep against
separate runs over a few steps, where the two agree to float32 rounding).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jopt

PyTree = Any
RATES = (1e-3, 3e-3, 1e-2, 3e-2)


def mlp_init(key: jax.Array) -> PyTree:
    k0, k1 = jax.random.split(key)
    return {
        "dense_0": {"kernel": jax.random.normal(k0, (64, 64)) * 0.1, "bias": jnp.zeros(64)},
        "dense_1": {"kernel": jax.random.normal(k1, (64, 10)) * 0.1, "bias": jnp.zeros(10)},
    }


def mlp_apply(params: PyTree, x: jax.Array) -> jax.Array:
    h = jnp.tanh(x @ params["dense_0"]["kernel"] + params["dense_0"]["bias"])
    return h @ params["dense_1"]["kernel"] + params["dense_1"]["bias"]


def cnn_init(key: jax.Array) -> PyTree:
    k0, k1, k2 = jax.random.split(key, 3)
    return {
        "conv_0": {"kernel": jax.random.normal(k0, (3, 3, 1, 8)) * 0.3, "bias": jnp.zeros(8)},
        "conv_1": {"kernel": jax.random.normal(k1, (3, 3, 8, 16)) * 0.1, "bias": jnp.zeros(16)},
        "dense": {"kernel": jax.random.normal(k2, (8 * 8 * 16, 10)) * 0.02, "bias": jnp.zeros(10)},
    }


def cnn_apply(params: PyTree, x: jax.Array) -> jax.Array:
    h = x.reshape(-1, 8, 8, 1)
    for name in ("conv_0", "conv_1"):
        h = jax.lax.conv_general_dilated(
            h, params[name]["kernel"], (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        h = jnp.tanh(h + params[name]["bias"])
    return h.reshape(h.shape[0], -1) @ params["dense"]["kernel"] + params["dense"]["bias"]


MODELS: dict[
    str, tuple[Callable[[jax.Array], PyTree], Callable[[PyTree, jax.Array], jax.Array]]
] = {
    "MLP 64-64-10": (mlp_init, mlp_apply),
    "CNN conv8-conv16-dense": (cnn_init, cnn_apply),
}


def make_step(apply: Callable[..., jax.Array], opt: jopt.Optimizer) -> Callable[..., Any]:
    def loss(params: PyTree, x: jax.Array, y: jax.Array) -> jax.Array:
        logp = jax.nn.log_softmax(apply(params, x))
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    def step(params: PyTree, state: PyTree, x: jax.Array, y: jax.Array) -> tuple[PyTree, PyTree]:
        return opt.apply_gradients(jax.grad(loss)(params, x, y), state, params)

    return step


def run_model(name: str, steps: int, reps: int, batch: int) -> dict[str, Any]:
    init, apply = MODELS[name]
    opt = jopt.Adam(1e-3)
    step = make_step(apply, opt)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.random((batch, 64), np.float32))
    y = jnp.asarray(rng.integers(0, 10, batch).astype(np.int32))
    params = init(jax.random.key(0))

    vmapped = jax.jit(jax.vmap(step, in_axes=(0, 0, None, None)))
    single = jax.jit(step)
    sweep_params, sweep_state = jopt.sweep_init(opt, params, learning_rate=jnp.asarray(RATES))
    separate = []
    for rate in RATES:
        state = jopt.set_hyperparams(opt.init(params), learning_rate=rate)
        separate.append((params, state))

    def vmapped_step() -> None:
        nonlocal sweep_params, sweep_state
        sweep_params, sweep_state = vmapped(sweep_params, sweep_state, x, y)
        jax.block_until_ready(sweep_params)

    def sequential_step() -> None:
        for i, (p, s) in enumerate(separate):
            separate[i] = single(p, s, x, y)
        jax.block_until_ready(separate)

    drift: dict[int, float] = {}
    for t in range(1, steps + 1):  # compiles both, and measures drift along the way
        vmapped_step()
        sequential_step()
        if t in (20, steps):
            member = jax.tree.map(lambda a: a[0], sweep_params)
            diffs = jax.tree.map(
                lambda a, b: float(jnp.max(jnp.abs(a - b))), member, separate[0][0]
            )
            drift[t] = max(jax.tree.leaves(diffs))
    times: dict[str, list[float]] = {"vmapped": [], "sequential": []}
    for _ in range(reps):  # interleaved
        for label, fn in (("vmapped", vmapped_step), ("sequential", sequential_step)):
            start = time.perf_counter()
            fn()
            times[label].append(time.perf_counter() - start)
    medians = {k: statistics.median(v) for k, v in times.items()}
    return {
        "model": name,
        "K": len(RATES),
        "vmapped_s": medians["vmapped"],
        "sequential_s": medians["sequential"],
        "speedup": medians["sequential"] / medians["vmapped"],
        "drift": {str(k): v for k, v in drift.items()},
    }


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=100, help="training steps before timing")
    parser.add_argument("--reps", type=int, default=30, help="timed sweep steps per contender")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="a few steps (for the test)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.reps = 20, 3
    results = [run_model(name, args.steps, args.reps, args.batch) for name in MODELS]
    print(
        f"K={len(RATES)} Adam learning-rate sweep, batch {args.batch}, {jax.devices()[0].platform}"
    )
    print(f"{'model':<24} {'vmapped':>9} {'sequential':>11} {'speed-up':>9}  drift of member 0")
    for r in results:
        drift = ", ".join(f"{d:.1e} @ {t}" for t, d in r["drift"].items())
        print(
            f"{r['model']:<24} {r['vmapped_s'] * 1e3:>7.2f}ms {r['sequential_s'] * 1e3:>9.2f}ms "
            f"{r['speedup']:>8.2f}x  {drift}"
        )
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
