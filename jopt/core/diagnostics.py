"""Errors that name the mistake and its fix, for the mistakes new users make first.

Each check is cheap (Python-level, on pytree structure) and runs before the step, so a
swapped argument or a foreign name is reported in the user's words instead of as a JAX
internals error or a blame on the wrong argument.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from typing import Any

import jax

from jopt.core.protocol import is_transformation
from jopt.core.state import OptimizerState

__all__ = [
    "check_hyperparam_values",
    "check_not_an_optimizer",
    "check_pairs_are_arrays",
    "check_params_not_state",
    "check_state_fits_params",
    "did_you_mean",
]

# Names other libraries use for Keras's arguments (optax, torch, tf.keras 2).
ALIASES: dict[str, str] = {
    "betas": "beta_1, beta_2 (Keras's names; torch's betas=(b1, b2))",
    "b1": "beta_1",
    "b2": "beta_2",
    "eps": "epsilon",
    "lr": "learning_rate",
    "wd": "weight_decay",
    "decay_rate": "beta_2 (or weight_decay)",
    "max_norm": "clipnorm (or global_clipnorm)",
    "max_grad_norm": "global_clipnorm",
    "clip_norm": "clipnorm",
    "clip_value": "clipvalue",
    "mu": "momentum",
    "alpha": "rho",
    "nesterov_momentum": "nesterov",
    "accumulation_steps": "gradient_accumulation_steps",
    "every_k_schedule": "gradient_accumulation_steps",
}

# Ranges every optimizer that holds these names agrees on (a superset of each one's own).
_UNIT = ("beta_1", "beta_2", "rho", "momentum", "ema_momentum")
_NON_NEGATIVE = ("epsilon", "weight_decay", "clipnorm", "global_clipnorm", "clipvalue")


def did_you_mean(name: str, allowed: Iterable[str]) -> str:
    """``"; did you mean X?"`` for a known alias or a close spelling, else ``""``.

    Example:
        >>> did_you_mean("betas", ["beta_1", "beta_2"])
        "; did you mean beta_1, beta_2 (Keras's names; torch's betas=(b1, b2))?"
        >>> did_you_mean("epsilom", ["epsilon", "amsgrad"])
        '; did you mean epsilon?'
    """
    if name in ALIASES:
        return f"; did you mean {ALIASES[name]}?"
    close = difflib.get_close_matches(name, list(allowed), n=2, cutoff=0.75)
    return f"; did you mean {' or '.join(close)}?" if close else ""


def _is_optimizer_state(x: Any) -> bool:
    return isinstance(x, OptimizerState)


def check_params_not_state(state: Any, params: Any) -> None:
    """Refuses ``apply_gradients(grads, params, state)`` (params and state swapped)."""
    if _is_optimizer_state(params) and not _is_optimizer_state(state):
        raise TypeError(
            "apply_gradients got an optimizer state where the params go and params where "
            "the state goes: the order is opt.apply_gradients(grads, state, params)"
        )


def check_state_fits_params(state: Any, params: Any) -> None:
    """Refuses a state made by ``opt.init`` of another tree (e.g. ``{"params": p}``)."""
    if not _is_optimizer_state(state) or not state.slots:
        return
    slots = next(iter(state.slots.values()))
    ours: Any = jax.tree.structure(params, is_leaf=lambda x: x is None)
    theirs: Any = jax.tree.structure(slots, is_leaf=lambda x: x is None)
    if ours != theirs and isinstance(slots, dict) and len(slots) == 1:
        key = next(iter(slots))
        if jax.tree.structure(slots[key], is_leaf=lambda x: x is None) == ours:
            raise ValueError(
                f"this state was made by opt.init of a tree wrapped in {{{key!r}: ...}}, but "
                f"the params passed are the tree inside it: pass the same tree to init and "
                f"to apply_gradients (opt.init(params) or params={{{key!r}: params}})"
            )


def check_pairs_are_arrays(grads: list[Any], variables: list[Any]) -> None:
    """Refuses ``zip(grads_dict, params_dict)``, which pairs the dicts' keys."""
    if any(isinstance(x, str) for x in (*grads, *variables)):
        raise TypeError(
            "apply_gradients got strings in its (grad, variable) pairs: zip over dicts pairs "
            "their keys. Pass the trees themselves, opt.apply_gradients(grads, state, "
            "params), or zip lists of arrays, zip(jax.tree.leaves(grads), "
            "jax.tree.leaves(params)), with a state from opt.init(jax.tree.leaves(params))"
        )


def check_not_an_optimizer(state: Any, what: str) -> None:
    """Refuses an optimizer object passed where its state goes."""
    if is_transformation(state) and not _is_optimizer_state(state):
        raise TypeError(
            f"{what} takes the optimizer's state, got the optimizer {state!r:.80}: "
            f"state = {what}(state, ...) (or opt.{what}(state, ...), which also checks "
            "each value as the constructor does)"
        )


def check_hyperparam_values(values: dict[str, Any]) -> None:
    """Refuses a Python number outside the range every optimizer holding that name
    accepts (``beta_1=2.0``), naming it; arrays and traced values are taken as they are."""
    for name, value in values.items():
        if (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or not math.isfinite(value)
        ):
            continue
        if name in _UNIT and not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value}")
        if name in _NON_NEGATIVE and value < 0.0:
            raise ValueError(f"{name} must be >= 0, got {value}")
