"""``jopt.chain``: transformations applied in order, as one frozen transformation."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from jopt.composites.delegation import Delegating
from jopt.core.protocol import (
    HasLearningRate,
    apply_step,
    apply_updates,
    require_transformation,
)

__all__ = ["Chain", "chain"]

PyTree = Any


def _transform_name(transform: Any, index: int) -> str:
    name = getattr(transform, "name", None)
    return name if isinstance(name, str) and name else str(index)


@dataclasses.dataclass(frozen=True, repr=False)
class Chain(Delegating, HasLearningRate):
    """Transformations applied in order; each sees the updates of the one before.

    Made by :func:`chain`. Frozen and hashable (a valid static argument of ``jax.jit``);
    its state is a dict of the members' states keyed by name. ``apply`` runs every
    member's ``update`` but the last, whose own ``apply`` (Keras's arithmetic, for a
    jopt optimizer) gives the new params.

    Attributes:
        items: ``(name, transformation)`` pairs in application order.

    Example:
        >>> import jax.numpy as jnp, optax, jopt
        >>> tx = jopt.chain(optax.clip_by_global_norm(1.0), jopt.SGD(0.5))
        >>> params = {"w": jnp.ones(2)}
        >>> params, state = tx.apply_gradients({"w": jnp.ones(2)}, tx.init(params), params)
        >>> params["w"], sorted(state)
        (Array([0.6464466, 0.6464466], dtype=float32), ['0', 'sgd'])
    """

    items: tuple[tuple[str, Any], ...]

    def __repr__(self) -> str:
        """``chain(name=member, ...)`` in application order."""
        return "chain(" + ", ".join(f"{name}={t!r}" for name, t in self.items) + ")"

    def __iter__(self) -> Any:
        """Unpacks as ``init, update = tx``, like an ``optax.GradientTransformation``."""
        return iter((self.init, self.update))

    def _check(self, state: Any) -> None:
        names = [name for name, _ in self.items]
        if not isinstance(state, Mapping) or set(state) != set(names):
            held = sorted(state) if isinstance(state, Mapping) else type(state).__name__
            raise ValueError(
                f"this chain's state holds {held} but the chain has {names}: it was made "
                "by a different chain"
            )

    def init(self, params: PyTree) -> dict[str, PyTree]:
        """Each member's initial state, by name."""
        return {name: t.init(params) for name, t in self.items}

    def update(
        self, updates: PyTree, state: dict[str, PyTree], params: PyTree | None = None, **extra: Any
    ) -> tuple[PyTree, dict[str, PyTree]]:
        """Runs each member's ``update`` in order; returns the last updates and the states.

        ``extra`` (optax's extra-args protocol) is accepted and not passed on.
        """
        del extra
        self._check(state)
        new_state = {}
        for name, t in self.items:
            updates, new_state[name] = t.update(updates, state[name], params)
        return updates, new_state

    def apply(
        self, grads: PyTree, state: dict[str, PyTree], params: PyTree
    ) -> tuple[PyTree, dict[str, PyTree]]:
        """Returns ``(new_params, new_state)``: the members' updates in order, the last
        member's own arithmetic for the new params."""
        self._check(state)
        if not self.items:  # the identity: the grads are the updates
            return apply_updates(params, grads), {}
        new_state = {}
        *first, (last_name, last) = self.items
        for name, t in first:
            grads, new_state[name] = t.update(grads, state[name], params)
        new_params, new_state[last_name] = apply_step(last, grads, state[last_name], params)
        return new_params, new_state

    # ---- capabilities -----------------------------------------------------------------

    def members(self) -> Mapping[str, Any]:
        """The members by ``"['name']"``, the path of each one's state."""
        return {f"[{name!r}]": t for name, t in self.items}

    def replace_members(self, members: Mapping[str, Any]) -> Chain:
        """This chain with its members replaced (same keys)."""
        return Chain(tuple((name, members[f"[{name!r}]"]) for name, _ in self.items))

    def member_states(self, state: Any) -> Mapping[str, Any]:
        """Each member's state, by ``"['name']"``."""
        return {f"[{name!r}]": state[name] for name, _ in self.items}

    def replace_member_states(self, state: Any, states: Mapping[str, Any]) -> Any:
        """``state`` with some members' states replaced."""
        return {name: states.get(f"[{name!r}]", s) for name, s in state.items()}

    def lr(self, step_or_state: Any = None) -> Any:
        """The learning rate of the member that reports one (a jopt optimizer), at a step
        or from this chain's state; a dict by name when several do.

        Raises:
            TypeError: no member reports a learning rate.

        Example:
            >>> import jax.numpy as jnp, optax, jopt
            >>> tx = jopt.chain(optax.clip_by_global_norm(1.0), jopt.SGD(0.1))
            >>> float(tx.lr(tx.init({"w": jnp.ones(2)})))
            0.10000000149011612
        """
        rated = [(name, t) for name, t in self.items if isinstance(t, HasLearningRate)]
        if not rated:
            raise TypeError(
                f"no member of {self!r:.200} reports a learning rate: read jopt.hyperparams(state)"
            )
        is_state = isinstance(step_or_state, Mapping)
        rates = {
            name: t.lr(step_or_state[name] if is_state else step_or_state) for name, t in rated
        }
        return next(iter(rates.values())) if len(rates) == 1 else rates


def chain(*transforms: Any, **named: Any) -> Chain:
    """Applies transformations in order; each sees the updates of the one before.

    Accepts jopt optimizers, jopt transformations and optax transformations alike.
    The state is a dict keyed by name, so it stays readable: a positional transform is
    named after its ``name`` attribute (jopt optimizers have Keras's, e.g. ``"adam"``)
    or its position (``"0"``, ``"1"``, ...); keyword transforms are named by their
    keyword. Names are made unique with a ``_1``, ``_2``... suffix. The result is a
    frozen :class:`Chain` with a readable repr, ``lr``, ``set_hyperparams``,
    ``apply_gradients`` and a summary.

    Example:
        >>> import jax.numpy as jnp, optax, jopt
        >>> tx = jopt.chain(clip=optax.clip_by_global_norm(1.0), adam=jopt.Adam())
        >>> params = {"w": jnp.ones(3)}
        >>> state = tx.init(params)
        >>> updates, state = tx.update({"w": jnp.full(3, 10.0)}, state, params)
        >>> sorted(state)
        ['adam', 'clip']
        >>> jopt.chain(jopt.SGD(0.1), jopt.Adam())
        chain(sgd=SGD(learning_rate=0.1), adam=Adam())
    """
    items: list[tuple[str, Any]] = []
    seen: set[str] = set()
    pairs = [(_transform_name(t, i), t) for i, t in enumerate(transforms)] + list(named.items())
    for i, (name, t) in enumerate(pairs):
        require_transformation(t, f"chain argument {name!r} (position {i})")
        unique, k = name, 0
        while unique in seen:
            k += 1
            unique = f"{name}_{k}"
        seen.add(unique)
        items.append((unique, t))
    return Chain(tuple(items))
