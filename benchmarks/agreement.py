"""Correctness before timing: every contender's updates against Keras's rule in NumPy.

A broken or differently configured contender is never benchmarked: :func:`check_agreement`
stops the run (``SystemExit``) if any update differs from the float64 reference by more
than ``RTOL`` relative, with no ``atol``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from contenders import Contest, JaxContender, make_torch_optimizer

RTOL = 1e-5
STEPS = 5
SHAPES = {"dense": {"kernel": (7, 5), "bias": (5,)}, "scale": (3,)}


def _gradients(steps: int) -> list[list[np.ndarray]]:
    """Per step, float32 gradients of ``SHAPES``' leaves: fixed signs, magnitudes in [10, 20].

    No moment then cancels to near zero (where a relative check would measure rounding
    only), and epsilon's placement, the one real difference between the rules, stays far
    below ``RTOL``: Keras adds it to ``sqrt(v)``, optax and torch's Adam to
    ``sqrt(v / (1 - beta_2**t))`` (at most ``eps / (sqrt(1 - beta_2) |g|) ~ 3e-7`` here),
    torch's RMSprop outside the square root (``~eps / sqrt(v) < 1e-7``). What remains is
    float32 arithmetic: Keras (and jopt) round the betas to float32, torch computes its
    bias corrections in float64 (Adam: 7e-6, the largest difference).
    """
    rng = np.random.default_rng(0)
    shapes = jax.tree.leaves(SHAPES, is_leaf=lambda x: isinstance(x, tuple))
    signs = [np.sign(rng.standard_normal(s)) for s in shapes]
    return [
        [(s * rng.uniform(10.0, 20.0, s.shape)).astype(np.float32) for s in signs]
        for _ in range(steps)
    ]


def _reference_updates(contest: Contest, grads: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
    assert contest.reference is not None
    state: list[dict] = [{} for _ in grads[0]]
    out = []
    for t, gs in enumerate(grads, start=1):
        step = []
        for i, g in enumerate(gs):
            u, state[i] = contest.reference(np.asarray(g, np.float64), state[i], t)
            step.append(u)
        out.append(step)
    return out


def _jax_params(built: Any, grads: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
    """The contender's params after each step, from zeros, as float64 leaves."""
    treedef = jax.tree.structure(SHAPES, is_leaf=lambda x: isinstance(x, tuple))
    params = jax.tree.unflatten(treedef, [jnp.zeros(g.shape, jnp.float32) for g in grads[0]])
    pack = built.pack or (lambda x: x)
    unpack = built.unpack or (lambda x: x)
    params = pack(params)
    state = built.init(params)
    step = jax.jit(built.step)
    history = [[np.zeros(g.shape) for g in grads[0]]]
    for gs in grads:
        g = pack(jax.tree.unflatten(treedef, [jnp.asarray(x) for x in gs]))
        params, state = step(params, state, g)
        history.append([np.asarray(x, np.float64) for x in jax.tree.leaves(unpack(params))])
    return history


def _torch_params(contest: Contest, mode: str, grads: list[list[np.ndarray]]) -> Any:
    import torch

    tensors = [torch.zeros(g.shape, dtype=torch.float32) for g in grads[0]]
    opt = make_torch_optimizer(contest, mode, tensors)
    if opt is None:
        return None
    history = [[np.zeros(g.shape) for g in grads[0]]]
    for gs in grads:
        for t, g in zip(tensors, gs, strict=True):
            t.grad = torch.from_numpy(g.copy())
        opt.step()
        history.append([t.detach().numpy().astype(np.float64) for t in tensors])
    return history


def _worst(history: list[list[np.ndarray]], reference: list[list[np.ndarray]]) -> float:
    # Updates as differences of params that start at 0: float32 rounding of params of at
    # most ~10 updates' size costs < 1e-6 of an update, well inside RTOL.
    worst = 0.0
    for t, ref in enumerate(reference, start=1):
        for before, after, r in zip(history[t - 1], history[t], ref, strict=True):
            worst = max(worst, float(np.max(np.abs((after - before) - r) / np.abs(r))))
    return worst


def check_agreement(
    contests: list[Contest],
    jax_contenders: list[JaxContender],
    torch_modes: list[str],
) -> dict[str, Any]:
    """Max relative error of every contender's updates vs Keras's rule; stops on a mismatch.

    For each optimizer with a NumPy reference, on a small nested tree, for ``STEPS``
    steps from zero params, under ``jax.jit`` as timed: every JAX contender's step
    (``pack``/``unpack`` included) and every torch mode's ``opt.step()``.
    """
    report: dict[str, Any] = {"steps": STEPS, "rtol": RTOL, "atol": 0.0}
    grads = _gradients(STEPS)
    treedef = jax.tree.structure(SHAPES, is_leaf=lambda x: isinstance(x, tuple))
    params = jax.tree.unflatten(treedef, [jnp.zeros(g.shape, jnp.float32) for g in grads[0]])
    for contest in contests:
        if contest.reference is None:
            report[contest.name] = "rules differ from optax's; checked against Keras by the tests"
            continue
        reference = _reference_updates(contest, grads)
        worst: dict[str, float] = {}
        for c in jax_contenders:
            built = c.make(contest, params)
            if built is not None:
                worst[c.name] = _worst(_jax_params(built, grads), reference)
        for mode in torch_modes:
            history = _torch_params(contest, mode, grads)
            if history is not None:
                worst[mode] = _worst(history, reference)
        report[contest.name] = worst
        bad = {k: v for k, v in worst.items() if not v <= RTOL}
        if bad:
            raise SystemExit(
                f"{contest.name}: updates differ from Keras's rule beyond rtol={RTOL}: {bad}; "
                "not benchmarking"
            )
    return report
