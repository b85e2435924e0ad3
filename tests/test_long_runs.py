"""Long runs: 10^6 schedule steps and 10^5 optimizer steps against float64 NumPy.

jopt computes in float32 (as Keras does); the references below are Keras's formulas
evaluated in float64. Each tolerance is a first-order bound on float32 rounding,
derived in a comment next to it from the unit roundoff u = 2^-24 (half the float32
machine epsilon): a float32 result of one operation is the exact result times
(1 + d), |d| <= u.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.signal import lfilter

import jopt
import jopt.schedules as S

U = 2.0**-24  # float32 unit roundoff
T = np.arange(10**6 + 1, dtype=np.float64)  # steps 0 .. 10^6


def rates(schedule: Any) -> np.ndarray:
    out = np.asarray(jax.jit(schedule)(jnp.arange(10**6 + 1, dtype=jnp.int32)), np.float64)
    assert np.all(np.isfinite(out)) and np.all(out >= 0)
    return out


def test_exponential_decay_over_a_million_steps() -> None:
    got = rates(S.ExponentialDecay(0.1, 1000, 0.96))
    p = T / 1000
    expected = 0.1 * 0.96**p
    # float32 computes 0.1 * exp(p * ln r) with p = f32(t) / 1000 (error <= u p) and
    # r = f32(0.96) (so ln r is off by <= u): the exponent is off by <= u p (|ln r| + 1),
    # which is the result's relative error, plus <= 4 u for the rounding of 0.1, the
    # power and the product.
    bound = (4 * U + 2 * U * p * (abs(np.log(0.96)) + 1)) * expected
    assert np.all(np.abs(got - expected) <= bound)
    staircase = rates(S.ExponentialDecay(0.1, 1000, 0.96, staircase=True))
    exact = 0.1 * 0.96 ** np.floor(p)  # floor(p) is exact: the same error, on floor(p)
    assert np.all(np.abs(staircase - exact) <= 4 * U * exact + 2 * U * np.floor(p) * 1.05 * exact)


def test_inverse_time_and_polynomial_decay_over_a_million_steps() -> None:
    got = rates(S.InverseTimeDecay(0.1, 1000, 0.5))
    expected = 0.1 / (1 + 0.5 * T / 1000)
    # Four roundings (t / 1000, * 0.5, 1 +, 0.1 /) each relative <= u, none amplified
    # (all terms positive): <= 6 u relative, with the rounding of 0.1 and 0.5.
    assert np.all(np.abs(got - expected) <= 6 * U * expected)

    got = rates(S.PolynomialDecay(0.1, 500_000, 0.001, power=2.0))
    q = 1 - np.minimum(T, 500_000) / 500_000
    expected = (0.1 - 0.001) * q**2 + 0.001
    # 1 - p loses up to u absolutely (p <= 1), so q**2 is off by <= 2u(q + ...) absolutely;
    # times 0.099 and plus 0.001 adds 3 roundings relative to the result: <= 8 u of the
    # largest value (0.1) absolutely.
    assert np.all(np.abs(got - expected) <= 8 * U * 0.1)


def test_cosine_decays_over_a_million_steps() -> None:
    got = rates(S.CosineDecay(0.1, 10**6, alpha=0.01))
    expected = 0.1 * ((1 - 0.01) * 0.5 * (1 + np.cos(np.pi * T / 10**6)) + 0.01)
    # cos's argument pi * t / d is off by <= 3 u pi (pi, the product, the quotient), and
    # cos is 1-Lipschitz: the decayed factor is off by <= 0.5 (3 u pi + u) + 4 u, times
    # 0.1 (and its rounding): <= 0.1 * 12 u absolutely.
    assert np.all(np.abs(got - expected) <= 0.1 * 12 * U + U * expected)

    got = rates(S.CosineDecayRestarts(0.1, 1000, t_mul=2.0, m_mul=0.9, alpha=0.0))
    frac = T / 1000
    i = np.floor(np.log(1 - frac * (1 - 2.0)) / np.log(2.0))
    done = (1 - 2.0**i) / (1 - 2.0)
    within = (frac - done) / 2.0**i
    expected = 0.1 * 0.9**i * 0.5 * (1 + np.cos(np.pi * within))
    # The restart index i is floor(log(...) / log 2): at the steps where the exact value
    # is within float32 rounding of an integer, float32 may pick the neighbouring period
    # (the rate jumps there, in Keras's float32 too); those few boundary steps are only
    # checked finite. Elsewhere, frac - done (numbers <= frac) is off by <= 16 u frac
    # (the division, log, exp2 and subtractions), so the position in the period by
    # <= 16 u frac / 2^i; cos (1-Lipschitz) of pi times it, halved, times 0.1 * 0.9^i;
    # plus <= 8 u relative for the products.
    log_arg = np.log(1 - frac * (1 - 2.0)) / np.log(2.0)
    near = np.abs(log_arg - np.round(log_arg)) <= 16 * U * np.maximum(log_arg, 1)
    bound = 0.1 * 0.9**i * (0.5 * np.pi * 16 * U * frac / 2.0**i + 8 * U)
    assert np.all(np.abs(got - expected)[~near] <= bound[~near])
    assert near.sum() < 30  # the boundary steps are few: the first step of each period
    assert np.all(np.isfinite(got[near]))


def test_piecewise_warmup_join_constant_over_a_million_steps() -> None:
    got = rates(S.PiecewiseConstantDecay([100_000, 500_000], [0.1, 0.01, 0.001]))
    expected = np.where(T <= 100_000, 0.1, np.where(T <= 500_000, 0.01, 0.001))
    np.testing.assert_array_equal(got, expected.astype(np.float32))  # exact: a select
    got = rates(S.warmup(S.InverseTimeDecay(0.1, 1000, 0.5), 10_000))
    target = 0.1 / (1 + 0.5 * np.maximum(T - 10_000, 0) / 1000)
    expected = np.where(T < 10_000, T / 10_000 * 0.1, target)
    # The ramp: t / w times the target, two roundings on top of the target's 6 u.
    assert np.all(np.abs(got - expected) <= 8 * U * expected)
    got = rates(S.join([S.constant(0.1), S.constant(0.01)], [250_000]))
    np.testing.assert_array_equal(got, np.where(T < 250_000, 0.1, 0.01).astype(np.float32))


# ---- 10^5 optimizer steps -------------------------------------------------------------

N = 100_000


def gradient_sequence() -> np.ndarray:
    """(N, 3) float32 gradients: slow and fast oscillations, never all zero, mean != 0."""
    t = np.arange(1, N + 1, dtype=np.float64)[:, None]
    g = 0.5 * np.sin(0.001 * t * np.array([1.0, 2.3, 0.7]) + np.array([0.0, 1.0, 2.0]))
    return (g + 0.3 * np.cos(0.0137 * t) + np.array([0.05, -0.02, 0.0])).astype(np.float32)


P0 = np.array([0.5, -1.0, 2.0], np.float32)


def run_scan(opt: Any, grads: np.ndarray) -> tuple[np.ndarray, Any]:
    """N steps in one lax.scan; returns the final params and state."""

    @jax.jit
    def run(p0: jax.Array, gs: jax.Array) -> Any:
        def body(carry: Any, g: jax.Array) -> Any:
            p, s = carry
            return opt.apply(g, s, p), None

        return jax.lax.scan(body, (p0, opt.init(p0)), gs)[0]

    params, state = run(jnp.asarray(P0), jnp.asarray(grads))
    assert int(state.step) == N
    return np.asarray(params, np.float64), state


def ema(x: np.ndarray, beta: float, x0: float = 0.0) -> np.ndarray:
    """m_t = beta m_{t-1} + (1 - beta) x_t, m_0 = x0, for every t (float64)."""
    zi = np.full((1, x.shape[1]), beta * x0)
    return lfilter([1 - beta], [1, -beta], x, axis=0, zi=zi)[0]


def check(params: np.ndarray, deltas: np.ndarray, c: float, memory: float) -> None:
    """The float32 run ends within the first-order rounding bound of the float64 one.

    p_N = p_0 + sum_t D_t. In float32 each D_t carries <= c roundings of its own formula,
    plus the error of the slots it reads: an exponential average with factor beta
    accumulates roundings of <= 2u per step into an error <= 2u max|m| / (1 - beta), so
    the slots add <= c u |D_t| * memory (memory = 1 / (1 - beta), 1 without slots).
    Each addition p += D rounds with error <= u |p_t|. Summing over the N steps:
        |p_hat - p| <= c u memory sum_t |D_t| + u sum_t |p_t|.
    """
    exact = P0.astype(np.float64) + np.cumsum(deltas, axis=0)
    bound = c * U * memory * np.sum(np.abs(deltas), axis=0) + U * np.sum(np.abs(exact), axis=0)
    assert np.all(np.isfinite(params))
    err = np.abs(params - exact[-1])
    assert np.all(err <= bound), (err, bound)
    # That bound is a worst case (every rounding the same sign). Roundings modelled as
    # independent, zero-mean and bounded by b_t (Higham and Mary's probabilistic model),
    # Hoeffding's inequality gives |sum| <= lam * sqrt(sum b_t^2) except with
    # probability 2 exp(-lam^2 / 2): lam = 6 leaves a chance of 3e-8 of a false alarm.
    per_step = np.sqrt(np.sum((c * U * memory * deltas) ** 2 + (U * exact) ** 2, axis=0))
    assert np.all(err <= 6 * per_step), (err, 6 * per_step)


G = gradient_sequence()
G64 = G.astype(np.float64)


def test_sgd_momentum_and_nesterov_for_100k_steps() -> None:
    for nesterov in (False, True):
        params, state = run_scan(jopt.SGD(0.001, momentum=0.9, nesterov=nesterov), G)
        m = lfilter([-0.001], [1, -0.9], G64, axis=0)  # m = 0.9 m - lr g
        deltas = 0.9 * m - 0.001 * G64 if nesterov else m
        check(params, deltas, c=4, memory=10)
        np.testing.assert_allclose(
            state.slots["momentum"], m[-1], rtol=0, atol=2 * U * np.max(np.abs(m)) * 10
        )


def test_rmsprop_and_adagrad_for_100k_steps() -> None:
    params, state = run_scan(jopt.RMSprop(0.001, rho=0.9), G)
    v = ema(G64**2, 0.9)
    check(params, -0.001 * G64 / np.sqrt(v + 1e-7), c=6, memory=10)
    np.testing.assert_allclose(state.slots["velocity"], v[-1], rtol=0, atol=2 * U * np.max(v) * 10)

    params, state = run_scan(jopt.Adagrad(0.01), G)
    acc = 0.1 + np.cumsum(G64**2, axis=0)
    # The accumulator is a sum of N positive terms: its error is <= u sum_t acc_t
    # (one rounding per addition, each relative to the running sum).
    acc_bound = U * np.sum(acc, axis=0)
    assert np.all(np.abs(np.asarray(state.slots["accumulator"], np.float64) - acc[-1]) <= acc_bound)
    # Each update reads acc_t with relative error <= (acc_bound_t / acc_t), <= N u: no
    # fixed memory; use the accumulated bound as the relative error of the slot.
    check(params, -0.01 * G64 / np.sqrt(acc + 1e-7), c=6, memory=1 + N * U * 1e3)


def test_adam_for_100k_steps() -> None:
    params, state = run_scan(jopt.Adam(0.001), G)
    t = np.arange(1, N + 1, dtype=np.float64)[:, None]
    m, v = ema(G64, 0.9), ema(G64**2, 0.999)
    alpha = 0.001 * np.sqrt(1 - 0.999**t) / (1 - 0.9**t)
    deltas = -alpha * m / (np.sqrt(v) + 1e-7)
    # Adam's velocity remembers 1 / (1 - 0.999) = 1000 steps: memory 1000.
    check(params, deltas, c=10, memory=1000)
    np.testing.assert_allclose(
        state.slots["velocity"], v[-1], rtol=0, atol=2 * U * np.max(v) * 1000
    )
    np.testing.assert_allclose(
        state.slots["momentum"], m[-1], rtol=0, atol=2 * U * np.max(np.abs(m)) * 10
    )


@pytest.mark.parametrize(
    "opt",
    [
        jopt.Nadam(0.001),
        jopt.Adamax(0.001),
        jopt.Lion(1e-4),
        jopt.Adadelta(1.0),
        jopt.Ftrl(0.01),
        jopt.Lamb(0.001),
        jopt.Adafactor(0.001),
        jopt.ScheduleFreeAdamW(0.001),
    ],
    ids=lambda o: type(o).__name__,
)
def test_every_other_optimizer_stays_finite_for_100k_steps(opt: Any) -> None:
    params, state = run_scan(opt, G)
    assert np.all(np.isfinite(params))
    assert all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(state))
