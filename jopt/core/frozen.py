"""A configuration object frozen once its constructor has checked its arguments: equal
and hashable by them, so it is a valid static argument to ``jax.jit`` and equal
configurations share one compiled step."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

__all__ = ["Frozen"]


class Frozen:
    """Base of jopt's configuration objects (optimizers, LBFGS): attributes set once by
    :meth:`_freeze`, never after; ``==`` and ``hash`` compare the class and the
    arguments, in order.

    Example:
        >>> import jopt
        >>> opt = jopt.SGD(0.1)
        >>> opt == jopt.SGD(0.1), hash(opt) == hash(jopt.SGD(0.1))
        (True, True)
        >>> opt.momentum = 0.9  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        AttributeError: SGD is frozen (it may be a static argument of jax.jit); ... 'momentum'
    """

    #: What to do instead of setting an attribute (said by the error).
    _instead: ClassVar[str] = "build a new one"

    _config: tuple[tuple[str, Any], ...]

    def _freeze(self, config: Mapping[str, Any]) -> None:
        """Sets each checked argument as an attribute, and the whole as ``_config``."""
        for key, value in config.items():
            object.__setattr__(self, key, value)
        object.__setattr__(self, "_config", tuple(config.items()))

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError(
            f"{type(self).__name__} is frozen (it may be a static argument of jax.jit); "
            f"{self._instead} instead of setting {key!r}"
        )

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self._config == getattr(other, "_config", None)

    def __hash__(self) -> int:
        return hash((type(self), self._config))
