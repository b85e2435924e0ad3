"""L-BFGS with a zoom line search (strong Wolfe conditions), optax's ``lbfgs`` as a jopt class.

Not an elementwise rule: the direction mixes every element of every leaf, so this class
does not go through :class:`jopt.Optimizer`'s per-leaf machinery (no base options, no
``bucketed``); it is a frozen, hashable ``(init, update)`` transformation of its own,
for full-batch problems. :func:`jopt.minimize` runs it to convergence in one compiled
loop.
"""

from __future__ import annotations

import functools
import inspect
import operator
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jopt import schedules
from jopt.core.declarations import (
    Hyperparam,
    boolean,
    declared_in,
    in_range,
    integer,
    non_negative,
    one_of,
    optional,
    positive,
    real,
    signature_checked,
    validate,
)
from jopt.core.frozen import Frozen
from jopt.core.placement import replicate_like
from jopt.core.protocol import EvaluatesLoss
from jopt.core.pytrees import check_float_leaves, check_same_tree
from jopt.core.registry import register_config_class
from jopt.core.validation import check_number
from jopt.formulas.linesearch import step_along, tree_vdot, zoom_linesearch

__all__ = ["LBFGS", "LBFGSState"]

PyTree = Any


class LBFGSState(NamedTuple):
    """The state of :class:`LBFGS`, with named fields.

    Attributes:
        step: int32, the number of updates made.
        s: the memory of parameter differences ``x_{k+1} - x_k``: a pytree shaped like
            the params with a leading axis of ``memory_size`` (``state.s["w"][i]``), in
            each param's dtype widened to at least float32. A ring buffer: pair ``i`` is
            in row ``i % memory_size``.
        y: the gradient differences ``g_{k+1} - g_k``, laid out as ``s``.
        rho: ``1 / (s_i . y_i)`` for each row, shape ``(memory_size,)``; 0 marks a row
            that holds no pair (unused, or cleared after a failed line search).
        pairs: int32, the number of pairs stored since the memory was last cleared; the
            newest is in row ``(pairs - 1) % memory_size``.
        step_size: the last step size: the line search's (0 when it took no step), or
            the learning rate without a line search.
        value: the loss at the params after the last update, as the line search found
            it (``+inf`` before the first update and without a line search). Read by
            :func:`jopt.minimize`, and by ``optax.value_and_grad_from_state``, which
            reuses it instead of evaluating the loss again.
        grad: the gradient at those params (zeros before the first update); without a
            line search, the gradient the last update was given.
        linesearch_steps: int32, the loss evaluations of the last line search.
        wolfe: bool, whether the last step size satisfied the strong Wolfe conditions.

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> state = jopt.LBFGS(memory_size=5).init({"w": jnp.zeros(3)})
        >>> state.s["w"].shape, state.rho.shape, int(state.pairs)
        ((5, 3), (5,), 0)
    """

    step: jax.Array
    s: PyTree
    y: PyTree
    rho: jax.Array
    pairs: jax.Array
    step_size: jax.Array
    value: jax.Array
    grad: PyTree
    linesearch_steps: jax.Array
    wolfe: jax.Array


def _wide(dtype: Any) -> Any:
    """The dtype L-BFGS computes a leaf in: its own, widened to at least float32."""
    return jnp.promote_types(dtype, jnp.float32)


def scalar_dtype(tree: PyTree) -> Any:
    """The dtype of the scalars (values, step sizes, dot products) for params ``tree``."""
    leaves = jax.tree.leaves(tree)
    return _wide(jnp.result_type(*leaves)) if leaves else jnp.dtype(jnp.float32)


def _tree_where(cond: jax.Array, a: PyTree, b: PyTree) -> PyTree:
    return jax.tree.map(lambda x, z: jnp.where(cond, x, z), a, b)


def _row(memory: PyTree, i: jax.Array) -> PyTree:
    return jax.tree.map(lambda x: x[i], memory)


def _set_row(memory: PyTree, i: jax.Array, new: PyTree, keep: jax.Array) -> PyTree:
    """``memory`` with row ``i`` set to ``new``, or left as it is where ``keep``."""
    return jax.tree.map(
        lambda x, n: x.at[i].set(jnp.where(keep, x[i], n.astype(x.dtype))), memory, new
    )


def _learning_rate(name: str, value: Any) -> float | Callable[[Any], Any]:
    """A schedule (or its serialized dict), or a number > 0."""
    if isinstance(value, dict):
        try:
            value = schedules.deserialize(value)
        except (TypeError, ValueError) as e:
            raise type(e)(f"{name}: {e}") from e
    return value if callable(value) else positive(name, value)


def _string(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {value!r:.100}")
    return value


@register_config_class
@signature_checked
class LBFGS(Frozen, EvaluatesLoss):
    """Limited-memory BFGS with a zoom line search: optax's ``lbfgs``, for full-batch losses.

    Rule, with ``g`` the gradient at the params ``x`` and the memory of the last
    ``memory_size`` pairs ``s_i = x_{i+1} - x_i``, ``y_i = g_{i+1} - g_i``,
    ``rho_i = 1 / (s_i . y_i)``::

        d = -learning_rate * H g          # H: the two-loop recursion (Nocedal & Wright,
                                          # Algorithm 7.4) over the memory, from
                                          # H0 = gamma I, gamma = s.y / y.y of the newest
                                          # pair (min(1, 1/|g|) before the first one)
        t = zoom line search along d      # strong Wolfe: f(x + t d) <= f(x) + c1 t g.d,
                                          # |grad f(x + t d) . d| <= c2 |g.d|; tries t = 1 first
        x = x + t d                       # the update is t d
        store (s, y) = (x_new - x, g_new - g) if s . y > 0

    The line search is :func:`jopt.formulas.linesearch.zoom_linesearch` (Nocedal &
    Wright, Algorithms 3.5-3.6, with Hager and Zhang's approximate decrease condition
    near a minimum, as optax). Its value and gradient at the new params are kept in the
    state (``state.value``, ``state.grad``), so a loop needs no second evaluation.

    ``update(grads, state, params, *, value, value_fn, grad=None, **extra)`` takes
    optax's extra arguments: ``value`` (the loss at ``params``; computed when omitted),
    ``value_fn`` (the loss function, called ``value_fn(params, **extra)``), ``grad``
    (optax's name for the gradient at ``params``; defaults to ``grads``), and any keyword
    arguments ``value_fn`` takes (data). So ``optax.lbfgs()`` code runs unchanged, with
    ``optax.value_and_grad_from_state`` too; :func:`jopt.minimize` is the whole loop.

    Same numbers as ``optax.lbfgs()`` (same direction, memory, first-step scaling, line
    search and its tolerances), except where optax's choice can stall: a pair with
    ``s . y <= 0`` is not stored (optax stores it with a negative ``rho``, which can
    make ``H`` indefinite; a successful strong Wolfe search always gives ``s . y > 0``),
    and when a line search finds no step that lowers the loss, jopt takes no step and
    clears the memory, so the next update restarts from the scaled gradient (optax takes
    the last trial step, which raises the loss); a failed search that did lower the loss
    takes its lowest point, as optax does. ``tests/test_lbfgs.py`` compares the two.

    Without a line search (``linesearch=None``) the update is ``learning_rate * d`` and
    ``value_fn`` is not needed; the pair of each step is stored at the next update,
    from its gradient.

    Args:
        learning_rate: a float > 0 or a schedule (callable ``step -> rate``) scaling the
            direction: with the line search, the first step size it tries; without, the
            step size. Default 1.0.
        memory_size: the number of pairs kept, an integer >= 1. Default 10.
        linesearch: ``"zoom"`` or ``None``. Default ``"zoom"``.
        scale_init_precond: start each recursion from ``gamma I`` (else ``I``). Default
            True.
        max_linesearch_steps: the most loss evaluations per line search, >= 1. Default 20.
        slope_rtol: ``c1`` of the sufficient decrease condition, in (0, 1). Default 1e-4.
        curv_rtol: ``c2`` of the curvature condition, in (slope_rtol, 1). Default 0.9.
        approx_dec_rtol: the relative increase of the loss Hager and Zhang's approximate
            decrease condition allows, >= 0, or None for the Armijo condition alone.
            Default 1e-6.
        increase_factor: the growth of the step size while bracketing, > 1. Default 2.0.
        max_learning_rate: an upper bound on the line search's step size, or None.
            Default None.
        stepsize_precision: the line search gives up (taking its lowest point) once its
            interval is shorter than this, >= 0. Default 1e-5.
        name: default ``"lbfgs"``.

    Example:
        >>> import jax, jax.numpy as jnp, jopt
        >>> def f(x):
        ...     return jnp.sum(jnp.array([1.0, 10.0, 100.0]) * (x - jnp.arange(3.0)) ** 2)
        >>> opt = jopt.LBFGS()
        >>> @jax.jit
        ... def step(params, state):
        ...     value, grad = jax.value_and_grad(f)(params)  # or state.value, state.grad
        ...     updates, state = opt.update(grad, state, params, value=value, value_fn=f)
        ...     return jopt.apply_updates(params, updates), state
        >>> params = jnp.zeros(3)
        >>> state = opt.init(params)
        >>> for _ in range(5):
        ...     params, state = step(params, state)
        >>> params.round(4), int(state.pairs), bool(state.wolfe)
        (Array([0., 1., 2.], dtype=float32), 5, True)
    """

    learning_rate = Hyperparam(1.0, _learning_rate)
    memory_size = Hyperparam(10, integer(1))
    linesearch = Hyperparam("zoom", one_of("zoom", None))
    scale_init_precond = Hyperparam(True, boolean)
    max_linesearch_steps = Hyperparam(20, integer(1))
    slope_rtol = Hyperparam(1e-4, in_range(0.0, 1.0, low_open=True, high_open=True))
    curv_rtol = Hyperparam(0.9, real)  # in (slope_rtol, 1): checked with slope_rtol
    approx_dec_rtol = Hyperparam(1e-6, optional(non_negative))
    increase_factor = Hyperparam(2.0, in_range(1.0, low_open=True))
    max_learning_rate = Hyperparam(None, optional(positive))
    stepsize_precision = Hyperparam(1e-5, non_negative)
    name = Hyperparam("lbfgs", _string)

    def __init__(
        self,
        learning_rate: float | Callable[[Any], Any] = 1.0,
        memory_size: int = 10,
        linesearch: str | None = "zoom",
        *,
        scale_init_precond: bool = True,
        max_linesearch_steps: int = 20,
        slope_rtol: float = 1e-4,
        curv_rtol: float = 0.9,
        approx_dec_rtol: float | None = 1e-6,
        increase_factor: float = 2.0,
        max_learning_rate: float | None = None,
        stepsize_precision: float = 1e-5,
        name: str = "lbfgs",
    ) -> None:
        config = validate(
            declared_in(type(self)),
            dict(
                learning_rate=learning_rate,
                memory_size=memory_size,
                linesearch=linesearch,
                scale_init_precond=scale_init_precond,
                max_linesearch_steps=max_linesearch_steps,
                slope_rtol=slope_rtol,
                curv_rtol=curv_rtol,
                approx_dec_rtol=approx_dec_rtol,
                increase_factor=increase_factor,
                max_learning_rate=max_learning_rate,
                stepsize_precision=stepsize_precision,
                name=name,
            ),
            type(self).__name__,
        )
        low = config["slope_rtol"]  # Wolfe's conditions need curv_rtol > slope_rtol
        config["curv_rtol"] = check_number(
            "curv_rtol", curv_rtol, low, 1.0, low_open=True, high_open=True
        )
        self._freeze(config)

    # ---- configuration: readable (frozen and hashable by Frozen) ---------------------

    def __repr__(self) -> str:
        defaults = {h.name: h.default for h in declared_in(type(self))}
        shown = [f"{k}={v!r}" for k, v in self._config if v != defaults[k]]
        return f"{type(self).__name__}({', '.join(shown)})"

    def __iter__(self) -> Iterator[Callable[..., Any]]:
        """Unpacks as ``init, update = opt``, like an ``optax.GradientTransformation``."""
        return iter((self.init, self.update))

    def get_config(self) -> dict[str, Any]:
        """Returns the constructor's arguments as a dict (a schedule serialized).

        Example:
            >>> import jopt
            >>> jopt.LBFGS.from_config(jopt.LBFGS(memory_size=5).get_config())
            LBFGS(memory_size=5)
        """
        config = dict(self._config)
        if isinstance(self.learning_rate, schedules.LearningRateSchedule):
            config["learning_rate"] = schedules.serialize(self.learning_rate)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LBFGS:
        """Rebuilds the optimizer from :meth:`get_config`'s dict."""
        return cls(**config)

    # ---- the protocol -----------------------------------------------------------------

    def init(self, params: PyTree) -> LBFGSState:
        """Returns the initial state: an empty memory, ``value = +inf``, zero ``grad``.

        Works under ``jax.jit`` and ``jax.eval_shape``.

        Raises:
            TypeError: a leaf of ``params`` is not a real floating-point array.
            ValueError: ``params`` has no array leaves.
        """
        check_float_leaves(params, "params")
        if not jax.tree.leaves(params):
            raise ValueError("LBFGS.init: params has no array leaves to optimize")
        dtype = scalar_dtype(params)
        m = self.memory_size
        memory = jax.tree.map(
            lambda p: jnp.zeros((m, *np.shape(p)), _wide(jnp.result_type(p))), params
        )
        grad = jax.tree.map(lambda p: jnp.zeros(np.shape(p), jnp.result_type(p)), params)
        scalars = replicate_like(
            (
                jnp.zeros([], jnp.int32),
                jnp.zeros([m], dtype),
                jnp.zeros([], jnp.int32),
                jnp.zeros([], dtype),
                jnp.full([], jnp.inf, dtype),
                jnp.zeros([], jnp.int32),
                jnp.zeros([], bool),
            ),
            params,
        )
        step, rho, pairs, step_size, value, ls_steps, wolfe = scalars
        return LBFGSState(step, memory, memory, rho, pairs, step_size, value, grad, ls_steps, wolfe)

    def evaluated(self, old: LBFGSState, new: LBFGSState) -> tuple[Any, Any, Any] | None:
        """``(new.value, new.grad, stalled)``: the loss and gradient the line search left
        at the new params, and whether it took no step even from a cleared memory (the
        scaled gradient itself failed); ``None`` without a line search."""
        if self.linesearch is None:
            return None
        return new.value, new.grad, (new.step_size == 0) & (old.pairs == 0)

    def update(
        self,
        grads: PyTree,
        state: LBFGSState,
        params: PyTree | None = None,
        *,
        value: Any = None,
        value_fn: Callable[..., Any] | None = None,
        grad: PyTree | None = None,
        **extra: Any,
    ) -> tuple[PyTree, LBFGSState]:
        """Returns ``(updates, new_state)``; apply with ``jopt.apply_updates(params, updates)``.

        With the line search, ``params + updates`` are the params the line search
        accepted (``params + t * d``, the same arithmetic as ``apply_updates``), whose
        loss and gradient are ``new_state.value`` and ``new_state.grad``.

        Args:
            grads: the gradient at ``params``.
            state: this optimizer's state.
            params: the current params (needed by the line search).
            value: the loss at ``params``; evaluated when omitted.
            value_fn: the loss, ``value_fn(params, **extra) -> scalar`` (needed by the
                line search).
            grad: optax's extra argument, the gradient at ``params`` for the line
                search; defaults to ``grads``.
            **extra: keyword arguments for ``value_fn`` (data, as with optax).

        Raises:
            TypeError: ``state`` is not an :class:`LBFGSState`; ``value_fn`` is missing
                (with the line search) or does not take ``extra``'s keywords; a leaf is
                not a real float array.
            ValueError: the trees of ``grads``, ``params`` and the state differ (naming
                the first differing path); the state is of another ``memory_size``.
        """
        self._check_state(state)
        reference = state.grad
        check_float_leaves(grads, "grads")
        check_same_tree(reference, grads, "params", "grads")
        if grad is not None:
            check_float_leaves(grad, "grad")
            check_same_tree(reference, grad, "params", "grad")
        if params is not None:
            check_float_leaves(params, "params")
            check_same_tree(reference, params, "the state's params", "params")
        grads = jax.tree.map(lambda g, r: jnp.asarray(g).astype(r.dtype), grads, reference)
        dtype = scalar_dtype(reference)
        rate = self._rate(state.step, dtype)
        if self.linesearch is None:
            return self._update_without_search(grads, state, rate, dtype)
        if value_fn is None or not callable(value_fn):
            raise TypeError(
                "LBFGS.update with its line search needs value_fn=, the loss function "
                "(optax's extra argument); or use jopt.minimize, or linesearch=None"
            )
        if params is None:
            raise ValueError("LBFGS.update with its line search needs the params")
        params = jax.tree.map(jnp.asarray, params)  # Python floats too
        fn = _bind(value_fn, extra)
        g = grads if grad is None else jax.tree.map(lambda x, r: x.astype(r.dtype), grad, reference)
        value = fn(params) if value is None else value

        direction = self._direction(grads, state, rate, dtype)
        ls = zoom_linesearch(
            jax.value_and_grad(fn),
            params,
            direction,
            jnp.asarray(value, dtype),
            g,
            max_steps=self.max_linesearch_steps,
            slope_rtol=self.slope_rtol,
            curv_rtol=self.curv_rtol,
            approx_dec_rtol=self.approx_dec_rtol,
            increase_factor=self.increase_factor,
            max_step_size=self.max_learning_rate,
            min_interval=self.stepsize_precision,
        )
        t = ls.step_size
        new_params = step_along(params, t, direction)
        updates = jax.tree.map(
            lambda p, d: (t.astype(d.dtype) * d).astype(jnp.result_type(p)), params, direction
        )
        new_grad = jax.tree.map(lambda x, r: x.astype(r.dtype), ls.grad, reference)
        s_new = jax.tree.map(
            lambda a, b: a.astype(_wide(a.dtype)) - b.astype(_wide(a.dtype)), new_params, params
        )
        y_new = jax.tree.map(lambda a, b: a.astype(_wide(a.dtype)) - b, new_grad, g)
        sy = tree_vdot(y_new, s_new, dtype)
        keep = ~(sy > 0)  # also for NaN
        slot = state.pairs % self.memory_size
        rho = state.rho.at[slot].set(jnp.where(keep, state.rho[slot], 1 / sy))
        pairs = state.pairs + jnp.where(keep, 0, 1)
        # No step that lowers the loss: clear the memory, so the next update restarts
        # from the scaled gradient.
        moved = t > 0
        rho = jnp.where(moved, rho, jnp.zeros_like(rho))
        pairs = jnp.where(moved, pairs, 0)
        new_state = LBFGSState(
            step=_increment(state.step),
            s=_set_row(state.s, slot, s_new, keep),
            y=_set_row(state.y, slot, y_new, keep),
            rho=rho,
            pairs=pairs,
            step_size=t,
            value=ls.value.astype(dtype),
            grad=new_grad,
            linesearch_steps=ls.evaluations,
            wolfe=ls.wolfe,
        )
        return updates, new_state

    # ---- the rule ---------------------------------------------------------------------

    def _rate(self, step: jax.Array, dtype: Any) -> jax.Array:
        if callable(self.learning_rate):
            return jnp.asarray(self.learning_rate(step)).astype(dtype)
        return jnp.asarray(self.learning_rate, dtype)

    def _direction(self, grads: PyTree, state: LBFGSState, rate: jax.Array, dtype: Any) -> PyTree:
        """``-rate * H grads`` by the two-loop recursion, in the memory's dtypes."""
        m = self.memory_size
        order = (state.pairs + jnp.arange(m)) % m  # oldest to newest (empty rows first)
        q = jax.tree.map(lambda g: g.astype(_wide(g.dtype)), grads)

        def newest_first(q: PyTree, i: jax.Array) -> tuple[PyTree, jax.Array]:
            alpha = state.rho[i] * tree_vdot(_row(state.s, i), q, dtype)
            q = jax.tree.map(lambda a, y: a - alpha.astype(a.dtype) * y, q, _row(state.y, i))
            return q, alpha

        q, alphas = jax.lax.scan(newest_first, q, order, reverse=True)
        if self.scale_init_precond:
            newest = (state.pairs - 1) % m
            s_n, y_n = _row(state.s, newest), _row(state.y, newest)
            sy, yy = tree_vdot(y_n, s_n, dtype), _squared_norm(y_n, dtype)
            gamma = jnp.where(yy > 0, sy / yy, 1.0)
            # Before the first pair: a step of length at most 1 (optax's heuristic).
            norm = jnp.sqrt(_squared_norm(grads, dtype))
            gamma = jnp.where(state.pairs > 0, gamma, jnp.minimum(1.0, 1.0 / norm))
            q = jax.tree.map(lambda a: gamma.astype(a.dtype) * a, q)

        def oldest_first(r: PyTree, i_alpha: tuple[jax.Array, jax.Array]) -> tuple[PyTree, None]:
            i, alpha = i_alpha
            beta = state.rho[i] * tree_vdot(_row(state.y, i), r, dtype)
            r = jax.tree.map(
                lambda a, s: a + (alpha - beta).astype(a.dtype) * s, r, _row(state.s, i)
            )
            return r, None

        r, _ = jax.lax.scan(oldest_first, q, (order, alphas))
        return jax.tree.map(lambda a: -rate.astype(a.dtype) * a, r)

    def _update_without_search(
        self, grads: PyTree, state: LBFGSState, rate: jax.Array, dtype: Any
    ) -> tuple[PyTree, LBFGSState]:
        """``rate * d``; the last step's pair is completed with this gradient."""
        m = self.memory_size
        slot = state.pairs % m
        s_last = _row(state.s, slot)  # the last update, stored when it was made
        y_last = jax.tree.map(lambda a, b: a.astype(_wide(a.dtype)) - b, grads, state.grad)
        sy = tree_vdot(y_last, s_last, dtype)
        keep = ~((sy > 0) & (state.step > 0))
        y = _set_row(state.y, slot, y_last, keep)
        rho = state.rho.at[slot].set(jnp.where(keep, 0, 1 / sy).astype(dtype))
        pairs = state.pairs + jnp.where(keep, 0, 1)
        state = state._replace(y=y, rho=rho, pairs=pairs)
        direction = self._direction(grads, state, rate, dtype)
        updates = jax.tree.map(lambda d, g: d.astype(g.dtype), direction, grads)
        # This step's pair waits for the next gradient: its row holds no pair until then.
        pending = pairs % m
        new_state = LBFGSState(
            step=_increment(state.step),
            s=_set_row(state.s, pending, direction, jnp.asarray(False)),
            y=y,
            rho=rho.at[pending].set(0),
            pairs=pairs,
            step_size=rate,
            value=jnp.full([], jnp.inf, dtype),
            grad=grads,
            linesearch_steps=jnp.zeros([], jnp.int32),
            wolfe=jnp.asarray(False),
        )
        return updates, new_state

    def _check_state(self, state: Any) -> None:
        if not isinstance(state, LBFGSState):
            raise TypeError(
                f"LBFGS.update expects the LBFGSState made by its init, got {type(state).__name__}"
            )
        if jnp.ndim(state.step) != 0:
            raise ValueError(
                f"this state is batched (step has shape {jnp.shape(state.step)}): map the "
                "update over it with jax.vmap"
            )
        if jnp.shape(state.rho) != (self.memory_size,):
            raise ValueError(
                f"this state holds {jnp.shape(state.rho)[0]} memory rows but {self!r} keeps "
                f"memory_size={self.memory_size}: it was made by a differently configured "
                "optimizer"
            )


def _squared_norm(tree: PyTree, dtype: Any) -> jax.Array:
    """``sum_leaves sum(x**2)`` in ``dtype``."""
    squares = [jnp.sum(jnp.square(x.astype(dtype))) for x in jax.tree.leaves(tree)]
    return functools.reduce(operator.add, squares, jnp.zeros([], dtype))


def _increment(step: jax.Array) -> jax.Array:
    return jnp.where(step < jnp.iinfo(jnp.int32).max, step + 1, step)


def _bind(value_fn: Callable[..., Any], extra: dict[str, Any]) -> Callable[[PyTree], Any]:
    """``value_fn`` with ``extra`` bound as keywords; a keyword it cannot take is a
    ``TypeError`` here, not deep inside the line search."""
    if not extra:
        return value_fn
    try:
        params = inspect.signature(value_fn).parameters
    except (TypeError, ValueError):  # a builtin or C function: let the call decide
        params = None
    if params is not None and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown = sorted(k for k in extra if k not in params)
        if unknown:
            raise TypeError(
                f"LBFGS.update got keyword arguments {unknown} that value_fn does not take "
                "(extra keywords are passed to value_fn, as in optax)"
            )
    return functools.partial(value_fn, **extra)
