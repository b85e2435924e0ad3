"""PyTorch's schedulers against torch run live; WarmupStableDecay against NumPy; plot.

torch's ``get_last_lr()`` after ``t`` calls of ``scheduler.step()`` is the oracle for
jopt's ``schedule(t)``, at every step from 0 to past the end, eager, jitted, vmapped,
broadcast and with float steps, within 1e-6 relative. Values below float32's smallest
normal number (a rate decayed 40 times by 0.1) are compared absolutely: float32 flushes
them to 0 or a subnormal.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import pytest
import torch

import jopt
from jopt import schedules as S

matplotlib.use("Agg")

L = torch.optim.lr_scheduler
TINY = float(np.finfo(np.float32).tiny)
RTOL = 1e-6
I32_MAX = 2**31 - 1


def torch_rates(make: Callable[[torch.optim.Optimizer], Any], steps: int) -> np.ndarray:
    """``get_last_lr()`` after 0, 1, ..., ``steps`` scheduler steps (float64)."""
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=0.1)
    scheduler = make(opt)
    rates = [scheduler.get_last_lr()[0]]
    for _ in range(steps):
        opt.step()
        scheduler.step()
        rates.append(scheduler.get_last_lr()[0])
    return np.asarray(rates, np.float64)


def relative_errors(actual: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """|a - e| / |e| where e is a normal float32 number; 0 where both are below it."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    normal = np.abs(expected) >= TINY
    err = np.where(normal, np.abs(actual - expected) / np.where(normal, np.abs(expected), 1), 0)
    return np.where(~normal & (np.abs(actual) >= 2 * TINY), np.inf, err)


def sampled(steps: np.ndarray, n: int = 40) -> np.ndarray:
    """At most ``n`` of ``steps``: both ends and an even spread (op-by-op modes are slow;
    the compiled modes check every step)."""
    if len(steps) <= n:
        return steps
    spread = np.linspace(0, len(steps) - 1, n // 2).astype(int)
    return np.unique(np.r_[steps[: n // 4], steps[-n // 4 :], steps[spread]])


def evaluate(schedule: Any, steps: np.ndarray, mode: str) -> np.ndarray:
    """The schedule at ``steps`` in one of the ways a user calls it: ``eager`` (one
    Python int at a time) and ``vmap`` (op by op) on a sample of the steps; ``jit``
    (a vmapped step), ``array`` (one compiled call on the array, broadcasting) and
    ``float`` (float32 steps) on all of them."""
    if mode == "eager":
        return np.array([float(schedule(int(t))) for t in steps])
    if mode == "jit":
        return np.asarray(jax.jit(jax.vmap(schedule))(jnp.asarray(steps)))
    if mode == "vmap":
        return np.asarray(jax.vmap(schedule)(jnp.asarray(steps)))
    if mode == "array":
        return np.asarray(jax.jit(schedule)(jnp.asarray(steps)))
    assert mode == "float"
    return np.asarray(jax.jit(schedule)(jnp.asarray(steps, jnp.float32)))


def steps_for(mode: str, steps: np.ndarray) -> np.ndarray:
    return sampled(steps) if mode in ("eager", "vmap") else steps


# (id, torch scheduler, jopt schedule, the last step torch computes): every case runs
# from step 0 to that step; OneCycle's torch stops at total_steps (checked apart below).
TORCH_CASES: list[tuple[str, Callable[[Any], Any], Any, int]] = [
    (
        "OneCycle-cos",
        lambda o: L.OneCycleLR(o, 0.1, total_steps=100, cycle_momentum=False),
        S.OneCycle(0.1, 100),
        99,
    ),
    (
        "OneCycle-linear",
        lambda o: L.OneCycleLR(
            o, 0.1, total_steps=100, anneal_strategy="linear", cycle_momentum=False
        ),
        S.OneCycle(0.1, 100, anneal_strategy="linear"),
        99,
    ),
    (
        "OneCycle-three-phase",
        lambda o: L.OneCycleLR(
            o, 0.1, total_steps=37, pct_start=0.25, three_phase=True, cycle_momentum=False
        ),
        S.OneCycle(0.1, 37, pct_start=0.25, three_phase=True),
        36,
    ),
    (
        "OneCycle-three-phase-linear",
        lambda o: L.OneCycleLR(
            o,
            2.0,
            total_steps=50,
            pct_start=0.4,
            anneal_strategy="linear",
            div_factor=10.0,
            final_div_factor=100.0,
            three_phase=True,
            cycle_momentum=False,
        ),
        S.OneCycle(
            2.0,
            50,
            pct_start=0.4,
            anneal_strategy="linear",
            div_factor=10.0,
            final_div_factor=100.0,
            three_phase=True,
        ),
        49,
    ),
    # 0.29 * 100 - 1 is 27.999999999999996 in float64 and 28.0 in float32: step 28 is
    # torch's second phase and jopt's first, which agree there (the peak).
    (
        "OneCycle-pct-0.29",
        lambda o: L.OneCycleLR(o, 0.1, total_steps=100, pct_start=0.29, cycle_momentum=False),
        S.OneCycle(0.1, 100, pct_start=0.29),
        99,
    ),
    (
        "OneCycle-pct-0",
        lambda o: L.OneCycleLR(o, 0.1, total_steps=20, pct_start=0.0, cycle_momentum=False),
        S.OneCycle(0.1, 20, pct_start=0.0),
        19,
    ),
    (
        "OneCycle-1-step",
        lambda o: L.OneCycleLR(o, 0.1, total_steps=1, cycle_momentum=False),
        S.OneCycle(0.1, 1),
        0,
    ),
    (
        "OneCycle-long",
        lambda o: L.OneCycleLR(o, 3e-4, total_steps=5000, cycle_momentum=False),
        S.OneCycle(3e-4, 5000),
        4999,
    ),
    (
        "CyclicLR-triangular",
        lambda o: L.CyclicLR(o, 0.01, 0.1, step_size_up=5, step_size_down=3, cycle_momentum=False),
        S.CyclicLR(0.01, 0.1, step_size_up=5, step_size_down=3),
        60,
    ),
    (
        "CyclicLR-triangular-default-down",
        lambda o: L.CyclicLR(o, 0.001, 0.006, step_size_up=4, cycle_momentum=False),
        S.CyclicLR(0.001, 0.006, step_size_up=4),
        50,
    ),
    (
        "CyclicLR-triangular2",
        lambda o: L.CyclicLR(
            o, 0.01, 0.1, step_size_up=5, mode="triangular2", cycle_momentum=False
        ),
        S.CyclicLR(0.01, 0.1, step_size_up=5, mode="triangular2"),
        200,
    ),
    (
        "CyclicLR-exp-range",
        lambda o: L.CyclicLR(
            o, 0.0, 0.1, step_size_up=7, mode="exp_range", gamma=0.97, cycle_momentum=False
        ),
        S.CyclicLR(0.0, 0.1, step_size_up=7, mode="exp_range", gamma=0.97),
        600,
    ),
    (
        "CyclicLR-exp-range-long",
        lambda o: L.CyclicLR(
            o, 1e-4, 1e-2, step_size_up=500, mode="exp_range", gamma=0.9995, cycle_momentum=False
        ),
        S.CyclicLR(1e-4, 1e-2, step_size_up=500, mode="exp_range", gamma=0.9995),
        5000,
    ),
    (
        "CyclicLR-float-sizes",
        lambda o: L.CyclicLR(
            o, 0.01, 0.1, step_size_up=2.5, step_size_down=4.5, cycle_momentum=False
        ),
        S.CyclicLR(0.01, 0.1, step_size_up=2.5, step_size_down=4.5),
        60,
    ),
    ("StepDecay", lambda o: L.StepLR(o, 7), S.StepDecay(0.1, 7), 300),
    ("StepDecay-0.9", lambda o: L.StepLR(o, 1, gamma=0.9), S.StepDecay(0.1, 1, gamma=0.9), 1000),
    ("StepDecay-gamma-1", lambda o: L.StepLR(o, 3, gamma=1.0), S.StepDecay(0.1, 3, 1.0), 30),
    ("StepDecay-gamma-0", lambda o: L.StepLR(o, 3, gamma=0.0), S.StepDecay(0.1, 3, 0.0), 30),
    (
        "MultiStepDecay",
        lambda o: L.MultiStepLR(o, [30, 80]),
        S.MultiStepDecay(0.1, [30, 80]),
        120,
    ),
    (
        "MultiStepDecay-repeated-and-0",
        lambda o: L.MultiStepLR(o, [0, 5, 5, 20], gamma=0.5),
        S.MultiStepDecay(0.1, [0, 5, 5, 20], gamma=0.5),
        40,
    ),
    ("MultiStepDecay-none", lambda o: L.MultiStepLR(o, []), S.MultiStepDecay(0.1, []), 10),
    (
        "MultiStepDecay-20",
        lambda o: L.MultiStepLR(o, list(range(3, 63, 3)), gamma=0.7),
        S.MultiStepDecay(0.1, list(range(3, 63, 3)), gamma=0.7),
        80,
    ),
]
TORCH_IDS = [c[0] for c in TORCH_CASES]
MODES = ["eager", "jit", "vmap", "array", "float"]


def torch_expected(case_id: str) -> np.ndarray:
    if case_id not in _EXPECTED:
        _, make, _, last = TORCH_CASES[TORCH_IDS.index(case_id)]
        _EXPECTED[case_id] = torch_rates(make, last)
    return _EXPECTED[case_id]


_EXPECTED: dict[str, np.ndarray] = {}


def worst_torch_error(case_id: str, mode: str) -> float:
    """The worst relative error of a case against torch (for tests/lr_control_report.py)."""
    schedule = TORCH_CASES[TORCH_IDS.index(case_id)][2]
    expected = torch_expected(case_id)
    steps = steps_for(mode, np.arange(len(expected)))
    return float(relative_errors(evaluate(schedule, steps, mode), expected[steps]).max())


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case_id", TORCH_IDS)
def test_every_step_equals_torch(case_id: str, mode: str) -> None:
    assert worst_torch_error(case_id, mode) <= RTOL


@pytest.mark.parametrize("case_id", [i for i in TORCH_IDS if i.startswith("OneCycle")])
def test_one_cycle_holds_its_last_rate_past_the_end(case_id: str) -> None:
    """torch extrapolates its last phase at step total_steps and raises after it; jopt
    stays at step total_steps - 1's rate, never negative."""
    _, make, schedule, last = TORCH_CASES[TORCH_IDS.index(case_id)]
    after = np.array([last + 1, last + 2, 10 * (last + 1), 10**6, I32_MAX])
    for mode in ("eager", "jit", "float"):
        np.testing.assert_array_equal(evaluate(schedule, after, mode), float(schedule(last)))
    with pytest.raises(ValueError, match="Tried to step"):
        torch_rates(make, last + 2)
    # torch's linear extrapolation at total_steps falls below its minimum, even below 0.
    linear = S.OneCycle(0.1, 10, anneal_strategy="linear")
    at_end = torch_rates(lambda o: L.OneCycleLR(o, 0.1, 10, anneal_strategy="linear"), 10)[-1]
    assert at_end < 0 < float(linear(10)) == float(linear(9))


def test_one_cycle_zero_length_phase_gives_its_end_value() -> None:
    """pct_start * total_steps = 1: the first phase is the single step 0, where torch
    divides 0 by 0; jopt gives the phase's end value, the peak."""
    with pytest.raises(ZeroDivisionError):
        torch_rates(lambda o: L.OneCycleLR(o, 0.1, total_steps=10, pct_start=0.1), 0)
    s = S.OneCycle(0.1, 10, pct_start=0.1)
    assert float(s(0)) == pytest.approx(0.1, rel=1e-7)
    # Then the second phase, from step 0 to 9, by torch's own annealing function.
    expected = [L.OneCycleLR._annealing_cos(0.1, 0.1 / 25 / 1e4, t / 9) for t in range(10)]
    assert relative_errors(evaluate(s, np.arange(10), "jit"), np.array(expected)).max() <= RTOL


# torch schedulers that Keras's schedules already give, in Keras's float32 arithmetic
# (bit for bit Keras's): close to torch, not to 1e-6 (ExponentialDecay's pow carries
# t * log(gamma)'s rounding; CosineDecay's (1 + cos) cancels near the end).
KERAS_FORM_CASES: list[tuple[str, Callable[[Any], Any], Any, int]] = [
    ("ExponentialLR", lambda o: L.ExponentialLR(o, 0.95), S.ExponentialDecay(0.1, 1, 0.95), 200),
    (
        "CosineAnnealingLR",
        lambda o: L.CosineAnnealingLR(o, 50, eta_min=0.001),
        S.CosineDecay(0.1, 50, alpha=0.01),
        50,
    ),
    (
        "CosineAnnealingLR-0",
        lambda o: L.CosineAnnealingLR(o, 50),
        S.CosineDecay(0.1, 50),
        50,
    ),
]


@pytest.mark.parametrize(
    ("make", "schedule", "last"),
    [c[1:] for c in KERAS_FORM_CASES],
    ids=[c[0] for c in KERAS_FORM_CASES],
)
def test_keras_schedules_give_torchs_within_3e_6(make: Any, schedule: Any, last: int) -> None:
    expected = torch_rates(make, last)
    assert relative_errors(evaluate(schedule, np.arange(last + 1), "jit"), expected).max() <= 3e-6


# ---- WarmupStableDecay against its formula in float64 NumPy ---------------------------


def np_wsd(
    peak: float, w: float, s: float, d: float, end: float = 0.0, shape: str = "linear"
) -> Callable[[np.ndarray], np.ndarray]:
    def f(t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, np.float64)
        p = np.clip((t - w - s) / d, 0.0, 1.0) if d > 0 else np.ones_like(t)
        shaped = {
            "linear": 1 - p,
            "cosine": 0.5 * (1 + np.cos(np.pi * p)),
            "1-sqrt": 1 - np.sqrt(p),
        }[shape]
        decay = end + (peak - end) * shaped
        warm = peak * t / w if w > 0 else np.full_like(t, peak)
        return np.where(t < w, warm, np.where(t < w + s, peak, decay))

    return f


WSD_CASES: list[tuple[str, Any, Callable[[np.ndarray], np.ndarray]]] = [
    (
        f"{shape}-{end}",
        S.WarmupStableDecay(0.1, 10, 80, 30, end, shape),
        np_wsd(0.1, 10, 80, 30, end, shape),
    )
    for shape in ("linear", "cosine", "1-sqrt")
    for end in (0.0, 0.001)
]
WSD_CASES += [
    (
        "no-warmup",
        S.WarmupStableDecay(0.5, 0, 5, 7, 0.05, "cosine"),
        np_wsd(0.5, 0, 5, 7, 0.05, "cosine"),
    ),
    (
        "no-stable",
        S.WarmupStableDecay(0.5, 4, 0, 7, 0.0, "1-sqrt"),
        np_wsd(0.5, 4, 0, 7, 0.0, "1-sqrt"),
    ),
    ("no-decay", S.WarmupStableDecay(0.5, 4, 6, 0, 0.01), np_wsd(0.5, 4, 6, 0, 0.01)),
    (
        "float-lengths",
        S.WarmupStableDecay(0.2, 2.5, 3.5, 7.5, 0.0, "cosine"),
        np_wsd(0.2, 2.5, 3.5, 7.5, 0.0, "cosine"),
    ),
    (
        "long",
        S.WarmupStableDecay(3e-4, 2000, 80000, 18000, 3e-5, "1-sqrt"),
        np_wsd(3e-4, 2000, 80000, 18000, 3e-5, "1-sqrt"),
    ),
    ("rising-end", S.WarmupStableDecay(0.01, 3, 3, 5, 0.05), np_wsd(0.01, 3, 3, 5, 0.05)),
]
WSD_IDS = [c[0] for c in WSD_CASES]


def wsd_steps(schedule: Any) -> np.ndarray:
    w, s, d = schedule.warmup_steps, schedule.stable_steps, schedule.decay_steps
    end = math.ceil(w + s + d)
    dense = (
        np.arange(0, end + 12)
        if end < 1000
        else np.r_[np.arange(0, 3000), np.arange(end - 3000, end + 12)]
    )
    return np.unique(np.r_[dense, 10**6, I32_MAX])


def worst_wsd_error(case_id: str, mode: str) -> float:
    _, schedule, oracle = WSD_CASES[WSD_IDS.index(case_id)]
    steps = steps_for(mode, wsd_steps(schedule))
    return float(relative_errors(evaluate(schedule, steps, mode), oracle(steps)).max())


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case_id", WSD_IDS)
def test_warmup_stable_decay_equals_its_formula(case_id: str, mode: str) -> None:
    assert worst_wsd_error(case_id, mode) <= RTOL


def test_warmup_stable_decay_phases() -> None:
    s = S.WarmupStableDecay(1.0, 4, 4, 4, 0.25, "cosine")
    assert [float(s(t)) for t in (0, 2, 4, 7, 8, 10, 12, 99)] == pytest.approx(
        [0.0, 0.5, 1.0, 1.0, 1.0, 0.625, 0.25, 0.25], rel=1e-6
    )


# ---- every new schedule: serialization, inside an optimizer ---------------------------

NEW_SCHEDULES = [c[2] for c in TORCH_CASES] + [c[1] for c in WSD_CASES]
NEW_IDS = TORCH_IDS + [f"WSD-{i}" for i in WSD_IDS]


@pytest.mark.parametrize("schedule", NEW_SCHEDULES, ids=NEW_IDS)
def test_round_trips_through_serialize_and_an_optimizers_config(schedule: Any) -> None:
    written = json.loads(json.dumps(S.serialize(schedule)))
    assert written["module"] == "jopt.schedules"
    assert written["class_name"] == type(schedule).__name__
    rebuilt = S.deserialize(written)
    assert rebuilt == schedule and hash(rebuilt) == hash(schedule)
    assert type(schedule).from_config(schedule.get_config()) == schedule
    np.testing.assert_array_equal(rebuilt(jnp.arange(120)), schedule(jnp.arange(120)))
    opt = jopt.Adam(schedule, beta_1=0.8)
    again = jopt.Adam.from_config(json.loads(json.dumps(opt.get_config())))
    assert again == opt
    assert jopt.optimizers.deserialize(jopt.optimizers.serialize(opt)) == opt
    nested = S.warmup(schedule, 5)
    assert S.deserialize(json.loads(json.dumps(S.serialize(nested)))) == nested


def test_multi_step_decay_stores_a_tuple_and_writes_a_list() -> None:
    a, b = S.MultiStepDecay(0.1, [3, 5]), S.MultiStepDecay(0.1, (3, 5))
    assert a == b and hash(a) == hash(b) and a.milestones == (3, 5)
    assert a.get_config() == {
        "initial_learning_rate": 0.1,
        "milestones": [3, 5],
        "gamma": 0.1,
        "name": "MultiStepDecay",
    }


@pytest.mark.parametrize(
    ("schedule", "case_id"),
    [(S.OneCycle(0.05, 20), "OneCycle"), (S.CyclicLR(0.01, 0.05, 3, mode="triangular2"), "Cyclic")],
)
def test_drives_an_optimizer_like_torch(schedule: Any, case_id: str) -> None:
    """torch's SGD with the scheduler, against jopt's SGD with the schedule: the same
    rule, so the params agree step by step. (Not with momentum: torch's velocity sums
    gradients and is scaled by the current rate, Keras's sums rate-scaled gradients, so
    the two differ once the rate changes.)"""
    make = (
        (lambda o: L.OneCycleLR(o, 0.05, total_steps=20, cycle_momentum=False))
        if case_id == "OneCycle"
        else (
            lambda o: L.CyclicLR(
                o, 0.01, 0.05, step_size_up=3, mode="triangular2", cycle_momentum=False
            )
        )
    )
    w0 = np.linspace(-1.0, 1.0, 6).astype(np.float32)
    param = torch.nn.Parameter(torch.tensor(w0))
    opt = torch.optim.SGD([param], lr=0.1)
    scheduler = make(opt)
    jopt_opt = jopt.SGD(schedule)
    params = {"w": jnp.asarray(w0)}
    state = jopt_opt.init(params)
    for _ in range(20):
        grad = np.sin(3.0 * param.detach().numpy()).astype(np.float32)
        param.grad = torch.tensor(grad)
        opt.step()
        scheduler.step()
        params, state = jopt_opt.apply_gradients({"w": jnp.sin(3.0 * params["w"])}, state, params)
        np.testing.assert_allclose(params["w"], param.detach().numpy(), rtol=2e-6, atol=1e-7)


# ---- plot ----------------------------------------------------------------------------


def test_plot_returns_a_figure_with_the_schedules_values() -> None:
    from matplotlib.figure import Figure

    schedule = S.OneCycle(0.1, 50)
    fig = S.plot(schedule, 50)
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    line = ax.lines[0]
    np.testing.assert_array_equal(line.get_xdata(), np.arange(50))
    np.testing.assert_allclose(line.get_ydata(), schedule(jnp.arange(50)), rtol=1e-6)
    assert "OneCycle" in ax.get_title()
    fig.savefig(__import__("io").BytesIO(), format="png")


def test_plot_draws_a_dict_with_a_legend_and_into_given_axes() -> None:
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot()
    curves = {"step": S.StepDecay(0.1, 10), "lambda": lambda t: 0.05, "wsd": NEW_SCHEDULES[-1]}
    assert S.plot(curves, np.arange(0, 100, 5), ax=ax, title="three") is fig
    assert [line.get_label() for line in ax.lines] == ["step", "lambda", "wsd"]
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), np.full(20, np.float32(0.05)))
    assert ax.get_legend() is not None and ax.get_title() == "three"
