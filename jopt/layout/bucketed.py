"""``jopt.bucketed(opt)``: an optimizer run on a few flat buckets instead of one leaf at
a time, with the same numbers, for models with many small leaves."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, NamedTuple

from jopt.composites.delegation import WrapsOne
from jopt.core.packing import Layout
from jopt.core.protocol import Applies, Composite, PerLeafRule
from jopt.core.slot_storage import values
from jopt.core.state import OptimizerState, html_state, pretty_state
from jopt.core.validation import check_int
from jopt.optimizers.buckets import (
    MAX_LEAF_SIZE,
    bucket_layout,
    init_buckets,
    is_sharded,
    step_buckets,
    unpack_slots,
)

__all__ = ["Bucketed", "BucketedState", "bucketed"]

PyTree = Any


class BucketedState(NamedTuple):
    """The state of :func:`jopt.bucketed`.

    Attributes:
        inner: the optimizer's own :class:`~jopt.OptimizerState` (step, live
            hyperparameters, scalars), whose slots hold one flat buffer per bucket
            (``state.inner.slots["velocity"]["float32"]``) and whose ``layout`` says
            where each param lies in them; ``layout`` is ``None`` when the params were
            sharded over devices and the state is per leaf. Read the slots per param
            with :meth:`Bucketed.slots`.

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> state = jopt.bucketed(jopt.Adam()).init({"b": jnp.ones(2), "w": jnp.ones(3)})
        >>> state.inner.slots["momentum"]["float32"].shape, state.inner.layout.places[1].offset
        ((5,), 2)
    """

    inner: OptimizerState

    def children(self) -> Mapping[str, Any]:
        """``{".inner": inner}``."""
        return {".inner": self.inner}

    def counters(self) -> Mapping[str, Any]:
        """``{"layout": how the leaves are packed}``."""
        if self.inner.layout is None:
            return {"layout": "per leaf (sharded params)"}
        return {"layout": f"{len(self.inner.layout.places)} leaves in flat buckets"}

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        pretty_state(self, p, cycle)

    def _repr_html_(self) -> str:
        return html_state(self)


@dataclasses.dataclass(frozen=True, repr=False)
class Bucketed(WrapsOne, Applies):
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
            costs more than it saves). Default ``8192``; 0 keeps every leaf alone.

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
    max_leaf_size: int = MAX_LEAF_SIZE

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
        extra = (
            "" if self.max_leaf_size == MAX_LEAF_SIZE else f", max_leaf_size={self.max_leaf_size}"
        )
        return f"bucketed({self.inner!r}{extra})"

    # ---- layout ---------------------------------------------------------------------

    def layout(self, params: PyTree) -> Layout:
        """The buckets for ``params``: one per dtype and weight-decay group for the
        leaves of up to ``max_leaf_size`` elements, and one of its own for each larger
        leaf (named after its path: no copy in or out, the per-leaf update)."""
        return bucket_layout(self.inner, params, self.max_leaf_size)

    # ---- the protocol -----------------------------------------------------------------

    def init(self, params: PyTree) -> BucketedState:
        """The optimizer's state over the packed params (per leaf if they are sharded)."""
        if is_sharded(params):
            return BucketedState(self.inner.init_leaves(params))
        inner, layout = init_buckets(self.inner, params, self.max_leaf_size)
        return BucketedState(inner._replace(layout=layout))

    def update(
        self, grads: PyTree, state: BucketedState, params: PyTree | None = None, **extra: Any
    ) -> tuple[PyTree, BucketedState]:
        """Returns ``(updates, new_state)``, updates shaped like ``grads``."""
        del extra
        return self._step(grads, state, params, False)

    def apply(
        self, grads: PyTree, state: BucketedState, params: PyTree
    ) -> tuple[PyTree, BucketedState]:
        """Returns ``(new_params, new_state)`` with the optimizer's own arithmetic."""
        return self._step(grads, state, params, True)

    def _step(
        self, grads: PyTree, state: BucketedState, params: PyTree | None, want_params: bool
    ) -> tuple[PyTree, BucketedState]:
        if not isinstance(state, BucketedState):
            raise TypeError(
                f"bucketed({type(self.inner).__name__}) expects the BucketedState made by "
                f"its init, got {type(state).__name__}"
            )
        layout = state.inner.layout
        if layout is None:  # sharded params: the per-leaf state
            updates, new_params, inner = self.inner.run(grads, state.inner, params, want_params)
            return (new_params if want_params else updates), BucketedState(inner)
        out, inner = step_buckets(
            self.inner, grads, state.inner._replace(layout=None), params, layout, want_params
        )
        return out, BucketedState(inner._replace(layout=layout))

    # ---- reading the state ------------------------------------------------------------

    def slots(self, state: BucketedState, params: PyTree | None = None) -> dict[str, PyTree]:
        """Each slot by name, unpacked into the params' structure (the state's layout
        gives it; ``params`` is accepted and not needed).

        Example: see :class:`Bucketed`.
        """
        if state.inner.layout is None:
            return {name: values(flat) for name, flat in state.inner.slots.items()}
        return unpack_slots(state.inner.slots, state.inner.layout)


def bucketed(opt: Any, max_leaf_size: int = MAX_LEAF_SIZE) -> Any:
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
