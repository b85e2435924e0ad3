"""Sharded params and optimizer state: where each state leaf lives on a device mesh.

jopt has no sharding machinery of its own; it fits into JAX's (a ``Mesh``, a
``NamedSharding`` per array, ``jax.jit`` with shardings). ``opt.init`` on placed params
gives each slot its param's sharding and replicates the scalars (step count, live
hyperparameters) over the same devices, and an elementwise update keeps every layout,
so a sharded model trains with no change to jopt's calls. This module adds what is
JAX-specific to ask of an optimizer:

* :func:`state_shardings`: the sharding of every leaf of ``init(params)``, from params
  that are placed arrays or ``jax.ShapeDtypeStruct`` with shardings (nothing is
  allocated), for ``jax.jit``'s ``in_shardings`` / ``out_shardings`` or a checkpoint
  restore. With ``zero_axis`` it also partitions the state over the data-parallel mesh
  axis (ZeRO stage 1): params stay replicated, each device keeps ``1/n`` of the state,
  and the numbers do not change.
* :func:`init_sharded`: the state created directly in those shardings, by one compiled
  ``init``, never assembled on one device.
* :func:`abstract_state`: the state as ``jax.ShapeDtypeStruct`` with shardings.
* :func:`replicate_like` and :func:`zeros_on_axes`: what ``init`` uses to replicate its
  scalars and to lay out a slot smaller than its param (Adafactor's factored moments).

Params and state laid out differently (ZeRO-1) want a step jitted with
``out_shardings=(param_shardings, state_shardings)``: left to itself, XLA returns the
new params split like the state.

Example, data parallel with ZeRO-1 on a 1-device mesh (the same code runs on any)::

    >>> import jax, jax.numpy as jnp, jopt
    >>> from jax.sharding import NamedSharding, PartitionSpec as P
    >>> mesh = jax.make_mesh((jax.device_count(),), ("data",))
    >>> params = jax.device_put({"w": jnp.ones((8, 4))}, NamedSharding(mesh, P()))
    >>> opt = jopt.Adam(1e-3)
    >>> state = init_sharded(opt, params, zero_axis="data")
    >>> state.slots["velocity"]["w"].sharding.spec
    P('data',)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import (
    AxisType,
    Mesh,
    NamedSharding,
    PartitionSpec,
)

from jopt.core.placement import placed_sharding, replicate_like, zeros_on_axes

__all__ = ["abstract_state", "init_sharded", "replicate_like", "state_shardings", "zeros_on_axes"]

PyTree = Any
AxisName = str | Sequence[str]


def _mesh_of(params: PyTree, mesh: Mesh | None) -> Mesh:
    meshes = {
        s.mesh
        for s in map(placed_sharding, jax.tree.leaves(params))
        if isinstance(s, NamedSharding)
    }
    if mesh is not None:
        meshes.add(mesh)
    if len(meshes) > 1:
        raise ValueError(f"params live on {len(meshes)} different meshes; use one mesh")
    if not meshes:
        raise ValueError(
            "params carry no NamedSharding: give placed arrays or jax.ShapeDtypeStruct("
            "..., sharding=NamedSharding(mesh, spec)) leaves, or pass mesh= (params "
            "without a sharding are then replicated on it)"
        )
    found = meshes.pop()
    if not isinstance(found, Mesh):  # an AbstractMesh names no devices to place on
        raise ValueError(f"params are laid out on an abstract mesh ({found}): give a Mesh")
    return found


def _spec_of(leaf: Any) -> PartitionSpec:
    sharding = placed_sharding(leaf)
    if isinstance(sharding, NamedSharding):
        return sharding.spec
    return PartitionSpec()


def _axis_names(entry: Any) -> tuple[str, ...]:
    return () if entry is None else (entry,) if isinstance(entry, str) else tuple(entry)


def _zero_spec(
    spec: PartitionSpec, shape: tuple[int, ...], axes: tuple[str, ...], mesh: Mesh
) -> PartitionSpec:
    """``spec`` with one dimension also split over the ZeRO axes: the first free one whose
    size they divide, else the first already split one that still divides; ``spec``
    itself when an axis is used already or nothing divides."""
    entries = list(spec) + [None] * (len(shape) - len(spec))
    if any(set(_axis_names(e)) & set(axes) for e in entries):
        return spec
    size = int(np.prod([mesh.shape[a] for a in axes]))
    for free in (True, False):  # a free dimension keeps the param's own split as it is
        for dim, (entry, n) in enumerate(zip(entries, shape, strict=True)):
            held = _axis_names(entry)
            if bool(held) == free or n % (size * int(np.prod([mesh.shape[a] for a in held]))):
                continue
            names = held + axes
            entries[dim] = names[0] if len(names) == 1 else names
            return PartitionSpec(*entries)
    return spec  # nothing divides: replicated over the ZeRO axes


def state_shardings(
    tx: Any,
    params: PyTree,
    *,
    zero_axis: AxisName | None = None,
    mesh: Mesh | None = None,
) -> PyTree:
    """The ``NamedSharding`` of every leaf of ``tx.init(params)``, without computing it.

    Rule: the layout ``init`` gives placed params, found by tracing ``init`` on the
    params' shapes with their shardings as types (JAX's explicit sharding). Each slot
    (moments, EMA, master weights, a group's slots in a :func:`jopt.partition`) has its
    param's sharding, Adafactor's factored moments their param's along the axes they
    keep, and the step count, hyperparameters and other scalars are replicated. (A
    transformation that cannot be traced so gets the plain rule: a leaf in a
    params-shaped subtree with its param's shape takes its sharding, the rest is
    replicated.)

    ZeRO stage 1, ``zero_axis="data"`` (a mesh axis name, or a tuple of names): every
    state leaf of rank >= 1 is further partitioned over that axis along its first
    unsharded dimension divisible by the axis' size or, failing one, its first sharded
    dimension that still divides (``P("model")`` becomes ``P(("model", "data"))``); a
    leaf with no such dimension (or already sharded over that axis) keeps the layout
    above, replicated over the axis. Params replicated over ``"data"`` then keep their
    state split ``n`` ways: each device stores ``1/n`` of it, updates its part, and
    ``jit`` gathers the new params. The numbers are those of the unsharded step.

    Args:
        tx: an optimizer or any transformation with ``init``.
        params: the params as placed arrays or ``jax.ShapeDtypeStruct`` leaves with a
            ``NamedSharding`` (``init`` is only traced, through ``jax.eval_shape``).
        zero_axis: mesh axis (or axes) to partition the state over; ``None`` (default)
            leaves the state laid out like the params.
        mesh: the mesh, needed only when no param carries a ``NamedSharding``
            (unsharded params are then replicated on it).

    Raises:
        ValueError: no mesh can be found, params on several meshes, or ``zero_axis``
            names an axis the mesh lacks.

    Example:
        >>> import jax, jax.numpy as jnp, jopt
        >>> from jax.sharding import NamedSharding, PartitionSpec as P
        >>> mesh = jax.make_mesh((1,), ("data",))
        >>> params = {"w": jax.ShapeDtypeStruct((4, 2), jnp.float32,
        ...                                     sharding=NamedSharding(mesh, P()))}
        >>> sh = state_shardings(jopt.SGD(momentum=0.9), params, zero_axis="data")
        >>> sh.slots["momentum"]["w"].spec, sh.step.spec
        (P('data',), P())
    """
    mesh = _mesh_of(params, mesh)
    axes: tuple[str, ...] = ()
    if zero_axis is not None:
        axes = (zero_axis,) if isinstance(zero_axis, str) else tuple(zero_axis)
        missing = [a for a in axes if a not in mesh.shape]
        if missing:
            raise ValueError(
                f"zero_axis {missing[0]!r} is not an axis of the mesh (axes: {tuple(mesh.shape)})"
            )
    explicit = Mesh(
        mesh.devices, mesh.axis_names, axis_types=(AxisType.Explicit,) * len(mesh.axis_names)
    )
    typed = jax.tree.map(
        lambda p: jax.ShapeDtypeStruct(
            jnp.shape(p), jnp.result_type(p), sharding=NamedSharding(explicit, _spec_of(p))
        ),
        params,
    )
    try:
        shapes = jax.eval_shape(tx.init, typed)
        specs = jax.tree.map(
            lambda s: s.sharding.spec if isinstance(s.sharding, NamedSharding) else PartitionSpec(),
            shapes,
        )
    except Exception:  # an init explicit sharding cannot trace: the plain rule
        shapes = jax.eval_shape(tx.init, params)
        specs = _plain_specs(shapes, params)

    def layout(leaf: Any, spec: PartitionSpec) -> NamedSharding:
        if axes and leaf.ndim:
            spec = _zero_spec(spec, leaf.shape, axes, mesh)
        entries = list(spec)
        while entries and entries[-1] is None:  # one spelling per layout: P("data")
            entries.pop()
        return NamedSharding(mesh, PartitionSpec(*entries))

    return jax.tree.map(layout, shapes, specs)


def _plain_specs(shapes: PyTree, params: PyTree) -> PyTree:
    """Each leaf in a params-shaped subtree of ``shapes`` with its param's shape gets its
    param's spec; every other leaf ``P()``."""
    treedef: Any = jax.tree.structure(params)
    param_leaves = treedef.flatten_up_to(params)

    def like_params(node: Any) -> bool:
        if treedef.num_nodes == 1:  # a single-array params: match leaves only
            return isinstance(node, jax.ShapeDtypeStruct)
        try:
            leaves = treedef.flatten_up_to(node)
        except (ValueError, TypeError):
            return False
        return all(x is None or isinstance(x, jax.ShapeDtypeStruct) for x in leaves)

    def place(node: Any) -> Any:
        if not like_params(node):  # a leaf elsewhere in the state
            return PartitionSpec()
        out = [
            None if x is None else _spec_of(p) if x.shape == p.shape else PartitionSpec()
            for x, p in zip(treedef.flatten_up_to(node), param_leaves, strict=True)
        ]
        return treedef.unflatten(out)

    return jax.tree.map(place, shapes, is_leaf=like_params)


def abstract_state(
    tx: Any, params: PyTree, *, zero_axis: AxisName | None = None, mesh: Mesh | None = None
) -> PyTree:
    """``tx.init(params)`` as ``jax.ShapeDtypeStruct`` leaves carrying their shardings.

    What a checkpoint restore (``orbax``'s ``restore(path, target)``) or an ahead-of-time
    ``jax.jit(...).lower(...)`` wants; nothing is allocated. Arguments as for
    :func:`state_shardings`.

    Example:
        >>> import jax, jax.numpy as jnp, jopt
        >>> from jax.sharding import NamedSharding, PartitionSpec as P
        >>> mesh = jax.make_mesh((1,), ("data",))
        >>> params = {"w": jax.ShapeDtypeStruct((4,), jnp.bfloat16,
        ...                                     sharding=NamedSharding(mesh, P("data")))}
        >>> v = abstract_state(jopt.Adam(), params).slots["velocity"]["w"]
        >>> v.shape, v.dtype, v.sharding.spec
        ((4,), dtype(bfloat16), P('data',))
    """
    shapes = jax.eval_shape(tx.init, params)
    shardings = state_shardings(tx, params, zero_axis=zero_axis, mesh=mesh)
    return jax.tree.map(
        lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh), shapes, shardings
    )


def init_sharded(
    tx: Any, params: PyTree, *, zero_axis: AxisName | None = None, mesh: Mesh | None = None
) -> PyTree:
    """``tx.init(params)``, compiled so each device creates only its own part of the state.

    ``jax.jit(tx.init, out_shardings=state_shardings(...))(params)``: a large state is
    never assembled on one device first. Arguments as for :func:`state_shardings`;
    ``params`` must be arrays here (``init`` may copy them, e.g. master weights).

    Example:
        >>> import jax, jax.numpy as jnp, jopt
        >>> from jax.sharding import NamedSharding, PartitionSpec as P
        >>> mesh = jax.make_mesh((1,), ("model",))
        >>> params = {"w": jax.device_put(jnp.ones((2, 4)), NamedSharding(mesh, P(None, "model")))}
        >>> state = init_sharded(jopt.RMSprop(), params)
        >>> state.slots["velocity"]["w"].sharding.spec, state.step.sharding.spec
        (P(None, 'model'), P())
    """
    shardings = state_shardings(tx, params, zero_axis=zero_axis, mesh=mesh)
    return jax.jit(tx.init, out_shardings=shardings)(params)
