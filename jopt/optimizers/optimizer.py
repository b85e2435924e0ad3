"""The base of every Keras-style optimizer: a frozen configuration with optax's two methods.

A subclass declares its arguments, names its slots and writes its per-leaf rule; this
class does the rest once for all of them: state layout, the learning rate at a step, the
step count, ``apply_gradients``, the option stages (:mod:`jopt.optimizers.stages`). Its
parts live in modules of their own: the configuration (checks, equality and hashing, so
an optimizer is a valid static argument to ``jax.jit``, ``repr`` and Keras's config) in
:mod:`~jopt.optimizers.configuration`, the ``learning_rate`` argument in
:mod:`~jopt.optimizers.rate_argument`, the live values and ``set_hyperparams``' checks in
:mod:`~jopt.optimizers.live_values`, the state checks in
:mod:`~jopt.optimizers.state_checks`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from jopt.core import slot_storage
from jopt.core.compiled import CompiledStep
from jopt.core.hyperparams import set_hyperparams
from jopt.core.packing import Layout
from jopt.core.placement import replicate_like
from jopt.core.protocol import (
    Applies,
    HasLearningRate,
    LiveHyperparams,
    PerLeafRule,
)
from jopt.core.pytrees import check_float_leaves
from jopt.core.registry import register_config_class
from jopt.core.state import OptimizerState, StepContext
from jopt.formulas.learning_rate import rate_at
from jopt.formulas.weight_decay import uses_weight_decay
from jopt.optimizers import buckets, stages
from jopt.optimizers.configuration import Configuration
from jopt.optimizers.live_values import check_live_values, held_hyperparams
from jopt.optimizers.rate_argument import LearningRate, default, resolve_learning_rate
from jopt.optimizers.state_checks import check_state

__all__ = ["LearningRate", "Optimizer", "StepContext", "default", "resolve_learning_rate"]

PyTree = Any


class Optimizer(
    Configuration,
    Applies,
    HasLearningRate,
    LiveHyperparams,
    PerLeafRule,
    CompiledStep,
    abstract=True,
):
    """Base class: frozen, hashable configuration plus ``init`` / ``update``.

    A subclass declares each argument of its rule once, as a class attribute
    ``beta_1 = Hyperparam(0.9, unit_interval_open)`` (:mod:`jopt.core.declarations`:
    default, check, whether the state holds it live), in signature order; its
    ``__init__`` keeps the explicit signature (checked against the declarations when
    the class is made) and calls ``super().__init__(learning_rate, rule, options)`` with
    the arguments as given (``rule``: every declared name) and the user's ``**options``
    (:class:`~jopt.core.options.OptimizerOptions`); the declarations check them. It
    defines :meth:`slot_names` and :meth:`leaf_update`, and if it needs them
    :meth:`init_slot`, :meth:`init_scalars`, :meth:`begin_step` and
    :meth:`check_relations`.

    The rule's numeric arguments declared live are listed in :attr:`hyperparam_names`
    (derived from the declarations): ``init`` puts them in the state as float32
    scalars, and the rule reads them through the :class:`~jopt.core.state.StepContext`
    (``ctx.value("rho", dtype)``, ``ctx.complement("beta_1", dtype)``...), never from
    ``self``, so a value changed in the state is used without recompiling, and the
    constructor's value gives Keras's exact arithmetic.
    """

    #: True when :meth:`leaf_update` returns the new param value itself (Keras's rule
    #: assigns it, as Ftrl's does) rather than an update to add: the value is then used
    #: as it is, so ``apply`` stays bit-identical to Keras.
    assigns_params: ClassVar[bool] = False

    #: True when the rule treats every element alone (given the step's shared scalars),
    #: so leaves may be concatenated into flat buckets with identical numbers, and
    #: params packed by :func:`jopt.layout.pack` train as the tree does. False for rules
    #: that read a leaf's shape or norm (or sum over every leaf): :func:`jopt.bucketed`
    #: still runs them (per-leaf sums on segments, see :meth:`StepContext.leaf_sum`, and
    #: :meth:`keeps_leaf_shape`), a float32 rounding apart, but packed params would
    #: make a whole bucket one leaf.
    elementwise: ClassVar[bool] = True

    #: True when :meth:`leaf_update` reads the param itself (Lamb's trust ratio,
    #: Adafactor's RMS of the weights), so ``update`` needs the params.
    rule_reads_params: ClassVar[bool] = False

    #: Slots whose values are never negative (a second moment, an accumulator): stored
    #: ``"int8"`` with the unsigned map, twice as fine (see :mod:`jopt.core.slot_storage`).
    nonnegative_slots: ClassVar[frozenset[str]] = frozenset()

    #: Slots that cannot be stored ``"int8"``, each with the reason (a whole-leaf view,
    #: or values the rule needs exactly).
    exact_slots: ClassVar[dict[str, str]] = {}

    _initial: dict[str, float]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Keras 3's classes, by name, for jopt.optimizers.get/deserialize (tf.keras 2's,
        # in jopt.legacy, share the names).
        if cls.__module__.startswith("jopt.optimizers.") and not cls.__name__.startswith("_"):
            register_config_class(cls, by_name=True)

    def __init__(
        self, learning_rate: Any, rule: dict[str, Any], options: Mapping[str, Any]
    ) -> None:
        self._configure(learning_rate, rule, options)
        object.__setattr__(self, "_initial", held_hyperparams(self))
        unknown = sorted(set(dict(self.slot_dtypes or ())) - set(self.all_slot_names()))
        if unknown:
            raise ValueError(
                f"slot_dtypes names {unknown}, which {type(self).__name__} does not keep; "
                f"its slots are {list(self.all_slot_names())}"
            )
        slot_storage.check_quantizable(self, dict(self.slot_dtypes or ()))
        if self.layout == "bucketed" and (refusal := self.bucket_refusal()) is not None:
            raise ValueError(f"layout='bucketed': {refusal}; use layout='auto' or 'per_leaf'")

    def __iter__(self) -> Iterator[Callable[..., Any]]:
        """Unpacks as ``init, update = opt``, like an ``optax.GradientTransformation``."""
        return iter((self.init, self.update))

    # ---- the rule: what a subclass writes ---------------------------------------------

    def slot_names(self) -> tuple[str, ...]:
        """Names of the per-parameter slots, Keras's names (``"momentum"``, ``"velocity"``)."""
        return ()

    def init_scalars(self, params: PyTree) -> dict[str, jax.Array]:
        """Optimizer-wide values kept in the state besides the step (e.g. a running product)."""
        return {}

    def init_slot(self, name: str, param: jax.Array, dtype: Any, path: str) -> jax.Array:
        """Slot ``name``'s initial value for one param leaf: zeros of the param's shape in
        the slot's ``dtype``. A rule whose slot starts elsewhere (Adagrad's accumulator at
        ``initial_accumulator_value``) or has another shape (Adafactor's factored moments)
        overrides this, never ``init``, so every option and ``slot_dtypes`` still apply.
        ``path`` is the leaf's ``jax.tree_util.keystr`` path."""
        del name, path
        # zeros_like, not zeros(shape): a slot stays on its param's devices and sharding.
        return jnp.zeros_like(param, dtype)

    def begin_step(self, ctx: StepContext) -> StepContext:
        """Computes once per step what every leaf shares; may replace ``ctx.scalars``."""
        return ctx

    def begin_step_with_leaves(
        self,
        ctx: StepContext,
        grads: list[jax.Array],
        params: list[jax.Array | None],
        slots: dict[str, list[jax.Array]],
    ) -> StepContext:
        """:meth:`begin_step`, for a rule whose shared scalars are sums over every leaf
        (Prodigy's step-size estimate): it sees the step's gradients (clipped and
        accumulated) and the params in the compute dtype, and the rule's slots in their
        stored dtypes, as lists of leaves. The default calls :meth:`begin_step`."""
        del grads, params, slots
        return self.begin_step(ctx)

    def leaf_update(
        self, g: jax.Array, p: jax.Array | None, slots: dict[str, jax.Array], ctx: StepContext
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """One leaf's update (``param += update``) and its new slots.

        ``g`` is already in the leaf's dtype; ``p`` is the param leaf, or ``None`` when
        ``update`` was called without params.
        """
        raise NotImplementedError

    # ---- the protocol -----------------------------------------------------------------

    def all_slot_names(self) -> tuple[str, ...]:
        """The rule's slots, then those of the base options (``"gradient_accumulator"``,
        ``"average"``), all shaped like the params."""
        return (
            self.slot_names()
            + (("gradient_accumulator",) if self.gradient_accumulation_steps else ())
            + (("average",) if self.use_ema else ())
            + (("master_weights",) if self.master_weights else ())
        )

    def slot_dtype(self, name: str, param_dtype: Any) -> Any:
        """The dtype slot ``name`` is stored in for a param of ``param_dtype``."""
        if name == "master_weights":
            return jnp.dtype(jnp.float32)
        return jnp.dtype(dict(self.slot_dtypes or ()).get(name, param_dtype))

    def compute_dtype(self, param_dtype: Any) -> Any:
        """The dtype a leaf's rule runs in: its param's, widened by its slots' dtypes and,
        with master weights, to float32."""
        dtypes = [param_dtype, *(slot_storage.compute_dtype(d) for _, d in self.slot_dtypes or ())]
        if self.master_weights:
            dtypes.append(jnp.float32)
        return jnp.result_type(*dtypes)

    def init(self, params: PyTree) -> OptimizerState:
        """Returns the initial state: step 0, live hyperparameters, zeroed slots.

        Slots take each param's dtype, as in Keras; the hyperparameters are float32
        scalars whatever the params' dtype, set from :meth:`initial_hyperparams`. Works
        under ``jax.jit`` and ``jax.eval_shape`` (no static arguments needed). Each slot
        keeps its param's sharding, and the scalars are replicated over the params'
        devices (see :mod:`jopt.sharding`).

        The ``layout`` option decides how the slots are laid out: per leaf (shaped like
        the params), or, for a tree of many small leaves under an elementwise rule, as a
        few flat buckets (``state.layout`` is then set; read the slots per param with
        :meth:`slots`). The numbers are the same either way.

        Example:
            >>> import jax.numpy as jnp, jopt
            >>> params = {f"b{i}": jnp.zeros(3) for i in range(100)}  # many small leaves
            >>> opt = jopt.Adam()
            >>> state = opt.init(params)
            >>> state.slots["momentum"]["float32"].shape, opt.slots(state)["momentum"]["b1"].shape
            ((300,), (3,))
            >>> jopt.Adam(layout="per_leaf").init(params).slots["momentum"]["b1"].shape
            (3,)
        """
        check_float_leaves(params, "params")
        if self._packs(params):
            inner, layout = buckets.init_buckets(self, params)
            return inner._replace(layout=layout)
        return self.init_leaves(params)

    def _packs(self, params: PyTree) -> bool:
        """Whether ``init`` lays ``params`` out in flat buckets (see the ``layout`` option)."""
        if self.layout == "per_leaf" or buckets.is_sharded(params):
            return False
        if self.layout == "bucketed":
            return True
        # Automatically only where the packed step is the per-leaf arithmetic element for
        # element: an elementwise rule, no per-leaf norm (a segment sum adds in another
        # order), 8-bit blocks per leaf.
        return (
            self.elementwise
            and not self.clipnorm
            and self.bucket_refusal() is None
            and not any(d == "int8" for _, d in self.slot_dtypes or ())
            and buckets.many_small_leaves(params)
        )

    def init_leaves(self, params: PyTree) -> OptimizerState:
        """The state with the slots laid out leaf by leaf (each leaf may be a bucket)."""

        def slot(name: str) -> PyTree:
            if name == "master_weights":
                return jax.tree.map(lambda p: jnp.asarray(p, jnp.float32), params)

            own = name in self.slot_names()  # the options' slots start at zero

            def leaf(path: Any, p: jax.Array) -> Any:
                dtype = self.slot_dtype(name, jnp.result_type(p))
                compute = slot_storage.compute_dtype(dtype)
                value = (
                    self.init_slot(name, p, compute, jax.tree_util.keystr(path))
                    if own
                    else jnp.zeros_like(p, compute)
                )
                return slot_storage.init(value, dtype, name not in self.nonnegative_slots)

            return jax.tree_util.tree_map_with_path(leaf, params)

        slots = {name: slot(name) for name in self.all_slot_names()}
        hyperparams = {k: jnp.asarray(v, jnp.float32) for k, v in self._initial.items()}
        step, hyperparams, scalars = replicate_like(
            (jnp.zeros([], jnp.int32), hyperparams, self.init_scalars(params)), params
        )
        return OptimizerState(step, hyperparams, slots, scalars)

    def update(
        self, grads: PyTree, state: OptimizerState, params: PyTree | None = None, **extra: Any
    ) -> tuple[PyTree, OptimizerState]:
        """Returns ``(updates, new_state)``; apply with ``jopt.apply_updates(params, updates)``.

        ``params`` is needed by rules and options that read the weights (weight decay,
        EMA, Lamb...). When the new params are wanted anyway, :meth:`apply` computes
        them exactly as Keras does (``updates`` are their difference from the old
        params, which can differ from Keras by a float32 rounding once weight decay or
        an EMA overwrite is on).

        Raises:
            TypeError: ``state`` is not this optimizer's state.
            ValueError: ``grads`` differ from the params (or the slots made from them),
                naming the first differing path.
        """
        del extra  # optax's extra-args protocol; these rules need none
        if (layout := _layout_of(state)) is not None:
            updates, inner = buckets.step_buckets(
                self, grads, state._replace(layout=None), params, layout, False
            )
            return updates, inner._replace(layout=layout)
        updates, _, state = self.run(grads, state, params, want_params=False)
        return updates, state

    def apply(
        self, grads: PyTree, state: OptimizerState, params: PyTree
    ) -> tuple[PyTree, OptimizerState]:
        """Returns ``(new_params, new_state)``: one update applied, with Keras's arithmetic.

        Keras's ``optimizer.apply(grads, variables)``, functional: a pure function, eager
        or inside ``jax.jit``; :meth:`apply_gradients` is its compiled, cached form.

        Example:
            >>> import jax.numpy as jnp, jopt
            >>> opt = jopt.SGD(0.1, weight_decay=0.5)
            >>> params = {"w": jnp.array([1.0])}
            >>> opt.apply({"w": jnp.array([1.0])}, opt.init(params), params)[0]["w"]
            Array([0.84999996], dtype=float32)
        """
        if (layout := _layout_of(state)) is not None:
            new_params, inner = buckets.step_buckets(
                self, grads, state._replace(layout=None), params, layout, True
            )
            return new_params, inner._replace(layout=layout)
        _, new_params, state = self.run(grads, state, params, want_params=True)
        return new_params, state

    def run(
        self,
        grads: PyTree,
        state: OptimizerState,
        params: PyTree | None,
        want_params: bool,
        decay_names: list[str | None] | None = None,
        segments: list[Any] | None = None,
    ) -> tuple[PyTree, PyTree, OptimizerState]:
        """The whole update, in Keras's order: unscale, accumulate, clip, decay the
        weights, the rule, average the params; returns (updates, new params, state).

        ``decay_names`` (one per leaf) replaces :meth:`weight_decay_name`'s choice, for
        leaves that are buckets of params rather than params (:func:`jopt.bucketed`);
        ``segments`` (one per leaf) gives such a bucket's leaf sizes
        (:class:`~jopt.formulas.segments.Segments`, or ``None`` for a leaf alone), so
        that ``clipnorm`` and the rule's per-leaf sums (:meth:`StepContext.leaf_sum`)
        are taken leaf by leaf.
        """
        s = stages.prepare(self, grads, state, params, want_params)
        s.segments = segments
        stages.unscale(self, s)
        stages.accumulate(self, s)
        stages.clip(self, s)
        stages.rule(self, s, decay_names)
        stages.master_copy(self, s)
        stages.average(self, s)
        return stages.finish(self, s, state, params, want_params)

    def sets_params(self, param_dtypes: list[Any]) -> bool:
        """Whether the new params are the rule's own values rather than ``param +
        update`` bit for bit: weight decay, an assigning rule, an EMA overwrite, master
        weights, or a rule run in a wider dtype than a param's (``param_dtypes``).
        ``update`` then returns their difference from the old params."""
        widened = any(self.compute_dtype(d) != jnp.dtype(d) for d in param_dtypes)
        return bool(
            self.decays_weights()
            or self.assigns_params
            or (self.use_ema and self.ema_overwrite_frequency)
            or self.master_weights
            or widened
        )

    def bucket_refusal(self) -> str | None:
        """Why this rule cannot run on flat buckets of leaves, or ``None`` when it can:
        always ``None`` for jopt's rules and options. A per-leaf norm or mean
        (``clipnorm``, Lamb's and LARS's trust ratios, Adafactor's RMS) is a segment sum
        over the bucket (:meth:`StepContext.leaf_sum`); a leaf whose shape the rule
        reads (:meth:`keeps_leaf_shape`) has a bucket of its own, in its shape."""
        return None

    def keeps_leaf_shape(self, path: str, ndim: int) -> bool:
        """Whether :meth:`leaf_update` reads the shape of the leaf at ``path`` of rank
        ``ndim`` (Adafactor's factored moments, Muon's orthogonalized matrices), so
        :func:`jopt.bucketed` keeps it alone and unraveled. ``False`` by default."""
        del path, ndim
        return False

    def reads_params(self) -> bool:
        """Whether ``update`` reads the params: the rule itself
        (:attr:`rule_reads_params`), weight decay or an average of them."""
        return self.rule_reads_params or self.decays_weights() or self.use_ema

    def decays_weights(self) -> bool:
        """Whether any leaf gets weight decay (then the params are needed)."""
        return bool(self.weight_decay)

    def weight_decay_name(self, path: str, ndim: int) -> str | None:
        """The hyperparameter that decays the leaf at ``path`` (of rank ``ndim``), or None.

        ``"weight_decay"`` when it is on, unless ``exclude_from_weight_decay`` excludes
        the path; an optimizer that decays leaves differently (Muon) overrides this.
        """
        if self.weight_decay and uses_weight_decay(path, self.exclude_from_weight_decay):
            return "weight_decay"
        return None

    def leaf_weight_decay(self, path: str, ndim: int) -> float | None:
        """The constructor's decoupled weight decay of the leaf at ``path`` (of rank
        ``ndim``), or None; the live value is in the state (see :meth:`weight_decay_name`).
        """
        name = self.weight_decay_name(path, ndim)
        return None if name is None else getattr(self, name)

    def check_state(self, state: Any) -> None:
        """Raises unless ``state`` is this optimizer's: an unbatched :class:`OptimizerState`
        with this configuration's slots, scalars and live hyperparameters."""
        check_state(self, state)

    def slots(self, state: OptimizerState, params: PyTree | None = None) -> dict[str, PyTree]:
        """Each slot by name, shaped like the params, with 8-bit slots (``slot_dtypes``
        ``"int8"``) dequantized to float32; other slots as stored.

        A state laid out in flat buckets (``state.layout`` set, see the ``layout``
        option) is unpacked into the params' structure with the layout it holds;
        ``params`` is not needed (accepted, and ignored, as :meth:`jopt.Bucketed.slots`
        takes it).

        Example:
            >>> import jax.numpy as jnp, jopt
            >>> opt = jopt.SGD(0.1, momentum=0.9, slot_dtypes={"momentum": "int8"})
            >>> params = {"w": jnp.ones(4096)}
            >>> grads = {"w": jnp.linspace(-1.0, 1.0, 4096)}
            >>> params, state = opt.apply_gradients(grads, opt.init(params), params)
            >>> type(state.slots["momentum"]["w"]).__name__, opt.slots(state)["momentum"]["w"][0]
            ('Quantized', Array(0.1, dtype=float32))
        """
        self.check_state(state)
        if (layout := _layout_of(state)) is not None:
            return buckets.unpack_slots(state.slots, layout)
        return {name: slot_storage.values(slot) for name, slot in state.slots.items()}

    def averaged_params(self, state: OptimizerState) -> PyTree:
        """The EMA of the params kept in the state (``use_ema=True``), shaped like the params.

        Keras's ``optimizer.finalize_variable_values`` copies these into the model; here
        they are simply returned.

        Example:
            >>> import jax.numpy as jnp, jopt
            >>> opt = jopt.SGD(0.5, use_ema=True, ema_momentum=0.5)
            >>> params = {"w": jnp.array([1.0])}
            >>> state = opt.init(params)
            >>> for _ in range(2):
            ...     params, state = opt.apply_gradients({"w": jnp.array([1.0])}, state, params)
            >>> params["w"], opt.averaged_params(state)["w"]
            (Array([0.], dtype=float32), Array([0.25], dtype=float32))
        """
        if not self.use_ema:
            raise ValueError(f"{self!r} keeps no average: construct it with use_ema=True")
        if _layout_of(state) is not None:
            return self.slots(state)["average"]
        return state.slots["average"]

    def scale_loss(self, loss: Any, state: OptimizerState | None = None) -> Any:
        """Keras's ``scale_loss``: ``loss * loss_scale_factor``, or ``loss`` when it is None.

        Differentiate the scaled loss; the update divides the gradients by the same
        factor. With ``state`` the live factor (``jopt.set_hyperparams``) is used, without
        it the constructor's.

        Example:
            >>> import jopt
            >>> float(jopt.SGD(loss_scale_factor=128.0).scale_loss(0.5)), jopt.SGD().scale_loss(0.5)
            (64.0, 0.5)
        """
        if self.loss_scale_factor is None:
            return loss
        if state is not None:
            self.check_state(state)
            return loss * state.hyperparams["loss_scale_factor"].astype(jnp.result_type(loss))
        return loss * jnp.asarray(self.loss_scale_factor, jnp.result_type(loss))

    # ---- learning rate ----------------------------------------------------------------

    def rate(self, step: Any, hyperparams: dict[str, jax.Array] | None = None) -> jax.Array:
        """The float32 rate of the update that follows ``step`` applied updates."""
        return rate_at(self.learning_rate, hyperparams or {}, step, self.decay)

    def lr(self, step_or_state: Any = None) -> jax.Array:
        """The learning rate, as a float32 scalar (or array, for an array of steps).

        ``opt.lr()`` is the rate at step 0; ``opt.lr(step)`` the rate at any step (a
        Python int, an array of steps, or a traced value under ``jit``/``vmap``);
        ``opt.lr(state)`` the rate the next update from ``state`` will use, so a restored
        checkpoint reports its own step's rate.

        Example:
            >>> import jopt
            >>> float(jopt.Adam(lr=0.001).lr())
            0.0010000000474974513
        """
        if isinstance(step_or_state, OptimizerState):
            return self.rate(step_or_state.step, step_or_state.hyperparams)
        return self.rate(0 if step_or_state is None else step_or_state)

    # ---- live hyperparameters ---------------------------------------------------------

    def initial_hyperparams(self) -> dict[str, float]:
        """The hyperparameters the state holds live, with the constructor's values.

        The learning rate (``learning_rate``, or ``learning_rate_scale`` = 1.0, a
        multiplier, when it is a schedule), the rule's numeric arguments
        (:attr:`hyperparam_names`: betas, rho, momentum, epsilon...) and the base options
        that are on (``weight_decay``, ``clipnorm``, ``global_clipnorm``, ``clipvalue``,
        ``loss_scale_factor`` when set and not 0; ``ema_momentum`` with ``use_ema``).

        A value that is 0 or ``None`` in the constructor and leaves a part of the rule out
        (``weight_decay=None``, SGD's ``momentum=0``) is not held: the compiled step has
        no such part, so it cannot be switched on live. One that is on can be set to 0
        live, which has the same numbers (Keras 3's rules) without changing the program.

        Example:
            >>> import jopt
            >>> jopt.SGD(0.1, momentum=0.9, clipnorm=1.0).initial_hyperparams()
            {'learning_rate': 0.1, 'momentum': 0.9, 'clipnorm': 1.0}
        """
        return dict(self._initial)

    def set_hyperparams(self, state: OptimizerState, **values: Any) -> OptimizerState:
        """Returns ``state`` with live hyperparameters replaced, each checked as the
        constructor checks it (so ``beta_1=1.0`` raises the constructor's ``ValueError``).

        The next compiled step uses them without recompiling. For a state inside a
        chain or another container, or a traced value, use :func:`jopt.set_hyperparams`
        (it checks only that values are finite).

        Raises:
            ValueError: a value the constructor would refuse, or a name this
                optimizer's state does not hold (e.g. SGD's ``momentum`` when built with
                ``momentum=0``: its program has no momentum; build a new optimizer).

        Example:
            >>> import jax.numpy as jnp, jopt
            >>> opt = jopt.Adam(1e-3, beta_1=0.9)
            >>> state = opt.set_hyperparams(opt.init({"w": jnp.ones(2)}), beta_1=0.8)
            >>> float(state.hyperparams["beta_1"])
            0.800000011920929
            >>> opt.set_hyperparams(state, beta_1=1.0)
            Traceback (most recent call last):
            ...
            ValueError: beta_1 must be in [0, 1), got 1
        """
        self.check_state(state)
        values = check_live_values(self, self._initial, state.hyperparams, values)
        return set_hyperparams(state, **values)


def _layout_of(state: Any) -> Layout | None:
    """The flat layout of an optimizer state laid out in buckets, else ``None``."""
    return state.layout if isinstance(state, OptimizerState) else None
