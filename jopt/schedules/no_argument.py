"""Keras's zero-argument callable learning rate (``learning_rate=lambda: 0.01``)."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["NoArgumentRate", "as_rate_of_step"]


@dataclasses.dataclass(frozen=True)
class NoArgumentRate:
    """A Keras-style rate ``fn()`` used as a schedule: ``rate(step) = fn()``.

    Keras calls a callable learning rate with no argument at every step. jopt calls it
    when the step is traced, so under ``jax.jit`` the value it returned then is compiled
    in (as any Python value read inside a jitted function); to change the rate without
    recompiling, use ``jopt.set_hyperparams(state, learning_rate_scale=...)``, or pass a
    schedule of the step.

    Example:
        >>> import jopt
        >>> opt = jopt.SGD(learning_rate=lambda: 0.05)
        >>> round(float(opt.lr(10)), 6)
        0.05
    """

    fn: Callable[[], Any]

    def __call__(self, step: Any) -> jax.Array:
        return jnp.asarray(self.fn(), jnp.float32)


def _takes_no_argument(fn: Callable[..., Any]) -> bool:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin without a signature: assume a schedule
        return False
    try:
        signature.bind()
    except TypeError:
        return False
    try:
        signature.bind(0)
    except TypeError:
        return True
    return False


def as_rate_of_step(learning_rate: Callable[..., Any]) -> Callable[[Any], Any]:
    """``learning_rate`` as a function of the step: a zero-argument callable is wrapped."""
    return NoArgumentRate(learning_rate) if _takes_no_argument(learning_rate) else learning_rate
