"""Every schedule at and around each of its boundaries, compiled, against float64 NumPy.

Under ``jax.jit`` XLA rewrites ``step / c`` for a constant ``c`` as ``step * (1 / c)``
(and may fuse ``1 - step * (1 / c)`` into an FMA), so at an exact multiple of ``c`` the
quotient lands an ulp off: ``(1 - p) ** 0.5`` of -1.5e-8 was NaN in ``PolynomialDecay``
(issue 14), ``floor`` gave ``k - 1`` in a staircase, a restart came a step late. Keras's
own schedules share the hazard under jit; its tests (eager) expect the exact values,
which these closed forms give: each case is evaluated at ``boundary - 1``, ``boundary``,
``boundary + 1`` and far past, with decay steps and powers chosen to hit the hazard
(10 and 30 round ``1 - p`` below 0, 25 above, 41 and 61 floor below).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jopt import schedules as S


def np_exponential(c: dict[str, Any], t: np.ndarray) -> np.ndarray:
    p = t / c["decay_steps"]
    p = np.floor(p) if c.get("staircase") else p
    return c["initial_learning_rate"] * c["decay_rate"] ** p


def np_inverse_time(c: dict[str, Any], t: np.ndarray) -> np.ndarray:
    p = t / c["decay_steps"]
    p = np.floor(p) if c.get("staircase") else p
    return c["initial_learning_rate"] / (1 + c["decay_rate"] * p)


def np_polynomial(c: dict[str, Any], t: np.ndarray) -> np.ndarray:
    d, end, power = c["decay_steps"], c.get("end_learning_rate", 1e-4), c.get("power", 1.0)
    if c.get("cycle"):
        d = d * np.where(t == 0, 1, np.ceil(t / d))
    else:
        t = np.minimum(t, d)
    return (c["initial_learning_rate"] - end) * (1 - t / d) ** power + end


def np_cosine(c: dict[str, Any], t: np.ndarray) -> np.ndarray:
    d, alpha, peak = c["decay_steps"], c.get("alpha", 0.0), c["initial_learning_rate"]
    w, target = c.get("warmup_steps", 0), c.get("warmup_target")
    if target is None:
        t = np.minimum(t, d)
        return peak * ((1 - alpha) * 0.5 * (1 + np.cos(np.pi * t / d)) + alpha)
    t = np.minimum(t, d + w)
    decayed = target * ((1 - alpha) * 0.5 * (1 + np.cos(np.pi * (t - w) / d)) + alpha)
    return np.where(t < w, peak + (target - peak) * t / max(w, 1), decayed)


def np_restarts(c: dict[str, Any], t: np.ndarray) -> np.ndarray:
    first, t_mul = c["first_decay_steps"], c.get("t_mul", 2.0)
    m_mul, alpha = c.get("m_mul", 1.0), c.get("alpha", 0.0)
    out = []
    for step in t:
        i, start, length = 0, 0.0, float(first)
        while step >= start + length:  # exact period arithmetic in float64
            i, start, length = i + 1, start + length, length * t_mul
        f = (step - start) / length
        out.append(
            c["initial_learning_rate"]
            * ((1 - alpha) * 0.5 * m_mul**i * (1 + math.cos(math.pi * f)) + alpha)
        )
    return np.array(out)


def np_piecewise(c: dict[str, Any], t: np.ndarray) -> np.ndarray:
    return np.array([c["values"][int(np.searchsorted(c["boundaries"], s, "left"))] for s in t])


def restarts_starts(first: float, t_mul: float, n: int) -> list[float]:
    starts, start = [], 0.0
    for i in range(n):
        start += first * t_mul**i
        starts.append(start)
    return starts


# (class, config, float64 closed form, boundaries)
CASES: list[tuple[str, dict[str, Any], Callable[..., np.ndarray], list[float]]] = []
for d in (10, 25, 30, 41, 7.5):
    mults = [d * k for k in (1, 2, 3, 7)]
    for power in (0.5, 2.0):
        for cycle in (False, True):
            config = dict(
                initial_learning_rate=0.05,
                decay_steps=d,
                end_learning_rate=0.001,
                power=power,
                cycle=cycle,
            )
            CASES.append(("PolynomialDecay", config, np_polynomial, mults))
    for staircase in (False, True):
        config = dict(initial_learning_rate=0.1, decay_steps=d, decay_rate=0.5, staircase=staircase)
        CASES.append(("ExponentialDecay", config, np_exponential, mults))
        config = dict(initial_learning_rate=0.1, decay_steps=d, decay_rate=0.5, staircase=staircase)
        CASES.append(("InverseTimeDecay", config, np_inverse_time, mults))
    CASES.append(
        ("CosineDecay", dict(initial_learning_rate=0.1, decay_steps=d, alpha=0.1), np_cosine, [d])
    )
    config = dict(
        initial_learning_rate=0.0, decay_steps=d, alpha=0.1, warmup_target=0.2, warmup_steps=d
    )
    CASES.append(("CosineDecay", config, np_cosine, [d, 2 * d]))
for first, t_mul in ((10, 1.0), (41, 1.0), (61, 2.0), (41, 2.0), (7, 3.0), (10, 1.5), (7.5, 1.0)):
    config = dict(initial_learning_rate=0.1, first_decay_steps=first, t_mul=t_mul, m_mul=0.5)
    CASES.append(("CosineDecayRestarts", config, np_restarts, restarts_starts(first, t_mul, 4)))
for bounds in ([10, 41], [2.5, 7.5]):
    config = dict(boundaries=bounds, values=[0.3, 0.2, 0.1])
    CASES.append(("PiecewiseConstantDecay", config, np_piecewise, bounds))
IDS = [f"{name}-{'-'.join(f'{v}' for v in c.values())}" for name, c, _, _ in CASES]


def boundary_steps(name: str, config: dict[str, Any], boundaries: list[float]) -> list[int]:
    steps = {0}
    for b in boundaries:
        steps |= {math.floor(b) - 1, math.floor(b), math.ceil(b), math.ceil(b) + 1}
    if name == "PolynomialDecay" and config["cycle"]:
        # Far past, at an exact period end and after it (float32 cannot resolve
        # step / decay_steps within a period that far out, in Keras either).
        far = math.ceil(1000 * config["decay_steps"])
        steps |= {far, far + 1} if far == 1000 * config["decay_steps"] else set()
    elif name == "CosineDecayRestarts":
        steps |= {
            int(s)
            for s in restarts_starts(config["first_decay_steps"], config["t_mul"], 12)
            if s == int(s) and s < 2**24
        }
    else:
        steps |= {10**6, 2**31 - 1}
    return sorted(s for s in steps if s >= 0)


@pytest.mark.parametrize(("name", "config", "closed_form", "boundaries"), CASES, ids=IDS)
def test_compiled_schedule_is_right_at_and_around_every_boundary(
    name: str,
    config: dict[str, Any],
    closed_form: Callable[..., np.ndarray],
    boundaries: list[float],
) -> None:
    schedule = getattr(S, name)(**config)
    steps = boundary_steps(name, config, boundaries)
    expected = closed_form(config, np.asarray(steps, np.float64))
    jitted = np.asarray(jax.jit(jax.vmap(schedule))(jnp.asarray(steps, jnp.int32)))
    scalar = jax.jit(schedule)
    one_by_one = np.array([float(scalar(jnp.int32(s))) for s in steps])
    eager = np.array([float(schedule(s)) for s in steps])
    for how, got in (("jit(vmap)", jitted), ("jit", one_by_one), ("eager", eager)):
        assert np.isfinite(got).all(), (
            f"{how}: non-finite at steps {np.asarray(steps)[~np.isfinite(got)]}"
        )
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-9, err_msg=f"{how} at {steps}")


def test_polynomial_decay_fractional_power_at_the_end_under_jit() -> None:
    # The reproduction; Keras's own test expects 0.001 there.
    schedule = S.PolynomialDecay(0.05, 10, 0.001, power=0.5)
    for step in (10, 11, 100):
        assert float(jax.jit(schedule)(step)) == pytest.approx(0.001, rel=1e-6)
    assert float(jax.jit(jax.grad(schedule))(10.0)) == 0.0
