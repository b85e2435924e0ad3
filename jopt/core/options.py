"""The options every optimizer takes, besides its own rule's arguments: Keras's base options.

They share one definition (a ``TypedDict``, so ``**options`` stays typed) and one
validation, so each optimizer module lists only its rule's arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypedDict

import jax.numpy as jnp

from jopt.core.diagnostics import did_you_mean
from jopt.core.validation import check_bool, check_int, check_number, check_strings

__all__ = ["LAYOUTS", "OPTION_DEFAULTS", "OptimizerOptions", "validate_options"]


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
      ``jopt.optimizers.buckets.AUTO_MIN_SMALL_LEAVES``, 64, of up to 8,192 elements) under
      an elementwise rule, where they are kept as a few flat buckets: the same numbers,
      a faster step and a much faster compile. ``"per_leaf"`` always keeps them per leaf
      (``state.slots["momentum"]`` shaped like the params); ``"bucketed"`` always packs
      (as :func:`jopt.bucketed`). Params sharded over several devices stay per leaf.
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


# The options stored in the config (lr, decay and name are resolved by the base class).
OPTION_DEFAULTS: dict[str, Any] = {
    "weight_decay": None,
    "clipnorm": None,
    "global_clipnorm": None,
    "clipvalue": None,
    "use_ema": False,
    "ema_momentum": 0.99,
    "ema_overwrite_frequency": None,
    "loss_scale_factor": None,
    "gradient_accumulation_steps": None,
    "exclude_from_weight_decay": None,
    "slot_dtypes": None,
    "master_weights": False,
    "layout": "auto",
}

#: The values of the ``layout`` option.
LAYOUTS = ("auto", "per_leaf", "bucketed")


def _optional(name: str, value: Any, **bounds: Any) -> float | None:
    return None if value is None else check_number(name, value, **bounds)


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
    exclude = o["exclude_from_weight_decay"]
    if exclude is not None and not callable(exclude):
        # A predicate on the path string is the other accepted form; a tuple is hashable.
        exclude = check_strings("exclude_from_weight_decay", exclude, regex=True)
    slot_dtypes = o["slot_dtypes"]
    if slot_dtypes is not None:
        if not isinstance(slot_dtypes, Mapping):
            raise TypeError(f"slot_dtypes must map slot names to dtypes, got {slot_dtypes!r:.100}")
        pairs = []
        for slot, dtype in slot_dtypes.items():
            try:
                dtype = jnp.dtype(dtype)
            except TypeError:
                raise TypeError(f"slot_dtypes[{slot!r}] is not a dtype: {dtype!r}") from None
            if not jnp.issubdtype(dtype, jnp.floating) and dtype != jnp.int8:
                raise TypeError(
                    f"slot_dtypes[{slot!r}] must be a floating dtype or 'int8' (block-wise "
                    f"8-bit), got {dtype}"
                )
            pairs.append((slot, dtype.name))
        slot_dtypes = tuple(sorted(pairs))  # hashable
    return {
        "weight_decay": _optional("weight_decay", o["weight_decay"], low=0.0),
        "clipnorm": _optional("clipnorm", o["clipnorm"], low=0.0, low_open=True),
        "global_clipnorm": _optional(
            "global_clipnorm", o["global_clipnorm"], low=0.0, low_open=True
        ),
        "clipvalue": _optional("clipvalue", o["clipvalue"], low=0.0, low_open=True),
        "use_ema": check_bool("use_ema", o["use_ema"]),
        "ema_momentum": check_number("ema_momentum", o["ema_momentum"], 0.0, 1.0),
        "ema_overwrite_frequency": check_int(
            "ema_overwrite_frequency", o["ema_overwrite_frequency"], 1, optional=True
        ),
        "loss_scale_factor": _optional(
            "loss_scale_factor", o["loss_scale_factor"], low=0.0, low_open=True
        ),
        "gradient_accumulation_steps": check_int(
            "gradient_accumulation_steps", o["gradient_accumulation_steps"], 2, optional=True
        ),
        "exclude_from_weight_decay": exclude,
        "slot_dtypes": slot_dtypes,
        "master_weights": check_bool("master_weights", o["master_weights"]),
        "layout": _layout(o["layout"]),
    }


def _layout(value: Any) -> str:
    if value not in LAYOUTS:
        hint = did_you_mean(str(value), LAYOUTS) if isinstance(value, str) else ""
        raise ValueError(
            f"layout must be one of {', '.join(map(repr, LAYOUTS))}, got {value!r:.100}{hint}"
        )
    return str(value)
