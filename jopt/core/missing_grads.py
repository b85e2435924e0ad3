"""Keras's rule for a variable without a gradient: skip it, with a warning.

Keras's ``apply_gradients`` drops the ``(None, variable)`` pairs (a variable the loss does
not reach) and warns "Gradients do not exist for variables ... when minimizing the loss";
the other variables are updated and the iteration count advances. jopt does the same in
both of its forms, ``opt.apply_gradients(zip(grads, vars), state)`` and
``opt.apply_gradients(grads, state, params)`` with a ``None`` leaf in ``grads`` where
``params`` has an array: that param and its slots come back unchanged.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import jax

__all__ = ["MissingGrads", "find_missing_grads"]


def _is_none(x: Any) -> bool:
    return x is None


@dataclasses.dataclass(frozen=True)
class MissingGrads:
    """Where ``grads`` has ``None`` and ``params`` an array (flat leaf indices, paths)."""

    positions: frozenset[int]
    paths: tuple[str, ...]

    def _mask(self, tree: Any) -> Any:
        leaves, treedef = jax.tree.flatten(tree, is_leaf=_is_none)
        return jax.tree.unflatten(
            treedef, [None if i in self.positions else x for i, x in enumerate(leaves)]
        )

    def _put_back(self, new: Any, old: Any) -> Any:
        new_leaves, treedef = jax.tree.flatten(new, is_leaf=_is_none)
        old_leaves = jax.tree.flatten(old, is_leaf=_is_none)[0]
        return jax.tree.unflatten(
            treedef,
            [
                o if i in self.positions else n
                for i, (n, o) in enumerate(zip(new_leaves, old_leaves, strict=True))
            ],
        )

    def _per_param(self, params: Any) -> Any:
        """``is_leaf`` for the state's subtrees laid out like the params (the slots)."""
        structure: Any = jax.tree.structure(params, is_leaf=_is_none)

        def like_params(x: Any) -> bool:
            return x is not None and bool(structure == jax.tree.structure(x, is_leaf=_is_none))

        return like_params

    def drop(self, params: Any, state: Any) -> tuple[Any, Any]:
        """``params`` and ``state`` with those params and their slots set to ``None``."""
        like = self._per_param(params)
        state = jax.tree.map(lambda x: self._mask(x) if like(x) else x, state, is_leaf=like)
        return self._mask(params), state

    def restore(self, params: Any, state: Any, old_params: Any, old_state: Any) -> tuple[Any, Any]:
        """The step's results with the skipped params and slots put back unchanged."""
        like = self._per_param(old_params)
        state = jax.tree.map(
            lambda new, old: self._put_back(new, old) if like(old) else new,
            state,
            old_state,
            is_leaf=lambda x: x is None or like(x),
        )
        return self._put_back(params, old_params), state


def find_missing_grads(grads: Any, params: Any) -> MissingGrads | None:
    """The params whose gradient is ``None`` (with Keras's warning), or ``None`` if none.

    A tree whose structure differs from the params' is left to the usual structure check.

    Example:
        >>> import warnings, jax.numpy as jnp, jopt
        >>> params = {"used": jnp.ones(2), "unused": jnp.ones(2)}
        >>> opt = jopt.SGD(0.5)
        >>> with warnings.catch_warnings(record=True):
        ...     params, state = opt.apply_gradients(
        ...         {"used": jnp.ones(2), "unused": None}, opt.init(params), params)
        >>> params["used"], params["unused"]
        (Array([0.5, 0.5], dtype=float32), Array([1., 1.], dtype=float32))
    """
    if not any(g is None for g in jax.tree.leaves(grads, is_leaf=_is_none)):
        return None  # the common case, at the cost of one flatten
    grad_def: Any
    grad_leaves, grad_def = jax.tree_util.tree_flatten_with_path(grads, is_leaf=_is_none)
    param_leaves, param_def = jax.tree_util.tree_flatten_with_path(params, is_leaf=_is_none)
    if not bool(grad_def == param_def):
        return None
    positions = [
        i
        for i, ((_, g), (_, p)) in enumerate(zip(grad_leaves, param_leaves, strict=True))
        if g is None and p is not None
    ]
    if not positions:
        return None
    if len(positions) == sum(p is not None for _, p in param_leaves):
        raise ValueError(
            "No gradients provided for any variable: every gradient is None (Keras's "
            "error). Check that the loss depends on the params it is differentiated for."
        )
    paths = tuple(jax.tree_util.keystr(param_leaves[i][0]) for i in positions)
    warnings.warn(
        f"Gradients do not exist for params {list(paths)} when minimizing the loss: they "
        "are skipped (the params and their slots stay unchanged), as Keras skips them. "
        "Check that the loss depends on them, or pass zeros to decay them anyway.",
        UserWarning,
        stacklevel=4,
    )
    return MissingGrads(frozenset(positions), paths)
