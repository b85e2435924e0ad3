"""``jopt.SAM(opt)``: sharpness-aware minimization around any optimizer, one gradient per
call (optax's ``contrib.sam`` in its default, transparent mode)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jopt.core.protocol import Transformation
from jopt.core.validation import check_int, check_number
from jopt.formulas.clipping import global_norm

__all__ = ["SAM", "SAMState"]

PyTree = Any


class SAMState(NamedTuple):
    """``inner_state``: the wrapped optimizer's state; ``cache``: the params where this
    SAM step started, shaped like them; ``steps_since_sync``: int32 calls since then.

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> state = jopt.SAM(jopt.SGD(0.1)).init({"w": jnp.ones(2)})
        >>> state.cache["w"], int(state.steps_since_sync)
        (Array([1., 1.], dtype=float32), 0)
    """

    inner_state: PyTree
    cache: PyTree
    steps_since_sync: jax.Array


@dataclasses.dataclass(frozen=True)
class SAM:
    """Sharpness-aware minimization (Foret et al., 2021) around any transformation, with
    optax's rule (``optax.contrib.sam(opt, chain(normalize(), sgd(rho)))``).

    One SAM step takes ``sync_period`` calls of ``update`` (default 2), each with the
    gradient at the params it is given, so an ordinary jitted train step
    (``grads = jax.grad(loss)(params); updates, state = opt.update(grads, state,
    params)``) runs it unchanged; count a SAM step as ``sync_period`` train steps. Rule,
    with ``g`` the gradient of this call and ``w0`` the params when the SAM step began
    (the state's ``cache``)::

        calls 1 .. sync_period - 1:  w = w + rho * g / ||g||     # ascent, global norm
        call sync_period:            w = w0 + inner update of g taken at the last w
                                         (inner state advanced once per SAM step)

    The inner optimizer sees the params ``w0``. optax's ``adv_optimizer`` is fixed to its
    documented default, normalized gradient ascent of size ``rho``; its ``opaque_mode``
    (a ``grad_fn`` called inside ``update``) is not offered.

    Args:
        inner: any transformation (a jopt optimizer, chain or partition, an optax one).
        rho: the ascent radius, >= 0. Default 0.05.
        sync_period: calls per SAM step, an integer >= 2. Default 2.

    Example:
        >>> import jax, jax.numpy as jnp, jopt
        >>> opt = jopt.SAM(jopt.SGD(0.1), rho=0.5)
        >>> loss = lambda p: jnp.sum(p["w"] ** 2)
        >>> params = {"w": jnp.array([3.0, 4.0])}
        >>> state = opt.init(params)
        >>> for _ in range(2):  # one SAM step
        ...     updates, state = opt.update(jax.grad(loss)(params), state, params)
        ...     params = jopt.apply_updates(params, updates)
        >>> params["w"]  # [3, 4] - 0.1 * the gradient at [3, 4] + 0.5 * [0.6, 0.8]
        Array([2.34, 3.12], dtype=float32)
    """

    inner: Transformation
    rho: float = 0.05
    sync_period: int = 2

    def __post_init__(self) -> None:
        if not (
            callable(getattr(self.inner, "init", None))
            and callable(getattr(self.inner, "update", None))
        ):
            raise TypeError(
                "SAM wraps a transformation with init and update (a jopt optimizer, chain "
                f"or an optax transformation), got {type(self.inner).__name__}"
            )
        check_number("rho", self.rho, low=0.0)
        check_int("sync_period", self.sync_period, 2)

    def __iter__(self) -> Iterator[Callable[..., Any]]:
        """Unpacks as ``init, update = opt``, like an ``optax.GradientTransformation``."""
        return iter((self.init, self.update))

    def init(self, params: PyTree) -> SAMState:
        """The inner state, the cache a copy of the params, no call yet."""
        cache = jax.tree.map(jnp.array, params)  # a copy: donating params leaves it intact
        return SAMState(self.inner.init(params), cache, jnp.zeros([], jnp.int32))

    def update(
        self, grads: PyTree, state: SAMState, params: PyTree | None = None, **extra: Any
    ) -> tuple[PyTree, SAMState]:
        """Returns ``(updates, new state)``: an ascent step, or the SAM step's end."""
        if not isinstance(state, SAMState):
            raise TypeError(
                f"SAM.update expects the SAMState made by its init, got {type(state).__name__}"
            )
        if params is None:
            raise ValueError("SAM needs params: call update(grads, state, params)")
        first = state.steps_since_sync == 0
        last = state.steps_since_sync == self.sync_period - 1
        norm = global_norm(jax.tree.leaves(grads))
        ascent = jax.tree.map(lambda g: self.rho * (g / norm), grads)
        inner_updates, inner_state = self.inner.update(
            grads, state.inner_state, state.cache, **extra
        )
        to_end = jax.tree.map(lambda c, p, u: c - p + u, state.cache, params, inner_updates)

        def pick(cond: jax.Array, a: PyTree, b: PyTree) -> PyTree:
            # optax's arithmetic select (cond * a + (1 - cond) * b) for the updates
            return jax.tree.map(lambda x, y: cond * x + (1 - cond) * y, a, b)

        cache = pick(first, params, state.cache)
        updates = pick(last, to_end, ascent)
        inner_state = jax.tree.map(
            lambda new, old: jnp.where(last, new, old), inner_state, state.inner_state
        )
        steps = (state.steps_since_sync + 1) % self.sync_period
        return updates, SAMState(inner_state, cache, steps)
