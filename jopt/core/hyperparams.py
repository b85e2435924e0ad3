"""Live hyperparameters: read and change the values held in an optimizer state.

The constructor gives the initial values; the state holds the live ones. Every jopt
optimizer's state holds its numeric hyperparameters (learning rate, betas, rho,
momentum, epsilon, weight decay, clip thresholds...; see
:meth:`jopt.Optimizer.initial_hyperparams`) as float32 scalars, whatever the params'
dtype, as Keras keeps them in variables. Changing them between steps needs no
recompilation, because the compiled step reads them as inputs; a restored checkpoint
resumes with its own values.

While a value equals the constructor's, the step computes with the constructor's
Python number exactly as Keras does (``1 - beta_2`` in float64, rounded once), so runs
stay bit-identical to Keras; a changed value is used as the float32 it is stored as
(``1 - beta_2`` then computed in float32, as tf.keras 2 did: within a float32 rounding
of the hyperparameter of Keras with the same change).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jopt.core.diagnostics import check_hyperparam_values, check_not_an_optimizer, did_you_mean
from jopt.core.state import OptimizerState
from jopt.core.validation import check_number

__all__ = ["held_hyperparams", "hyperparams", "set_hyperparams"]

PyTree = Any


def _is_state(x: Any) -> bool:
    return isinstance(x, OptimizerState)


def _states(state: PyTree) -> list[tuple[str, OptimizerState]]:
    flat, _ = jax.tree_util.tree_flatten_with_path(state, is_leaf=_is_state)
    return [(jax.tree_util.keystr(path), s) for path, s in flat if _is_state(s)]


def _set_leaf(old: Any, value: Any) -> Any:
    """``value`` as a float32 array of ``old``'s shape; a variable wrapper (flax nnx's
    ``OptArray``, what ``nnx.Optimizer.opt_state`` holds) is kept and set in place, so
    the state keeps its nnx types, its compiled step and its place in ``nnx.state``."""
    if isinstance(old, jax.Array | np.ndarray | jax.core.Tracer):
        return jnp.broadcast_to(jnp.asarray(value, jnp.float32), jnp.shape(old))
    current = old.value
    old.value = jnp.broadcast_to(jnp.asarray(value, current.dtype), jnp.shape(current))
    return old


def _broadcasts(shape: tuple[int, ...], to: tuple[int, ...]) -> bool:
    return len(shape) <= len(to) and all(
        a in (1, b) for a, b in zip(reversed(shape), reversed(to), strict=False)
    )


def hyperparams(state: PyTree) -> dict[str, Any]:
    """Returns the live hyperparameters of a jopt state, as float32 arrays by name.

    For one optimizer's state, a flat dict; for a container of states (a
    :func:`jopt.chain`'s dict, a list, a wrapper's state...), a dict from each state's
    path to its dict.

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> state = jopt.SGD(0.1, momentum=0.9).init({"w": jnp.ones(2)})
        >>> jopt.hyperparams(state)
        {'learning_rate': Array(0.1, dtype=float32), 'momentum': Array(0.9, dtype=float32)}
    """
    if _is_state(state):
        return dict(state.hyperparams)
    states = _states(state)
    if not states:
        raise TypeError(f"no jopt OptimizerState found in {type(state).__name__}")
    return {path: dict(s.hyperparams) for path, s in states}


def set_hyperparams(state: PyTree, **values: Any) -> PyTree:
    """Returns ``state`` with live hyperparameters replaced; no recompilation follows.

    Works on any jopt state or container of them (a :func:`jopt.chain`'s, a wrapper's):
    each value is set in every optimizer state within ``state`` that holds that name,
    as a float32 array of the shape it had. Python numbers must be finite (a learning
    rate or ``learning_rate_scale`` also >= 0); arrays, traced ones included, are taken
    as they are. Only the ranges every optimizer agrees on are checked here (betas, rho,
    momenta in [0, 1]; epsilon, weight decay and clips >= 0);
    :meth:`jopt.Optimizer.set_hyperparams` checks a value as the optimizer's constructor
    does. An unknown name suggests Keras's (``lr`` -> ``learning_rate``).

    Only the names a state holds can be set. With a schedule as learning rate the state
    holds ``learning_rate_scale``, a multiplier on the schedule's value (1.0 at init);
    setting ``learning_rate`` there is an error that says so. A value whose constructor
    value left a part of the rule out (``weight_decay=None``, SGD's ``momentum=0``) is
    not held: the compiled step has no such part, so build a new optimizer instead.

    Raises:
        ValueError: no state within ``state`` holds a given name, or a Python value is
            not finite (or a negative rate).

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> opt = jopt.Adam(1e-3)
        >>> state = opt.init({"w": jnp.ones(2)})
        >>> state = jopt.set_hyperparams(state, learning_rate=1e-4, beta_2=0.99)
        >>> float(opt.lr(state)), float(jopt.hyperparams(state)["beta_2"])
        (9.999999747378752e-05, 0.9900000095367432)
    """
    check_not_an_optimizer(state, "set_hyperparams")
    check_hyperparam_values(values)
    states = _states(state)
    for name, value in values.items():
        if not any(name in s.hyperparams for _, s in states):
            held = sorted({k for _, s in states for k in s.hyperparams})
            hint = (
                "; the learning rate is a schedule here: set learning_rate_scale, a "
                "multiplier on it"
                if name == "learning_rate" and "learning_rate_scale" in held
                else did_you_mean(name, held)
                or "; a value the constructor turned off (0 or None) or one that shapes "
                "the compiled step (a bool, an int) is not held: build a new optimizer"
            )
            raise ValueError(
                f"no optimizer state holds hyperparameter {name!r} (held: {held}){hint}"
            )
        if not isinstance(value, jax.Array | jax.core.Tracer):
            rate = name in ("learning_rate", "learning_rate_scale")
            check_number(name, value, low=0.0 if rate else None)
        else:
            shapes = {jnp.shape(s.hyperparams[name]) for _, s in states if name in s.hyperparams}
            if not all(_broadcasts(jnp.shape(value), shape) for shape in shapes):
                raise ValueError(
                    f"{name} has shape {jnp.shape(value)}, which does not fit the state's "
                    f"{sorted(shapes)} (a scalar, or one value per model of a sweep)"
                )
            if not isinstance(value, jax.core.Tracer) and not bool(jnp.all(jnp.isfinite(value))):
                raise ValueError(f"{name} must be finite, got {value}")

    def replace(s: Any) -> Any:
        if not _is_state(s):
            return s
        new = dict(s.hyperparams)
        for name, value in values.items():
            if name in new:
                new[name] = _set_leaf(new[name], value)
        return s._replace(hyperparams=new)

    return jax.tree.map(replace, state, is_leaf=_is_state)


def held_hyperparams(state: PyTree) -> set[str]:
    """The names of the live hyperparameters any optimizer state within ``state`` holds.

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> sorted(held_hyperparams(jopt.SGD(0.1).init({"w": jnp.ones(2)})))
        ['learning_rate']
    """
    return {name for _, s in _states(state) for name in s.hyperparams}
