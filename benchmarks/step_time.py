"""Step time and time to first step, jopt against optax, in one process.

Run from the repository root (about 3 to 4 minutes on 2 CPU cores)::

    python benchmarks/step_time.py                # full run, writes artifacts/step_time.json
    python benchmarks/step_time.py --quick        # smoke run (~5 s): one small tree, 3 reps
    python benchmarks/step_time.py --json out.json --reps 30 --trees a,d --optimizers Adam

What is compared, for Adam, SGD with momentum 0.9 and RMSprop with equal hyperparameters:

* ``jit``: the step a user writes, the same for both libraries::

      @jax.jit
      def step(params, state, grads):
          updates, state = tx.update(grads, state, params)
          return apply_updates(params, updates), state

  with and without donating ``params`` and ``state`` (``donate_argnums=(0, 1)``);
* ``apply_gradients``: jopt's own cached, jitted step ``opt.apply_gradients(grads, state,
  params, donate=...)``, against the same optax ``jit`` row, to show its overhead.

Time to first step is measured with JAX's ahead-of-time stages on a freshly created
``jax.jit`` of a fresh ``step`` function (so no cache is shared between measurements):
``trace`` (``jit(step).trace(...)``, Python and jaxpr), ``lower`` (to StableHLO),
``compile`` (XLA) and ``first run`` (the compiled executable's first call, until ready).
Their sum is what a user waits for on the first call. The steady-state rows call that
same ``jit`` object afterwards (it reuses the compiled executable).

Step time is the median over ``--reps`` repetitions; in every repetition each contender
runs one step, in an order rotated each repetition, so drift hits all of them alike.
Each contender carries its own params and state from step to step and blocks until
they are ready. Ratios are jopt / optax: below 1 means jopt is faster.

Before any timing, every optimizer's updates are checked against optax and against a
NumPy float64 transcription of Keras's rule (see :func:`check_agreement`); the run
stops if they disagree, so a broken rule is never benchmarked.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
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
from jax.tree_util import keystr
from run_facts import RunFacts

import jopt

PyTree = Any
Step = Callable[[PyTree, PyTree, PyTree], tuple[PyTree, PyTree]]

RTOL = 1e-5
LIBRARIES = ("jopt", "optax")


# ---- contenders -------------------------------------------------------------------------


@dataclass(frozen=True)
class Contest:
    """One optimizer, configured equally in both libraries, with its NumPy reference."""

    name: str
    jopt: jopt.Optimizer
    optax: optax.GradientTransformation
    # None: the two libraries' rules differ on purpose (epsilon placement, defaults...), so
    # there is no common reference; jopt's numbers are checked against Keras by the tests.
    reference: Callable[[np.ndarray, dict[str, np.ndarray], int], tuple[np.ndarray, dict]] | None


def _adam_reference(
    g: np.ndarray, s: dict[str, np.ndarray], t: int
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Keras 3's Adam in float64; betas rounded to float32 first, as Keras casts them."""
    lr, b1, b2, eps = (float(np.float32(x)) for x in (1e-3, 0.9, 0.999, 1e-7))
    m = s.get("m", 0.0) + (g - s.get("m", 0.0)) * (1 - 0.9)
    v = s.get("v", 0.0) + (g * g - s.get("v", 0.0)) * (1 - 0.999)
    alpha = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
    return -(m * alpha) / (np.sqrt(v) + eps), {"m": m, "v": v}


def _sgd_reference(
    g: np.ndarray, s: dict[str, np.ndarray], t: int
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Keras 3's SGD with momentum: ``v = momentum * v - lr * g``, update ``v``."""
    del t
    v = float(np.float32(0.9)) * s.get("v", 0.0) - float(np.float32(0.01)) * g
    return v, {"v": v}


def _rmsprop_reference(
    g: np.ndarray, s: dict[str, np.ndarray], t: int
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Keras 3's RMSprop: ``v = rho v + (1 - rho) g^2``, update ``-lr g / sqrt(v + eps)``."""
    del t
    v = 0.9 * s.get("v", 0.0) + (1 - 0.9) * g * g
    return -float(np.float32(1e-3)) * g / np.sqrt(v + 1e-7), {"v": v}


def make_contests() -> list[Contest]:
    """The three optimizers with equivalent hyperparameters in jopt and optax."""
    return [
        Contest("Adam", jopt.Adam(1e-3), optax.adam(1e-3, eps=1e-7), _adam_reference),
        Contest("SGD", jopt.SGD(0.01, momentum=0.9), optax.sgd(0.01, momentum=0.9), _sgd_reference),
        Contest(
            "RMSprop",
            jopt.RMSprop(1e-3),
            optax.rmsprop(1e-3, decay=0.9, eps=1e-7),
            _rmsprop_reference,
        ),
        # The rest of the catalogue that optax also has, configured alike (timing only).
        Contest(
            "AdamW",
            jopt.AdamW(1e-3),
            optax.adamw(1e-3, eps=1e-7, weight_decay=0.004),
            None,
        ),
        Contest("Adamax", jopt.Adamax(1e-3), optax.adamax(1e-3, eps=1e-7), None),
        Contest("Nadam", jopt.Nadam(1e-3), optax.nadam(1e-3, eps=1e-7), None),
        Contest("Lion", jopt.Lion(1e-3), optax.lion(1e-3, b1=0.9, b2=0.99), None),
        Contest(
            "Adagrad",
            jopt.Adagrad(1e-3),
            optax.adagrad(1e-3, initial_accumulator_value=0.1, eps=1e-7),
            None,
        ),
        Contest("Adadelta", jopt.Adadelta(1e-3), optax.adadelta(1e-3, rho=0.95, eps=1e-7), None),
        Contest("Lamb", jopt.Lamb(1e-3), optax.lamb(1e-3, eps=1e-6), None),
        Contest("Adafactor", jopt.Adafactor(1e-3), optax.adafactor(1e-3), None),
    ]


def make_user_step(tx: Any, apply_updates: Callable[[PyTree, PyTree], PyTree]) -> Step:
    """The step a user writes; a new function object per call, so each jit starts cold."""

    def step(params: PyTree, state: PyTree, grads: PyTree) -> tuple[PyTree, PyTree]:
        updates, state = tx.update(grads, state, params)
        return apply_updates(params, updates), state

    return step


# ---- trees ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TreeSpec:
    """A parameter tree to benchmark on: a label and the shape of every leaf."""

    key: str
    label: str
    shapes: dict[str, Any]

    @property
    def leaves(self) -> int:
        return len(jax.tree.leaves(self.shapes, is_leaf=_is_shape))

    @property
    def params(self) -> int:
        return sum(math.prod(s) for s in jax.tree.leaves(self.shapes, is_leaf=_is_shape))


def _is_shape(x: Any) -> bool:
    return isinstance(x, tuple)


def flat_shapes(leaves: int, total: int) -> dict[str, Any]:
    """``leaves`` 1-D float32 leaves of equal size summing to ``total`` parameters."""
    return {f"w{i:04d}": (total // leaves,) for i in range(leaves)}


def transformer_shapes(
    layers: int, d_model: int, mlp: int, vocab: int, max_len: int
) -> dict[str, Any]:
    """The parameter shapes of a pre-norm decoder-only transformer with an untied head."""

    def dense(n_in: int, n_out: int) -> dict[str, tuple[int, ...]]:
        return {"kernel": (n_in, n_out), "bias": (n_out,)}

    def norm() -> dict[str, tuple[int, ...]]:
        return {"scale": (d_model,), "bias": (d_model,)}

    block = {
        "norm_1": norm(),
        "attention": {k: dense(d_model, d_model) for k in ("query", "key", "value", "out")},
        "norm_2": norm(),
        "mlp": {"fc_1": dense(d_model, mlp), "fc_2": dense(mlp, d_model)},
    }
    return {
        "embed": {"token": (vocab, d_model), "position": (max_len, d_model)},
        **{f"block_{i}": block for i in range(layers)},
        "final_norm": norm(),
        "head": dense(d_model, vocab),
    }


def make_trees(quick: bool) -> list[TreeSpec]:
    """The four trees of the brief; ``quick`` shrinks them for a smoke run."""
    if quick:
        return [
            TreeSpec("a", "a: 4 flat leaves", flat_shapes(4, 1 << 18)),
            TreeSpec("b", "b: 16 flat leaves", flat_shapes(16, 1 << 17)),
            TreeSpec("c", "c: 32 flat leaves", flat_shapes(32, 1 << 16)),
            TreeSpec("d", "d: transformer 1L d64", transformer_shapes(1, 64, 256, 512, 64)),
        ]
    return [
        TreeSpec("a", "a: 64 flat leaves", flat_shapes(64, 8_000_000)),
        TreeSpec("b", "b: 500 flat leaves", flat_shapes(500, 4_000_000)),
        TreeSpec("c", "c: 1000 flat leaves", flat_shapes(1000, 2_000_000)),
        TreeSpec("d", "d: transformer 6L d256", transformer_shapes(6, 256, 1024, 8192, 512)),
    ]


def random_tree(shapes: dict[str, Any], seed: int, scale: float) -> PyTree:
    """float32 normal values of the given shapes, as device arrays."""
    rng = np.random.default_rng(seed)
    return jax.tree.map(
        lambda s: jnp.asarray(rng.standard_normal(s, dtype=np.float32) * scale),
        shapes,
        is_leaf=_is_shape,
    )


def copy_tree(tree: PyTree) -> PyTree:
    """Fresh buffers, so one contender's donation cannot touch another's arrays."""
    return jax.tree.map(jnp.copy, tree)


# ---- correctness before timing ----------------------------------------------------------


def check_agreement(contests: list[Contest], steps: int = 5) -> dict[str, Any]:
    """Checks each optimizer's per-step updates; raises ``SystemExit`` on disagreement.

    On a small nested tree, for ``steps`` steps, compares every update of jopt to
    (1) optax's and (2) a NumPy float64 transcription of Keras 3's rule, both with
    ``rtol=1e-5`` and no ``atol``. It also checks that ``opt.apply_gradients`` gives the
    same params as ``update`` + ``apply_updates``. Updates run under ``jax.jit``, as they
    are timed (and eager dispatch of every small op would take seconds here).

    Gradient signs are fixed per element and magnitudes drawn from [1, 2] at every step,
    so no moment cancels to near zero (where a relative check would measure rounding
    noise only). That also bounds the one real difference between the rules, Adam's
    epsilon: Keras adds it to ``sqrt(v)``, optax to ``sqrt(v / (1 - beta_2**t))``, a
    relative difference of at most ``eps / (sqrt(1 - beta_2) |g|) ~ 3e-6`` here.
    """
    rng = np.random.default_rng(0)
    shapes = {"dense": {"kernel": (7, 5), "bias": (5,)}, "scale": (3,)}
    params = random_tree(shapes, seed=1, scale=1.0)
    signs = jax.tree.map(lambda p: np.sign(rng.standard_normal(p.shape)), params)
    report: dict[str, Any] = {"steps": steps, "rtol": RTOL, "atol": 0.0}
    for c in contests:
        if c.reference is None:
            continue
        j_update, o_update = jax.jit(c.jopt.update), jax.jit(c.optax.update)
        j_apply = jax.jit(jopt.apply_updates)
        j_state, o_state = c.jopt.init(params), c.optax.init(params)
        j_params, ag_params, ag_state = params, params, c.jopt.init(params)
        ref_state: dict[str, dict[str, np.ndarray]] = {}
        worst = {"vs_optax": 0.0, "vs_numpy": 0.0, "apply_gradients_vs_update": 0.0}
        for t in range(1, steps + 1):
            grads = jax.tree.map(
                lambda s: jnp.asarray(s * rng.uniform(1.0, 2.0, s.shape), jnp.float32), signs
            )
            j_upd, j_state = j_update(grads, j_state, j_params)
            o_upd, o_state = o_update(grads, o_state, j_params)
            paths = [keystr(k) for k, _ in jax.tree_util.tree_leaves_with_path(grads)]
            leaves = zip(
                paths,
                jax.tree.leaves(grads),
                jax.tree.leaves(j_upd),
                jax.tree.leaves(o_upd),
                strict=True,
            )
            for path, g, u_j, u_o in leaves:
                u_ref, ref_state[path] = c.reference(
                    np.asarray(g, np.float64), ref_state.get(path, {}), t
                )
                for what, other in (("vs_optax", np.asarray(u_o)), ("vs_numpy", u_ref)):
                    err = float(np.max(np.abs(np.asarray(u_j) - other) / np.abs(other)))
                    worst[what] = max(worst[what], err)
            j_params = j_apply(j_params, j_upd)
            ag_params, ag_state = c.jopt.apply_gradients(grads, ag_state, ag_params)
            for a, b in zip(jax.tree.leaves(ag_params), jax.tree.leaves(j_params), strict=True):
                err = float(np.max(np.abs(np.asarray(a) - np.asarray(b)) / np.abs(b)))
                worst["apply_gradients_vs_update"] = max(worst["apply_gradients_vs_update"], err)
        report[c.name] = worst
        bad = {k: v for k, v in worst.items() if not v <= RTOL}
        if bad:
            raise SystemExit(
                f"{c.name}: updates disagree beyond rtol={RTOL}: {bad}; not benchmarking"
            )
    return report


# ---- timing -----------------------------------------------------------------------------


@dataclass
class Runner:
    """One contender of a (tree, optimizer) group: its step and its own carried arrays."""

    key: str
    call: Step
    params: PyTree
    state: PyTree
    times: list[float] = field(default_factory=list)
    donation_effective: bool | None = None

    def run(self, grads: PyTree) -> float:
        """Runs one step, carries params and state, and returns its wall time in seconds."""
        old = jax.tree.leaves(self.params)[0]
        start = time.perf_counter()
        self.params, self.state = self.call(self.params, self.state, grads)
        jax.block_until_ready((self.params, self.state))
        elapsed = time.perf_counter() - start
        if self.donation_effective is None:
            self.donation_effective = old.is_deleted()
        return elapsed


def time_first_step(
    step: Step, params: PyTree, state: PyTree, grads: PyTree
) -> tuple[Step, dict[str, float]]:
    """Times trace, lower, compile and first run of ``jax.jit(step)``; returns the jit."""
    jitted = jax.jit(step)
    t0 = time.perf_counter()
    traced = jitted.trace(params, state, grads)
    t1 = time.perf_counter()
    lowered = traced.lower()
    t2 = time.perf_counter()
    compiled = lowered.compile()
    t3 = time.perf_counter()
    jax.block_until_ready(compiled(params, state, grads))
    t4 = time.perf_counter()
    times = {"trace": t1 - t0, "lower": t2 - t1, "compile": t3 - t2, "first_run": t4 - t3}
    times["total"] = t4 - t0
    return jitted, times


def bench_group(contest: Contest, tree: TreeSpec, reps: int, flip: bool) -> dict[str, Any]:
    """Time to first step and interleaved step times for one (optimizer, tree) pair."""
    params = random_tree(tree.shapes, seed=2, scale=0.02)
    grads = random_tree(tree.shapes, seed=3, scale=1e-3)
    txs = {
        "jopt": (contest.jopt, jopt.apply_updates),
        "optax": (contest.optax, optax.apply_updates),
    }

    # Time to first step, one compile at a time; the library order alternates per group.
    first: dict[str, dict[str, float]] = {}
    runners: list[Runner] = []
    for lib in LIBRARIES[::-1] if flip else LIBRARIES:
        tx, apply = txs[lib]
        p = copy_tree(params)
        s = tx.init(p)
        jitted, first[lib] = time_first_step(make_user_step(tx, apply), p, s, grads)
        runners.append(Runner(f"{lib}.jit", jitted, p, s))

    # The other contenders, compiled by their first (untimed) call below.
    for lib in LIBRARIES:
        tx, apply = txs[lib]
        p = copy_tree(params)
        donating = jax.jit(make_user_step(tx, apply), donate_argnums=(0, 1))
        runners.append(Runner(f"{lib}.jit+donate", donating, p, tx.init(p)))
    opt = contest.jopt
    for donate in (False, True):
        p = copy_tree(params)
        runners.append(
            Runner(
                "jopt.apply_gradients" + ("+donate" if donate else ""),
                lambda p, s, g, d=donate: opt.apply_gradients(g, s, p, donate=d),
                p,
                opt.init(p),
            )
        )
    for _ in range(2):  # compiles the rest, then one settled warm-up step each
        for r in runners:
            r.run(grads)

    gc.collect()
    for rep in range(reps):
        shift = rep % len(runners)
        for r in runners[shift:] + runners[:shift]:
            r.times.append(r.run(grads))

    result: dict[str, Any] = {
        "optimizer": contest.name,
        "tree": tree.key,
        "first_step_s": first,
        "step_s": {},
    }
    for r in runners:
        result["step_s"][r.key] = {
            "median": statistics.median(r.times),
            "min": min(r.times),
            "samples": r.times,
            "donation_effective": r.donation_effective,
        }
    return result


# ---- report -----------------------------------------------------------------------------


def _fmt(seconds: float) -> str:
    return f"{seconds * 1e3:8.1f} ms" if seconds < 1.0 else f"{seconds:8.2f} s "


ROWS = (
    # label, jopt key, optax key, note: apply_gradients over jopt's own jit
    ("step", "jopt.jit", "optax.jit", None),
    ("step, donated", "jopt.jit+donate", "optax.jit+donate", None),
    ("apply_gradients", "jopt.apply_gradients", "optax.jit", "jopt.jit"),
    (
        "apply_gradients, donated",
        "jopt.apply_gradients+donate",
        "optax.jit+donate",
        "jopt.jit+donate",
    ),
)


def table(results: list[dict[str, Any]], trees: dict[str, TreeSpec]) -> str:
    """The printed table: absolute times, jopt/optax ratios, apply_gradients overhead."""
    head = (
        f"{'tree':<24} {'optimizer':<8} {'measure':<26} {'jopt':>11} {'optax':>11} "
        f"{'jopt/optax':>10}  note"
    )
    lines = [head, "-" * len(head)]
    ratios: dict[str, list[float]] = {}
    last_tree = None
    for res in results:
        spec = trees[res["tree"]]
        tree_cell = spec.label if res["tree"] != last_tree else ""
        if res["tree"] != last_tree and last_tree is not None:
            lines.append("")
        last_tree = res["tree"]
        opt_cell = res["optimizer"]
        fs = res["first_step_s"]
        for part in ("total", "trace", "lower", "compile", "first_run"):
            label = "first step" if part == "total" else f"  {part.replace('_', ' ')}"
            j, o = fs["jopt"][part], fs["optax"][part]
            lines.append(
                f"{tree_cell:<24} {opt_cell:<8} {label:<26} {_fmt(j)} {_fmt(o)} {j / o:10.2f}"
            )
            ratios.setdefault(label.strip(), []).append(j / o)
            tree_cell = opt_cell = ""
        for label, jk, ok, own in ROWS:
            j, o = res["step_s"][jk]["median"], res["step_s"][ok]["median"]
            note = ""
            if own is not None:
                note = f"x{j / res['step_s'][own]['median']:.2f} of jopt's own jit"
            lines.append(f"{'':<24} {'':<8} {label:<26} {_fmt(j)} {_fmt(o)} {j / o:10.2f}  {note}")
            ratios.setdefault(label, []).append(j / o)
    lines.append("")
    lines.append("geometric mean of jopt/optax over all rows:")
    for label, rs in ratios.items():
        gm = math.exp(sum(math.log(r) for r in rs) / len(rs))
        lines.append(f"  {label:<26} {gm:6.2f}")
    lines += ["", "trees:"]
    lines += [f"  {s.label}: {s.leaves} leaves, {s.params:,} params" for s in trees.values()]
    return "\n".join(line.rstrip() for line in lines)


def main(argv: list[str] | None = None) -> int:
    """Parses arguments, checks agreement, runs every group, prints and writes results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: small trees (default only a), 3 reps"
    )
    parser.add_argument("--json", default="artifacts/step_time.json", help="output path")
    parser.add_argument(
        "--reps", type=int, default=None, help="repetitions (default 30; --quick: 3)"
    )
    parser.add_argument(
        "--trees", default=None, help="comma-separated of a,b,c,d (default all; --quick: a)"
    )
    parser.add_argument(
        "--optimizers",
        default="Adam,SGD,RMSprop",
        help="comma-separated names, or 'all' for every optimizer optax also has",
    )
    args = parser.parse_args(argv)
    reps = args.reps or (3 if args.quick else 30)
    facts = RunFacts()

    wanted = args.optimizers.split(",")
    contests = [c for c in make_contests() if args.optimizers == "all" or c.name in wanted]
    wanted = (args.trees or ("a" if args.quick else "a,b,c,d")).split(",")
    trees = {t.key: t for t in make_trees(args.quick) if t.key in wanted}
    agreement = check_agreement(make_contests())
    print(f"agreement (rtol {RTOL}, max relative error per optimizer):")
    for c in make_contests():
        if c.name in agreement:
            worst = agreement[c.name].items()
            print("  " + c.name + ": " + ", ".join(f"{k} {v:.1e}" for k, v in worst))
        else:
            print(f"  {c.name}: rules differ from optax's; checked against Keras by the tests")

    results = []
    for i, tree in enumerate(trees.values()):
        for k, contest in enumerate(contests):
            t0 = time.perf_counter()
            results.append(bench_group(contest, tree, reps, flip=(i + k) % 2 == 1))
            print(
                f"  {tree.label} / {contest.name}: {time.perf_counter() - t0:.1f} s",
                file=sys.stderr,
                flush=True,
            )
            gc.collect()

    print()
    print(table(results, trees))
    print(facts.footer(f"{reps} repetitions"))

    out = {
        "meta": facts.meta(
            argv,
            quick=args.quick,
            reps=reps,
            first_step="jax.jit(step).trace -> .lower -> .compile -> first call, seconds",
            step="median wall seconds of one step incl. block_until_ready, interleaved",
            ratio="jopt / optax; < 1 means jopt is faster",
        ),
        "agreement": agreement,
        "trees": {
            k: {"label": t.label, "leaves": t.leaves, "params": t.params} for k, t in trees.items()
        },
        "results": results,
    }
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
