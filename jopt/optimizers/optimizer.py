"""The base of every Keras-style optimizer: a frozen configuration with optax's two methods.

A subclass validates its arguments, names its slots and writes its per-leaf rule; this
class does the rest once for all of them: state layout, pytree checks, the learning rate
at a step, the step count, ``apply_gradients``, equality and hashing (so an optimizer is
a valid static argument to ``jax.jit``), ``repr`` and Keras's config.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from jopt import schedules
from jopt.core import slot_storage
from jopt.core.compiled import CompiledStep
from jopt.core.hyperparams import set_hyperparams
from jopt.core.options import OPTION_DEFAULTS, validate_options
from jopt.core.placement import replicate_like
from jopt.core.protocol import Applies, HasLearningRate, LiveHyperparams, PerLeafRule
from jopt.core.pytrees import check_float_leaves
from jopt.core.registry import register_config_class
from jopt.core.state import OptimizerState, StepContext
from jopt.core.validation import RESTORED_DICT, check_number
from jopt.formulas.learning_rate import rate_at
from jopt.formulas.weight_decay import uses_weight_decay
from jopt.optimizers import stages
from jopt.schedules.no_argument import as_rate_of_step

__all__ = ["LearningRate", "Optimizer", "StepContext", "default", "resolve_learning_rate"]

PyTree = Any
LearningRate = float | Callable[[Any], Any]

# The base options held live in the state when they are on (in Keras's config order).
_OPTION_HYPERPARAMS = (
    "weight_decay",
    "clipnorm",
    "global_clipnorm",
    "clipvalue",
    "ema_momentum",
    "loss_scale_factor",
)


class _Default(float):
    """A class default for ``learning_rate``: a float that remembers it was not given."""


def default(value: float) -> float:
    """Marks ``value`` as a signature default, so an explicit argument can be told apart."""
    return _Default(value)


def resolve_learning_rate(learning_rate: Any, lr: Any) -> LearningRate:
    """Resolves Keras's ``learning_rate`` and its legacy alias ``lr`` into one valid rate."""
    if lr is not None:
        if not isinstance(learning_rate, _Default):
            raise TypeError("give learning_rate or its legacy alias lr, not both")
        learning_rate = lr
    if isinstance(learning_rate, dict):
        try:
            learning_rate = schedules.deserialize(learning_rate)
        except (TypeError, ValueError) as e:
            raise type(e)(f"learning_rate: {e}") from e
    if callable(learning_rate):
        return as_rate_of_step(learning_rate)  # Keras's lambda: 0.01 too
    return check_number("learning_rate", learning_rate, low=0.0)  # a plain float, not a _Default


def check_decay(decay: Any) -> float:
    """tf.keras 2's ``decay``: ``None`` or a number >= 0."""
    return 0.0 if decay is None else check_number("decay", decay, low=0.0)


class Optimizer(Applies, HasLearningRate, LiveHyperparams, PerLeafRule, CompiledStep):
    """Base class: frozen, hashable configuration plus ``init`` / ``update``.

    A subclass's ``__init__`` validates its rule's arguments and calls
    ``super().__init__(learning_rate, rule, options)`` with them in signature order
    (``rule``) and the user's ``**options`` (:class:`~jopt.core.options.OptimizerOptions`);
    it defines :meth:`slot_names` and :meth:`leaf_update`, and if it needs them
    :meth:`init_scalars` and :meth:`begin_step`.

    The rule's numeric arguments are listed in :attr:`hyperparam_names`: ``init`` puts
    them in the state as float32 scalars, and the rule reads them through the
    :class:`~jopt.core.state.StepContext` (``ctx.value("rho", dtype)``,
    ``ctx.complement("beta_1", dtype)``...), never from ``self``, so a value changed in
    the state is used without recompiling, and the constructor's value gives Keras's
    exact arithmetic.
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

    #: Keras's default ``name`` (its auto name, without the per-process counter).
    keras_name: ClassVar[str] = "optimizer"

    #: The rule's numeric arguments held live in the state (see :meth:`initial_hyperparams`),
    #: in signature order. Booleans, integers that shape the program (``ns_steps``) and
    #: values only ``init`` reads (``initial_accumulator_value``) stay in the config.
    hyperparam_names: ClassVar[tuple[str, ...]] = ()

    #: Those of them whose constructor value 0 or ``None`` leaves a part of the rule out
    #: (SGD's ``momentum``): held only when on, as the base options are.
    optional_hyperparams: ClassVar[frozenset[str]] = frozenset()

    #: Slots whose values are never negative (a second moment, an accumulator): stored
    #: ``"int8"`` with the unsigned map, twice as fine (see :mod:`jopt.core.slot_storage`).
    nonnegative_slots: ClassVar[frozenset[str]] = frozenset()

    #: Slots that cannot be stored ``"int8"``, each with the reason (a whole-leaf view,
    #: or values the rule needs exactly).
    exact_slots: ClassVar[dict[str, str]] = {}

    #: The constructor's rate (or schedule). It does not follow ``set_hyperparams``: the
    #: optimizer is frozen and the live value is in the state; read it with ``lr(state)``.
    learning_rate: LearningRate
    decay: float
    name: str
    # The base options, as validate_options leaves them (see OptimizerOptions).
    weight_decay: float | None
    clipnorm: float | None
    clipvalue: float | None
    global_clipnorm: float | None
    use_ema: bool
    ema_momentum: float
    ema_overwrite_frequency: int | None
    loss_scale_factor: float | None
    gradient_accumulation_steps: int | None
    exclude_from_weight_decay: Any
    slot_dtypes: tuple[tuple[str, Any], ...] | None
    master_weights: bool
    _config: tuple[tuple[str, Any], ...]
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
        options = dict(options)
        lr = options.pop("lr", None)
        decay = options.pop("decay", 0.0)
        name = options.pop("name", None)
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a string or None, got {name!r:.100}")
        config = {
            "learning_rate": resolve_learning_rate(learning_rate, lr),
            **rule,
            **validate_options(options),
            "decay": check_decay(decay),
            "name": self.keras_name if name is None else name,
        }
        for key, value in config.items():
            object.__setattr__(self, key, value)
        object.__setattr__(self, "_config", tuple(config.items()))
        object.__setattr__(self, "_initial", self._held_hyperparams())
        unknown = sorted(set(dict(self.slot_dtypes or ())) - set(self.all_slot_names()))
        if unknown:
            raise ValueError(
                f"slot_dtypes names {unknown}, which {type(self).__name__} does not keep; "
                f"its slots are {list(self.all_slot_names())}"
            )
        slot_storage.check_quantizable(self, dict(self.slot_dtypes or ()))

    # ---- configuration: frozen, hashable, readable ----------------------------------

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError(
            f"{type(self).__name__} is frozen (it may be a static argument of jax.jit); "
            f"build a new one, or change live values in the state with "
            f"jopt.set_hyperparams, instead of setting {key!r}"
        )

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self._config == other._config

    def __hash__(self) -> int:
        return hash((type(self), self._config))

    def __repr__(self) -> str:
        params = inspect.signature(type(self).__init__).parameters
        # A class's own signature default (AdamW's weight_decay) wins over the common one.
        defaults = OPTION_DEFAULTS | {"decay": 0.0, "name": self.keras_name}
        defaults |= {k: p.default for k, p in params.items() if k not in ("name", "decay")}
        shown = []
        for key, value in self._config:
            default_value = defaults.get(key, inspect.Parameter.empty)
            if default_value is inspect.Parameter.empty or value != default_value:
                shown.append(f"{key}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"

    def __iter__(self) -> Iterator[Callable[..., Any]]:
        """Unpacks as ``init, update = opt``, like an ``optax.GradientTransformation``."""
        return iter((self.init, self.update))

    def get_config(self) -> dict[str, Any]:
        """Returns the config dict, Keras's keys and values (schedules serialized).

        Example:
            >>> import jopt
            >>> jopt.SGD(momentum=0.9).get_config()["momentum"]
            0.9
        """
        config = dict(self._config)
        if config["slot_dtypes"] is not None:
            config["slot_dtypes"] = dict(config["slot_dtypes"])
        if isinstance(self.learning_rate, schedules.LearningRateSchedule):
            config["learning_rate"] = schedules.serialize(self.learning_rate)
        # jopt's extras are written only when used, so the rest is exactly Keras's dict.
        for key, off in (
            ("decay", 0.0),
            ("exclude_from_weight_decay", None),
            ("slot_dtypes", None),
            ("master_weights", False),
        ):
            if config[key] == off:
                del config[key]
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Optimizer:
        """Rebuilds an optimizer from :meth:`get_config`'s (or Keras's) dict.

        Keras's base options are taken with their Keras meaning.
        """
        return cls(**config)

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
        """
        check_float_leaves(params, "params")

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
        if isinstance(state, dict) and "step" in state:
            raise TypeError(
                f"{type(self).__name__}.update expects the OptimizerState made by its init; "
                + RESTORED_DICT.format(got="a dict with a 'step'")
            )
        if not isinstance(state, OptimizerState):
            raise TypeError(
                f"{type(self).__name__}.update expects the OptimizerState made by its init, "
                f"got {type(state).__name__}"
            )
        if jnp.ndim(state.step) != 0:
            # A sweep's stacked states would otherwise broadcast K rates over a leaf's
            # last axis: a silent wrong answer.
            raise ValueError(
                f"this state is batched (step has shape {jnp.shape(state.step)}): map the "
                "update over it with jax.vmap, as for a sweep made by jopt.sweep_init"
            )
        expected = set(self.all_slot_names())
        if set(state.slots) != expected:
            raise ValueError(
                f"this state holds slots {sorted(state.slots)} but {self!r} uses "
                f"{sorted(expected)}: it was made by a differently configured optimizer"
            )
        if set(state.scalars) != set(self.init_scalars(None)):
            raise ValueError(
                f"this state holds scalars {sorted(state.scalars)} but {self!r} uses "
                f"{sorted(self.init_scalars(None))}: it was made by a differently configured "
                "optimizer"
            )
        if set(state.hyperparams) != set(self._initial):
            raise ValueError(
                f"this state holds hyperparameters {sorted(state.hyperparams)} but {self!r} "
                f"uses {sorted(self._initial)}: it was made by a differently configured "
                "optimizer"
            )

    def slots(self, state: OptimizerState) -> dict[str, PyTree]:
        """Each slot by name, shaped like the params, with 8-bit slots (``slot_dtypes``
        ``"int8"``) dequantized to float32; other slots as stored.

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

    def _held_hyperparams(self) -> dict[str, float]:
        held: dict[str, float] = (
            {"learning_rate_scale": 1.0}
            if callable(self.learning_rate)
            else {"learning_rate": self.learning_rate}
        )
        for name in (*self.hyperparam_names, *_OPTION_HYPERPARAMS):
            value = getattr(self, name)
            if name == "ema_momentum":
                on = self.use_ema
            elif name in self.optional_hyperparams or name in _OPTION_HYPERPARAMS:
                on = bool(value)  # 0 or None: that part of the rule is left out
            else:
                on = True
            if on:
                held[name] = value
        return held

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
        for name in values:
            if name not in self._initial:
                raise ValueError(self._not_held_message(name))
        # Python numbers and concrete scalars are checked; traced or batched arrays (a
        # sweep's) are taken as they are.
        checked = {
            k: float(v) if isinstance(v, jax.Array) else v
            for k, v in values.items()
            if not isinstance(v, jax.Array)
            or (not isinstance(v, jax.core.Tracer) and jnp.size(v) == 1)
        }
        scale = checked.pop("learning_rate_scale", None)
        if scale is not None:
            check_number("learning_rate_scale", scale, low=0.0)
        if checked:
            type(self).from_config(self.get_config() | checked)  # the constructor's checks
        return set_hyperparams(state, **values)

    def _not_held_message(self, name: str) -> str:
        held = sorted(self._initial)
        what = f"{type(self).__name__} holds no live hyperparameter {name!r} (held: {held})"
        if name == "learning_rate" and callable(self.learning_rate):
            return f"{what}; the learning rate is a schedule: set learning_rate_scale"
        if name in (*self.hyperparam_names, *_OPTION_HYPERPARAMS):
            off = "use_ema=False" if name == "ema_momentum" else f"{name}={getattr(self, name)!r}"
            return (
                f"{what}: the constructor's {off} leaves that part of the rule out of the "
                "compiled step, so it cannot be switched on live; build a new optimizer"
            )
        if name in dict(self._config):
            return (
                f"{what}: {name} is fixed by the constructor (it shapes the compiled step, "
                "or only init reads it); build a new optimizer"
            )
        return what
