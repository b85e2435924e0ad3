"""``jopt.Lookahead(opt)``: any optimizer's fast steps, pulled back to slow weights every
``sync_period`` steps (optax's ``lookahead``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jopt.core.compiled import CompiledStep
from jopt.core.protocol import Transformation
from jopt.core.validation import check_int, check_number

__all__ = ["Lookahead", "LookaheadState"]

PyTree = Any


class LookaheadState(NamedTuple):
    """``inner_state``: the wrapped optimizer's state; ``slow``: the slow weights, shaped
    like the params; ``steps_since_sync``: int32 fast steps since the last sync.

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> state = jopt.Lookahead(jopt.SGD(0.1)).init({"w": jnp.ones(2)})
        >>> state.slow["w"], int(state.steps_since_sync)
        (Array([1., 1.], dtype=float32), 0)
    """

    inner_state: PyTree
    slow: PyTree
    steps_since_sync: jax.Array


@dataclasses.dataclass(frozen=True)
class Lookahead(CompiledStep):
    """Lookahead (Zhang et al., 2019) around any transformation, with optax's rule.

    The params are the fast weights, which the inner optimizer steps; the slow weights
    live in the state. Rule, with ``u`` the inner optimizer's update of the fast weights
    ``f``, ``s`` the slow weights and ``sync`` 1 on every ``sync_period``-th step, else 0::

        diff = f + u - s
        s = s + slow_step_size * sync * diff
        f = f + u - sync * (1 - slow_step_size) * diff   # on a sync step: f = the new s

    optax's ``lookahead`` takes and updates ``LookaheadParams(fast, slow)``; here the
    params are the fast weights alone, and :meth:`slow_params` gives the slow ones (the
    weights to evaluate), with the same numbers (``tests/test_lookahead.py``). optax's
    ``reset_state`` is not offered.

    Args:
        inner: any transformation (a jopt optimizer, chain or partition, an optax one).
        sync_period: fast steps between syncs, an integer >= 1. Default 6.
        slow_step_size: how far the slow weights move towards the fast ones, in [0, 1].
            Default 0.5.

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> opt = jopt.Lookahead(jopt.SGD(0.1), sync_period=2, slow_step_size=0.5)
        >>> params = {"w": jnp.array([1.0])}
        >>> state = opt.init(params)
        >>> for _ in range(2):
        ...     updates, state = opt.update({"w": jnp.array([1.0])}, state, params)
        ...     params = jopt.apply_updates(params, updates)
        >>> params["w"], opt.slow_params(state)["w"]  # 1 - 0.2 fast; slow halfway: 0.9
        (Array([0.9], dtype=float32), Array([0.9], dtype=float32))
    """

    inner: Transformation
    sync_period: int = 6
    slow_step_size: float = 0.5

    def __post_init__(self) -> None:
        if not (
            callable(getattr(self.inner, "init", None))
            and callable(getattr(self.inner, "update", None))
        ):
            raise TypeError(
                f"Lookahead wraps a transformation with init and update (a jopt optimizer, "
                f"chain or an optax transformation), got {type(self.inner).__name__}"
            )
        check_int("sync_period", self.sync_period, 1)
        check_number("slow_step_size", self.slow_step_size, 0.0, 1.0)

    def __iter__(self) -> Iterator[Callable[..., Any]]:
        """Unpacks as ``init, update = opt``, like an ``optax.GradientTransformation``."""
        return iter((self.init, self.update))

    def init(self, params: PyTree) -> LookaheadState:
        """The inner state, slow weights equal to the params, no step since a sync."""
        slow = jax.tree.map(jnp.array, params)  # a copy: donating params leaves it intact
        return LookaheadState(self.inner.init(params), slow, jnp.zeros([], jnp.int32))

    def update(
        self, grads: PyTree, state: LookaheadState, params: PyTree | None = None, **extra: Any
    ) -> tuple[PyTree, LookaheadState]:
        """Returns ``(updates of the fast weights, new state)``; needs the params."""
        if not isinstance(state, LookaheadState):
            raise TypeError(
                f"Lookahead.update expects the LookaheadState made by its init, got "
                f"{type(state).__name__}"
            )
        if params is None:
            raise ValueError("Lookahead needs params: call update(grads, state, params)")
        updates, inner_state = self.inner.update(grads, state.inner_state, params, **extra)
        sync = state.steps_since_sync == self.sync_period - 1
        a = self.slow_step_size
        diff = jax.tree.map(lambda f, u, s: f + u - s, params, updates, state.slow)
        slow = jax.tree.map(lambda s, d: s + a * sync * d, state.slow, diff)
        fast_updates = jax.tree.map(lambda u, d: u - sync * (1 - a) * d, updates, diff)
        steps = (state.steps_since_sync + 1) % self.sync_period
        return fast_updates, LookaheadState(inner_state, slow, steps)

    @staticmethod
    def slow_params(state: LookaheadState) -> PyTree:
        """The slow weights, the ones to evaluate (optax's ``params.slow``)."""
        return state.slow
