"""Classes that Keras's serialized form names, besides the optimizers themselves.

Every Keras 3 optimizer class (``jopt.Optimizer`` registers its subclasses defined in
``jopt.optimizers``) and the loss-scale wrapper register themselves here, so that
``jopt.optimizers.deserialize`` finds them by their Keras names without importing
upwards.
"""

from __future__ import annotations

from typing import Any, TypeVar

__all__ = ["register_config_class", "registered_config_classes"]

C = TypeVar("C", bound=type[Any])

_CLASSES: dict[str, type[Any]] = {}
_BY_NAME: set[str] = set()


def register_config_class(cls: C, *, by_name: bool = False) -> C:
    """Registers ``cls`` under its class name for ``jopt.optimizers.deserialize``;
    ``by_name``: ``jopt.optimizers.get("name")`` also builds it with its defaults.

    Example:
        >>> class Mine: ...
        >>> register_config_class(Mine) is Mine, "Mine" in registered_config_classes()
        (True, True)
    """
    _CLASSES[cls.__name__] = cls
    if by_name:
        _BY_NAME.add(cls.__name__)
    return cls


def registered_config_classes(*, by_name: bool = False) -> dict[str, type[Any]]:
    """The registered classes by name (only those ``get`` builds by name, with ``by_name``)."""
    return {k: c for k, c in sorted(_CLASSES.items()) if not by_name or k in _BY_NAME}
