"""Which of an optimizer's values its state holds live, and the checks and messages of
``set_hyperparams``: a live value is checked by its declaration, as the constructor
checks it, and a name the state does not hold is refused saying why."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jopt.core.options import OPTIONS
from jopt.core.validation import check_number
from jopt.optimizers.configuration import Configuration

__all__ = ["check_live_values", "held_hyperparams", "not_held_message"]

# The base options held live in the state when they are on (in Keras's config order).
_OPTION_HYPERPARAMS = tuple(h.name for h in OPTIONS if h.live)
_OPTIONS = {h.name: h for h in OPTIONS}
# Arguments every optimizer's config holds besides its rule's.
_FIXED = frozenset({*_OPTIONS, "decay", "name"})


def held_hyperparams(opt: Configuration) -> dict[str, float]:
    """The values ``opt``'s state holds live, with the constructor's values: the rate
    (or ``learning_rate_scale`` for a schedule), the rule's live declarations and the
    base options that are on.

    Example:
        >>> import jopt
        >>> held_hyperparams(jopt.SGD(0.1))
        {'learning_rate': 0.1}
    """
    held: dict[str, float] = (
        {"learning_rate_scale": 1.0}
        if callable(opt.learning_rate)
        else {"learning_rate": opt.learning_rate}
    )
    for name in (*opt.hyperparam_names, *_OPTION_HYPERPARAMS):
        value = getattr(opt, name)
        if name == "ema_momentum":
            on = opt.use_ema
        elif name in opt.optional_hyperparams or name in _OPTION_HYPERPARAMS:
            on = bool(value)  # 0 or None: that part of the rule is left out
        else:
            on = True
        if on:
            held[name] = value
    return held


def _check_one(opt: Configuration, name: str, value: Any) -> Any:
    """A live value checked by its declaration (the constructor's check)."""
    if name in ("learning_rate", "learning_rate_scale"):
        return check_number(name, value, low=0.0)
    declaration = _OPTIONS.get(name) or next(h for h in opt.rule_hyperparams if h.name == name)
    checked = declaration.check(name, value)
    if checked is None:
        raise ValueError(
            f"{name}=None leaves a part of {type(opt).__name__}'s rule out, which a live "
            "value cannot do (the compiled step has that part): give a number, or build "
            "a new optimizer"
        )
    return checked


def check_live_values(
    opt: Configuration,
    held: Mapping[str, Any],
    live: Mapping[str, Any],
    values: Mapping[str, Any],
) -> dict[str, Any]:
    """``values`` for ``set_hyperparams``, each checked as the constructor checks it and
    with the rule's relations (:meth:`~jopt.Optimizer.check_relations`) against the
    ``live`` values the state holds; returns them as they are to be stored (a Python
    value as checked: ``epsilon=None`` is 1e-7, as constructed).

    ``held`` is what the state holds (:func:`held_hyperparams`). Traced or batched
    arrays (a sweep's) are taken as they are.

    Raises:
        ValueError: a value the constructor would refuse, or a name the state does not
            hold (saying why).
    """
    for name in values:
        if name not in held:
            raise ValueError(not_held_message(opt, held, name))
    given = {
        k: float(v) if isinstance(v, jax.Array) else v
        for k, v in values.items()
        if not isinstance(v, jax.Array) or (not isinstance(v, jax.core.Tracer) and jnp.size(v) == 1)
    }
    checked = {name: _check_one(opt, name, value) for name, value in given.items()}
    rule = {h.name: getattr(opt, h.name) for h in opt.rule_hyperparams}
    if set(checked) & set(rule):
        concrete = {  # the values the state holds now, where they are concrete
            k: float(v)
            for k, v in live.items()
            if k in rule and not isinstance(v, jax.core.Tracer) and jnp.size(v) == 1
        }
        related = opt.check_relations(rule | concrete | checked)
        checked |= {k: related[k] for k in checked if k in related}
    stored = {k: v for k, v in checked.items() if not isinstance(values[k], jax.Array)}
    return dict(values) | stored


def not_held_message(opt: Configuration, held: Mapping[str, Any], name: str) -> str:
    """Why ``opt``'s state holds no live ``name``, and what to do instead.

    Example:
        >>> import jopt
        >>> opt = jopt.SGD(0.1)
        >>> print(not_held_message(opt, held_hyperparams(opt), "momentum"))
        ... # doctest: +NORMALIZE_WHITESPACE
        SGD holds no live hyperparameter 'momentum' (held: ['learning_rate']): the
        constructor's momentum=0.0 leaves that part of the rule out of the compiled
        step, so it cannot be switched on live; build a new optimizer
    """
    what = f"{type(opt).__name__} holds no live hyperparameter {name!r} (held: {sorted(held)})"
    if name == "learning_rate" and callable(opt.learning_rate):
        return f"{what}; the learning rate is a schedule: set learning_rate_scale"
    if name in (*opt.hyperparam_names, *_OPTION_HYPERPARAMS):
        off = "use_ema=False" if name == "ema_momentum" else f"{name}={getattr(opt, name)!r}"
        return (
            f"{what}: the constructor's {off} leaves that part of the rule out of the "
            "compiled step, so it cannot be switched on live; build a new optimizer"
        )
    if name in _FIXED or any(h.name == name for h in opt.rule_hyperparams):
        return (
            f"{what}: {name} is fixed by the constructor (it shapes the compiled step, "
            "or only init reads it); build a new optimizer"
        )
    return what
