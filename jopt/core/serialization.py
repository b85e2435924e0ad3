"""Keras's serialized form for optimizers: ``{"class_name": ..., "config": ...}``."""

from __future__ import annotations

from typing import Any

from jopt.core.protocol import is_transformation
from jopt.core.registry import registered_config_classes

__all__ = ["deserialize", "get", "serialize"]


def _classes() -> dict[str, type[Any]]:
    """Keras 3's optimizer classes by name, and the registered wrappers."""
    return registered_config_classes()


def serialize(optimizer: Any) -> dict[str, Any]:
    """Returns Keras's dict for ``optimizer``, the form ``keras.optimizers.serialize`` writes.

    Example:
        >>> import jopt
        >>> jopt.optimizers.serialize(jopt.SGD(0.1))["class_name"]
        'SGD'
    """
    if type(optimizer) not in _classes().values():
        raise TypeError(f"serialize takes a jopt optimizer, got {type(optimizer).__name__}")
    config = optimizer.get_config()
    return {
        "module": "keras.optimizers",
        "class_name": type(optimizer).__name__,
        "config": config,
        "registered_name": None,
    }


def deserialize(config: dict[str, Any]) -> Any:
    """Rebuilds an optimizer from :func:`serialize`'s dict or one Keras wrote.

    Schedules inside are rebuilt as jopt schedules; a ``LossScaleOptimizer``'s inner
    optimizer is rebuilt too.

    Example:
        >>> import jopt
        >>> d = {"class_name": "Adam", "config": {"learning_rate": 0.01, "amsgrad": True}}
        >>> jopt.optimizers.deserialize(d)
        Adam(learning_rate=0.01, amsgrad=True)
    """
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(
            f"deserialize expects a dict with 'class_name' and 'config', got {config!r:.200}"
        )
    classes = _classes()
    # Keras also accepts the lowercase name ({"class_name": "adam"}), as get("adam") does.
    by_lower = {name.lower(): c for name, c in classes.items()}
    cls = classes.get(config["class_name"]) or by_lower.get(str(config["class_name"]).lower())
    if cls is None:
        raise ValueError(
            f"unknown optimizer class_name {config['class_name']!r}; known: "
            f"{', '.join(sorted(classes))}"
        )
    return cls.from_config(dict(config.get("config", {})))


def get(identifier: Any) -> Any:
    """Keras's ``optimizers.get``: an optimizer as is, a name (``"adam"``) with defaults,
    a serialized dict (``class_name`` in any case, as Keras reads it), or ``None``, which
    is returned as is (Keras's "no optimizer").

    Example:
        >>> import jopt
        >>> jopt.optimizers.get("rmsprop")
        RMSprop()
        >>> jopt.optimizers.get({"class_name": "adam", "config": {"learning_rate": 0.01}})
        Adam(learning_rate=0.01)
        >>> jopt.optimizers.get(None) is None
        True
    """
    if identifier is None or is_transformation(identifier):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        by_name = {n.lower(): c for n, c in registered_config_classes(by_name=True).items()}
        cls = by_name.get(identifier.lower())
        if cls is None:
            raise ValueError(f"unknown optimizer name {identifier!r}")
        return cls()
    raise TypeError(
        f"get's identifier must be an optimizer, a name, a config dict or None, got "
        f"{identifier!r:.100} ({type(identifier).__name__})"
    )
