"""The options every optimizer takes, besides its own rule's arguments: Keras's base options.

They share one definition (a ``TypedDict``, so ``**options`` stays typed) and one
validation, so each optimizer module lists only its rule's arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypedDict

import jax.numpy as jnp

from jopt.core.declarations import (
    Hyperparam,
    boolean,
    declared_in,
    integer,
    non_negative,
    one_of,
    optional,
    positive,
    unit_interval,
    validate,
)
from jopt.core.diagnostics import did_you_mean
from jopt.core.validation import check_strings

__all__ = [
    "LAYOUTS",
    "OPTIONS",
    "OPTION_DEFAULTS",
    "DeclaredOptions",
    "OptimizerOptions",
    "validate_options",
]


class OptimizerOptions(TypedDict, total=False):
    """Keyword options of every optimizer, with Keras 3's names and defaults.

    * ``lr``: tf.keras 2's alias of ``learning_rate`` (giving both is a ``TypeError``).
    * ``decay``: tf.keras 2's time-based decay ``lr_t / (1 + decay * t)``, >= 0; default 0.
    * ``name``: Keras's name; default: Keras's auto name for the class.
    * ``weight_decay``: decoupled decay ``w -= lr * weight_decay * w`` before the update.
    * ``clipnorm``, ``clipvalue``, ``global_clipnorm``: gradient clipping (at most one).
    * ``use_ema``, ``ema_momentum`` (0.99), ``ema_overwrite_frequency``: an exponential
      moving average of the params kept in the state.
    * ``loss_scale_factor``: gradients are divided by it first.
    * ``gradient_accumulation_steps``: apply the mean gradient every k calls.
    * ``exclude_from_weight_decay``: param path names, or a predicate on the path
      string, whose leaves get no weight decay.
    * ``slot_dtypes`` (jopt): a dtype per slot name, e.g. ``{"momentum": "bfloat16",
      "velocity": "float32"}``; slots not named take their param's dtype (Keras's rule).
      The rule computes in the widest of the param's and its slots' dtypes. ``"int8"``
      stores a slot block-wise 8-bit (bitsandbytes' dynamic map, computed in float32;
      see :mod:`jopt.core.slot_storage`).
    * ``master_weights`` (jopt): keep a float32 copy of each param in the state; the
      update is computed on it in float32 and the param is its rounding.
    * ``layout`` (jopt): how the state lays out the slots. ``"auto"`` (default) keeps
      them per leaf, except for a tree of many small leaves (at least
      ``jopt.optimizers.buckets.AUTO_MIN_SMALL_LEAVES``, 64, of up to 8,192 elements)
      under an elementwise rule, where they are kept as a few flat buckets: the same
      numbers, a faster step and a much faster compile. ``"per_leaf"`` always keeps them
      per leaf (``state.slots["momentum"]`` shaped like the params); ``"bucketed"``
      always packs (as :func:`jopt.bucketed`). Params sharded over several devices stay
      per leaf.
    """

    lr: Any
    decay: float | None
    name: str | None
    weight_decay: float | None
    clipnorm: float | None
    clipvalue: float | None
    global_clipnorm: float | None
    use_ema: bool
    ema_momentum: float
    ema_overwrite_frequency: int | None
    loss_scale_factor: float | None
    gradient_accumulation_steps: int | None
    exclude_from_weight_decay: Sequence[str] | Callable[[str], bool] | None
    slot_dtypes: Mapping[str, Any] | None
    master_weights: bool
    layout: str


def _exclude_from_weight_decay(name: str, value: Any) -> Any:
    """Path names or regular expressions (a hashable tuple), a predicate on the path
    string, or ``None``."""
    if value is None or callable(value):
        return value
    return check_strings(name, value, regex=True)


def _slot_dtypes(name: str, value: Any) -> tuple[tuple[str, str], ...] | None:
    """A dtype per slot name, as a sorted (hashable) tuple of ``(slot, dtype name)``."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must map slot names to dtypes, got {value!r:.100}")
    pairs = []
    for slot, dtype in value.items():
        try:
            dtype = jnp.dtype(dtype)
        except TypeError:
            raise TypeError(f"{name}[{slot!r}] is not a dtype: {dtype!r}") from None
        if not jnp.issubdtype(dtype, jnp.floating) and dtype != jnp.int8:
            raise TypeError(
                f"{name}[{slot!r}] must be a floating dtype or 'int8' (block-wise 8-bit), "
                f"got {dtype}"
            )
        pairs.append((slot, dtype.name))
    return tuple(sorted(pairs))


#: The values of the ``layout`` option.
LAYOUTS = ("auto", "per_leaf", "bucketed")


class DeclaredOptions:
    """The base options, each declared once (default, check, whether the state holds it
    live), in Keras's config order; :class:`jopt.Optimizer` inherits them, so
    ``opt.clipnorm`` is the checked value. Those held live are held only when on
    (``ema_momentum`` with ``use_ema``)."""

    weight_decay = Hyperparam(None, optional(non_negative), live="when on")
    clipnorm = Hyperparam(None, optional(positive), live="when on")
    global_clipnorm = Hyperparam(None, optional(positive), live="when on")
    clipvalue = Hyperparam(None, optional(positive), live="when on")
    use_ema = Hyperparam(False, boolean, live=False)
    ema_momentum = Hyperparam(0.99, unit_interval, live="when on")
    ema_overwrite_frequency = Hyperparam(None, integer(1, optional=True), live=False)
    loss_scale_factor = Hyperparam(None, optional(positive), live="when on")
    gradient_accumulation_steps = Hyperparam(None, integer(2, optional=True), live=False)
    exclude_from_weight_decay = Hyperparam(None, _exclude_from_weight_decay, live=False)
    slot_dtypes = Hyperparam(None, _slot_dtypes, live=False)
    master_weights = Hyperparam(False, boolean, live=False)
    layout = Hyperparam("auto", one_of(*LAYOUTS), live=False)


#: The base options' declarations, in Keras's config order.
OPTIONS: tuple[Hyperparam[Any], ...] = declared_in(DeclaredOptions)

# The options stored in the config (lr, decay and name are resolved by the base class).
OPTION_DEFAULTS: dict[str, Any] = {h.name: h.default for h in OPTIONS}


def validate_options(options: dict[str, Any]) -> dict[str, Any]:
    """Returns every option, validated, in a fixed order; raises naming a bad one."""
    unknown = set(options) - set(OPTION_DEFAULTS)
    if unknown:
        hints = "".join(did_you_mean(name, OPTION_DEFAULTS) for name in sorted(unknown))
        raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(unknown))}{hints}")
    o = OPTION_DEFAULTS | options
    clips = [k for k in ("clipnorm", "clipvalue", "global_clipnorm") if o[k] is not None]
    if len(clips) > 1:
        raise ValueError(f"set at most one of clipnorm, clipvalue, global_clipnorm; got {clips}")
    return validate(OPTIONS, o, "the base options")
