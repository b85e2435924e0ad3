"""Live hyperparameters: read and change the values held in an optimizer state.

The constructor gives the initial values; the state holds the live ones. Changing them
between steps needs no recompilation, because the compiled step reads them as inputs.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jopt.base import OptimizerState
from jopt.validation import check_number

__all__ = ["hyperparams", "set_hyperparams"]

PyTree = Any


def _is_state(x: Any) -> bool:
    return isinstance(x, OptimizerState)


def _states(state: PyTree) -> list[tuple[str, OptimizerState]]:
    flat, _ = jax.tree_util.tree_flatten_with_path(state, is_leaf=_is_state)
    return [(jax.tree_util.keystr(path), s) for path, s in flat if _is_state(s)]


def hyperparams(state: PyTree) -> dict[str, Any]:
    """Returns the live hyperparameters of a jopt state, as float32 arrays by name.

    For one optimizer's state, a flat dict; for a container of states (a
    :func:`jopt.chain`'s dict, a list...), a dict from each state's path to its dict.

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> state = jopt.SGD(0.1).init({"w": jnp.ones(2)})
        >>> jopt.hyperparams(state)
        {'learning_rate': Array(0.1, dtype=float32)}
    """
    if _is_state(state):
        return dict(state.hyperparams)
    states = _states(state)
    if not states:
        raise TypeError(f"no jopt OptimizerState found in {type(state).__name__}")
    return {path: dict(s.hyperparams) for path, s in states}


def set_hyperparams(state: PyTree, **values: Any) -> PyTree:
    """Returns ``state`` with live hyperparameters replaced; no recompilation follows.

    Each value is set in every optimizer state within ``state`` that holds that name,
    as a float32 array of the shape it had. Python numbers are checked (a learning rate
    must be >= 0 and finite).

    With a schedule as learning rate the state holds ``learning_rate_scale``, a
    multiplier on the schedule's value (1.0 at init); setting ``learning_rate`` there
    is an error that says so.

    Raises:
        ValueError: no state within ``state`` holds a given name.

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> opt = jopt.Adam(1e-3)
        >>> state = jopt.set_hyperparams(opt.init({"w": jnp.ones(2)}), learning_rate=1e-4)
        >>> float(opt.lr(state))
        9.999999747378752e-05
    """
    states = _states(state)
    for name, value in values.items():
        if not any(name in s.hyperparams for _, s in states):
            held = sorted({k for _, s in states for k in s.hyperparams})
            hint = (
                "; the learning rate is a schedule here: set learning_rate_scale, a "
                "multiplier on it"
                if name == "learning_rate" and "learning_rate_scale" in held
                else ""
            )
            raise ValueError(
                f"no optimizer state holds hyperparameter {name!r} (held: {held}){hint}"
            )
        if not isinstance(value, jax.Array | jax.core.Tracer):
            check_number(name, value, low=0.0)

    def replace(s: Any) -> Any:
        if not _is_state(s):
            return s
        new = dict(s.hyperparams)
        for name, value in values.items():
            if name in new:
                new[name] = jnp.broadcast_to(jnp.asarray(value, jnp.float32), jnp.shape(new[name]))
        return s._replace(hyperparams=new)

    return jax.tree.map(replace, state, is_leaf=_is_state)
