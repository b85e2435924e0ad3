"""Sharded params and optimizer state: where each state leaf lives on a device mesh.

A first piece: :func:`replicate_like`, which every ``init`` uses to put its scalars
(the step count, the live hyperparameters) on the devices of the params.
"""

from __future__ import annotations

from typing import Any

import jax
from jax.sharding import NamedSharding, PartitionSpec, Sharding, SingleDeviceSharding

__all__ = ["replicate_like"]

PyTree = Any


def _replicated_sharding(params: PyTree) -> Sharding | None:
    """The sharding that replicates a value over the devices of the first placed param
    leaf, or None when no leaf is a placed (committed, concrete) ``jax.Array``."""
    for leaf in jax.tree.leaves(params):
        # Tracers carry no placement to copy (jit's out_shardings decide); NumPy arrays
        # and uncommitted arrays may move freely, so their scalars may too.
        if not isinstance(leaf, jax.Array) or isinstance(leaf, jax.core.Tracer):
            continue
        if not getattr(leaf, "_committed", True):
            continue
        sharding = leaf.sharding
        if isinstance(sharding, NamedSharding):
            return NamedSharding(sharding.mesh, PartitionSpec())
        if isinstance(sharding, SingleDeviceSharding):
            return sharding
    return None


def replicate_like(tree: PyTree, params: PyTree) -> PyTree:
    """Returns ``tree`` with every leaf replicated over the devices the params live on.

    The step count and the live hyperparameters of a state are scalars every device
    reads; ``init`` places them on the params' mesh (replicated), so a state made from
    sharded params has no leaf stranded on device 0. Unchanged when the params are not
    placed arrays (NumPy, Python floats, uncommitted arrays, or tracers under ``jit``,
    where ``out_shardings`` decide).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jax.sharding import NamedSharding, PartitionSpec as P
        >>> mesh = jax.make_mesh((1,), ("data",))
        >>> params = {"w": jax.device_put(jnp.ones(4), NamedSharding(mesh, P("data")))}
        >>> replicate_like(jnp.zeros([]), params).sharding.spec
        P()
    """
    sharding = _replicated_sharding(params)
    if sharding is None:
        return tree
    return jax.device_put(tree, sharding)
