"""Flat buckets for a per-leaf rule: the layout an optimizer runs on for many small leaves.

A step over a pytree costs memory traffic plus a fixed cost per leaf (a kernel, a buffer
per slot); with hundreds of small leaves (biases, norm scales, small kernels) the fixed
cost dominates the step and, above all, the compile. An elementwise rule gives the same
numbers on the leaves laid end to end (:class:`~jopt.core.packing.Layout`), so the slots
are kept as one buffer per bucket and the rule runs once per bucket.

Both the automatic choice of :class:`~jopt.Optimizer` (its ``layout`` option) and the
explicit :func:`jopt.bucketed` wrapper run here: one implementation of the packed step.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp

from jopt.core.packing import Layout, Place
from jopt.core.protocol import PerLeafRule
from jopt.core.pytrees import check_same_tree
from jopt.core.slot_storage import values
from jopt.formulas.segments import Segments

__all__ = [
    "AUTO_MIN_SMALL_LEAVES",
    "MAX_BUCKET_SIZE",
    "MAX_LEAF_SIZE",
    "bucket_layout",
    "init_buckets",
    "is_sharded",
    "many_small_leaves",
    "step_buckets",
    "unpack_slots",
]

PyTree = Any

#: Leaves with more elements keep a bucket of their own (their update is the per-leaf
#: one): copying a large leaf into a shared bucket and back costs more than it saves.
#: Measured on 2 CPU cores (Adam, a user's jit): 64 leaves of 4,096 elements step in
#: 0.68x the per-leaf time packed, 64 of 16,384 in 2.2x (the copies dominate).
MAX_LEAF_SIZE = 1 << 13

#: A bucket holds at most this many elements (4 MiB of float32); more small leaves start
#: another bucket. A scheduler that runs buckets one after another then reuses one
#: bucket's temporaries (the packed gradients, the update); XLA's default CPU scheduler
#: runs them concurrently and keeps them all (docs/concepts/layouts.md).
MAX_BUCKET_SIZE = 1 << 20

#: ``layout="auto"`` packs a tree with at least this many leaves of up to
#: :data:`MAX_LEAF_SIZE` elements. Measured on 2 CPU cores (Adam, a user's jit, packed
#: over per leaf): 32 leaves of 4,096 elements 1.22x per step (slower), 64 of them 0.68x,
#: 128 0.71x; 64 leaves of 256 elements 0.63x, 128 0.54x; first step 0.75-0.99x.
AUTO_MIN_SMALL_LEAVES = 64


def many_small_leaves(params: PyTree, max_leaf_size: int = MAX_LEAF_SIZE) -> bool:
    """Whether ``params`` has enough small leaves for buckets to pay (``layout="auto"``)."""
    small = sum(math.prod(jnp.shape(x)) <= max_leaf_size for x in jax.tree.leaves(params))
    return small >= AUTO_MIN_SMALL_LEAVES


def is_sharded(params: PyTree) -> bool:
    """True when a leaf lives on more than one device (a concrete array, or a traced or
    abstract one whose type carries a multi-device sharding): such params keep the
    per-leaf layout, which keeps every sharding."""
    for x in jax.tree.leaves(params):
        holder = jax.typeof(x) if isinstance(x, jax.core.Tracer) else x
        if _devices(getattr(holder, "sharding", None)) > 1:
            return True
    return False


def _devices(sharding: Any) -> int:
    mesh = getattr(sharding, "mesh", None)
    if mesh is not None:  # a named sharding, possibly over an abstract mesh
        return math.prod(getattr(mesh, "axis_sizes", ()) or (1,))
    devices = getattr(sharding, "device_set", None)
    return 1 if devices is None else len(devices)


def bucket_layout(rule: PerLeafRule, params: PyTree, max_leaf_size: int = MAX_LEAF_SIZE) -> Layout:
    """The buckets of ``params`` for ``rule``: one per dtype and weight-decay group for the
    leaves of up to ``max_leaf_size`` elements, and one of its own for each larger leaf
    (named after its path: no copy in or out, the per-leaf update)."""
    flat, treedef = jax.tree_util.tree_flatten(params)
    leaves = tuple((tuple(jnp.shape(x)), jnp.result_type(x)) for x in flat)
    return _layout(rule, max_leaf_size, treedef, leaves)


# Built once per rule and structure: a frozen config and a few KB per layout.
@functools.lru_cache(maxsize=128)
def _layout(
    rule: PerLeafRule, max_leaf_size: int, treedef: Any, leaves: tuple[tuple[Any, Any], ...]
) -> Layout:
    tree = treedef.unflatten([jax.ShapeDtypeStruct(s, d) for s, d in leaves])

    def group(path: str, leaf: Any) -> str | None:
        decayed = rule.weight_decay_name(path, len(leaf.shape))
        label = None if decayed or not rule.decays_weights() else "no_decay"
        # A leaf decayed by another hyperparameter than weight_decay (Muon's
        # adam_weight_decay) gets a label of its own, so a bucket has one decay.
        label = decayed if decayed not in (None, "weight_decay") else label
        if math.prod(leaf.shape) > max_leaf_size and not keep_shape(path, leaf):
            return path if label is None else f"{path}/{label}"
        return label

    def keep_shape(path: str, leaf: Any) -> bool:
        return bool(rule.keeps_leaf_shape(path, len(leaf.shape)))

    return Layout.of(tree, group, MAX_BUCKET_SIZE, keep_shape)


def _decay_names(rule: PerLeafRule, layout: Layout) -> list[str | None]:
    """The weight decay of each bucket (in ``bucket_names`` order): its leaves'."""
    if not rule.decays_weights():
        return [None] * len(layout.bucket_names)
    first: dict[str, Place] = {}
    for place in layout.places:
        first.setdefault(place.bucket, place)
    return [
        rule.weight_decay_name(first[name].path, len(first[name].shape))
        for name in layout.bucket_names
    ]


def init_buckets(
    rule: PerLeafRule, params: PyTree, max_leaf_size: int = MAX_LEAF_SIZE
) -> tuple[Any, Layout]:
    """``(the rule's state over the packed params, their layout)``."""
    layout = bucket_layout(rule, params, max_leaf_size)
    # Scalars follow the params as given (Nadam keeps its in the first leaf's dtype).
    inner = rule.init_leaves(layout.pack(params))._replace(scalars=rule.init_scalars(params))
    return _init_shaped_slots(rule, inner, layout, params), layout


def step_buckets(
    rule: PerLeafRule,
    grads: PyTree,
    state: Any,
    params: PyTree | None,
    layout: Layout,
    want_params: bool,
) -> tuple[PyTree, Any]:
    """One update on the buckets: ``(updates, new state)``, or ``(new params, new state)``
    with ``want_params``, shaped like ``grads``; ``state`` is the rule's packed state.

    Each param's slice of an update is cut at a run-time offset made inside the program
    (:meth:`Layout.traced_offsets`): one kernel per leaf size to compile, and nothing per
    leaf in the state.
    """
    expected = jax.tree.unflatten(
        layout.treedef, [jax.ShapeDtypeStruct(p.shape, p.dtype) for p in layout.places]
    )
    check_same_tree(expected, grads, "params", "grads")
    if params is not None:
        check_same_tree(expected, params, "the state's params", "params")
    flat_grads = layout.pack(grads)
    names = _decay_names(rule, layout)
    segments = bucket_segments(layout)
    dtypes = [jnp.dtype(p.dtype) for p in layout.places]
    if want_params and rule.sets_params(dtypes):
        # The rule's own new values (decayed, assigned, averaged or widened params).
        _, new_flat, inner = rule.run(flat_grads, state, layout.pack(params), True, names, segments)
        return layout.unpack(new_flat), inner
    # new = param + update, as the per-leaf rule computes it: no packed params unless read
    # (``update`` hands them on whenever given; unused, jit drops the copy).
    read = params is not None and (not want_params or rule.reads_params())
    packed = layout.pack(params) if read else None
    updates, _, inner = rule.run(flat_grads, state, packed, False, names, segments)
    unpacked = layout.unpack(updates)
    if want_params:
        # In the param's dtype, as the per-leaf rule's: an update can be wider (a bfloat16
        # leaf's gradient scaled by a float32 global norm).
        return jax.tree.map(lambda p, u: (p + u).astype(p.dtype), params, unpacked), inner
    return unpacked, inner


def unpack_slots(slots: dict[str, Any], layout: Layout) -> dict[str, PyTree]:
    """Each packed slot by name, in the params' structure (8-bit slots as float32)."""
    return {name: _unpack_slot(layout, values(flat)) for name, flat in slots.items()}


# ---- rules that read a leaf's norm or shape ------------------------------------------


def bucket_segments(layout: Layout) -> list[Segments | None]:
    """Each bucket's leaf sizes in ``bucket_names`` order (:class:`Segments`), for the
    rule's per-leaf sums; ``None`` for a bucket of one leaf (its sum is the bucket's)."""
    sizes: dict[str, list[int]] = {name: [] for name in layout.bucket_names}
    for place in layout.places:  # in offset order within each bucket
        sizes[place.bucket].append(place.size)
    return [Segments(tuple(sizes[n])) if len(sizes[n]) > 1 else None for n in layout.bucket_names]


def _init_shaped_slots(rule: PerLeafRule, state: Any, layout: Layout, params: PyTree) -> Any:
    """``state`` with the slots of each bucket that keeps its leaf's shape initialized
    from the leaf at its own path (a rule such as Muon's chooses the slot by path)."""
    if not layout.shaped:
        return state
    flat = layout.treedef.flatten_up_to(params)
    alone = layout.treedef.unflatten(
        [x if p.bucket in layout.shaped else None for p, x in zip(layout.places, flat, strict=True)]
    )
    own = rule.init_leaves(alone)  # the other leaves are None: empty subtrees
    structure: Any = jax.tree_util.tree_structure(alone)  # jax's stub lacks flatten_up_to
    buckets = [p.bucket for p in layout.places if p.bucket in layout.shaped]
    slots = {}
    for name, by_bucket in state.slots.items():
        shaped = structure.flatten_up_to(own.slots[name])  # an 8-bit slot stays whole
        slots[name] = {**by_bucket, **dict(zip(buckets, shaped, strict=True))}
    return state._replace(slots=slots)


def _unpack_slot(layout: Layout, buckets: dict[str, Any]) -> PyTree:
    """A slot's buckets in the params' structure. A shared bucket whose slot is not
    bucket-shaped holds the rule's placeholder for each of its leaves (Adafactor's
    ``r`` and ``c`` of a vector), which every leaf of the bucket gets as it is."""
    sizes = {name: size for name, _, size in layout.buckets}
    odd = {
        name
        for name, x in buckets.items()
        if name not in layout.shaped and jnp.shape(x) != (sizes[name],)
    }
    if not odd:
        return layout.unpack(buckets)
    regular = {
        name: jnp.zeros((sizes[name],), jnp.result_type(x)) if name in odd else x
        for name, x in buckets.items()
    }
    leaves = layout.treedef.flatten_up_to(layout.unpack(regular))
    return layout.treedef.unflatten(
        [
            buckets[p.bucket] if p.bucket in odd else leaf
            for p, leaf in zip(layout.places, leaves, strict=True)
        ]
    )
