"""A zoom line search that finds a step size satisfying the strong Wolfe conditions.

Along a descent direction ``d`` from ``x``, with ``phi(t) = f(x + t d)`` and its slope
``phi'(t) = grad f(x + t d) . d`` (``phi'(0) < 0``), it looks for a step size ``t > 0``
with

* sufficient decrease (Armijo): ``phi(t) <= phi(0) + c1 t phi'(0)``, and
* small curvature (strong Wolfe): ``|phi'(t)| <= c2 |phi'(0)|``,

for ``0 < c1 < c2 < 1`` (``slope_rtol``, ``curv_rtol``). The search is Algorithms 3.5 and
3.6 of Nocedal and Wright, *Numerical Optimization* (2nd ed., 2006), as SciPy's
``scalar_search_wolfe2`` and optax's ``zoom_linesearch`` implement them:

1. **Bracketing.** Try ``t = initial_step``, then multiply by ``increase_factor``
   (capped at ``max_step_size``) until the last point satisfies both conditions (done),
   fails the decrease condition or does not lower the value (the interval
   ``[previous, new]`` holds an acceptable step), or has a non-negative slope (so does
   ``[new, previous]``).
2. **Zoom.** Shrink the interval ``[lo, hi]`` (``phi(lo)`` the lowest value found that
   satisfies the decrease condition, ``phi'(lo) (hi - lo) < 0``): try the minimizer of
   the cubic through ``lo`` (value and slope), ``hi`` and the point ``hi`` or ``lo`` last
   replaced, if it lies in the middle 60% of the interval; else the minimizer of the
   quadratic through ``lo`` (value and slope) and ``hi``, if it lies in the middle 80%;
   else the midpoint. The new point replaces ``hi`` or ``lo`` by the rules of
   Algorithm 3.6.

Near a minimum, where ``phi(t) - phi(0)`` is below the rounding of ``phi`` and the
decrease condition reads noise, the approximate decrease condition of Hager and Zhang
(2006, eq. 23) is accepted instead: ``phi'(t) <= (2 c1 - 1) phi'(0)`` together with
``phi(t) <= phi(0) + approx_dec_rtol |phi(0)|``. It is exact for a quadratic (there it
implies the Armijo condition) and is what optax does; ``approx_dec_rtol=None`` turns it
off.

The search fails after ``max_steps`` evaluations, or when the zoom interval is shorter
than ``min_interval`` and some point lowered the value. A failed search returns the
point with the lowest value among those that satisfied the decrease condition and
lowered the value, or step size 0 (no step) when there is none: it never returns a
step that raises the value. It fails at once, without evaluating, when ``d`` is not a
descent direction (``phi'(0) >= 0``) or ``phi(0)`` is not finite.

One evaluation of ``value_and_grad`` per iteration, compiled once: the bracketing and
zoom phases choose their trial point by ``jnp.where``, not by ``lax.cond``.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["LineSearchResult", "step_along", "tree_vdot", "zoom_linesearch"]

PyTree = Any


def tree_vdot(a: PyTree, b: PyTree, dtype: Any) -> jax.Array:
    """``sum_leaves vdot(a, b)`` in ``dtype`` (each leaf cast to it, full-precision dots)."""
    dots = [
        jnp.vdot(x.astype(dtype), z.astype(dtype), precision=jax.lax.Precision.HIGHEST)
        for x, z in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    ]
    return functools.reduce(operator.add, dots, jnp.zeros([], dtype))


def step_along(params: PyTree, t: jax.Array, direction: PyTree) -> PyTree:
    """``params + t * direction``, each leaf kept in its param's dtype (as
    :func:`jopt.apply_updates` adds ``t * direction``)."""
    return jax.tree.map(lambda p, d: (p + t.astype(d.dtype) * d).astype(p.dtype), params, direction)


class LineSearchResult(NamedTuple):
    """What :func:`zoom_linesearch` returns.

    Attributes:
        step_size: the accepted step size ``t`` (0 when the search took no step).
        value: ``f(x + t d)``.
        grad: the gradient at ``x + t d``, shaped like ``x``.
        evaluations: int32, the number of calls of ``value_and_grad`` made.
        wolfe: bool, whether ``t`` satisfies both strong Wolfe conditions (with the
            approximate decrease condition where it applies). False when the search
            failed and fell back to its lowest value, when it stopped at
            ``max_step_size``, or when it took no step.
    """

    step_size: jax.Array
    value: jax.Array
    grad: PyTree
    evaluations: jax.Array
    wolfe: jax.Array


class _Search(NamedTuple):
    k: jax.Array  # evaluations made
    zooming: jax.Array  # bool: an interval holding an acceptable step is known
    done: jax.Array  # bool: accept the last point
    failed: jax.Array  # bool: give up; take the safe point (or none)
    wolfe: jax.Array  # bool: the last point satisfies both conditions
    # The last point evaluated (the previous one while bracketing).
    t: jax.Array
    value: jax.Array
    slope: jax.Array
    grad: PyTree
    # The interval: lo has the lower value; phi'(lo) (hi - lo) < 0.
    lo: jax.Array
    value_lo: jax.Array
    slope_lo: jax.Array
    hi: jax.Array
    value_hi: jax.Array
    # The third point of the cubic: the end point last replaced.
    ref: jax.Array
    value_ref: jax.Array
    # The lowest value that satisfied the decrease condition and lowered the value.
    t_safe: jax.Array
    value_safe: jax.Array
    grad_safe: PyTree


def _cubic_minimizer(
    a: jax.Array,
    fa: jax.Array,
    da: jax.Array,
    b: jax.Array,
    fb: jax.Array,
    c: jax.Array,
    fc: jax.Array,
) -> jax.Array:
    """The local minimizer of the cubic with value ``fa`` and slope ``da`` at ``a`` that
    passes through ``(b, fb)`` and ``(c, fc)``; NaN or Inf when there is none (then the
    caller's range check rejects it)."""
    u, v = b - a, c - a
    # p(a + h) = p3 h^3 + p2 h^2 + da h + fa; solve for p3, p2 from the two points.
    eb = fb - fa - da * u
    ec = fc - fa - da * v
    denom = (u * v) ** 2 * (u - v)
    p3 = (v**2 * eb - u**2 * ec) / denom
    p2 = (u**3 * ec - v**3 * eb) / denom
    # p'(a + h) = 3 p3 h^2 + 2 p2 h + da = 0, the root where p'' > 0.
    return a + (-p2 + jnp.sqrt(p2 * p2 - 3 * p3 * da)) / (3 * p3)


def _quadratic_minimizer(
    a: jax.Array, fa: jax.Array, da: jax.Array, b: jax.Array, fb: jax.Array
) -> jax.Array:
    """The minimizer of the quadratic with value ``fa`` and slope ``da`` at ``a`` through
    ``(b, fb)``."""
    u = b - a
    curvature = (fb - fa - da * u) / (u * u)
    return a - da / (2 * curvature)


def zoom_linesearch(
    value_and_grad: Callable[[PyTree], tuple[jax.Array, PyTree]],
    params: PyTree,
    direction: PyTree,
    value: jax.Array,
    grad: PyTree,
    *,
    initial_step: Any = 1.0,
    max_steps: int = 20,
    slope_rtol: float = 1e-4,
    curv_rtol: float = 0.9,
    approx_dec_rtol: float | None = 1e-6,
    increase_factor: float = 2.0,
    max_step_size: float | None = None,
    min_interval: float = 1e-5,
) -> LineSearchResult:
    """Finds a step size along ``direction`` satisfying the strong Wolfe conditions.

    Args:
        value_and_grad: ``x -> (f(x), grad f(x))`` (e.g. ``jax.value_and_grad(f)``).
        params: the current point ``x`` (a pytree of float arrays).
        direction: the search direction ``d``, shaped like ``params``; a descent direction
            (``grad . d < 0``).
        value: ``f(x)``.
        grad: ``grad f(x)``.
        initial_step: the first step size tried. Default 1.0.
        max_steps: the most evaluations of ``value_and_grad``. Default 20.
        slope_rtol: ``c1`` of the decrease condition. Default 1e-4.
        curv_rtol: ``c2`` of the curvature condition. Default 0.9.
        approx_dec_rtol: the relative increase of the value the approximate decrease
            condition allows, or None to use the Armijo condition alone. Default 1e-6.
        increase_factor: the factor between bracketing trials. Default 2.0.
        max_step_size: an upper bound on the step size, or None. Default None.
        min_interval: the search stops (failed) once the zoom interval is shorter than
            this and a point lowered the value. Default 1e-5.

    Returns:
        A :class:`LineSearchResult`; the rules are in this module's docstring.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> f = lambda x: jnp.sum((x - 3.0) ** 2)
        >>> x = jnp.zeros(2)
        >>> value, grad = jax.value_and_grad(f)(x)
        >>> r = zoom_linesearch(jax.value_and_grad(f), x, -grad, value, grad)
        >>> float(r.step_size), float(r.value), bool(r.wolfe)
        (0.5, 0.0, True)
    """
    leaves = jax.tree.leaves(params)
    dtype = jnp.promote_types(jnp.result_type(*leaves), jnp.float32)
    c1 = jnp.asarray(slope_rtol, dtype)
    c2 = jnp.asarray(curv_rtol, dtype)
    zero = jnp.zeros([], dtype)
    value0 = jnp.asarray(value, dtype)
    slope0 = tree_vdot(grad, direction, dtype)
    t0 = jnp.asarray(initial_step, dtype)

    def decrease_ok(t: jax.Array, v: jax.Array, slope: jax.Array) -> jax.Array:
        ok = v - value0 - c1 * t * slope0 <= 0
        if approx_dec_rtol is not None:
            approx = (slope - (2 * c1 - 1) * slope0 <= 0) & (
                v - value0 - jnp.asarray(approx_dec_rtol, dtype) * jnp.abs(value0) <= 0
            )
            ok = ok | approx
        return ok  # False for NaN

    def curvature_ok(slope: jax.Array) -> jax.Array:
        return jnp.abs(slope) - c2 * jnp.abs(slope0) <= 0

    def body(st: _Search) -> _Search:
        # -- the trial point ----------------------------------------------------------
        t_bracket = jnp.where(st.k == 0, t0, jnp.asarray(increase_factor, dtype) * st.t)
        at_max = jnp.asarray(False)
        if max_step_size is not None:
            t_max = jnp.asarray(max_step_size, dtype)
            at_max = t_bracket >= t_max
            t_bracket = jnp.minimum(t_bracket, t_max)
        left, right = jnp.minimum(st.lo, st.hi), jnp.maximum(st.lo, st.hi)
        width = right - left
        cubic = _cubic_minimizer(
            st.lo, st.value_lo, st.slope_lo, st.hi, st.value_hi, st.ref, st.value_ref
        )
        quadratic = _quadratic_minimizer(st.lo, st.value_lo, st.slope_lo, st.hi, st.value_hi)
        use_cubic = (cubic > left + 0.2 * width) & (cubic < right - 0.2 * width)
        use_quadratic = (quadratic > left + 0.1 * width) & (quadratic < right - 0.1 * width)
        t_zoom = jnp.where(
            use_cubic, cubic, jnp.where(use_quadratic, quadratic, (st.lo + st.hi) / 2)
        )
        t = jnp.where(st.zooming, t_zoom, t_bracket)

        # -- one evaluation -----------------------------------------------------------
        v, g = value_and_grad(step_along(params, t, direction))
        v = jnp.asarray(v, dtype)
        g = jax.tree.map(lambda a, b: jnp.asarray(a).astype(b.dtype), g, grad)
        slope = tree_vdot(g, direction, dtype)
        decreases = decrease_ok(t, v, slope)
        wolfe = decreases & curvature_ok(slope)
        lowers = decreases & (v < st.value_safe)
        t_safe, value_safe, grad_safe = jax.tree.map(
            lambda new, old: jnp.where(lowers, new, old),
            (t, v, g),
            (st.t_safe, st.value_safe, st.grad_safe),
        )
        last = st.k + 1 >= max_steps

        # -- bracketing: is there an interval yet? (Algorithm 3.5) ---------------------
        new_is_hi = ~decreases | ((v >= st.value) & (st.k > 0))
        new_is_lo = (slope >= 0) & ~new_is_hi
        found = new_is_hi | new_is_lo | wolfe
        b_lo, b_value_lo, b_slope_lo, b_hi, b_value_hi = jax.tree.map(
            lambda a, b: jnp.where(new_is_lo, a, b),
            (t, v, slope, st.t, st.value),
            (st.t, st.value, st.slope, t, v),
        )
        b_done = wolfe | (at_max & ~found)

        # -- zoom: shrink the interval (Algorithm 3.6) --------------------------------
        hi_to_new = ~decreases | (v >= st.value_lo)
        hi_to_lo = (slope * (st.hi - st.lo) >= 0) & ~hi_to_new
        z_hi = jnp.where(hi_to_new, t, jnp.where(hi_to_lo, st.lo, st.hi))
        z_value_hi = jnp.where(hi_to_new, v, jnp.where(hi_to_lo, st.value_lo, st.value_hi))
        z_lo, z_value_lo, z_slope_lo = jax.tree.map(
            lambda a, b: jnp.where(hi_to_new, b, a),
            (t, v, slope),
            (st.lo, st.value_lo, st.slope_lo),
        )
        hi_replaced = hi_to_new | hi_to_lo
        z_ref = jnp.where(hi_replaced, st.hi, st.lo)
        z_value_ref = jnp.where(hi_replaced, st.value_hi, st.value_lo)
        too_narrow = (width <= min_interval) & (t_safe > 0)

        zooming = st.zooming
        pick = lambda z, b: jnp.where(zooming, z, b)
        done = pick(wolfe, b_done)
        failed = ~done & (last | (zooming & too_narrow))
        return _Search(
            k=st.k + 1,
            zooming=zooming | found,
            done=done,
            failed=failed,
            wolfe=wolfe,
            t=t,
            value=v,
            slope=slope,
            grad=g,
            lo=pick(z_lo, b_lo),
            value_lo=pick(z_value_lo, b_value_lo),
            slope_lo=pick(z_slope_lo, b_slope_lo),
            hi=pick(z_hi, b_hi),
            value_hi=pick(z_value_hi, b_value_hi),
            ref=pick(z_ref, b_lo),
            value_ref=pick(z_value_ref, b_value_lo),
            t_safe=t_safe,
            value_safe=value_safe,
            grad_safe=grad_safe,
        )

    hopeless = ~((slope0 < 0) & jnp.isfinite(value0))
    start = _Search(
        k=jnp.zeros([], jnp.int32),
        zooming=jnp.asarray(False),
        done=jnp.asarray(False),
        failed=hopeless,
        wolfe=jnp.asarray(False),
        t=zero,
        value=value0,
        slope=slope0,
        grad=grad,
        lo=zero,
        value_lo=value0,
        slope_lo=slope0,
        hi=zero,
        value_hi=value0,
        ref=zero,
        value_ref=value0,
        t_safe=zero,
        value_safe=value0,
        grad_safe=grad,
    )
    end = jax.lax.while_loop(lambda st: ~(st.done | st.failed), body, start)
    # Done: the last point. Failed: the lowest value found (t_safe = 0 when none: no step).
    take_last = end.done
    t, v, g = jax.tree.map(
        lambda a, b: jnp.where(take_last, a, b),
        (end.t, end.value, end.grad),
        (end.t_safe, end.value_safe, end.grad_safe),
    )
    return LineSearchResult(t, v, g, end.k, end.done & end.wolfe)
