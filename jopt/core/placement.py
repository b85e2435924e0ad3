"""Where the state's arrays live: on the params' devices, each slot split as its param.

The low-level placement every ``init`` uses; :mod:`jopt.sharding` builds the public
sharding helpers on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import AxisType, NamedSharding, PartitionSpec, Sharding, SingleDeviceSharding

__all__ = ["placed_sharding", "replicate_like", "zeros_on_axes"]

PyTree = Any


def placed_sharding(leaf: Any) -> Sharding | None:
    """A leaf's sharding when it is placed: a committed concrete array, or a
    ``ShapeDtypeStruct`` that names one. Tracers, NumPy arrays and uncommitted arrays
    (free to move) have none."""
    if isinstance(leaf, jax.core.Tracer):
        return None
    if isinstance(leaf, jax.Array):
        return leaf.sharding if getattr(leaf, "_committed", True) else None
    if isinstance(leaf, jax.ShapeDtypeStruct):
        return leaf.sharding
    return None


def _replicated_sharding(params: PyTree) -> Sharding | None:
    """Replicated over the devices of the first placed param leaf, or None."""
    for leaf in jax.tree.leaves(params):
        sharding = placed_sharding(leaf)
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


def zeros_on_axes(p: Any, axes: Sequence[int], dtype: Any) -> jax.Array:
    """Zeros shaped like the ``axes`` of ``p`` (the others reduced away), each kept axis
    split over the devices as ``p``'s is (replicated over the mesh axes of the others).

    For a slot smaller than its param, as Adafactor's factored moments: a reduction
    over one axis of a sharded array comes out in this layout, so the state keeps it from
    step to step. Plain zeros when ``p`` is not placed (NumPy, a tracer without explicit
    sharding).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jax.sharding import NamedSharding, PartitionSpec as P
        >>> mesh = jax.make_mesh((1, 1), ("data", "model"))
        >>> p = jax.device_put(jnp.ones((4, 6)), NamedSharding(mesh, P("data", "model")))
        >>> r = zeros_on_axes(p, (0,), jnp.float32)
        >>> r.shape, r.sharding.spec
        ((4,), P('data',))
    """
    shape = tuple(jnp.shape(p)[a] for a in axes)
    sharding = placed_sharding(p)
    if isinstance(p, jax.core.Tracer):
        typed = jax.typeof(p).sharding  # carries a layout only on explicit mesh axes
        if any(t == AxisType.Explicit for t in typed.mesh.axis_types):
            sharding = typed
    if isinstance(sharding, NamedSharding):
        spec = tuple(sharding.spec) + (None,) * (jnp.ndim(p) - len(sharding.spec))
        kept = NamedSharding(sharding.mesh, PartitionSpec(*(spec[a] for a in axes)))
        return jnp.zeros(shape, dtype, device=kept)
    if isinstance(sharding, SingleDeviceSharding):
        return jnp.zeros(shape, dtype, device=sharding)
    return jnp.zeros(shape, dtype)
