"""Keras's ``learning_rate`` argument: a float, a schedule (or its serialized dict, or a
function of no argument), tf.keras 2's alias ``lr`` and its ``decay``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jopt import schedules
from jopt.core.validation import check_number
from jopt.schedules.no_argument import as_rate_of_step

__all__ = ["LearningRate", "check_decay", "default", "resolve_learning_rate"]

LearningRate = float | Callable[[Any], Any]


class _Default(float):
    """A class default for ``learning_rate``: a float that remembers it was not given."""


def default(value: float) -> float:
    """Marks ``value`` as a signature default, so an explicit argument can be told apart.

    Example:
        >>> default(0.001) == 0.001
        True
    """
    return _Default(value)


def resolve_learning_rate(learning_rate: Any, lr: Any) -> LearningRate:
    """Resolves Keras's ``learning_rate`` and its legacy alias ``lr`` into one valid rate.

    Example:
        >>> resolve_learning_rate(default(0.001), lr=0.1)
        0.1
    """
    if lr is not None:
        if not isinstance(learning_rate, _Default):
            raise TypeError("give learning_rate or its legacy alias lr, not both")
        learning_rate = lr
    if isinstance(learning_rate, dict):
        try:
            learning_rate = schedules.deserialize(learning_rate)
        except (TypeError, ValueError) as e:
            raise type(e)(f"learning_rate: {e}") from e
    if callable(learning_rate):
        return as_rate_of_step(learning_rate)  # Keras's lambda: 0.01 too
    return check_number("learning_rate", learning_rate, low=0.0)  # a plain float, not a _Default


def check_decay(decay: Any) -> float:
    """tf.keras 2's ``decay``: ``None`` or a number >= 0.

    Example:
        >>> check_decay(None)
        0.0
    """
    return 0.0 if decay is None else check_number("decay", decay, low=0.0)
