"""Learning-rate sweeps with ``jax.vmap``, and the cost of live hyperparameters, in one process.

Run from the repository root (about 30 s on 2 CPU cores)::

    python benchmarks/hyperparams.py                # full run, writes artifacts/hyperparams.json
    python benchmarks/hyperparams.py --quick        # smoke run (a few seconds)
    python benchmarks/hyperparams.py --json out.json --reps 200

Two measurements:

**(a) sweep**: K=16 copies of the demo's MLP (``jopt.demo``: 64 -> 64 -> 10, tanh,
its loss and its ``train_step``; batch 64 of scikit-learn's digits; Glorot init drawn
by NumPy), each with its own learning rate, trained by

* ``vmapped``: one compiled call per step, ``jax.jit(jax.vmap(train_step, in_axes=(0, 0,
  None, None)))`` over params and state (whose ``learning_rate`` holds the 16 rates), or
* ``sequential``: the same 16 runs one after the other with the demo's single-model
  ``jopt.demo.train_step`` (compiled once: the rate is state, not a constant).

Both do the same work: 16 models, the same minibatches, the same number of steps. A
sample is ``--steps`` steps of all 16 models (the sequential contender runs model 0's
steps, then model 1's...), blocked until ready at its end; the time reported is per
sweep step (16 model updates), and the speed-up is sequential / vmapped. The swept
name is the one the state holds: ``learning_rate``, or ``learning_rate_scale`` for the
demo's Adam on a schedule. ``first step`` is each contender's first sweep step, its
compilation included. After timing, every sequential run's params are compared with
its slice of the vmapped params (``max |diff|``; 0 where XLA's batched matmul sums in
the same order as the single one, which on CPU holds up to about K=4).

**(b) live cost**: what reading hyperparameters from the state costs against compiling
them in as constants, on a ~1M-parameter tree (the demo's MLP widened to 784 -> 1024 ->
192 -> 10, 1,002,570 params). Each pair runs the same user-written jitted step
``updates, state = tx.update(grads, state, params); params = apply_updates(params, updates)``:

* optax: ``optax.inject_hyperparams(optax.adam)(learning_rate=1e-3)`` (live: every
  numeric argument, the rate, betas and epsilon, is an array in the state) against
  ``optax.adam(1e-3)`` (baked: Python floats closed over);
* jopt: the step as it is (live: whatever ``jopt.hyperparams(state)`` holds, today the
  learning rate) against the same step whose first line is
  ``state = jopt.set_hyperparams(state, learning_rate=1e-3, ...)``, every live value
  given as the Python float ``opt.init`` wrote. That replaces the state's values by
  constants inside the traced function, so XLA sees literals it can fold, as for
  ``optax.adam(1e-3)``; the rule, the rest of the state and the arithmetic are
  unchanged, so the ratio isolates the cost of the live scalars (a few 4-byte inputs,
  scalar broadcasts). jopt has no optimizer with baked-in values to compare with, and
  building one would change more than the rate's origin: this is the closest equal
  program.

The ratio is live / baked; 1.00 means the live hyperparameters are free. Each pair's
params are compared after timing (``max |diff|``). jopt's two programs do the same
float32 arithmetic on the same values; optax's do not: with ``b2`` a float32 array,
``1 - b2`` is computed in float32 (``1 - f32(0.999)``), with a Python float in float64
then rounded, so their params drift apart by float32 roundings.

Timing, for both: every contender carries its own params and state; in each repetition
each runs one sample, in an order rotated each repetition so drift hits all alike; the
report gives medians over ``--reps`` repetitions. Timings are never asserted.
"""

from __future__ import annotations

import argparse
import functools
import gc
import itertools
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from run_facts import RunFacts

import jopt
from jopt import demo

PyTree = Any

K = 16
RATE = 1e-3  # the rate of every (b) pair


# ---- timing -------------------------------------------------------------------------------


@dataclass
class Contender:
    """One contender: ``run()`` does one sample on its own carried arrays, blocked until ready."""

    key: str
    sample: Callable[[], Any]
    times: list[float] = field(default_factory=list)

    def run(self) -> float:
        start = time.perf_counter()
        jax.block_until_ready(self.sample())
        return time.perf_counter() - start


def interleave(contenders: list[Contender], reps: int) -> None:
    """Runs ``reps`` repetitions, each contender once per repetition, in a rotating order."""
    gc.collect()
    for rep in range(reps):
        shift = rep % len(contenders)
        for c in contenders[shift:] + contenders[:shift]:
            c.times.append(c.run())


def summary(times: list[float], per: int = 1) -> dict[str, Any]:
    """Median and minimum, per ``per`` (steps in a sample), and every sample, in seconds."""
    return {
        "median": statistics.median(times) / per,
        "min": min(times) / per,
        "samples": [t / per for t in times],
    }


def max_abs_diff(a: PyTree, b: PyTree) -> float:
    """The largest absolute difference over every leaf (NaN == NaN counts as equal)."""
    worst = 0.0
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        x, y = np.asarray(x), np.asarray(y)
        same = (x == y) | (np.isnan(x) & np.isnan(y))
        worst = max(worst, float(np.max(np.where(same, 0.0, np.abs(x - y)))))
    return worst


def init_mlp(sizes: tuple[int, ...], seed: int) -> PyTree:
    """The demo's MLP layout and Glorot-uniform init, drawn by NumPy.

    ``jopt.demo.init_mlp`` draws with ``jax.random``, whose compilation takes a second
    per tree on CPU: too long for a smoke run, and beside the point here.
    """
    rng = np.random.default_rng(seed)
    params = {}
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        params[f"dense_{i}"] = {
            "kernel": jnp.asarray(rng.uniform(-limit, limit, (fan_in, fan_out)), jnp.float32),
            "bias": jnp.zeros(fan_out, jnp.float32),
        }
    return params


# ---- (a) sweep ----------------------------------------------------------------------------


def swept_name(opt: jopt.Optimizer, params: PyTree) -> str:
    """``learning_rate``, or ``learning_rate_scale`` when the rate is a schedule."""
    held = jopt.hyperparams(jax.eval_shape(opt.init, params))
    return "learning_rate" if "learning_rate" in held else "learning_rate_scale"


def bench_sweep(
    label: str,
    opt: jopt.Optimizer,
    batches: list[tuple[jax.Array, jax.Array]],
    reps: int,
    steps: int,
) -> dict[str, Any]:
    """Times one vmapped K-model step against K sequential single-model steps."""
    params = init_mlp(demo.LAYER_SIZES, seed=0)
    name = swept_name(opt, params)
    base = float(opt.lr()) if name == "learning_rate" else 1.0
    values = (base * np.geomspace(0.1, 3.0, K)).astype(np.float32)

    # The K states: the state of opt.init with the k-th value, batched by vmap.
    states_k = jax.jit(jax.vmap(lambda v: jopt.set_hyperparams(opt.init(params), **{name: v})))(
        values
    )
    params_k = jax.jit(jax.vmap(lambda _: params))(values)  # K copies
    single = functools.partial(demo.train_step, opt)  # jitted, opt static
    vmapped = jax.jit(jax.vmap(single, in_axes=(0, 0, None, None)))

    state = jax.jit(opt.init)(params)
    runs = [[params, jopt.set_hyperparams(state, **{name: float(v)})] for v in values]
    swept = {"params": params_k, "state": states_k, "t": 0}
    seq = {"t": 0}

    def vmapped_sample(n: int = steps) -> Any:
        for _ in range(n):
            x, y = batches[swept["t"] % len(batches)]
            swept["params"], swept["state"], loss = vmapped(swept["params"], swept["state"], x, y)
            swept["t"] += 1
        return swept["params"], loss

    def sequential_sample(n: int = steps) -> Any:
        t0 = seq["t"]
        for run in runs:
            for t in range(t0, t0 + n):
                x, y = batches[t % len(batches)]
                run[0], run[1], _ = single(run[0], run[1], x, y)
        seq["t"] = t0 + n
        return [run[0] for run in runs]

    # First call of each (compile + one step), timed once; both then carry on from there.
    first = {}
    for key, sample in (("vmapped", vmapped_sample), ("sequential", sequential_sample)):
        start = time.perf_counter()
        jax.block_until_ready(sample(1))
        first[key] = time.perf_counter() - start

    contenders = [Contender("vmapped", vmapped_sample), Contender("sequential", sequential_sample)]
    interleave(contenders, reps)
    assert swept["t"] == seq["t"]
    swept_params = jax.device_get(swept["params"])
    diff = max(
        max_abs_diff(run[0], jax.tree.map(lambda p, k=k: p[k], swept_params))
        for k, run in enumerate(runs)
    )
    timed = {c.key: summary(c.times, per=steps) for c in contenders}
    return {
        "optimizer": label,
        "swept": name,
        "values": [float(v) for v in values],
        "step_s": timed,
        "speedup": timed["sequential"]["median"] / timed["vmapped"]["median"],
        "first_step_s": first,
        "steps_run": swept["t"],
        "max_abs_diff_vs_sequential": diff,
    }


# ---- (b) live cost ------------------------------------------------------------------------


def user_step(tx: Any, apply_updates: Callable[[PyTree, PyTree], PyTree]) -> Callable[..., Any]:
    """The step a user writes, the same for every contender."""

    def step(params: PyTree, state: PyTree, grads: PyTree) -> tuple[PyTree, PyTree]:
        updates, state = tx.update(grads, state, params)
        return apply_updates(params, updates), state

    return step


def baked(step: Callable[..., Any], opt: jopt.Optimizer) -> Callable[..., Any]:
    """``step`` with every live hyperparameter of ``opt`` replaced by a Python constant.

    The constants are the values ``opt.init`` writes, read once outside the trace, so
    the numbers are the live step's; inside the trace they are literals XLA can fold.
    """
    held = jopt.hyperparams(opt.init({"w": jnp.zeros(1)}))
    constants = {name: float(value) for name, value in held.items()}

    def step_with_constants(params: PyTree, state: PyTree, grads: PyTree) -> Any:
        return step(params, jopt.set_hyperparams(state, **constants), grads)

    return step_with_constants


def live_pairs() -> dict[str, dict[str, tuple[Any, Callable[..., Any]]]]:
    """Per pair, ``{"live": (tx, step), "baked": (tx, step)}``, equal rules and rates."""
    pairs = {}
    for name, opt in (
        ("jopt Adam", jopt.Adam(RATE)),
        ("jopt SGD(momentum=0.9)", jopt.SGD(RATE, momentum=0.9)),
        ("jopt RMSprop", jopt.RMSprop(RATE)),
    ):
        step = user_step(opt, jopt.apply_updates)
        pairs[name] = {"live": (opt, step), "baked": (opt, baked(step, opt))}
    live_adam = optax.inject_hyperparams(optax.adam)(learning_rate=RATE)
    pairs["optax adam"] = {
        "live": (live_adam, user_step(live_adam, optax.apply_updates)),
        "baked": (optax.adam(RATE), user_step(optax.adam(RATE), optax.apply_updates)),
    }
    return pairs


def bench_live(sizes: tuple[int, ...], reps: int, steps: int, quick: bool) -> dict[str, Any]:
    """Times every live/baked pair, all contenders interleaved in one loop."""
    params = init_mlp(sizes, seed=1)
    rng = np.random.default_rng(2)
    grads = jax.tree.map(
        lambda p: jnp.asarray(rng.standard_normal(p.shape, dtype=np.float32) * 1e-3), params
    )
    pairs = live_pairs()
    if quick:
        pairs = {k: v for k, v in pairs.items() if k in ("jopt Adam", "optax adam")}
    carried: dict[str, list[Any]] = {}
    contenders = []
    for pair, sides in pairs.items():
        for side, (tx, step) in sides.items():
            key = f"{pair} / {side}"
            jitted = jax.jit(step)
            carried[key] = [params, jax.jit(tx.init)(params)]

            def sample(key: str = key, jitted: Callable[..., Any] = jitted) -> Any:
                c = carried[key]
                for _ in range(steps):
                    c[0], c[1] = jitted(c[0], c[1], grads)
                return c[0]

            contenders.append(Contender(key, sample))
    for c in contenders:  # compile, then one settled warm-up sample each
        c.run()
        c.run()
    interleave(contenders, reps)
    timed = {c.key: summary(c.times, per=steps) for c in contenders}
    results = []
    for pair in pairs:
        live, bake = timed[f"{pair} / live"], timed[f"{pair} / baked"]
        results.append(
            {
                "pair": pair,
                "step_s": {"live": live, "baked": bake},
                "ratio": live["median"] / bake["median"],
                "max_abs_diff_live_vs_baked": max_abs_diff(
                    carried[f"{pair} / live"][0], carried[f"{pair} / baked"][0]
                ),
            }
        )
    n = sum(p.size for p in jax.tree.leaves(params))
    return {
        "tree": {
            "label": "MLP " + "-".join(map(str, sizes)),
            "leaves": len(jax.tree.leaves(params)),
            "params": n,
        },
        "rate": RATE,
        "steps_per_sample": steps,
        "results": results,
    }


# ---- report -------------------------------------------------------------------------------


def _fmt(seconds: float) -> str:
    return f"{seconds * 1e3:8.3f} ms"


def table(sweep: dict[str, Any], live: dict[str, Any]) -> str:
    """The printed report: (a) sweep speed-ups, (b) live / baked ratios."""
    lines = [
        f"(a) sweep of K={K} learning rates, demo MLP {'-'.join(map(str, demo.LAYER_SIZES))}, "
        f"batch {demo.BATCH_SIZE}; time per sweep step ({K} model updates), median",
    ]
    head = (
        f"{'optimizer':<31} {'swept':<20} {'vmapped':>11} {f'{K} sequential':>14} "
        f"{'speed-up':>9}  {'first step vmapped / sequential':>31}  max |diff|"
    )
    lines += [head, "-" * len(head)]
    for r in sweep["results"]:
        t, f = r["step_s"], r["first_step_s"]
        lines.append(
            f"{r['optimizer']:<31} {r['swept']:<20} {_fmt(t['vmapped']['median'])} "
            f"{_fmt(t['sequential']['median']):>14} {r['speedup']:>8.1f}x  "
            f"{f['vmapped']:>16.2f} s / {f['sequential']:>6.2f} s    "
            f"{r['max_abs_diff_vs_sequential']:.1e}"
        )
    tree = live["tree"]
    lines += [
        "",
        f"(b) live vs baked-in learning rate, {tree['label']} ({tree['params']:,} params, "
        f"{tree['leaves']} leaves); time per step, median",
    ]
    head = f"{'pair':<31} {'live':>11} {'baked':>11} {'live/baked':>11}  max |diff|"
    lines += [head, "-" * len(head)]
    for r in live["results"]:
        t = r["step_s"]
        lines.append(
            f"{r['pair']:<31} {_fmt(t['live']['median'])} {_fmt(t['baked']['median'])} "
            f"{r['ratio']:>11.3f}  {r['max_abs_diff_live_vs_baked']:.1e}"
        )
    lines.append(
        "  jopt live = values read from state.hyperparams; baked = the same step with "
        "set_hyperparams(state, learning_rate=1e-3, ...) inside the jit (constants)"
    )
    lines.append(
        "  optax live = inject_hyperparams(optax.adam)(learning_rate=1e-3); "
        "baked = optax.adam(1e-3)"
    )
    return "\n".join(line.rstrip() for line in lines)


def main(argv: list[str] | None = None) -> int:
    """Parses arguments, runs (a) and (b), prints the table and writes the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: Adam only, small tree, 3 repetitions"
    )
    parser.add_argument("--json", default="artifacts/hyperparams.json", help="output path")
    parser.add_argument(
        "--reps", type=int, default=None, help="repetitions (default 100; --quick: 3)"
    )
    parser.add_argument(
        "--steps", type=int, default=None, help="steps per timed sample (default 10; --quick: 2)"
    )
    args = parser.parse_args(argv)
    reps = args.reps or (3 if args.quick else 100)
    steps = args.steps or (2 if args.quick else 10)
    facts = RunFacts()

    x_train, y_train, _, _ = demo.load_data(0)
    order = np.random.default_rng(0).permutation(len(x_train))
    n = len(x_train) // demo.BATCH_SIZE
    batches = [
        (jnp.asarray(x_train[idx]), jnp.asarray(y_train[idx]))
        for idx in order[: n * demo.BATCH_SIZE].reshape(n, -1)
    ]
    optimizers = demo.optimizers()
    if args.quick:
        optimizers = {k: v for k, v in optimizers.items() if k == "Adam(0.001)"}
    sweep_results = []
    for label, opt in optimizers.items():
        t0 = time.perf_counter()
        sweep_results.append(bench_sweep(label, opt, batches, reps, steps))
        print(f"  (a) {label}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    sweep = {
        "K": K,
        "model": "jopt.demo MLP " + "-".join(map(str, demo.LAYER_SIZES)),
        "batch": demo.BATCH_SIZE,
        "steps_per_sample": steps,
        "results": sweep_results,
    }
    t0 = time.perf_counter()
    sizes = (64, 256, 64, 10) if args.quick else (784, 1024, 192, 10)
    live = bench_live(sizes, reps, steps, args.quick)
    print(f"  (b): {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)

    print()
    print(table(sweep, live))
    print(facts.footer(f"{reps} repetitions of {steps} steps"))
    out = {
        "meta": facts.meta(
            argv,
            quick=args.quick,
            reps=reps,
            steps_per_sample=steps,
            step_s="seconds per step: median (and min) over repetitions, interleaved",
            speedup="(a) sequential / vmapped time per sweep step; > 1: vmap is faster",
            ratio="(b) live / baked time per step; 1.00: the live rate costs nothing",
        ),
        "sweep": sweep,
        "live_cost": live,
    }
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
