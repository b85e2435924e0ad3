"""Keras's constructor rules for ``LossScaleOptimizer``'s arguments, and its config.

Keras 3 refuses ``dynamic=False`` (a fixed scale is the inner optimizer's
``loss_scale_factor``), an unknown keyword, and a base option given to the wrapper
instead of the inner optimizer, each with a ``ValueError``; its ``from_config`` reads
older configs that still carry the base options at their defaults.
"""

from __future__ import annotations

from typing import Any

from jopt.core.options import OPTION_DEFAULTS
from jopt.core.serialization import deserialize
from jopt.core.validation import check_bool

__all__ = ["check_loss_scale_arguments", "loss_scale_kwargs_from_config"]

# Keras's base options: given to a LossScaleOptimizer they belong on the inner optimizer.
BASE_OPTIONS = (
    "weight_decay",
    "clipnorm",
    "global_clipnorm",
    "clipvalue",
    "use_ema",
    "ema_momentum",
    "ema_overwrite_frequency",
    "loss_scale_factor",
    "gradient_accumulation_steps",
)


def check_loss_scale_arguments(dynamic: Any, kwargs: dict[str, Any]) -> None:
    """Raises Keras's ``ValueError`` for ``dynamic=False``, base options and unknown keywords."""
    check_bool("dynamic", dynamic)
    if not dynamic:
        raise ValueError(
            "LossScaleOptimizer got dynamic=False; it only scales dynamically, as Keras's "
            "does. For a fixed scale set `loss_scale_factor` on the optimizer itself, "
            "e.g. jopt.SGD(0.1, loss_scale_factor=128.0), without LossScaleOptimizer"
        )
    options = [k for k in kwargs if k in BASE_OPTIONS]
    if options:
        raise ValueError(
            f"LossScaleOptimizer got {', '.join(f'{k}={kwargs[k]!r}' for k in options)}: "
            "set base options on the `inner_optimizer` instead, e.g. "
            f"LossScaleOptimizer(jopt.SGD(0.1, {options[0]}=...))"
        )
    if kwargs:
        raise ValueError(
            "LossScaleOptimizer got unknown arguments: "
            f"{', '.join(f'`{k}`' for k in kwargs)}; it takes inner (or inner_optimizer), "
            "initial_scale, dynamic_growth_steps, name and dynamic=True"
        )


def loss_scale_kwargs_from_config(config: dict[str, Any]) -> dict[str, Any]:
    """The constructor's keywords from a ``LossScaleOptimizer`` config (jopt's or Keras's)."""
    if not isinstance(config, dict) or "inner_optimizer" not in config:
        raise ValueError(
            "LossScaleOptimizer.from_config expects a dict with 'inner_optimizer', got "
            f"{config!r:.200}"
        )
    kwargs = dict(config)
    for key in BASE_OPTIONS:
        if key in kwargs and kwargs[key] == OPTION_DEFAULTS.get(key):
            del kwargs[key]  # older Keras configs carry them, at their defaults
    inner = kwargs.pop("inner_optimizer")
    if isinstance(inner, dict):  # Keras's serialized inner optimizer
        inner = deserialize(inner)
    kwargs["inner"] = inner
    return kwargs
