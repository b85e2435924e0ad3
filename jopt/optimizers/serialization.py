"""Keras's serialized form for optimizers: ``{"class_name": ..., "config": ...}``."""

from __future__ import annotations

from typing import Any, cast

from jopt.composites.groups import Partition, freeze, partition
from jopt.optimizers.optimizer import Optimizer
from jopt.composites.wrappers import LossScaleOptimizer, SkipNonFinite

__all__ = ["deserialize", "get", "serialize"]


def _classes() -> dict[str, type[Any]]:
    import jopt.optimizers as module  # the package lists every optimizer class

    return {
        name: cls
        for name in module.__all__
        if isinstance(cls := getattr(module, name), type)
        and (issubclass(cls, Optimizer) or cls is LossScaleOptimizer)
        and cls is not Optimizer
    }


def _partition_from_config(config: dict[str, Any]) -> Partition:
    transforms = {
        label: freeze() if str(c.get("class_name")).lower() == "freeze" else deserialize(c)
        for label, c in config["transforms"].items()
    }
    labels = config["labels"]
    if "patterns" in labels:
        labels = [tuple(pair) for pair in labels["patterns"]]
    else:
        labels = labels["tree"]
    return partition(transforms, labels, default=config.get("default"))


def serialize(optimizer: Optimizer | LossScaleOptimizer | Partition) -> dict[str, Any]:
    """Returns Keras's dict for ``optimizer``, the form ``keras.optimizers.serialize`` writes.

    Example:
        >>> import jopt
        >>> jopt.optimizers.serialize(jopt.SGD(0.1))["class_name"]
        'SGD'
    """
    if not isinstance(optimizer, Optimizer | LossScaleOptimizer | Partition):
        raise TypeError(f"serialize takes a jopt optimizer, got {type(optimizer).__name__}")
    config = optimizer.get_config()
    if isinstance(optimizer, LossScaleOptimizer):
        config["inner_optimizer"] = serialize(optimizer.inner)
    return {
        "module": "keras.optimizers",
        "class_name": type(optimizer).__name__,
        "config": config,
        "registered_name": None,
    }


def deserialize(config: dict[str, Any]) -> Optimizer | LossScaleOptimizer | Partition:
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
    if str(config["class_name"]).lower() == "partition":
        return _partition_from_config(dict(config.get("config", {})))
    classes = _classes()
    # Keras also accepts the lowercase name ({"class_name": "adam"}), as get("adam") does.
    by_lower = {name.lower(): c for name, c in classes.items()}
    cls = classes.get(config["class_name"]) or by_lower.get(str(config["class_name"]).lower())
    if cls is None:
        raise ValueError(
            f"unknown optimizer class_name {config['class_name']!r}; known: "
            f"{', '.join(sorted(classes))}"
        )
    inner = dict(config.get("config", {}))
    if cls is LossScaleOptimizer and isinstance(inner.get("inner_optimizer"), dict):
        inner["inner_optimizer"] = cast(Optimizer, deserialize(inner["inner_optimizer"]))
    return cls.from_config(inner)


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
    if identifier is None:
        return None
    if isinstance(identifier, Optimizer | LossScaleOptimizer | SkipNonFinite):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        by_name = {name.lower(): cls for name, cls in _classes().items()}
        cls = by_name.get(identifier.lower())
        if cls is None or cls is LossScaleOptimizer:
            raise ValueError(f"unknown optimizer name {identifier!r}")
        return cls()
    raise TypeError(
        f"get's identifier must be an optimizer, a name, a config dict or None, got "
        f"{identifier!r:.100} ({type(identifier).__name__})"
    )
