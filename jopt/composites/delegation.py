"""What every composite does through its members: live hyperparameters, the learning
rate, and the compiled step, written once for wrappers, partitions, chains and layouts."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from jopt.core.compiled import CompiledStep
from jopt.core.hyperparams import held_hyperparams, set_hyperparams
from jopt.core.protocol import Composite, HasLearningRate, LiveHyperparams, StateContainer

__all__ = ["Delegating", "WrapsOne"]

PyTree = Any


class Delegating(Composite, LiveHyperparams, CompiledStep):
    """A composite whose hyperparameters are its members': ``set_hyperparams`` sets each
    name in every member that holds it, checked by that member where it can check."""

    def set_hyperparams(self, state: Any, **values: Any) -> Any:
        """Returns ``state`` with live hyperparameters replaced in every member holding them.

        A member with its own checks (a jopt optimizer) checks its values as its
        constructor does; others get :func:`jopt.set_hyperparams`'s checks.

        Raises:
            ValueError: a name no member holds, or a value a member refuses.
        """
        states = self.member_states(state)
        held_anywhere: set[str] = set()
        new: dict[str, Any] = {}
        for key, member in self.members().items():
            held = held_hyperparams(states[key])
            held_anywhere |= held
            mine = {k: v for k, v in values.items() if k in held}
            if not mine:
                continue
            setter = member.set_hyperparams if isinstance(member, LiveHyperparams) else None
            new[key] = (
                setter(states[key], **mine)
                if setter is not None
                else set_hyperparams(states[key], **mine)
            )
        missing = {k: v for k, v in values.items() if k not in held_anywhere}
        if missing:
            set_hyperparams(state, **missing)  # raises, naming what is held
        return self.replace_member_states(state, new)


class WrapsOne(Delegating, HasLearningRate):
    """A wrapper of one transformation, ``inner``, whose state keeps the inner state in
    its ``inner`` field (a NamedTuple's)."""

    inner: Any

    def members(self) -> Mapping[str, Any]:
        """``{".inner": inner}``."""
        return {".inner": self.inner}

    def replace_members(self, members: Mapping[str, Any]) -> Any:
        """This wrapper around ``members[".inner"]``."""
        return dataclasses.replace(self, inner=members[".inner"])  # type: ignore[type-var]

    def member_states(self, state: Any) -> Mapping[str, Any]:
        """``{".inner": state.inner}``."""
        return {".inner": state.inner}

    def replace_member_states(self, state: Any, states: Mapping[str, Any]) -> Any:
        """``state`` with its ``inner`` replaced."""
        return state._replace(inner=states[".inner"]) if states else state

    def lr(self, step_or_state: Any = None) -> Any:
        """The inner transformation's learning rate (see :meth:`jopt.Optimizer.lr`); a
        state of this wrapper reports the rate of its inner state.

        Raises:
            TypeError: the inner transformation reports no learning rate.
        """
        if not isinstance(self.inner, HasLearningRate):
            raise TypeError(
                f"{type(self).__name__}'s inner {self.inner!r:.100} reports no learning rate "
                "(it lacks the HasLearningRate capability): read jopt.hyperparams(state)"
            )
        if isinstance(step_or_state, StateContainer):
            step_or_state = self.member_states(step_or_state)[".inner"]
        return self.inner.lr(step_or_state)
