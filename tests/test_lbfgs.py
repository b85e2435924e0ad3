"""jopt.LBFGS and jopt.minimize against SciPy's L-BFGS-B minima and optax.lbfgs run live.

Oracles: SciPy's L-BFGS-B on NumPy float64 versions of each problem
(``tests/lbfgs_problems.py``), run to a gradient of 1e-11; ``optax.lbfgs()`` run live
in its own while loop (the loop optax's documentation gives); the strong Wolfe
conditions recomputed in NumPy at the accepted steps; the Moré-Thuente line-search test
functions. Each problem is compiled once per dtype (results are cached per module), so
the file runs in about 30 s on a loaded 2-core machine.

``python -m tests.test_lbfgs`` prints the table of iteration counts and errors.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.tree_utils as otu
import pytest
from jax.flatten_util import ravel_pytree

import jopt
from jopt.formulas.linesearch import zoom_linesearch
from jopt.tools.minimization import CONVERGED, LINESEARCH_FAILED, MAX_STEPS, NOT_FINITE
from tests.lbfgs_problems import NAMES, logistic, problem, scipy_minimum

TOL64 = 1e-9  # the gradient norm both loops run to in float64
STEP_LIMIT = 2000
# The minimum each run reaches, against SciPy's: |x - x_scipy| and |f - f_scipy|.
ERROR64 = 1e-5
# float32, run to its floor (tol=0: until no step lowers the loss, reason 2). At a
# minimum the computed gradient is rounding noise of about u * lam_max * |x| (u = 6e-8,
# float32's unit roundoff), which moves the point where it vanishes by up to
# u * kappa * |x| (kappa = lam_max / lam_min, the Hessian's condition number). Measured:
# a few ulps of |x| ~ 1-3 where kappa is moderate (rosen10: 2.4e-7, logreg: 1.5e-6), and
# 2e-5 on the quadratic (kappa = 1e4, |x| = 1.75; the bound is 2e-3). A gradient
# tolerance cannot stop these runs instead: the float32 gradient of Rosenbrock at its
# minimum is noise of ~1e-5-1e-4, and a loss written with cancellation
# (0.5 x'Ax - b'x) has a floor far above both (see tests/lbfgs_problems.py).
ERROR32 = {"rosen10": 1e-5, "quadratic": 1e-4}  # (logreg reaches 1.5e-6: see report())
C1, C2, HZ = 1e-4, 0.9, 1e-6  # LBFGS()'s slope_rtol, curv_rtol, approx_dec_rtol


def flat(tree: Any) -> np.ndarray:
    return np.asarray(ravel_pytree(tree)[0], np.float64)


def as_dtype(tree: Any, dtype: Any) -> Any:
    return jax.tree.map(lambda a: jnp.asarray(a, dtype), tree)


# ---- the runs, one compile per problem and dtype ---------------------------------------


@functools.partial(jax.jit, static_argnums=0)
def optax_lbfgs(fn: Any, max_steps: Any, x0: Any, tol: Any, data: tuple[Any, ...]) -> Any:
    """optax.lbfgs() run live, in the loop of optax's documentation: until the gradient
    norm is <= tol (at least one step)."""
    opt = optax.lbfgs()
    f = lambda p: fn(p, *data)
    value_and_grad = optax.value_and_grad_from_state(f)

    def step(carry: Any) -> Any:
        x, state = carry
        value, grad = value_and_grad(x, state=state)
        updates, state = opt.update(grad, state, x, value=value, grad=grad, value_fn=f)
        return optax.apply_updates(x, updates), state

    def going(carry: Any) -> Any:
        _, state = carry
        count, grad = otu.tree_get(state, "count"), otu.tree_get(state, "grad")
        return (count == 0) | ((count < max_steps) & (otu.tree_norm(grad) > tol))

    x, state = jax.lax.while_loop(going, step, (x0, opt.init(x0)))
    return x, otu.tree_get(state, "count")


TRAJECTORY_STEPS = 30


@functools.cache
def run64(name: str) -> dict[str, Any]:
    """jopt.minimize and optax.lbfgs in float64, to a gradient norm of TOL64; and the
    first TRAJECTORY_STEPS iterates of each (the same compiled loops, max_steps=k)."""
    p = problem(name)
    with jax.enable_x64(True):
        x0, data = as_dtype(p.x0, jnp.float64), as_dtype(p.data, jnp.float64)
        x, result = jopt.minimize(p.fn, x0, max_steps=STEP_LIMIT, tol=TOL64, args=data)
        x_optax, count = optax_lbfgs(p.fn, STEP_LIMIT, x0, TOL64, data)
        steps = range(1, TRAJECTORY_STEPS + 1)
        return {
            "x": flat(x),
            "result": jax.tree.map(np.asarray, result),
            "value": float(p.fn(x, *data)),
            "x_optax": flat(x_optax),
            "optax_steps": int(count),
            "jopt_path": np.stack(
                [flat(x0)]
                + [flat(jopt.minimize(p.fn, x0, max_steps=k, tol=0.0, args=data)[0]) for k in steps]
            ),
            "optax_path": np.stack(
                [flat(x0)] + [flat(optax_lbfgs(p.fn, k, x0, 0.0, data)[0]) for k in steps]
            ),
        }


@functools.cache
def run32(name: str) -> dict[str, Any]:
    """jopt.minimize in float32, run to the floor (tol=0)."""
    p = problem(name)
    x0, data = as_dtype(p.x0, jnp.float32), as_dtype(p.data, jnp.float32)
    x, result = jopt.minimize(p.fn, x0, max_steps=STEP_LIMIT, tol=0.0, args=data)
    return {"x": flat(x), "result": jax.tree.map(np.asarray, result)}


# ---- the minima and the iteration counts ------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_minimize_reaches_scipys_minimum_in_float64(name: str) -> None:
    x_scipy, f_scipy, _ = scipy_minimum(name)
    run = run64(name)
    result = run["result"]
    assert result.converged and int(result.reason) == CONVERGED, result
    assert float(result.grad_norm) <= TOL64
    np.testing.assert_allclose(run["x"], x_scipy, rtol=0, atol=ERROR64)
    assert abs(float(result.value) - f_scipy) <= ERROR64
    assert float(result.value) == pytest.approx(run["value"], rel=1e-12, abs=1e-20)


@pytest.mark.parametrize("name", NAMES)
def test_no_more_iterations_than_optax_lbfgs(name: str) -> None:
    """Same algorithm: the same count in float64 (optax's loop stops on the same gradient
    norm), and the same minimum."""
    run = run64(name)
    assert int(run["result"].steps) <= run["optax_steps"]
    np.testing.assert_allclose(run["x"], run["x_optax"], rtol=0, atol=1e-8)


@pytest.mark.parametrize("name", sorted(ERROR32))
def test_minimize_reaches_scipys_minimum_in_float32(name: str) -> None:
    x_scipy, f_scipy, _ = scipy_minimum(name)
    run = run32(name)
    result = run["result"]
    assert run["result"].value.dtype == np.float32
    assert int(result.reason) in (CONVERGED, LINESEARCH_FAILED), result.message
    np.testing.assert_allclose(run["x"], x_scipy, rtol=0, atol=ERROR32[name])
    assert abs(float(result.value) - f_scipy) <= 1e-6 * max(1.0, abs(f_scipy))


# ---- trajectories and the strong Wolfe conditions ---------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_trajectory_equals_optax_lbfgs(name: str) -> None:
    """The first 30 iterates agree to rounding: bit for bit on this machine, except
    where XLA compiles the two programs' arithmetic differently (a float64 rounding in
    a direction); Rosenbrock in 2-D amplifies that along its valley, to ~1e-11 by
    step 30."""
    run = run64(name)
    np.testing.assert_allclose(run["jopt_path"], run["optax_path"], rtol=0, atol=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_every_step_satisfies_the_strong_wolfe_conditions(name: str) -> None:
    """Recomputed in NumPy (float64) at jopt's first 30 iterates: sufficient decrease
    (Armijo, or near the minimum Hager and Zhang's approximate form, which a quadratic
    turns into Armijo's) and |slope| <= c2 |slope at 0|, each to 1e-10 of rounding."""
    path = run64(name)["jopt_path"]
    numpy_fn = problem(name).numpy_fn
    evaluated = [numpy_fn(x) for x in path]
    approximate = 0
    for k in range(TRAJECTORY_STEPS):
        (f0, g0), (f1, g1) = evaluated[k], evaluated[k + 1]
        u = path[k + 1] - path[k]
        slope0, slope1 = g0 @ u, g1 @ u
        assert slope0 < 0, k
        slack = 1e-10 * abs(slope0)
        armijo = f1 <= f0 + C1 * slope0 + 1e-12 * abs(f0)
        hager_zhang = slope1 <= (2 * C1 - 1) * slope0 + slack and f1 <= f0 + HZ * abs(f0)
        assert armijo or hager_zhang, k
        approximate += not armijo
        assert abs(slope1) <= C2 * abs(slope0) + slack, k
    assert approximate <= 3  # the approximate form serves the last steps only


def test_drop_in_for_optax_code() -> None:
    """optax.lbfgs's loop with jopt.LBFGS swapped in: data as keywords of value_fn and
    ``optax.value_and_grad_from_state`` reusing jopt's state.value and state.grad. Its
    iterates are jopt.minimize's, and every step reports the strong Wolfe conditions."""
    p = problem("logreg")
    opt = jopt.LBFGS()
    with jax.enable_x64(True):
        data = dict(zip(("x", "t"), as_dtype(p.data, jnp.float64), strict=True))
        value_and_grad = optax.value_and_grad_from_state(logistic)

        @jax.jit
        def step(params: Any, state: Any, data: dict[str, Any]) -> Any:
            value, grad = value_and_grad(params, state=state, **data)
            updates, state = opt.update(
                grad, state, params, value=value, grad=grad, value_fn=logistic, **data
            )
            return optax.apply_updates(params, updates), state

        params = as_dtype(p.x0, jnp.float64)
        state = opt.init(params)
        for k in range(1, 11):
            params, state = step(params, state, data)
            assert bool(state.wolfe) and int(state.step) == k
            np.testing.assert_allclose(flat(params), run64("logreg")["jopt_path"][k], atol=1e-12)
            assert float(state.value) == pytest.approx(float(logistic(params, **data)), rel=1e-14)


# ---- the line search alone: Moré and Thuente's test functions ---------------------------


def _more_thuente(which: int, a: Any, xp: Any) -> Any:
    """Moré and Thuente (1994), Table 1-6 functions phi(alpha), in jnp or np (``xp``)."""
    if which == 0:
        return -a / (a * a + 2.0)
    if which == 1:
        return (a + 0.004) ** 5 - 2 * (a + 0.004) ** 4
    if which == 2:
        b, m = 0.01, 39.0
        base = xp.where(
            a <= 1 - b, 1 - a, xp.where(a >= 1 + b, a - 1, (a - 1) ** 2 / (2 * b) + b / 2)
        )
        return base + 2 * (1 - b) / (m * math.pi) * xp.sin(m * math.pi / 2 * a)
    b1, b2 = [(0.001, 0.001), (0.01, 0.001), (0.001, 0.01)][which - 3]
    gamma = lambda b: math.sqrt(1 + b * b) - b
    return gamma(b1) * xp.sqrt((1 - a) ** 2 + b2**2) + gamma(b2) * xp.sqrt(a**2 + b1**2)


# (c1, c2) of Moré and Thuente's tables.
MT_RTOLS = [(1e-3, 0.1), (0.1, 0.1), (0.1, 0.1), (1e-3, 1e-3), (1e-3, 1e-3), (1e-3, 1e-3)]
MT_STARTS = (1e-3, 1e-1, 1e1, 1e3)


def test_zoom_linesearch_on_more_thuente_functions() -> None:
    """From each of the four initial steps, the search returns a step satisfying both
    conditions (recomputed in NumPy) within 30 evaluations, except on function 2 from
    1e-3: its slope at 0 is -5e-7, so the curvature condition asks |t - t*| < 3e-9,
    and the safeguarded interpolation (the middle 60% / 80% of the interval, as SciPy
    and optax) converges linearly there. All 24 in one compile (vmap over a switch)."""
    cases = [(w, t0) for w in range(6) for t0 in MT_STARTS]

    def search(which: Any, t0: Any, c1: Any, c2: Any) -> Any:
        phi = lambda x: jax.lax.switch(
            which, [functools.partial(_more_thuente, w, xp=jnp) for w in range(6)], x
        )
        x = jnp.zeros([])
        value, slope = jax.value_and_grad(phi)(x)
        r = zoom_linesearch(
            jax.value_and_grad(phi), x, jnp.ones([]), value, slope, initial_step=t0,
            slope_rtol=c1, curv_rtol=c2, approx_dec_rtol=None, max_steps=30, min_interval=0.0,
        )  # fmt: skip
        return r.step_size, r.wolfe, r.evaluations

    with jax.enable_x64(True):
        out = jax.jit(jax.vmap(search))(
            *(jnp.asarray(v) for v in zip(*[(w, t0, *MT_RTOLS[w]) for w, t0 in cases], strict=True))
        )
        steps, wolfe, evaluations = (np.asarray(o) for o in out)
        for (which, t0), t, ok, k in zip(cases, steps, wolfe, evaluations, strict=True):
            c1, c2 = MT_RTOLS[which]
            phi = lambda a, w=which: _more_thuente(w, a, np)
            slope = jax.grad(functools.partial(_more_thuente, which, xp=jnp))  # exact, float64
            d0, dt = float(slope(0.0)), float(slope(float(t)))
            expected_failure = which == 1 and t0 == 1e-3
            assert bool(ok) != expected_failure, (which + 1, t0, t, k)
            assert k <= 30
            if ok:
                assert phi(t) <= phi(0.0) + c1 * t * d0, (which + 1, t0)
                assert abs(dt) <= c2 * abs(d0), (which + 1, t0, dt, d0)


# ---- minimize's other outcomes, other optimizers --------------------------------------


def test_minimize_reports_why_it_stopped() -> None:
    """Reuses run32's compiled float32 loop on rosen10 (max_steps and tol are inputs)."""
    run32("rosen10")
    p = problem("rosen10")
    x0 = jnp.asarray(p.x0, jnp.float32)
    x, result = jopt.minimize(p.fn, x0, max_steps=3)
    assert (int(result.steps), bool(result.converged), int(result.reason)) == (3, False, MAX_STEPS)
    assert result.message == "max_steps reached"
    assert float(result.value) == pytest.approx(float(p.fn(x)), rel=1e-6)
    grad_norm = float(jnp.linalg.norm(jax.grad(p.fn)(x)))
    assert float(result.grad_norm) == pytest.approx(grad_norm, rel=1e-5)
    # A loss that is not finite at the start: no step.
    x, result = jopt.minimize(p.fn, x0.at[3].set(jnp.inf))
    assert (int(result.steps), int(result.reason)) == (0, NOT_FINITE)
    assert result.message == "the loss or its gradient is not finite"
    # Already at the minimum: no step.
    _, result = jopt.minimize(p.fn, jnp.ones(10), tol=1e-4)
    assert (int(result.steps), int(result.reason), bool(result.converged)) == (0, CONVERGED, True)
    # float32's floor: tol=0 ends with the line search's failure, from a cleared memory.
    assert int(run32("rosen10")["result"].reason) == LINESEARCH_FAILED
    assert run32("rosen10")["result"].message.startswith("line search failed")


def test_minimize_runs_any_transformation_and_inside_jit() -> None:
    f = lambda x, c: jnp.sum((x - c) ** 2)
    c = jnp.array([1.0, -2.0, 3.0])
    x, result = jopt.minimize(f, jnp.zeros(3), opt=jopt.SGD(0.25), tol=1e-5, args=(c,))
    assert bool(result.converged) and int(result.steps) > 5
    np.testing.assert_allclose(x, c, atol=1e-5)
    # Inside a user's jit (and vmapped over starting points).
    starts = jnp.stack([jnp.zeros(3), jnp.ones(3)])
    xs, results = jax.jit(jax.vmap(lambda x0: jopt.minimize(f, x0, args=(c,))))(starts)
    np.testing.assert_allclose(xs, jnp.stack([c, c]), atol=1e-5)
    assert results.converged.all()


def test_lbfgs_without_line_search_equals_optax() -> None:
    """linesearch=None: the step is learning_rate * d; the pair is stored at the next
    update. optax.lbfgs(learning_rate, linesearch=None) is the same rule."""
    q = jnp.array([[3.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5, 1.0]])
    f = lambda x: 0.5 * x @ q @ x - x[0] + jnp.sum(x**4) / 4
    with jax.enable_x64(True):
        x0 = jnp.array([1.0, -1.0, 2.0])
        runs = []
        for opt in (
            jopt.LBFGS(0.3, memory_size=3, linesearch=None),
            optax.lbfgs(0.3, 3, linesearch=None),
        ):

            @jax.jit
            def step(x: Any, state: Any, opt: Any = opt) -> Any:
                updates, state = opt.update(jax.grad(f)(x), state, x)
                return optax.apply_updates(x, updates), state

            x, state, xs = x0, opt.init(x0), []
            for _ in range(12):
                x, state = step(x, state)
                xs.append(np.asarray(x))
            runs.append(np.stack(xs))
        # jopt.minimize runs the same rule (evaluating the gradient at each new point).
        x, result = jopt.minimize(f, x0, opt=jopt.LBFGS(0.3, 3, None), max_steps=12, tol=0.0)
    np.testing.assert_allclose(runs[0], runs[1], rtol=1e-12, atol=1e-12)
    assert (int(result.steps), int(result.reason)) == (12, MAX_STEPS)
    np.testing.assert_allclose(x, runs[1][-1], rtol=1e-12, atol=1e-12)


def test_state_fields_structure_and_dtypes() -> None:
    params = {"a": jnp.ones(2), "b": [jnp.float32(2.0), None], "c": jnp.ones((2, 2), jnp.bfloat16)}
    f = lambda p: jnp.sum(p["a"] ** 2) + p["b"][0] ** 2 + jnp.sum(p["c"].astype(jnp.float32) ** 2)
    opt = jopt.LBFGS(memory_size=4)
    state = opt.init(params)
    assert jax.tree.structure(state.grad) == jax.tree.structure(params)
    assert state.s["c"].shape == (4, 2, 2) and state.s["c"].dtype == jnp.float32  # widened
    assert state.rho.dtype == jnp.float32 and np.isinf(state.value)
    value, grad = jax.value_and_grad(f)(params)
    step = jax.jit(
        chex.assert_max_traces(lambda p, s, v, g: opt.update(g, s, p, value=v, value_fn=f), n=1)
    )
    eager = opt.update(grad, state, params, value=value, value_fn=f)
    updates, state = step(params, state, value, grad)
    chex.assert_trees_all_close(eager, (updates, state), rtol=1e-6)  # eager equals jit
    assert jax.tree.structure(updates) == jax.tree.structure(params)
    assert updates["c"].dtype == jnp.bfloat16 and updates["b"][1] is None
    new = jopt.apply_updates(params, updates)
    assert float(state.value) == pytest.approx(float(f(new)), rel=1e-6)
    assert int(state.step) == 1 and int(state.pairs) == 1 and bool(state.wolfe)
    assert float(state.value) < float(value)
    # A second step: no new trace; the state keeps its structure and dtypes.
    updates, state2 = step(new, state, state.value, state.grad)
    chex.assert_trees_all_equal_structs(state2, state)
    chex.assert_trees_all_equal_dtypes(state2, state)
    assert int(state2.step) == 2 and float(state2.value) < float(state.value)


def test_config_is_frozen_hashable_and_round_trips() -> None:
    opt = jopt.LBFGS(0.5, memory_size=5, curv_rtol=0.5, name="fit")
    assert repr(opt) == "LBFGS(learning_rate=0.5, memory_size=5, curv_rtol=0.5, name='fit')"
    assert repr(jopt.LBFGS()) == "LBFGS()"
    assert jopt.LBFGS.from_config(opt.get_config()) == opt and hash(opt) == hash(
        jopt.LBFGS(**opt.get_config())
    )
    assert jopt.LBFGS() != jopt.LBFGS(memory_size=5)
    with pytest.raises(AttributeError, match="frozen"):
        opt.memory_size = 3  # type: ignore[misc]
    schedule = jopt.schedules.ExponentialDecay(1.0, 10, 0.5)
    rebuilt = jopt.LBFGS.from_config(jopt.LBFGS(schedule, linesearch=None).get_config())
    assert float(rebuilt._rate(jnp.int32(10), jnp.float32)) == pytest.approx(0.5)
    init, update = opt
    assert (init, update) == (opt.init, opt.update)


# ---- the report -------------------------------------------------------------------------


def report() -> None:
    """Prints, per problem, the iteration counts of jopt, optax and SciPy and jopt's
    worst difference from SciPy's minimum, in float64 and float32."""
    print(
        f"{'problem':10} {'jopt':>5} {'optax':>6} {'scipy':>6} {'|x - x_scipy|':>14} "
        f"{'|f - f_scipy|':>14} | float32: {'steps':>5} {'|x - x_scipy|':>14} reason"
    )
    for name in NAMES:
        x_scipy, f_scipy, nit = scipy_minimum(name)
        r64, r32 = run64(name), run32(name)
        print(
            f"{name:10} {int(r64['result'].steps):5d} {r64['optax_steps']:6d} {nit:6d} "
            f"{np.abs(r64['x'] - x_scipy).max():14.2e} "
            f"{abs(float(r64['result'].value) - f_scipy):14.2e} | float32: "
            f"{int(r32['result'].steps):5d} {np.abs(r32['x'] - x_scipy).max():14.2e} "
            f"{r32['result'].message}"
        )


if __name__ == "__main__":
    report()
