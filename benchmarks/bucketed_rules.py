"""Rules that read a leaf's norm or shape, bucketed against per leaf: step and first step.

Run ``python benchmarks/bucketed_rules.py`` (``--quick`` for a smoke run of a few
seconds). In one process, for Lamb, Adafactor and Lamb with ``clipnorm`` (per-leaf norms
taken as segment sums in a bucket; Adafactor's matrices keep buckets of their own) and
Adam (elementwise, for scale), on a tree of ``--layers`` x (a 16 x 16 matrix and a
16-vector), float32: the first step (trace, compile and run) and the median of
``--reps`` interleaved steps of ``opt.apply_gradients`` (compiled, cached), and the ratio
bucketed / per leaf. Timings are printed, never asserted; the numbers themselves are
held equal by ``tests/test_bucketed_every_rule.py``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jopt

OPTIMIZERS = {
    "Lamb": lambda: jopt.Lamb(1e-3),
    "Adafactor": lambda: jopt.Adafactor(1e-3),
    "Lamb clipnorm": lambda: jopt.Lamb(1e-3, clipnorm=1.0),
    "Adam": lambda: jopt.Adam(1e-3),
}


def tree(seed: int, layers: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {
        f"l{i:04d}": {
            "w": jnp.asarray(rng.standard_normal((16, 16)), jnp.float32),
            "b": jnp.asarray(rng.standard_normal(16), jnp.float32),
        }
        for i in range(layers)
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=250, help="leaves = 2 x layers")
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="10 layers, 3 repetitions")
    args = parser.parse_args()
    layers, reps = (10, 3) if args.quick else (args.layers, args.reps)
    params, grads = tree(0, layers), tree(1, layers)
    print(f"{2 * layers} leaves, {sum(x.size for x in jax.tree.leaves(params))} params")
    for name, make in OPTIMIZERS.items():
        runs = []
        for opt in (make(), jopt.bucketed(make())):
            state = opt.init(params)
            start = time.perf_counter()
            new, state = opt.apply_gradients(grads, state, params)
            jax.block_until_ready(new)
            runs.append({"opt": opt, "state": state, "params": new, "first": 0.0, "times": []})
            runs[-1]["first"] = time.perf_counter() - start
        for _ in range(reps):  # interleaved
            for run in runs:
                start = time.perf_counter()
                run["params"], run["state"] = run["opt"].apply_gradients(
                    grads, run["state"], run["params"]
                )
                jax.block_until_ready((run["params"], run["state"]))
                run["times"].append(time.perf_counter() - start)
        leaf, laid = (statistics.median(run["times"]) * 1e3 for run in runs)
        first_leaf, first_laid = (run["first"] for run in runs)
        print(
            f"{name:14s} step: per leaf {leaf:7.3f} ms, bucketed {laid:7.3f} ms, "
            f"ratio {laid / leaf:4.2f} | first step: {first_leaf:5.2f} s, "
            f"{first_laid:5.2f} s, ratio {first_laid / first_leaf:4.2f}"
        )


if __name__ == "__main__":
    main()
