"""The catalogue beyond Keras (RAdam, AdaBelief, Yogi, LARS, Adan, ADOPT, AdEMAMix,
Prodigy, Rprop, SignSGD): each against its reference run live, optax's (torch's where
optax has none or is wrong), for 25 steps on leaves of rank 0 to 4: jopt eagerly and
under ``jax.jit``, each within 1e-6 relative of the reference compiled (optax under
``jax.jit``; torch as it runs).

Why compiled: optax's eager ``beta ** count`` (an integer exponent) rounds differently
from its compiled one (``0.999 ** 6``: 0.9940151 eagerly, 0.99401504 compiled), and
RAdam's rectifier amplifies that to 8e-6 between optax's own eager and jit runs. jopt
computes the same bits eagerly and compiled, equal to optax's compiled numbers.

The gradients are those of a quadratic plus fixed noise, computed from each run's own
params in float32 by the same elementwise arithmetic, so Prodigy's estimate grows and
the sign-based rules see signs change.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

import jopt

STEPS = 25
RTOL = 1e-6
SHAPES = {"r0": (), "r1": (3,), "r2": (2, 3), "r3": (2, 1, 3), "r4": (1, 2, 2, 2)}

_rng = np.random.default_rng(17)
PARAMS = {
    k: (_rng.choice([-1.0, 1.0], s) * _rng.uniform(0.5, 1.5, s)).astype(np.float32)
    for k, s in SHAPES.items()
}
TARGET = {
    k: (2.0 * np.sign(v) + _rng.uniform(-0.3, 0.3, v.shape)).astype(np.float32)
    for k, v in PARAMS.items()
}
NOISE = [
    {k: _rng.normal(0.0, 0.3, s).astype(np.float32) for k, s in SHAPES.items()}
    for _ in range(STEPS)
]


def grads_at(params: dict[str, Any], t: int, xp: Any = jnp) -> dict[str, Any]:
    """``(w - target) + noise_t``, in float32, with ``xp``'s arithmetic (jnp or numpy)."""
    return {k: (params[k] - xp.asarray(TARGET[k])) + xp.asarray(NOISE[t][k]) for k in params}


def run_optax(tx: Any) -> list[dict[str, np.ndarray]]:
    params = {k: jnp.asarray(v) for k, v in PARAMS.items()}
    update = jax.jit(tx.update)
    state, path = tx.init(params), []
    for t in range(STEPS):
        updates, state = update(grads_at(params, t), state, params)
        params = optax.apply_updates(params, updates)
        path.append(jax.tree.map(np.asarray, params))
    return path


def run_torch(make: Callable[[list[torch.Tensor]], Any]) -> list[dict[str, np.ndarray]]:
    tensors = {k: torch.tensor(v, requires_grad=True) for k, v in PARAMS.items()}
    opt, path = make(list(tensors.values())), []
    for t in range(STEPS):
        current = {k: x.detach().numpy() for k, x in tensors.items()}
        for k, g in grads_at(current, t, np).items():
            tensors[k].grad = torch.tensor(np.asarray(g, np.float32))
        opt.step()
        path.append({k: x.detach().numpy().copy() for k, x in tensors.items()})
    return path


def run_jopt(opt: jopt.Optimizer, jit: bool) -> list[dict[str, np.ndarray]]:
    params = {k: jnp.asarray(v) for k, v in PARAMS.items()}
    update = jax.jit(opt.update) if jit else opt.update
    state, path = opt.init(params), []
    for t in range(STEPS):
        updates, state = update(grads_at(params, t), state, params)
        params = jopt.apply_updates(params, updates)
        path.append(jax.tree.map(np.asarray, params))
    return path


def optax_ref(tx: Any) -> Callable[[], list[dict[str, np.ndarray]]]:
    return functools.cache(lambda: run_optax(tx))  # one run serves eager and jit


def torch_ref(make: Callable[[list[torch.Tensor]], Any]) -> Callable[[], Any]:
    return functools.cache(lambda: run_torch(make))


# (jopt optimizer, its reference): one row per rule and per option that changes it.
CASES: list[tuple[str, jopt.Optimizer, Callable[[], Any]]] = [
    ("RAdam", jopt.RAdam(0.05), optax_ref(optax.radam(0.05))),
    (
        "RAdam-nesterov",
        jopt.RAdam(0.05, beta_2=0.99, epsilon=1e-6, nesterov=True),
        optax_ref(optax.radam(0.05, b2=0.99, eps=1e-6, nesterov=True)),
    ),
    ("AdaBelief", jopt.AdaBelief(0.05), optax_ref(optax.adabelief(0.05))),
    (
        "AdaBelief-nesterov",
        jopt.AdaBelief(0.05, beta_1=0.8, epsilon=1e-8, epsilon_root=1e-10, nesterov=True),
        optax_ref(optax.adabelief(0.05, b1=0.8, eps=1e-8, eps_root=1e-10, nesterov=True)),
    ),
    ("Yogi", jopt.Yogi(0.05), optax_ref(optax.yogi(0.05))),
    ("LARS", jopt.LARS(10.0), optax_ref(optax.lars(10.0))),
    (
        "LARS-nesterov-decay",
        jopt.LARS(10.0, momentum=0.8, nesterov=True, epsilon=1e-3, coupled_weight_decay=0.05),
        optax_ref(optax.lars(10.0, momentum=0.8, nesterov=True, eps=1e-3, weight_decay=0.05)),
    ),
    ("Adan", jopt.Adan(0.05), optax_ref(optax.adan(0.05))),
    (
        "Adan-weight_decay",
        jopt.Adan(0.05, beta_2=0.8, weight_decay=0.05),
        optax_ref(optax.adan(0.05, b2=0.8, weight_decay=0.05)),
    ),
    ("ADOPT", jopt.ADOPT(0.05), optax_ref(optax.contrib.adopt(0.05))),
    (
        "ADOPT-nesterov-unclipped",
        jopt.ADOPT(0.05, beta_2=0.99, nesterov=True, use_clipping=False),
        optax_ref(optax.contrib.adopt(0.05, b2=0.99, nesterov=True, use_clipping=False)),
    ),
    ("AdEMAMix", jopt.AdEMAMix(0.05), optax_ref(optax.contrib.ademamix(0.05))),
    (
        "AdEMAMix-weight_decay",
        jopt.AdEMAMix(0.05, beta_3=0.99, alpha=2.0, weight_decay=0.05),
        optax_ref(optax.contrib.ademamix(0.05, b3=0.99, alpha=2.0, weight_decay=0.05)),
    ),
    ("Prodigy", jopt.Prodigy(), optax_ref(optax.contrib.prodigy())),
    (
        "Prodigy-decay-safeguard",
        jopt.Prodigy(2.0, beta_3=0.9, d0=1e-3, adaptive_weight_decay=0.05, safeguard_warmup=True),
        optax_ref(
            optax.contrib.prodigy(
                2.0, beta3=0.9, estim_lr0=1e-3, weight_decay=0.05, safeguard_warmup=True
            )
        ),
    ),
    ("Rprop", jopt.Rprop(0.01), torch_ref(lambda p: torch.optim.Rprop(p, lr=0.01))),
    (
        "Rprop-bounds",
        jopt.Rprop(0.1, eta_minus=0.3, eta_plus=1.5, min_step_size=0.02, max_step_size=0.2),
        torch_ref(lambda p: torch.optim.Rprop(p, lr=0.1, etas=(0.3, 1.5), step_sizes=(0.02, 0.2))),
    ),
    ("SignSGD", jopt.SignSGD(0.05), optax_ref(optax.sign_sgd(0.05))),
    ("Signum", jopt.SignSGD(0.05, momentum=0.9), optax_ref(optax.signum(0.05, 0.9))),
]


def worst_relative_error(path: list[Any], ref: list[Any]) -> float:
    return max(
        float(np.max(np.abs(a[k] - b[k]) / np.abs(b[k])))
        for a, b in zip(path, ref, strict=True)
        for k in a
    )


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("opt, reference", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_matches_its_reference_for_25_steps(opt: Any, reference: Any, jit: bool) -> None:
    path, ref = run_jopt(opt, jit), reference()
    assert len(path) == STEPS
    assert all(np.isfinite(x).all() for p in ref for x in p.values())
    err = worst_relative_error(path, ref)
    moved = worst_relative_error(ref[-1:], [PARAMS])  # the run goes somewhere
    assert moved > 1e-3, moved
    assert err <= RTOL, f"worst relative error {err:.2e} over {STEPS} steps"


def first_step_with(bad: float, opt: Any, reference: Any) -> tuple[list[Any], list[Any]]:
    """One step from PARAMS with element [0, 1] of the rank-2 gradient set to ``bad``:
    jopt's new params and the reference's, leaf by leaf."""
    grads = {k: np.asarray(v) for k, v in grads_at(PARAMS, 0, np).items()}
    grads["r2"] = grads["r2"].copy()
    grads["r2"][0, 1] = bad
    params = {k: jnp.asarray(v) for k, v in PARAMS.items()}
    new, _ = opt.apply({k: jnp.asarray(v) for k, v in grads.items()}, opt.init(params), params)
    return [np.asarray(new[k]) for k in SHAPES], reference(grads)


def optax_one_step(tx: Any) -> Callable[[dict[str, np.ndarray]], list[np.ndarray]]:
    def step(grads: dict[str, np.ndarray]) -> list[np.ndarray]:
        params = {k: jnp.asarray(v) for k, v in PARAMS.items()}
        updates, _ = tx.update(
            {k: jnp.asarray(v) for k, v in grads.items()}, tx.init(params), params
        )
        new = optax.apply_updates(params, updates)
        return [np.asarray(new[k]) for k in SHAPES]

    return step


def torch_one_step(make: Callable[[list[torch.Tensor]], Any]) -> Callable[[Any], list[Any]]:
    def step(grads: dict[str, np.ndarray]) -> list[np.ndarray]:
        tensors = [torch.tensor(PARAMS[k], requires_grad=True) for k in SHAPES]
        for x, k in zip(tensors, SHAPES, strict=True):
            x.grad = torch.tensor(grads[k])
        make(tensors).step()
        return [x.detach().numpy() for x in tensors]

    return step


# One row per class (one eager step each): a NaN or +Inf in one gradient element reaches
# the same params as in its reference (that element; its leaf for LARS's norms; every
# leaf for Prodigy's sums; none for Rprop, whose sign(NaN) is 0 in torch).
NON_FINITE = [
    ("RAdam", jopt.RAdam(0.05), optax_one_step(optax.radam(0.05))),
    ("AdaBelief", jopt.AdaBelief(0.05), optax_one_step(optax.adabelief(0.05))),
    ("Yogi", jopt.Yogi(0.05), optax_one_step(optax.yogi(0.05))),
    ("LARS", jopt.LARS(10.0), optax_one_step(optax.lars(10.0))),
    ("Adan", jopt.Adan(0.05), optax_one_step(optax.adan(0.05))),
    ("ADOPT", jopt.ADOPT(0.05), optax_one_step(optax.contrib.adopt(0.05))),
    ("AdEMAMix", jopt.AdEMAMix(0.05), optax_one_step(optax.contrib.ademamix(0.05))),
    ("Prodigy", jopt.Prodigy(), optax_one_step(optax.contrib.prodigy())),
    ("Rprop", jopt.Rprop(0.01), torch_one_step(lambda p: torch.optim.Rprop(p, lr=0.01))),
    ("Signum", jopt.SignSGD(0.05, momentum=0.9), optax_one_step(optax.signum(0.05, 0.9))),
]


@pytest.mark.parametrize(
    "opt, reference", [c[1:] for c in NON_FINITE], ids=[c[0] for c in NON_FINITE]
)
def test_a_non_finite_gradient_reaches_the_params_its_reference_reaches(
    opt: Any, reference: Any
) -> None:
    for bad in (np.nan, np.inf):
        got, expected = first_step_with(bad, opt, reference)
        for a, b in zip(got, expected, strict=True):
            np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
            np.testing.assert_array_equal(np.isinf(a), np.isinf(b))
