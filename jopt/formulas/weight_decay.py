"""Decoupled weight decay (Keras's base-optimizer ``weight_decay``) and which leaves get it."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import jax

__all__ = ["decay_weights", "uses_weight_decay"]


def decay_weights(p: jax.Array, weight_decay: jax.Array, lr: jax.Array) -> jax.Array:
    """``p - p * weight_decay * lr``, applied to the param before the optimizer's rule."""
    return p - p * weight_decay * lr


def uses_weight_decay(path: str, exclude: Sequence[str] | Callable[[str], bool] | None) -> bool:
    """Whether the leaf at ``path`` (e.g. ``"['dense']['bias']"``) gets weight decay.

    ``exclude`` is a sequence of names, each searched as a regular expression in the path
    string (as Keras searches variable names), or a predicate on the path that returns
    ``True`` to exclude.

    Example:
        >>> uses_weight_decay("['dense']['bias']", ["bias", "norm"])
        False
        >>> uses_weight_decay("['dense']['kernel']", lambda path: "bias" in path)
        True
    """
    if exclude is None:
        return True
    if callable(exclude):
        return not exclude(path)
    return not any(re.search(name, path) for name in exclude)
