"""``jopt.bucketed(opt)``: an optimizer run on a few flat buckets instead of one leaf at
a time, with the same numbers, for models with many small leaves."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jopt.composites.delegation import WrapsOne
from jopt.core.protocol import Applies, Composite, PerLeafRule, RuntimeConstants
from jopt.core.pytrees import check_same_tree
from jopt.core.slot_storage import values
from jopt.core.state import OptimizerState, html_state, pretty_state
from jopt.core.validation import check_int
from jopt.formulas.segments import Segments
from jopt.layout.packing import Layout, Place

__all__ = ["Bucketed", "BucketedState", "bucketed"]

PyTree = Any


class BucketedState(NamedTuple):
    """The state of :func:`jopt.bucketed`.

    Attributes:
        inner: the optimizer's own :class:`~jopt.OptimizerState` (step, live
            hyperparameters, scalars), whose slots hold one flat buffer per bucket
            (``state.inner.slots["velocity"]["float32"]``). Read them per param with
            :meth:`Bucketed.slots`.
        offsets: each param leaf's int32 start in its bucket, in the params' structure
            (carried at run time so equal-sized leaves share compiled kernels); ``None``
            when the params were sharded over devices and the state is per leaf.

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> state = jopt.bucketed(jopt.Adam()).init({"b": jnp.ones(2), "w": jnp.ones(3)})
        >>> state.inner.slots["momentum"]["float32"].shape, int(state.offsets["w"])
        ((5,), 2)
    """

    inner: OptimizerState
    offsets: PyTree | None

    def children(self) -> Mapping[str, Any]:
        """``{".inner": inner}``."""
        return {".inner": self.inner}

    def counters(self) -> Mapping[str, Any]:
        """``{"layout": how the leaves are packed}``."""
        if self.offsets is None:
            return {"layout": "per leaf (sharded params)"}
        return {"layout": f"{len(jax.tree.leaves(self.offsets))} leaves in flat buckets"}

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        pretty_state(self, p, cycle)

    def _repr_html_(self) -> str:
        return html_state(self)


def _sharded(params: PyTree) -> bool:
    """True when a leaf is a concrete array spread over more than one device."""
    return any(
        isinstance(x, jax.Array)
        and not isinstance(x, jax.core.Tracer)
        and len(x.sharding.device_set) > 1
        for x in jax.tree.leaves(params)
    )


@dataclasses.dataclass(frozen=True, repr=False)
class Bucketed(WrapsOne, Applies, RuntimeConstants):
    """An optimizer applied to flat buckets of leaves: fewer, longer kernels.

    Same rule, same numbers: the leaves of each dtype (and weight-decay group) are
    concatenated into one buffer, the optimizer's per-leaf rule runs once per buffer,
    and each param gets its slice back. The slots are stored packed, so a step reads
    and writes a few long buffers instead of one buffer per leaf and slot. On a model
    with a thousand small leaves that is several times faster per step, and much faster
    to compile, than the per-leaf layout (see ``benchmarks/``); on a few large leaves
    it is level.

    The params stay an ordinary pytree (the model's own); only the state is packed.
    Eager steps are bit-identical to the optimizer's own; compiled ones can differ by
    one float32 rounding where XLA fuses the arithmetic differently, as with any two
    programs. ``global_clipnorm`` sums the squares in the buckets' order, a rounding
    apart from the per-leaf sum.

    Every jopt optimizer and option runs bucketed. A per-leaf norm or mean (``clipnorm``,
    Lamb's and LARS's trust ratios, Adafactor's RMS of the weights and of the update) is
    a segment sum over the bucket (:meth:`jopt.StepContext.leaf_sum`), and Prodigy's
    sums over every leaf run over the buckets: the same terms in another order, a few
    float32 roundings apart from the per-leaf rule. A leaf whose shape the rule reads
    (:meth:`jopt.Optimizer.keeps_leaf_shape`: Adafactor's matrices, factored; Muon's
    matrices, orthogonalized) keeps a bucket of its own in its own shape, with the
    per-leaf update; the other leaves share buckets (Muon's AdamW leaves, Adafactor's
    vectors and scalars).

    Params sharded over several devices fall back to the optimizer's per-leaf state
    (``state.offsets is None``), which keeps every sharding.

    Args:
        inner: a per-leaf rule (any jopt optimizer, with any options).
        max_leaf_size: leaves with more elements keep a bucket of their own (their
            update is the per-leaf one; copying them into a shared bucket and back
            costs more than it saves). Default ``65536``; 0 keeps every leaf alone.

    Raises:
        TypeError: ``inner`` is not a per-leaf rule.
        ValueError: a rule whose ``bucket_refusal()`` says why it cannot run on buckets
            (none of jopt's).

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> opt = jopt.bucketed(jopt.Adam(learning_rate=0.1))
        >>> params = {"b": jnp.zeros(2), "w": jnp.ones((2, 2))}
        >>> state = opt.init(params)
        >>> grads = {"b": jnp.ones(2), "w": jnp.ones((2, 2))}
        >>> params, state = opt.apply_gradients(grads, state, params)
        >>> params["b"], int(state.inner.step)
        (Array([-0.09999901, -0.09999901], dtype=float32), 1)
        >>> opt.slots(state, params)["momentum"]["w"]
        Array([[0.1, 0.1],
               [0.1, 0.1]], dtype=float32)
    """

    inner: Any
    max_leaf_size: int = 1 << 16

    def __post_init__(self) -> None:
        check_int("max_leaf_size", self.max_leaf_size, 0)
        if not isinstance(self.inner, PerLeafRule):
            raise TypeError(
                f"bucketed needs a per-leaf rule (the PerLeafRule capability of jopt's "
                f"optimizers, e.g. jopt.Adam()), got {self.inner!r:.100} "
                f"({type(self.inner).__name__})"
            )
        refusal = self.inner.bucket_refusal()
        if refusal is not None:
            raise ValueError(refusal)

    @property
    def name(self) -> str:
        """The inner optimizer's name."""
        return str(self.inner.name)

    def __repr__(self) -> str:
        extra = "" if self.max_leaf_size == 1 << 16 else f", max_leaf_size={self.max_leaf_size}"
        return f"bucketed({self.inner!r}{extra})"

    # ---- layout ---------------------------------------------------------------------

    def layout(self, params: PyTree) -> Layout:
        """The buckets for ``params``: one per dtype and weight-decay group for the
        leaves of up to ``max_leaf_size`` elements, and one of its own for each larger
        leaf (named after its path: no copy in or out, the per-leaf update)."""
        flat, treedef = jax.tree_util.tree_flatten(params)
        return self._layout(treedef, tuple((jnp.shape(x), jnp.result_type(x)) for x in flat))

    # Built once per structure: a frozen config and a few KB per layout.
    @functools.lru_cache(maxsize=64)  # noqa: B019
    def _layout(self, treedef: Any, leaves: tuple[tuple[Any, Any], ...]) -> Layout:
        tree = treedef.unflatten([jax.ShapeDtypeStruct(s, d) for s, d in leaves])
        opt = self.inner

        def group(path: str, leaf: Any) -> str | None:
            decayed = opt.weight_decay_name(path, len(leaf.shape))
            label = None if decayed or not opt.decays_weights() else "no_decay"
            label = _decay_label(decayed, label)
            if math.prod(leaf.shape) > self.max_leaf_size and not keep_shape(path, leaf):
                return path if label is None else f"{path}/{label}"
            return label

        def keep_shape(path: str, leaf: Any) -> bool:
            return bool(opt.keeps_leaf_shape(path, len(leaf.shape)))

        return Layout.of(tree, group, keep_shape)

    def _decay_names(self, layout: Layout) -> list[str | None]:
        """The weight decay of each bucket (in ``bucket_names`` order): its leaves'."""
        first: dict[str, Place] = {}
        for place in layout.places:
            first.setdefault(place.bucket, place)
        opt = self.inner
        return [
            opt.weight_decay_name(first[name].path, len(first[name].shape))
            if opt.decays_weights()
            else None
            for name in layout.bucket_names
        ]

    # ---- the protocol -----------------------------------------------------------------

    def init(self, params: PyTree) -> BucketedState:
        """The optimizer's state over the packed params, and each leaf's offset."""
        if _sharded(params):
            return BucketedState(self.inner.init(params), None)
        layout = self.layout(params)
        offsets = layout.offsets()
        # Scalars follow the params as given (Nadam keeps its in the first leaf's dtype).
        inner = self.inner.init(layout.pack(params))._replace(
            scalars=self.inner.init_scalars(params)
        )
        inner = _init_shaped_slots(self.inner, inner, layout, params)
        return BucketedState(inner, offsets)

    def update(
        self, grads: PyTree, state: BucketedState, params: PyTree | None = None, **extra: Any
    ) -> tuple[PyTree, BucketedState]:
        """Returns ``(updates, new_state)``, updates shaped like ``grads``."""
        del extra
        if self._per_leaf(state):
            updates, inner = self.inner.update(grads, state.inner, params)
            return updates, BucketedState(inner, None)
        layout = self._check(grads, state, params)
        flat_params = None if params is None else layout.pack(params)
        updates, _, inner = self.inner.run(
            layout.pack(grads),
            state.inner,
            flat_params,
            False,
            self._decay_names(layout),
            bucket_segments(layout),
        )
        return layout.unpack(updates, state.offsets), BucketedState(inner, state.offsets)

    def apply(
        self, grads: PyTree, state: BucketedState, params: PyTree
    ) -> tuple[PyTree, BucketedState]:
        """Returns ``(new_params, new_state)`` with the optimizer's own arithmetic."""
        if self._per_leaf(state):
            new_params, inner = self.inner.apply(grads, state.inner, params)
            return new_params, BucketedState(inner, None)
        layout = self._check(grads, state, params)
        opt = self.inner
        flat_grads = layout.pack(grads)
        decay_names = self._decay_names(layout)
        segments = bucket_segments(layout)
        if self._assigns(params):
            # The rule's own new values (decayed, assigned, averaged or widened params).
            _, new_flat, inner = opt.run(
                flat_grads, state.inner, layout.pack(params), True, decay_names, segments
            )
            new_params = layout.unpack(new_flat, state.offsets)
        else:
            # new = param + update, as the per-leaf rule computes it: no packed params.
            needs_params = opt.reads_params()
            updates, _, inner = opt.run(
                flat_grads,
                state.inner,
                layout.pack(params) if needs_params else None,
                False,
                decay_names,
                segments,
            )
            # In the param's dtype, as the rule's own new value (a wider update: Muon's).
            new_params = jax.tree.map(
                lambda p, u: (p + u).astype(jnp.result_type(p)),
                params,
                layout.unpack(updates, state.offsets),
            )
        return new_params, BucketedState(inner, state.offsets)

    def _assigns(self, params: PyTree) -> bool:
        """Whether the rule's new params are not ``param + update`` bit for bit."""
        return self.inner.sets_params([jnp.result_type(x) for x in jax.tree.leaves(params)])

    def _per_leaf(self, state: Any) -> bool:
        """Whether ``state`` (checked to be this wrapper's) fell back to the per-leaf layout."""
        if not isinstance(state, BucketedState):
            raise TypeError(
                f"bucketed({type(self.inner).__name__}) expects the BucketedState made by "
                f"its init, got {type(state).__name__}"
            )
        return state.offsets is None

    def _check(self, grads: PyTree, state: BucketedState, params: PyTree | None) -> Layout:
        like = jax.tree.map(lambda _: 0.0, state.offsets)
        check_same_tree(like, jax.tree.map(lambda _: 0.0, grads), "params", "grads")
        if params is not None:
            check_same_tree(params, grads, "params", "grads")
        return self.layout(grads if params is None else params)

    # ---- reading the state ------------------------------------------------------------

    def slots(self, state: BucketedState, params: PyTree) -> dict[str, PyTree]:
        """Each slot by name, unpacked into the params' structure (``params`` gives it).

        Example: see :class:`Bucketed`.
        """
        slots = {name: values(flat) for name, flat in state.inner.slots.items()}  # 8-bit: float32
        if state.offsets is None:
            return slots
        layout = self.layout(params)
        return {name: _unpack_slot(layout, flat) for name, flat in slots.items()}

    # ---- capabilities ---------------------------------------------------------------

    def split_constants(self, state: BucketedState) -> tuple[PyTree, PyTree]:
        """``(inner state, offsets)``: the offsets never change after ``init``."""
        return state.inner, state.offsets

    def join_constants(self, changing: PyTree, constants: PyTree) -> BucketedState:
        """The state from the inner state and the offsets."""
        return BucketedState(changing, constants)


# ---- rules that read a leaf's norm or shape ------------------------------------------


def _decay_label(decayed: str | None, label: str | None) -> str | None:
    """A bucket label for a leaf decayed by another hyperparameter than
    ``weight_decay`` (Muon's ``adam_weight_decay``), so a bucket has one decay."""
    return decayed if decayed not in (None, "weight_decay") else label


def bucket_segments(layout: Layout) -> list[Segments | None]:
    """Each bucket's leaf sizes in ``bucket_names`` order (:class:`Segments`), for the
    rule's per-leaf sums; ``None`` for a bucket of one leaf (its sum is the bucket's)."""
    sizes: dict[str, list[int]] = {name: [] for name in layout.bucket_names}
    for place in layout.places:  # in offset order within each bucket
        sizes[place.bucket].append(place.size)
    return [Segments(tuple(sizes[n])) if len(sizes[n]) > 1 else None for n in layout.bucket_names]


def _init_shaped_slots(
    opt: Any, state: OptimizerState, layout: Layout, params: PyTree
) -> OptimizerState:
    """``state`` with the slots of each bucket that keeps its leaf's shape initialized
    from the leaf at its own path (a rule such as Muon's chooses the slot by path)."""
    if not layout.shaped:
        return state
    flat = layout.treedef.flatten_up_to(params)
    alone = layout.treedef.unflatten(
        [x if p.bucket in layout.shaped else None for p, x in zip(layout.places, flat, strict=True)]
    )
    own = opt.init(alone)  # the other leaves are None: empty subtrees
    structure: Any = jax.tree_util.tree_structure(alone)  # jax's stub lacks flatten_up_to
    buckets = [p.bucket for p in layout.places if p.bucket in layout.shaped]
    slots = {}
    for name, by_bucket in state.slots.items():
        values = structure.flatten_up_to(own.slots[name])  # an 8-bit slot stays whole
        slots[name] = {**by_bucket, **dict(zip(buckets, values, strict=True))}
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


def bucketed(opt: Any, max_leaf_size: int = 1 << 16) -> Any:
    """``opt`` run on flat buckets of leaves, with the same numbers: see :class:`Bucketed`.

    A composite (a wrapper such as :class:`jopt.SkipNonFinite`, a partition, a chain)
    keeps its place and has each member that is a per-leaf rule bucketed instead:
    ``bucketed(SkipNonFinite(Adam()))`` is ``SkipNonFinite(bucketed(Adam()))``.

    Raises:
        TypeError: ``opt`` neither is nor holds a per-leaf rule (an optax transformation,
            ``jopt.LBFGS``).

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> opt = jopt.bucketed(jopt.SGD(0.1, momentum=0.9))
        >>> params = [jnp.ones(3) for _ in range(4)]
        >>> state = opt.init(params)
        >>> params, state = opt.apply_gradients([jnp.ones(3)] * 4, state, params)
        >>> params[3]
        Array([0.9, 0.9, 0.9], dtype=float32)
    """
    if isinstance(opt, Composite) and not isinstance(opt, Bucketed):
        members = opt.members()
        laid = {
            key: bucketed(m, max_leaf_size)
            if isinstance(m, PerLeafRule | Composite) and not isinstance(m, Bucketed)
            else m
            for key, m in members.items()
        }
        if all(laid[k] is members[k] for k in members):
            raise TypeError(
                f"bucketed: no member of {opt!r:.100} is a per-leaf rule (the PerLeafRule "
                "capability of jopt's optimizers) to lay out in buckets"
            )
        return opt.replace_members(laid)
    return Bucketed(opt, max_leaf_size)
