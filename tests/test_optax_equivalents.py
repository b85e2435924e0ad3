"""The optax table (docs/from-optax.md): where it says "same rule", optax and jopt agree.

optax is the oracle here: each pair gets the same hyperparameters (optax's defaults differ
from Keras's, so they are spelled out) and the shared gradient sequence, and must end
within float32 rounding of each other. Schedules are compared at every step.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt
from tests.problems import make_problem, relative_error

S = jopt.schedules
STEPS = 15
# Float32 rounding, accumulated over the steps: about STEPS * 2**-23 at most.
ROUNDING = 2e-6

SAME_RULE = {
    "sgd": (lambda: optax.sgd(0.1), lambda: jopt.SGD(0.1), ROUNDING),
    "sgd_nesterov": (
        lambda: optax.sgd(0.1, momentum=0.9, nesterov=True),
        lambda: jopt.SGD(0.1, momentum=0.9, nesterov=True),
        ROUNDING,
    ),
    "rmsprop_centered_momentum": (
        lambda: optax.rmsprop(1e-2, decay=0.9, eps=1e-7, centered=True, momentum=0.9),
        lambda: jopt.RMSprop(1e-2, rho=0.9, epsilon=1e-7, centered=True, momentum=0.9),
        ROUNDING,
    ),
    "adagrad": (
        lambda: optax.adagrad(1e-2, initial_accumulator_value=0.1, eps=1e-7),
        lambda: jopt.Adagrad(1e-2),
        ROUNDING,
    ),
    "adadelta": (
        lambda: optax.adadelta(1e-2, rho=0.95, eps=1e-7),
        lambda: jopt.Adadelta(1e-2),
        ROUNDING,
    ),
    "adamax": (lambda: optax.adamax(1e-2, eps=1e-7), lambda: jopt.Adamax(1e-2), ROUNDING),
    "lamb": (lambda: optax.lamb(1e-2, eps=1e-7), lambda: jopt.Lamb(1e-2), ROUNDING),
    # Lion's update is lr * sign(.): one rounding of the product apart.
    "lion": (lambda: optax.lion(1e-3, b1=0.9, b2=0.99), lambda: jopt.Lion(1e-3), 1e-4),
    "schedule_free_adamw": (
        lambda: optax.contrib.schedule_free_adamw(2.5e-3, eps=1e-8),
        lambda: jopt.ScheduleFreeAdamW(2.5e-3, epsilon=1e-8),
        ROUNDING,
    ),
}


def _run(tx: Any) -> list[np.ndarray]:
    """The params after the shared gradient sequence: one compiled scan over the steps."""
    init, grads = make_problem(shapes=((3,), (2, 3)), steps=STEPS)

    def step(carry: Any, g: list[jax.Array]) -> tuple[Any, None]:
        params, state = carry
        updates, state = tx.update(g, state, params)
        return (optax.apply_updates(params, updates), state), None

    params = [jnp.asarray(x) for x in init]
    (params, _), _ = jax.jit(lambda c, gs: jax.lax.scan(step, c, gs))(
        (params, tx.init(params)), [jnp.asarray(g) for g in grads]
    )
    return [np.asarray(p) for p in params]


@pytest.mark.parametrize("name", sorted(SAME_RULE))
def test_same_rule_rows_agree_with_optax(name: str) -> None:
    make_optax, make_jopt, tol = SAME_RULE[name]
    for ours, theirs in zip(_run(make_jopt()), _run(make_optax()), strict=True):
        assert relative_error(ours, theirs) < tol


SCHEDULES = {
    "exponential": (
        lambda: optax.exponential_decay(0.1, 10, 0.5, staircase=True),
        lambda: S.ExponentialDecay(0.1, 10, 0.5, staircase=True),
    ),
    "cosine": (
        lambda: optax.cosine_decay_schedule(0.1, 50, alpha=0.1),
        lambda: S.CosineDecay(0.1, 50, alpha=0.1),
    ),
    "warmup_cosine": (
        lambda: optax.warmup_cosine_decay_schedule(0.0, 0.1, 10, 100, 0.001),
        lambda: S.warmup(S.CosineDecay(0.1, 90, alpha=0.001 / 0.1), 10, start_value=0.0),
    ),
    "linear": (
        lambda: optax.linear_schedule(0.1, 0.01, 40),
        lambda: S.PolynomialDecay(0.1, 40, end_learning_rate=0.01),
    ),
    "polynomial": (
        lambda: optax.polynomial_schedule(0.1, 0.01, 2.0, 40),
        lambda: S.PolynomialDecay(0.1, 40, end_learning_rate=0.01, power=2.0),
    ),
    "join_constant": (
        lambda: optax.join_schedules(
            [optax.constant_schedule(0.1), optax.exponential_decay(0.1, 10, 0.5)], [50]
        ),
        lambda: S.join([S.constant(0.1), S.ExponentialDecay(0.1, 10, 0.5)], [50]),
    ),
}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_same_schedule_rows_agree_with_optax(name: str) -> None:
    make_optax, make_jopt = SCHEDULES[name]
    steps = jnp.arange(150)
    np.testing.assert_allclose(
        jax.vmap(make_jopt())(steps), jax.vmap(make_optax())(steps), rtol=1e-6, atol=1e-8
    )
