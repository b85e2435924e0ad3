"""How close a step over a tree of separate params can get: jopt and optax against floors.

Run from the repository root (about 1 minute on 2 CPU cores)::

    python benchmarks/leaf_floor.py            # the 64-, 1000- and 2000-leaf trees
    python benchmarks/leaf_floor.py --quick    # smoke run: small trees, 3 repetitions

A user's params are separate arrays, so a step that returns them writes one buffer per
leaf. In one process, for each tree of ``trees.py`` (equal 1-D float32 leaves), jitted
with params and state donated, one step each per repetition in a rotated order:

* ``floor.call``: returns the (donated) params untouched: the cost of calling a jitted
  function on params and grads (flattening, one buffer per leaf in and out), no kernel;
* ``floor.per_leaf``: ``p - 0.01 * g`` per leaf, one kernel per leaf: no optimizer whose
  params are separate leaves does less work per step;
* ``floor.flat``: the same update on one flat buffer of the same bytes (what
  ``jopt.layout.pack`` gives): the memory-traffic floor;
* ``jopt`` (default layout) and ``optax``: step_time's SGD (momentum 0.9) and Adam, each
  as a user's ``update`` + ``apply_updates``.

Prints each median step and its ratio to optax's step for the same optimizer.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from contenders import Contest, make_contests, user_step
from step_time import Runner, time_rotated
from trees import make_trees, random_tree

import jopt

PyTree = Any
Step = Callable[[PyTree, PyTree, PyTree], tuple[PyTree, PyTree]]


def floors(params: PyTree) -> dict[str, tuple[Step, PyTree, PyTree]]:
    """name -> (step, params, state) for the three floors."""
    flat = jnp.concatenate([jnp.ravel(x) for x in jax.tree.leaves(params)])
    return {
        "floor.call": (lambda p, s, g: (p, s), params, ()),
        "floor.per_leaf": (
            lambda p, s, g: (jax.tree.map(lambda a, b: a - 0.01 * b, p, g), s),
            params,
            (),
        ),
        "floor.flat": (lambda p, s, g: (p - 0.01 * g, s), flat, ()),
    }


def contenders(params: PyTree, contest: Contest) -> dict[str, tuple[Step, PyTree, PyTree]]:
    """``jopt`` and ``optax`` for one of step_time's contests: name -> (step, params, state)."""
    jo, ox, name = contest.jopt, contest.optax, contest.name
    return {
        f"jopt {name}": (user_step(jo, jopt.apply_updates), params, jo.init(params)),
        f"optax {name}": (user_step(ox, optax.apply_updates), params, ox.init(params)),
    }


def runner(key: str, step: Step, params: PyTree, state: PyTree) -> Runner:
    grads = jax.tree.map(lambda x: 1e-3 * x, params)
    # The jit itself, not its ``Compiled``: calling that takes a slower Python path.
    jitted = jax.jit(step, donate_argnums=(0, 1))
    carry = [jax.tree.map(jnp.copy, params), jax.tree.map(jnp.copy, state)]

    def run() -> None:
        carry[0], carry[1] = jitted(carry[0], carry[1], grads)
        jax.block_until_ready(carry[0])

    return Runner(key, run)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: small trees, 3 reps")
    parser.add_argument("--reps", type=int, default=None)
    args = parser.parse_args(argv)
    reps = args.reps or (3 if args.quick else 30)
    wanted = ("64", "1000") if args.quick else ("64", "1000", "2000")
    contests = [c for c in make_contests() if c.name in ("SGD", "Adam")]
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; median of {reps} steps")
    for tree in (t for t in make_trees(args.quick) if t.key in wanted):
        params = random_tree(tree.shapes, seed=0, scale=1.0)
        cases = floors(params)
        for contest in contests:
            cases.update(contenders(params, contest))
        runners = [runner(k, *case) for k, case in cases.items()]
        result: dict[str, Any] = {"step_s": {}}
        time_rotated(runners, reps, {}, result)
        median = {k: v["median"] for k, v in result["step_s"].items()}
        print(f"\n{tree.label}")
        for key, seconds in median.items():
            ratios = [f"{seconds / median[f'optax {n}']:.2f}x optax {n}" for n in ("SGD", "Adam")]
            shown = ratios if key.startswith("floor") else [ratios[key.endswith("Adam")]]
            print(f"  {key:16s} {seconds * 1e3:8.2f} ms   {', '.join(shown)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
