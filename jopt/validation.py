"""Constructor argument checks with messages that name the argument and the allowed range."""

from __future__ import annotations

import math
import numbers
from typing import Any

__all__ = ["check_bool", "check_number"]


def _interval(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    left = "(" if low_open or low is None else "["
    right = ")" if high_open or high is None else "]"
    return f"{left}{lo}, {hi}{right}"


def check_number(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Returns ``value`` as a Python float, or raises naming ``name`` and the allowed range.

    Raises:
        TypeError: ``value`` is not a real number (a string, ``None``, an array...).
        ValueError: ``value`` is not finite or lies outside the interval.

    Example:
        >>> check_number("momentum", 1.5, 0.0, 1.0)
        Traceback (most recent call last):
        ...
        ValueError: momentum must be in [0, 1], got 1.5
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{name} must be a real number, got {value!r:.100} ({type(value).__name__})"
        )
    value = float(value)
    interval = _interval(low, high, low_open, high_open)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, in {interval}, got {value}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        raise ValueError(f"{name} must be in {interval}, got {value:g}")
    return value


def check_bool(name: str, value: Any) -> bool:
    """Returns ``value`` if it is a bool, else raises ``TypeError`` naming ``name``."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r:.100}")
    return value
