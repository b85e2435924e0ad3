"""``partition``'s config: the groups' optimizers as configs, the labels as data.

Kept apart from ``jopt.composites.groups`` so that the group machinery does not depend on
serialization; :meth:`jopt.composites.groups.Partition.get_config` and
:func:`jopt.optimizers.deserialize` use these two functions.
"""

from __future__ import annotations

import re
from typing import Any

import jax

__all__ = ["labels_config", "transform_config"]


def transform_config(label: str, tx: Any) -> dict[str, Any]:
    """``{"class_name", "config"}`` of one group's transformation, as serialize writes."""
    name = type(tx).__name__
    if name == "Freeze":
        return {"class_name": "freeze", "config": {}}
    get_config = getattr(tx, "get_config", None)
    if get_config is None:
        raise ValueError(
            f"partition group {label!r}: {tx!r:.80} has no config (only jopt optimizers, "
            "LossScaleOptimizer, freeze() and nested partitions serialize)"
        )
    config = get_config()
    return {"class_name": "Partition" if name == "Partition" else name, "config": config}


def labels_config(labels: Any) -> Any:
    """The labels as JSON-able data: ``{"patterns": [[regex, label], ...]}`` or
    ``{"tree": labels}``; a function cannot be written down and is refused."""
    pairs = getattr(labels, "pairs", None)
    if pairs is not None:
        return {"patterns": [[p.pattern if isinstance(p, re.Pattern) else p, g] for p, g in pairs]}
    tree = getattr(labels, "tree", None)
    if tree is not None:
        value = tree()
        if not all(isinstance(x, str) or x is None for x in jax.tree.leaves(value)):
            raise ValueError("partition labels must be strings to serialize")
        return {"tree": value}
    raise ValueError(
        f"partition labels given as a function ({labels!r:.60}) cannot be serialized: "
        "give a pytree of labels or (regex, label) pairs"
    )
