"""``jopt.minimize``: full-batch minimization to a gradient tolerance, in one compiled loop."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jopt.core.protocol import EvaluatesLoss, apply_updates, require_transformation
from jopt.core.pytrees import check_float_leaves
from jopt.core.validation import check_int, check_number
from jopt.formulas.linesearch import tree_vdot
from jopt.optimizers.lbfgs import LBFGS, scalar_dtype

__all__ = ["MinimizeResult", "minimize"]

PyTree = Any

_RUNNING = -1
_INT32_MAX = 2**31 - 1
CONVERGED, MAX_STEPS, LINESEARCH_FAILED, NOT_FINITE = 0, 1, 2, 3
#: ``MinimizeResult.reason`` in words, by code.
REASONS = (
    "converged: gradient norm <= tol",
    "max_steps reached",
    "line search failed: no step lowers the loss, even along the gradient",
    "the loss or its gradient is not finite",
)


class MinimizeResult(NamedTuple):
    """How :func:`jopt.minimize` ended; a pytree of arrays (so it works under ``jit`` and
    ``vmap``), with :attr:`message` to read ``reason``.

    Attributes:
        steps: int32, the number of updates made.
        value: the loss at the returned params.
        grad_norm: the L2 norm of the gradient there (over all leaves).
        converged: bool, ``grad_norm <= tol``.
        reason: int32, why the loop stopped: ``0`` converged (``grad_norm <= tol``),
            ``1`` ``max_steps`` reached, ``2`` the line search found no step that lowers
            the loss even along the scaled gradient (the loss is flat to its rounding:
            ``tol`` is below what the dtype can resolve), ``3`` the loss or the gradient
            is not finite. :attr:`message` gives it in words.

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> params, result = jopt.minimize(lambda x: jnp.sum((x - 2.0) ** 2), jnp.zeros(3))
        >>> params, int(result.steps), bool(result.converged), result.message
        (Array([2., 2., 2.], dtype=float32), 2, True, 'converged: gradient norm <= tol')
    """

    steps: jax.Array
    value: jax.Array
    grad_norm: jax.Array
    converged: jax.Array
    reason: jax.Array

    @property
    def message(self) -> str:
        """``reason`` in words (needs a concrete ``reason``, not a traced one)."""
        return REASONS[int(self.reason)]


def minimize(
    value_fn: Callable[..., Any],
    params: PyTree,
    opt: Any = LBFGS(),  # noqa: B008 (frozen and hashable: a safe default)
    *,
    max_steps: int = 500,
    tol: float = 1e-6,
    args: tuple[Any, ...] = (),
) -> tuple[PyTree, MinimizeResult]:
    """Minimizes ``value_fn(params, *args)`` until the gradient norm is ``<= tol``.

    One compiled ``lax.while_loop``: each iteration is one ``opt.update`` (with
    :class:`jopt.LBFGS`, a line search whose value and gradient the next iteration
    reuses, so the loss is evaluated only by the line search). It stops when the L2 norm
    of the gradient over all leaves is ``<= tol`` (``tol`` is absolute: scale it to your
    loss), after ``max_steps`` updates, when L-BFGS's line search finds no step that
    lowers the loss from a cleared memory (the loss is flat to its rounding), or when
    the loss or gradient is not finite; ``result.reason`` says which.

    The loop is compiled once per ``value_fn``, ``opt`` and the shapes and dtypes of
    ``params`` and ``args``; ``max_steps``, ``tol`` and the values of ``params`` and
    ``args`` are inputs, so pass data through ``args`` rather than closing over it to
    reuse the compiled loop. It also runs inside your own ``jax.jit`` or ``jax.vmap``.

    Any other transformation works too (``jopt.Adam(1e-2)``, ``optax.lbfgs()``, whose
    extra arguments ``value``, ``grad`` and ``value_fn`` are passed when its ``update``
    takes keywords); the loss and gradient are then evaluated at each new point.

    Args:
        value_fn: the loss, ``value_fn(params, *args) -> scalar``, differentiable with JAX.
        params: the starting point, a pytree of float arrays (float32, or float64 with
            ``jax_enable_x64``; the loop computes in their dtype).
        opt: the optimizer. Default ``jopt.LBFGS()``.
        max_steps: the most updates, an integer >= 0. Default 500.
        tol: the gradient norm to reach, >= 0. Default 1e-6 (in float32 a gradient norm
            much below ``1e-7 * |loss| / |x|`` is rounding noise: use a larger ``tol``).
        args: extra positional arguments of ``value_fn`` (data), passed as inputs.

    Returns:
        ``(params, result)``: the last params and a :class:`MinimizeResult`.

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> def rosenbrock(x):
        ...     return jnp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
        >>> x, result = jopt.minimize(rosenbrock, jnp.array([-1.2, 1.0]), tol=1e-4)
        >>> x.round(3), bool(result.converged), int(result.steps) < 50
        (Array([1., 1.], dtype=float32), True, True)
    """
    if not callable(value_fn):
        raise TypeError(f"minimize's value_fn must be callable, got {value_fn!r:.100}")
    require_transformation(opt, "minimize's opt")
    max_steps = min(check_int("max_steps", max_steps, 0), _INT32_MAX)
    if not isinstance(tol, jax.Array):
        tol = check_number("tol", tol, 0.0)
    if not isinstance(args, tuple):
        raise TypeError(f"minimize's args must be a tuple, got {type(args).__name__}")
    check_float_leaves(params, "params")
    if not jax.tree.leaves(params):
        raise ValueError("minimize: params has no array leaves to optimize")
    params = jax.tree.map(jnp.asarray, params)
    return _minimize(value_fn, opt, params, jnp.asarray(max_steps, jnp.int32), tol, args)


def _takes_keywords(update: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(update).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind is p.VAR_KEYWORD for p in parameters)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _minimize(
    value_fn: Callable[..., Any],
    opt: Any,
    params: PyTree,
    max_steps: jax.Array,
    tol: Any,
    args: tuple[Any, ...],
) -> tuple[PyTree, MinimizeResult]:
    dtype = scalar_dtype(params)
    tol = jnp.asarray(tol, dtype)

    def fn(p: PyTree) -> jax.Array:
        return value_fn(p, *args)

    def value_and_grad(p: PyTree) -> tuple[jax.Array, PyTree]:
        value, grad = jax.value_and_grad(fn)(p)
        return jnp.asarray(value, dtype), jax.tree.map(lambda g, x: g.astype(x.dtype), grad, p)

    def norm(grad: PyTree) -> jax.Array:
        return jnp.sqrt(tree_vdot(grad, grad, dtype))

    def reason(value: jax.Array, grad_norm: jax.Array, steps: jax.Array, stuck: Any) -> Any:
        code = jnp.where(steps >= max_steps, MAX_STEPS, _RUNNING)
        code = jnp.where(stuck, LINESEARCH_FAILED, code)
        code = jnp.where(grad_norm <= tol, CONVERGED, code)
        finite = jnp.isfinite(value) & jnp.isfinite(grad_norm)
        return jnp.where(finite, code, NOT_FINITE).astype(jnp.int32)

    # L-BFGS's line search leaves the value and gradient at the new params in its state.
    extras = isinstance(opt, EvaluatesLoss) or _takes_keywords(opt.update)

    def body(carry: tuple[Any, ...]) -> tuple[Any, ...]:
        params, state, value, grad, steps, _ = carry
        kwargs = {"value": value, "grad": grad, "value_fn": fn} if extras else {}
        updates, new_state = opt.update(grad, state, params, **kwargs)
        new_params = apply_updates(params, updates)
        evaluated = opt.evaluated(state, new_state) if isinstance(opt, EvaluatesLoss) else None
        if evaluated is not None:
            value, grad, stuck = evaluated
        else:
            value, grad = value_and_grad(new_params)
            stuck = jnp.asarray(False)
        steps = steps + 1
        return new_params, new_state, value, grad, steps, reason(value, norm(grad), steps, stuck)

    value, grad = value_and_grad(params)
    steps = jnp.zeros([], jnp.int32)
    start = (params, opt.init(params), value, grad, steps, reason(value, norm(grad), steps, False))
    params, _, value, grad, steps, code = jax.lax.while_loop(
        lambda carry: carry[-1] == _RUNNING, body, start
    )
    grad_norm = norm(grad)
    return params, MinimizeResult(steps, value, grad_norm, code == CONVERGED, code)
