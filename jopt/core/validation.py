"""Constructor argument checks with messages that name the argument and the allowed range."""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np

__all__ = [
    "check_bool",
    "check_epsilon",
    "check_int",
    "check_number",
    "check_numbers",
    "check_step",
    "check_strings",
]


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


def check_int(name: str, value: Any, low: int, *, optional: bool = False) -> Any:
    """Returns ``value`` if it is an ``int`` (not a bool) >= ``low`` (or, with
    ``optional``, ``None``); else raises ``ValueError`` naming ``name``.

    Example:
        >>> check_int("ns_steps", 2.5, 0)
        Traceback (most recent call last):
        ...
        ValueError: ns_steps must be an integer >= 0, got 2.5
        >>> check_int("gradient_accumulation_steps", None, 2, optional=True) is None
        True
    """
    if optional and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        what = "None or an integer" if optional else "an integer"
        raise ValueError(f"{name} must be {what} >= {low}, got {value!r:.100}")
    return value


def check_numbers(
    name: str,
    values: Any,
    low: float | None = None,
    *,
    increasing: bool = False,
    min_length: int = 0,
) -> tuple[int | float, ...]:
    """Returns ``values`` as a tuple of Python numbers, each checked by :func:`check_number`.

    Entries are named ``name[i]`` in messages; integers stay ``int`` (so a config written
    back keeps them), other reals become ``float``. With ``increasing`` the entries must
    strictly increase.

    Raises:
        TypeError: ``values`` is not a list or tuple, or an entry is not a real number.
        ValueError: too few entries, an entry out of range or not finite, or (with
            ``increasing``) two entries that do not strictly increase.

    Example:
        >>> check_numbers("boundaries", [10, 5], increasing=True)
        Traceback (most recent call last):
        ...
        ValueError: boundaries must be strictly increasing, got [10, 5] (boundaries[1] = 5 <= 10)
    """
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(
            f"{name} must be a list or tuple of numbers, got {values!r:.100} "
            f"({type(values).__name__})"
        )
    if len(values) < min_length:
        raise ValueError(f"{name} must have at least {min_length} entries, got {list(values)}")
    out: list[int | float] = []
    for i, v in enumerate(values):
        check_number(f"{name}[{i}]", v, low)
        out.append(int(v) if isinstance(v, numbers.Integral) else float(v))
    if increasing:
        for i in range(1, len(out)):
            if not out[i] > out[i - 1]:
                raise ValueError(
                    f"{name} must be strictly increasing, got {out} "
                    f"({name}[{i}] = {out[i]} <= {out[i - 1]})"
                )
    return tuple(out)


def check_epsilon(epsilon: Any) -> float:
    """Keras's ``epsilon`` (>= 0); ``None`` means Keras's default 1e-7, as tf.keras 2 wrote it.

    Example:
        >>> check_epsilon(None), check_epsilon(1e-3)
        (1e-07, 0.001)
    """
    return 1e-7 if epsilon is None else check_number("epsilon", epsilon, low=0.0)


def check_strings(name: str, values: Any, regex: bool = False) -> tuple[str, ...]:
    """Returns ``values`` (path names or regular expressions) as a tuple of strings.

    Raises:
        TypeError: ``values`` is a single string, a mapping or not iterable, or an entry
            is not a string; the message names ``name`` (and the entry).
        ValueError: with ``regex``, an entry is not a valid regular expression.

    Example:
        >>> check_strings("exclude", ["bias", 3])
        Traceback (most recent call last):
        ...
        TypeError: exclude[1] must be a string, got 3
    """
    if isinstance(values, str | bytes | Mapping) or not isinstance(values, Iterable):
        raise TypeError(
            f"{name} must be a list of strings (path names or regular expressions), got "
            f"{values!r:.100} ({type(values).__name__})"
        )
    out = tuple(values)
    for i, v in enumerate(out):
        if not isinstance(v, str):
            raise TypeError(f"{name}[{i}] must be a string, got {v!r:.100}")
        if regex:
            try:
                re.compile(v)
            except re.error as e:
                raise ValueError(
                    f"{name}[{i}] = {v!r} is not a valid regular expression: {e}"
                ) from e
    return out


# A checkpoint restored without a target (orbax's restore(path), flax's msgpack_restore)
# is a dict where a state or step was expected: say how to get the state back.
RESTORED_DICT = (
    "got {got} where an optimizer state or a step count goes: a checkpoint restored "
    "without a target comes back as dicts. Rebuild the state with "
    "state, report = jopt.restore_state(opt, restored, params), or restore onto a target "
    "(orbax: restore(path, jax.eval_shape(lambda: state)))"
)


def check_step(step: Any) -> None:
    """Raises ``TypeError`` unless ``step`` is an integer or float step count, or an array
    (traced or not) of them: a string, ``None``, a boolean or complex value is refused
    with a message naming ``step``, not JAX's about dtypes.

    Example:
        >>> check_step("10")
        Traceback (most recent call last):
        ...
        TypeError: step must be an integer step count (or an array of them), got '10' (str)
    """
    dtype = getattr(step, "dtype", None)
    if dtype is None and isinstance(step, numbers.Real) and not isinstance(step, bool):
        return
    if isinstance(step, dict):
        raise TypeError(RESTORED_DICT.format(got=f"a dict with keys {sorted(map(str, step))}"))
    if dtype is None and isinstance(step, list | tuple):
        try:
            dtype = np.result_type(*step) if step else None
        except TypeError:
            dtype = None
    ok = dtype is not None and (
        jnp.issubdtype(dtype, jnp.integer) or jnp.issubdtype(dtype, jnp.floating)
    )
    if not ok:
        what = f"dtype {dtype}" if dtype is not None else type(step).__name__
        raise TypeError(
            f"step must be an integer step count (or an array of them), got {step!r:.60} ({what})"
        )
