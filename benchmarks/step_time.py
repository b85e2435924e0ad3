"""Step time, time to first step and peak memory: jopt against optax, Keras 3 and PyTorch.

Run from the repository root (about 8 minutes on 2 CPU cores; see benchmarks/README.md)::

    python benchmarks/step_time.py            # writes artifacts/step_time.{json,png}
    python benchmarks/step_time.py --quick    # smoke run, a few seconds of timing
    python benchmarks/step_time.py --trees 1000,transformer --optimizers Adam --reps 50

For Adam, SGD with momentum 0.9 and RMSprop, equal hyperparameters everywhere, on
trees of 64 to 2000 leaves and a transformer's parameters (``trees.py``), in one
process:

* JAX contenders (``contenders.py``): jopt (and every registered jopt variant), optax,
  and Keras 3's ``optimizer.stateless_apply`` on its JAX backend. Each gives a pure
  ``step(params, state, grads)``, jitted here alike, without and with donation of
  params and state (``donate_argnums=(0, 1)``: in the order of the outputs, so XLA
  pairs each donated buffer with its own output).
* PyTorch (if installed): ``torch.optim.<Opt>(fused=True)`` and ``(foreach=True)``,
  ``opt.step()`` with the gradients already in ``.grad``; it updates in place, so its
  times are compared with the donated JAX steps. ``torch.set_num_threads`` is set to
  the machine's cores (``--torch-threads``), as XLA uses them all.

Measured per (tree, optimizer): **first step** on a fresh ``jax.jit`` of a fresh
function, by stage (``trace``, ``lower``, ``compile``, ``first run``; for torch, the
first ``opt.step()``, which allocates its state); **step** and **step, donated**: the
median of ``--reps`` repetitions, every contender one step per repetition in a rotated
order, so machine drift hits them alike; **peak memory** of the donated step from XLA's
``compiled.memory_analysis()`` (arguments + outputs - aliased + temporaries) against
params + grads + state bytes (for torch, its tensors plus the largest temporary
its profiler sees one step allocate). Every contender's updates are first checked against
Keras's rule (``agreement.py``); the run stops if any disagrees.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np
from agreement import RTOL, check_agreement
from contenders import (
    TORCH_MODES,
    Contest,
    JaxContender,
    jax_contenders,
    make_contests,
    make_torch_optimizer,
    torch_available,
)
from report import plot, table
from run_facts import RunFacts
from trees import TREE_KEYS, TreeSpec, copy_tree, make_trees, random_tree, tree_bytes

PyTree = Any


@dataclass
class Runner:
    """One timed contender of a group: a step that carries its own arrays."""

    key: str
    step: Callable[[], None]
    times: list[float] = field(default_factory=list)

    def run(self) -> float:
        start = time.perf_counter()
        self.step()
        return time.perf_counter() - start


class JaxCarry:
    """Params and state carried from step to step through one jitted step function."""

    def __init__(self, call: Callable, params: PyTree, state: PyTree, grads: PyTree) -> None:
        self.call, self.params, self.state, self.grads = call, params, state, grads
        self.donation_effective: bool | None = None

    def __call__(self) -> None:
        old = jax.tree.leaves(self.params)[0]
        self.params, self.state = self.call(self.params, self.state, self.grads)
        jax.block_until_ready((self.params, self.state))
        if self.donation_effective is None:
            self.donation_effective = old.is_deleted()


def time_first_step(
    step: Callable, params: PyTree, state: PyTree, grads: PyTree, donate: bool
) -> tuple[JaxCarry, dict[str, float], Any]:
    """Trace, lower, compile and first run of a fresh ``jax.jit``; returns its carry.

    The step is wrapped in a new function object, so nothing traced or compiled before
    (the same step, the other donation setting) is reused.
    """
    jitted = jax.jit(lambda p, s, g: step(p, s, g), donate_argnums=(0, 1) if donate else ())
    (new_params, new_state), times, compiled = cold_start(jitted, params, state, grads)
    # Later steps call the jit, which reuses the executable compiled above.
    return JaxCarry(jitted, new_params, new_state, grads), times, compiled


def cold_start(jitted: Any, *args: Any) -> tuple[Any, dict[str, float], Any]:
    """``jitted``'s first call on ``args``, by stage: ``(outputs, seconds per stage and
    in total, the compiled executable)``."""
    # A collection of the garbage earlier contenders left (their traces, executables)
    # would otherwise land inside whichever contender's trace triggers it.
    gc.collect()
    t0 = time.perf_counter()
    traced = jitted.trace(*args)
    t1 = time.perf_counter()
    lowered = traced.lower()
    t2 = time.perf_counter()
    compiled = lowered.compile()
    t3 = time.perf_counter()
    outputs = jax.block_until_ready(compiled(*args))
    t4 = time.perf_counter()
    times = {"trace": t1 - t0, "lower": t2 - t1, "compile": t3 - t2, "first_run": t4 - t3}
    times["total"] = t4 - t0
    return outputs, times, compiled


def memory(compiled: Any, ideal: int) -> dict[str, float]:
    """XLA's own accounting of one call, against ``ideal``: params + grads + state bytes."""
    m = compiled.memory_analysis()
    out = {
        "argument": m.argument_size_in_bytes,
        "output": m.output_size_in_bytes,
        "alias": m.alias_size_in_bytes,
        "temp": m.temp_size_in_bytes,
        "ideal": ideal,
    }
    out["peak"] = out["argument"] + out["output"] - out["alias"] + out["temp"]
    out["peak_over_ideal"] = out["peak"] / out["ideal"]
    return out


def jax_runners(
    c: JaxContender,
    contest: Contest,
    params: PyTree,
    grads: PyTree,
    result: dict,
    carries: dict[str, JaxCarry],
) -> list[Runner]:
    """The contender's plain and donated runners; records first step and memory."""
    built = c.make(contest, params)
    if built is None:
        return []
    pack = built.pack or (lambda x: x)
    runners = []
    for donate in (False, True) if c.plain else (True,):
        p = pack(copy_tree(params))
        s = built.init(p)
        g = pack(grads)
        ideal = tree_bytes((p, s, g))  # read before the call: donation deletes buffers
        carry, times, compiled = time_first_step(built.step, p, s, g, donate)
        result["first_step_s"].setdefault(c.name, {})["donated" if donate else "plain"] = times
        if donate:
            result["memory"][c.name] = memory(compiled, ideal)
        runners.append(Runner(c.name + ("+donate" if donate else ""), carry))
        carries[runners[-1].key] = carry
    return runners


def torch_runner(mode: str, contest: Contest, params: PyTree, grads: PyTree, result: dict) -> Any:
    """A torch optimizer over copies of the same values; records its first step and memory."""
    import torch

    tensors = [torch.from_numpy(np.array(x)) for x in jax.tree.leaves(params)]
    for t, g in zip(tensors, jax.tree.leaves(grads), strict=True):
        t.grad = torch.from_numpy(np.array(g))
    start = time.perf_counter()
    opt = make_torch_optimizer(contest, mode, tensors)
    if opt is None:
        return None
    opt.step()
    total = time.perf_counter() - start
    result["first_step_s"][mode] = {"plain": {"total": total, "first_run": total}}
    state = [v for s in opt.state.values() for v in s.values() if isinstance(v, torch.Tensor)]
    ideal = sum(t.nbytes + t.grad.nbytes for t in tensors) + sum(v.nbytes for v in state)
    temp = torch_temporaries(opt)
    result["memory"][mode] = {
        "ideal": ideal,
        "temp": temp,
        "peak": ideal + temp,
        "peak_over_ideal": (ideal + temp) / ideal,
    }
    return Runner(mode, opt.step)


def torch_temporaries(opt: Any) -> int:
    """Bytes of the largest temporary one ``opt.step()`` allocates (torch's CPU profiler).

    The largest inclusive allocation of any op, e.g. foreach Adam's ``_foreach_sqrt``,
    one copy of a slot; a lower bound on the step's peak above its tensors.
    """
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        opt.step()
    return max([0, *(e.cpu_memory_usage for e in prof.events())])


def time_rotated(
    runners: list[Runner], reps: int, carries: dict[str, Any], result: dict[str, Any]
) -> None:
    """Times every runner ``reps`` times, one step each per repetition in a rotated
    order (machine drift hits them alike), into ``result["step_s"]``."""
    for _ in range(2):  # settle: caches, allocator, branch predictors
        for r in runners:
            r.run()
    gc.collect()
    for rep in range(reps):
        shift = rep % len(runners)
        for r in runners[shift:] + runners[:shift]:
            r.times.append(r.run())
    for r in runners:
        carry = carries.get(r.key)
        result["step_s"][r.key] = {
            "median": statistics.median(r.times),
            "min": min(r.times),
            "samples": r.times,
            "donation_effective": None if carry is None else carry.donation_effective,
        }
    result["loadavg_1m"] = os.getloadavg()[0]


def bench_group(
    contest: Contest,
    tree: TreeSpec,
    jax_libs: list[JaxContender],
    torch_modes: list[str],
    reps: int,
    flip: bool,
) -> dict[str, Any]:
    """First step, memory and interleaved step times of every contender on one pair."""
    params = random_tree(tree.shapes, seed=2, scale=0.02)
    grads = random_tree(tree.shapes, seed=3, scale=1e-3)
    result: dict[str, Any] = {
        "optimizer": contest.name,
        "tree": tree.key,
        "first_step_s": {},
        "memory": {},
        "step_s": {},
    }
    runners: list[Runner] = []
    carries: dict[str, JaxCarry] = {}
    # Compiles one at a time, in an order that alternates from group to group.
    for c in jax_libs[::-1] if flip else jax_libs:
        runners += jax_runners(c, contest, params, grads, result, carries)
    for mode in torch_modes:
        r = torch_runner(mode, contest, params, grads, result)
        if r is not None:
            runners.append(r)
    time_rotated(runners, reps, carries, result)
    return result


def main(argv: list[str] | None = None) -> int:
    """Parses arguments, checks agreement, runs every group, prints and writes results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: small trees, 3 reps")
    parser.add_argument("--json", default="artifacts/step_time.json", help="output path")
    parser.add_argument("--plot", default=None, help="PNG path (default: --json's, .png)")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 30)")
    parser.add_argument(
        "--trees",
        default=None,
        help=f"comma-separated of {','.join(TREE_KEYS)} (default all; --quick: 64)",
    )
    parser.add_argument(
        "--optimizers",
        default="Adam,SGD,RMSprop",
        help="comma-separated names, or 'all' for every optimizer optax also has",
    )
    parser.add_argument(
        "--contenders",
        default=None,
        help="comma-separated: jopt variants (jopt, jopt.apply, ...), optax, keras, "
        "torch.fused, torch.foreach (default: every default one available)",
    )
    parser.add_argument(
        "--torch-threads", type=int, default=os.cpu_count(), help="torch.set_num_threads"
    )
    args = parser.parse_args(argv)
    reps = args.reps or (3 if args.quick else 30)
    facts = RunFacts()

    names = args.contenders.split(",") if args.contenders else None
    jax_libs, notes = jax_contenders(names)
    torch_modes = [m for m in TORCH_MODES if names is None or m in names]
    why = torch_available() if torch_modes else None
    if why is not None:
        notes.append(f"torch skipped: {why}")
        torch_modes = []
    if torch_modes:
        import torch

        torch.set_num_threads(args.torch_threads)
    wanted = args.optimizers.split(",")
    contests = [c for c in make_contests() if args.optimizers == "all" or c.name in wanted]
    wanted = (args.trees or ("64" if args.quick else ",".join(TREE_KEYS))).split(",")
    trees = {t.key: t for t in make_trees(args.quick) if t.key in wanted}
    if not trees or not contests or not jax_libs:
        parser.error("no tree, optimizer or JAX contender selected")

    agreement = check_agreement(contests, jax_libs, torch_modes)
    print(f"agreement with Keras's rule (max relative error of updates, rtol {RTOL}):")
    for c in contests:
        got = agreement[c.name]
        print(
            f"  {c.name}: "
            + (got if isinstance(got, str) else ", ".join(f"{k} {v:.1e}" for k, v in got.items()))
        )
    for note in notes:
        print(note)

    results = []
    for i, tree in enumerate(trees.values()):
        for k, contest in enumerate(contests):
            t0 = time.perf_counter()
            results.append(
                bench_group(contest, tree, jax_libs, torch_modes, reps, flip=(i + k) % 2 == 1)
            )
            print(
                f"  {tree.label} / {contest.name}: {time.perf_counter() - t0:.1f} s",
                file=sys.stderr,
                flush=True,
            )
            gc.collect()

    libraries = [c.name for c in jax_libs] + torch_modes
    print()
    print(table(results, trees, libraries))
    threads = f", torch {args.torch_threads} threads" if torch_modes else ""
    print(facts.footer(f"{reps} repetitions{threads}"))
    busiest = max(r["loadavg_1m"] for r in results)
    if torch_modes and busiest > (os.cpu_count() or 1):
        print(
            f"warning: the 1-min load reached {busiest:.1f} on {os.cpu_count()} CPUs; torch's "
            "OpenMP threads wait on each other when cores are taken, so its times here are "
            "far slower than on a quiet machine (rerun quietly, or compare --torch-threads 1)"
        )

    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    png = Path(args.plot) if args.plot else path.with_suffix(".png")
    out = {
        "meta": facts.meta(
            argv,
            quick=args.quick,
            reps=reps,
            libraries=libraries,
            notes=notes,
            torch_threads=args.torch_threads if torch_modes else None,
            first_step="jax.jit(step).trace -> .lower -> .compile -> first call, seconds",
            step="median wall seconds of one step incl. block_until_ready, interleaved",
            memory="XLA memory_analysis of the donated step; peak = argument + output - "
            "alias + temp; ideal = params + grads + state bytes",
        ),
        "agreement": agreement,
        "trees": {
            k: {"label": t.label, "leaves": t.leaves, "params": t.params, "flat": t.flat}
            for k, t in trees.items()
        },
        "results": results,
    }
    path.write_text(json.dumps(out, indent=1))
    plot(results, trees, libraries, png)
    print(f"wrote {path} and {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
