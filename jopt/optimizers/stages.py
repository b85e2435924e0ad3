"""The option pipeline of every optimizer, as small named stages run in Keras's order.

One update goes ``prepare`` -> ``unscale`` -> ``accumulate`` -> ``clip`` -> ``rule``
(decoupled weight decay, then the optimizer's own per-leaf rule) -> ``master_copy`` ->
``average`` -> ``finish``. Each stage reads and writes one :class:`Step`, the update in
flight; the optimizer's rule (``leaf_update``) sees only a gradient, a param and its own
slots, never an option, so every option works for every rule.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp

from jopt.core import slot_storage
from jopt.core.pytrees import as_dtype, check_float_leaves, check_same_tree
from jopt.core.state import OptimizerState, StepContext, next_step
from jopt.formulas.averaging import every, param_average
from jopt.formulas.clipping import clip_by_global_norm, clip_by_norm, clip_by_value
from jopt.formulas.weight_decay import decay_weights

if TYPE_CHECKING:
    from jopt.optimizers.optimizer import Optimizer

__all__ = [
    "Step",
    "accumulate",
    "average",
    "clip",
    "finish",
    "master_copy",
    "prepare",
    "rule",
    "unscale",
]

PyTree = Any


@dataclasses.dataclass
class Step:
    """One update in flight: each leaf's values as the stages hand them on (flat lists
    in the order of ``treedef``)."""

    treedef: Any
    paths: list[str]
    dtypes: list[Any]  # the params' dtypes
    cdtypes: list[Any]  # the dtype each leaf's rule runs in
    g: list[Any]  # the gradients, in cdtypes
    p: list[Any]  # the values the rule updates (the master copy or the params), or None
    slots: dict[str, list[Any]]  # as stored
    new_slots: dict[str, list[Any]]
    ctx: StepContext
    raw: jax.Array  # the state's step count
    is_update: jax.Array | None = None  # with gradient accumulation: whether to apply
    updates: list[Any] = dataclasses.field(default_factory=list)
    new_values: list[Any] = dataclasses.field(default_factory=list)  # in cdtypes, or None
    new_p: list[Any] = dataclasses.field(default_factory=list)  # in the params' dtypes
    # Each leaf's Segments when it is a bucket of leaves (jopt.bucketed), else None.
    segments: list[Any] | None = None

    def leaf_segments(self, i: int) -> Any:
        """Leaf ``i``'s :class:`~jopt.formulas.segments.Segments`, or ``None``."""
        return None if self.segments is None else self.segments[i]


def prepare(
    opt: Optimizer, grads: PyTree, state: OptimizerState, params: PyTree | None, want_params: bool
) -> Step:
    """Checks the inputs against the state and flattens everything into a :class:`Step`."""
    opt.check_state(state)
    names, all_names = opt.slot_names(), opt.all_slot_names()
    if all_names:
        check_same_tree(slot_storage.shapes(state.slots[all_names[0]]), grads, "params", "grads")
    check_float_leaves(grads, "grads")
    if params is not None:
        check_same_tree(params, grads, "params", "grads")
        check_float_leaves(params, "params")
    elif want_params or opt.reads_params():
        why = "" if opt.rule_reads_params else " with weight_decay or use_ema"
        raise ValueError(
            f"{type(opt).__name__}{why} needs params: call update(grads, state, params)"
        )
    flat, treedef_ = jax.tree_util.tree_flatten_with_path(grads)
    treedef: Any = treedef_  # jax's stub lacks flatten_up_to
    if params is not None:
        ref = params
    elif names and not opt.slot_dtypes:
        ref = state.slots[names[0]]  # slots take their param's dtype
    else:
        ref = grads
    dtypes = [jnp.result_type(x) for x in treedef.flatten_up_to(ref)]
    cdtypes = [opt.compute_dtype(d) for d in dtypes]
    g = [as_dtype(x, d) for (_, x), d in zip(flat, cdtypes, strict=True)]
    p: list[Any] = treedef.flatten_up_to(params) if params is not None else [None] * len(g)
    if opt.master_weights:  # the rule updates the float32 master copy
        p = treedef.flatten_up_to(state.slots["master_weights"])
    p = [None if x is None else as_dtype(x, d) for x, d in zip(p, cdtypes, strict=True)]
    raw = state.step
    k = opt.gradient_accumulation_steps
    applied = raw // k if k else raw  # Keras's `iterations`; schedules read `raw`
    lr = opt.rate(raw, state.hyperparams)
    # One StepContext, and one cache, for the whole step (leaves share the values).
    ctx = StepContext(applied, lr, state.scalars, state.hyperparams, opt.initial_hyperparams(), {})
    return Step(
        treedef=treedef,
        paths=[jax.tree_util.keystr(path) for path, _ in flat],
        dtypes=dtypes,
        cdtypes=cdtypes,
        g=g,
        p=p,
        slots={n: treedef.flatten_up_to(state.slots[n]) for n in all_names},
        new_slots={n: [] for n in all_names},
        ctx=ctx,
        raw=raw,
    )


def unscale(opt: Optimizer, s: Step) -> None:
    """``loss_scale_factor``: gradients divided by it."""
    if opt.loss_scale_factor is not None:
        s.g = [x / s.ctx.value("loss_scale_factor", x.dtype) for x in s.g]


def accumulate(opt: Optimizer, s: Step) -> None:
    """``gradient_accumulation_steps = k``: sum k gradients, apply their mean every k-th
    call (the other calls change nothing but the accumulator and the step count)."""
    k = opt.gradient_accumulation_steps
    if not k:
        return
    s.is_update = is_update = (s.raw + 1) % k == 0
    acc = s.slots["gradient_accumulator"]
    s.new_slots["gradient_accumulator"] = [
        jnp.where(is_update, jnp.zeros_like(a), x + a) for x, a in zip(s.g, acc, strict=True)
    ]
    s.g = [jnp.where(is_update, (x + a) / k, x) for x, a in zip(s.g, acc, strict=True)]


def clip(opt: Optimizer, s: Step) -> None:
    """Keras's clipping, in its order of precedence (at most one is set)."""
    ctx, g = s.ctx, s.g
    if opt.clipnorm:
        s.g = [
            clip_by_norm(x, ctx.value("clipnorm", x.dtype), s.leaf_segments(i))
            for i, x in enumerate(g)
        ]
    elif opt.global_clipnorm and g:
        dtype = jnp.result_type(*g)  # the global norm's
        s.g = clip_by_global_norm(
            g,
            ctx.value("global_clipnorm", dtype),
            ctx.hyper("global_clipnorm", lambda c: jnp.asarray(1.0 / c).astype(dtype)),
        )
    elif opt.clipvalue:
        s.g = [clip_by_value(x, ctx.value("clipvalue", x.dtype)) for x in g]


def rule(opt: Optimizer, s: Step, decay_names: list[str | None] | None) -> None:
    """Decoupled weight decay, then the optimizer's per-leaf rule on every leaf.

    ``decay_names`` (one per leaf) replaces the optimizer's choice of each leaf's weight
    decay, for leaves that are buckets of params (:func:`jopt.bucketed`).
    """
    old_scalars = s.ctx.scalars
    names = opt.slot_names()
    own_slots = {n: s.slots[n] for n in names}
    s.ctx = ctx = opt.begin_step_with_leaves(s.ctx, s.g, s.p, own_slots)
    lr = ctx.lr
    keep = s.is_update
    for i, (gi, pi) in enumerate(zip(s.g, s.p, strict=True)):
        dtype = s.cdtypes[i]
        base = pi
        wd = (
            opt.weight_decay_name(s.paths[i], jnp.ndim(gi))
            if decay_names is None
            else decay_names[i]
        )
        if wd:
            base = decay_weights(pi, ctx.cast(wd, dtype), as_dtype(lr, dtype))
        loaded = {n: slot_storage.load(s.slots[n][i], dtype) for n in names}
        segments = s.leaf_segments(i)  # a bucket's leaves: the rule's per-leaf sums
        leaf_ctx = ctx if segments is None else ctx._replace(segments=segments)
        u, new = opt.leaf_update(gi, base, loaded, leaf_ctx)
        new = {n: slot_storage.store(new[n], s.slots[n][i]) for n in names}  # stored forms
        # An assigning rule returned the new value itself; its update is the difference.
        value = u if opt.assigns_params else None
        if value is not None:
            u = value - base
        for n in names:
            kept = (
                new[n]
                if keep is None  # an 8-bit slot is a pytree (codes, scales): kept leaf by leaf
                else jax.tree.map(lambda a, b: jnp.where(keep, a, b), new[n], s.slots[n][i])
            )
            s.new_slots[n].append(kept)
        if keep is not None:
            u = jnp.where(keep, u, jnp.zeros_like(u))
            base = pi if base is None else jnp.where(keep, base, pi)
            value = None if value is None else jnp.where(keep, value, pi)
        s.updates.append(u)
        if base is None:
            s.new_values.append(None)
        else:
            s.new_values.append(base + u if value is None else value)  # base is a param here
    if keep is not None:  # the optimizer-wide scalars move only on an applied step
        s.ctx = ctx._replace(
            scalars=jax.tree.map(
                lambda new, old: jnp.where(keep, new, old), ctx.scalars, old_scalars
            )
        )


def master_copy(opt: Optimizer, s: Step) -> None:
    """The new params in their own dtypes; ``master_weights``: the float32 copy kept."""
    if opt.master_weights:
        s.new_slots["master_weights"] = [
            None if v is None else as_dtype(v, jnp.float32) for v in s.new_values
        ]
    s.new_p = [
        None if v is None else as_dtype(v, d) for v, d in zip(s.new_values, s.dtypes, strict=True)
    ]


def average(opt: Optimizer, s: Step) -> None:
    """``use_ema``: the moving average of the params; every ``ema_overwrite_frequency``
    applied steps the params are set to it."""
    if not opt.use_ema:
        return
    ctx = s.ctx
    s.new_slots["average"] = [
        param_average(a, x, ctx.value("ema_momentum", x.dtype), ctx.step)
        for a, x in zip(s.slots["average"], s.new_p, strict=True)
    ]
    if opt.ema_overwrite_frequency:
        overwrite = every(opt.ema_overwrite_frequency, ctx.step)
        s.new_p = [
            jnp.where(overwrite, a, x) for a, x in zip(s.new_slots["average"], s.new_p, strict=True)
        ]


def finish(
    opt: Optimizer, s: Step, state: OptimizerState, params: PyTree | None, want_params: bool
) -> tuple[PyTree, PyTree, OptimizerState]:
    """``(updates, new params or None, new state)``; updates are the new params' difference
    from the old where the rule sets the params itself."""
    updates = s.updates
    if opt.sets_params(s.dtypes):
        old_p = s.treedef.flatten_up_to(params)
        updates = [(x - q).astype(q.dtype) for x, q in zip(s.new_p, old_p, strict=True)]
    new_state = OptimizerState(
        next_step(s.raw),
        state.hyperparams,
        {n: s.treedef.unflatten(leaves) for n, leaves in s.new_slots.items()},
        s.ctx.scalars,
    )
    new_params = s.treedef.unflatten(s.new_p) if want_params else None
    return s.treedef.unflatten(updates), new_params, new_state
