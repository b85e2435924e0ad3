"""The state types: every optimizer's :class:`OptimizerState`, the per-step
:class:`StepContext` its rule reads, the step count's one increment, and how states
display in IPython."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jopt.core.packing import Layout
from jopt.formulas import segments as leaf_segments
from jopt.formulas.bias_correction import beta_power
from jopt.formulas.numerics import nonzero

__all__ = [
    "OptimizerState",
    "StepContext",
    "html_state",
    "next_step",
    "pretty_state",
    "set_state_display",
]

PyTree = Any

_INT32_MAX = int(np.iinfo(np.int32).max)


def next_step(step: jax.Array) -> jax.Array:
    """``step + 1``, saturating at the int32 maximum (a step count never wraps negative).

    Example:
        >>> int(next_step(jnp.int32(2**31 - 1)))
        2147483647
    """
    return jnp.where(step < _INT32_MAX, step + 1, step)


# How states show in IPython: set by jopt.tools.summaries (a layer above), so that a
# state displays as a summary once jopt is imported, with no import from here upwards.
_display: list[Callable[[Any], Any]] = []


def set_state_display(summarize: Callable[[Any], Any]) -> None:
    """Registers ``summarize(state)``, whose ``str`` and ``_repr_html_`` IPython shows for
    a state (:func:`jopt.summary` registers itself on import)."""
    _display[:] = [summarize]


def pretty_state(state: Any, p: Any, cycle: bool) -> None:
    """IPython's plain-text display of a state: its summary (its repr before jopt's
    summaries are loaded, or in a cycle)."""
    p.text(repr(state) if cycle or not _display else str(_display[0](state)))


def html_state(state: Any) -> str:
    """IPython's HTML display of a state: its summary as a table."""
    if not _display:
        return f"<pre>{state!r}</pre>"
    return str(_display[0](state)._repr_html_())


class OptimizerState(NamedTuple):
    """The state of every jopt optimizer, with named fields instead of nested tuples.

    Attributes:
        step: int32 scalar, the number of updates applied so far (Keras's ``iterations``).
            The next update is step ``step + 1`` for bias correction and reads the
            learning-rate schedule at ``step``, as Keras does.
        hyperparams: the live hyperparameters, float32 scalars by name whatever the
            params' dtype: ``"learning_rate"`` when the learning rate is a number, or
            ``"learning_rate_scale"`` (a multiplier on the schedule, 1.0) when it is a
            schedule; the rule's numeric arguments (``"beta_1"``, ``"rho"``,
            ``"momentum"``, ``"epsilon"``...); and the base options that are on
            (``"weight_decay"``, ``"clipnorm"``, ``"ema_momentum"``...). **The
            constructor gives the initial values; the state holds the live ones**: the
            next update uses these, so changing them between steps does not recompile,
            and a restored checkpoint resumes with its own. Read and change them with
            :func:`jopt.hyperparams` and :func:`jopt.set_hyperparams` (or
            :meth:`jopt.Optimizer.set_hyperparams`, which checks values as the
            constructor does). Booleans, integers that shape the step, and values the
            constructor turned off (``weight_decay=None``, SGD's ``momentum=0``) stay in
            the optimizer's config; see :meth:`jopt.Optimizer.initial_hyperparams`.
        slots: per-parameter accumulators by Keras's slot name (``"momentum"``,
            ``"velocity"``, ...), each a pytree with the params' structure, e.g.
            ``state.slots["velocity"]["dense"]["kernel"]``.
        scalars: optimizer-wide accumulators by name (e.g. Nadam's running product of
            momentum factors); empty for most optimizers.
        layout: ``None`` when the slots are laid out per leaf, as above. When the
            optimizer runs on flat buckets of leaves (its ``layout`` option, chosen
            automatically for trees of many small leaves), the
            :class:`~jopt.core.packing.Layout` of the buckets: static data (no arrays),
            and the slots hold one flat buffer per bucket
            (``state.slots["velocity"]["float32"]``). Read them per param with
            ``opt.slots(state)``.

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> state = jopt.Adam().init({"w": jnp.zeros(3)})
        >>> int(state.step), sorted(state.slots)
        (0, ['momentum', 'velocity'])
        >>> sorted(state.hyperparams)
        ['beta_1', 'beta_2', 'epsilon', 'learning_rate']
    """

    step: jax.Array
    hyperparams: dict[str, jax.Array]
    slots: dict[str, PyTree]
    scalars: dict[str, jax.Array]
    layout: Layout | None = None

    # IPython and Jupyter show a summary (jopt.summary) instead of every array; repr()
    # stays the NamedTuple's own.
    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        pretty_state(self, p, cycle)

    def _repr_html_(self) -> str:
        return html_state(self)


class StepContext(NamedTuple):
    """What every leaf of one update shares, computed once per step.

    A rule reads its hyperparameters through the methods below, never from the
    optimizer's attributes: they give the live value held in the state, with Keras's
    exact arithmetic while that value is still the constructor's. Keras uses most
    hyperparameters as Python floats (``1 - beta_2`` computed in float64 and rounded
    once, ``0.9 * m`` rounded to ``m``'s dtype); the state holds float32 scalars, and
    ``1 - f32(0.999)`` is 1e-5 (relative) away from ``f32(1 - 0.999)``. So a value is
    ``fn(the constructor's Python number)`` while the live float32 value equals the
    constructor's rounded to float32, and ``fn(the live value)`` once it was changed: a
    scalar compare and select, made once per step and dtype (``cache``), which costs
    nothing next to the leaves' work. Where both give the same bits (the value itself
    in float32) the live value is used as it is.

    Attributes:
        step: int32, the number of updates applied before this one.
        lr: float32, this update's learning rate.
        scalars: the optimizer-wide values for this step (see ``OptimizerState.scalars``);
            what the update leaves here is stored in the new state.
        hyperparams: the live float32 hyperparameters by name (``OptimizerState.hyperparams``).
        initial: the constructor's value of each of them, as Python numbers.
        cache: a dict the methods fill during one step, so that leaves of one dtype share
            one value; ``None`` computes each anew.
        segments: ``None`` when the rule sees one leaf; a
            :class:`~jopt.formulas.segments.Segments` when it sees a flat bucket of
            leaves laid end to end (:func:`jopt.bucketed`). A rule that reads a leaf's
            norm or mean asks :meth:`leaf_sum` and :meth:`spread`, which treat both alike.

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> ctx = jopt.StepContext(jnp.int32(0), jnp.float32(0.1), {},
        ...                        {"beta_2": jnp.float32(0.999)}, {"beta_2": 0.999})
        >>> ctx.lr_as(jnp.bfloat16).dtype
        dtype(bfloat16)
        >>> float(ctx.complement("beta_2", jnp.float32))  # Keras's f32(1 - 0.999)
        0.0010000000474974513
        >>> ctx = ctx._replace(hyperparams={"beta_2": jnp.float32(0.99)})
        >>> float(ctx.complement("beta_2", jnp.float32))  # changed: 1 - f32(0.99)
        0.009999990463256836
    """

    step: jax.Array
    lr: jax.Array
    scalars: dict[str, jax.Array]
    hyperparams: Mapping[str, jax.Array] = {}
    initial: Mapping[str, float] = {}
    cache: dict[Any, Any] | None = None
    segments: leaf_segments.Segments | None = None

    def leaf_sum(self, x: jax.Array, dtype: Any = None) -> jax.Array:
        """The sum of ``x`` over its leaf: ``jnp.sum(x, dtype=dtype)`` for a leaf, one sum
        per leaf for a bucket of leaves (see :mod:`jopt.formulas.segments`); combine it
        with the leaf's elements through :meth:`spread`.

        Example:
            >>> import jax.numpy as jnp, jopt
            >>> from jopt.formulas.segments import Segments
            >>> ctx = jopt.StepContext(jnp.int32(0), jnp.float32(0.1), {})
            >>> x = jnp.array([3.0, 4.0, 1.0])
            >>> ctx.leaf_sum(x ** 2)
            Array(26., dtype=float32)
            >>> bucket = ctx._replace(segments=Segments((2, 1)))  # leaves [3, 4] and [1]
            >>> bucket.spread(jnp.sqrt(bucket.leaf_sum(x ** 2)))
            Array([5., 5., 1.], dtype=float32)
        """
        return leaf_segments.leaf_sum(x, self.segments, dtype)

    def spread(self, per_leaf: jax.Array) -> jax.Array:
        """A value per leaf (from :meth:`leaf_sum`) ready to combine elementwise with the
        leaf's elements: itself for a leaf (it broadcasts), repeated over each leaf's
        elements for a bucket."""
        return leaf_segments.spread(per_leaf, self.segments)

    def leaf_size(self, x: Any) -> np.ndarray:
        """The number of elements of ``x``'s leaf, a NumPy int64 array shaped like
        :meth:`leaf_sum`'s result (``x.size`` for a leaf)."""
        return leaf_segments.leaf_size(x, self.segments)

    def lr_as(self, dtype: Any) -> jax.Array:
        """The rate cast to a leaf's dtype, as Keras casts it to the variable's."""
        return self.shared(("lr", jnp.dtype(dtype)), lambda: self.lr.astype(dtype))

    # Shadows tuple.count on purpose: a StepContext is never used as a sequence.
    def count(self, dtype: Any) -> jax.Array:  # type: ignore[override]
        """``step + 1`` (the 1-based count of this update, as bias corrections use it)
        cast to ``dtype``."""
        # In uint32, as Keras adds in int64: at the saturated int32 step, + 1 must not wrap.
        return self.shared(
            ("count", jnp.dtype(dtype)), lambda: (self.step.astype(jnp.uint32) + 1).astype(dtype)
        )

    def beta_power(self, name: str, ahead: int = 0) -> jax.Array:
        """``beta ** t`` in float32 for the live hyperparameter ``name``, with ``t`` this
        update's 1-based count plus ``ahead``: the bias correction's power, computed once
        per step and shared by every leaf.

        Example:
            >>> import jax.numpy as jnp
            >>> from jopt.core.state import StepContext
            >>> ctx = StepContext(jnp.int32(2), jnp.float32(0.1), {}, {"beta_1": jnp.float32(0.5)},
            ...                   {"beta_1": 0.5}, {})
            >>> float(ctx.beta_power("beta_1")), float(ctx.beta_power("beta_1", ahead=1))
            (0.125, 0.0625)
        """
        t = self.count(jnp.float32)
        return self.shared(
            ("beta power", name, ahead),
            lambda: beta_power(self.cast(name, jnp.float32), t + ahead if ahead else t),
        )

    def shared(self, key: Any, make: Callable[[], Any]) -> Any:
        """``make()``, computed once per step for a hashable ``key`` (name it after what
        it holds, with its dtype) and shared by every leaf: a per-step scalar such as
        Adam's bias-corrected step size is traced once, not once per leaf."""
        if self.cache is None:
            return make()
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]

    def is_initial(self, name: str) -> jax.Array | bool:
        """Whether hyperparameter ``name`` still holds the constructor's value (``True``
        when the state does not hold it)."""
        live = self.hyperparams.get(name)
        return True if live is None else live == jnp.float32(self.initial[name])

    def hyper(self, name: str, fn: Callable[[Any], Any], key: Any = None) -> Any:
        """``fn`` of hyperparameter ``name``: ``fn(constructor's Python number)`` while
        the live value equals it, else ``fn(live float32 array)``.

        ``fn`` must give the same shape and dtype for both (e.g. end with
        ``.astype(dtype)``). A hashable ``key`` naming what ``fn`` computes (with its
        dtype) lets leaves share the result through ``cache``.
        """
        if key is not None and self.cache is not None:
            cached = self.cache.get((name, key))
            if cached is None:
                cached = self.cache[(name, key)] = self.hyper(name, fn)
            return cached
        initial = self.initial[name]
        live = self.hyperparams.get(name)
        if live is None:
            return fn(initial)
        return jnp.where(live == jnp.float32(initial), fn(initial), fn(live))

    def value(self, name: str, dtype: Any) -> jax.Array:
        """Hyperparameter ``name`` as a Python float is used with ``dtype`` arrays
        (``beta * m``: a weakly typed scalar, rounded to float32, then to ``dtype``).

        That is the live float32 value cast to ``dtype``, bit for bit, so no select is
        made (unless 64-bit floats are on).
        """
        dtype = jnp.dtype(dtype)
        if name in self.hyperparams and jax.dtypes.canonicalize_dtype(float) == jnp.float32:
            if dtype == jnp.float32:
                return self.hyperparams[name]
            return self._shared(
                name, ("value", dtype), lambda: self.hyperparams[name].astype(dtype)
            )
        return self.hyper(name, lambda x: jnp.asarray(x).astype(dtype), ("value", dtype))

    def cast(self, name: str, dtype: Any) -> jax.Array:
        """Hyperparameter ``name`` rounded to ``dtype`` directly, as Keras's
        ``ops.cast(self.beta_1, dtype)`` (in float16 this can differ from :meth:`value`,
        which rounds to float32 first)."""
        dtype = jnp.dtype(dtype)
        if name in self.hyperparams and dtype == jnp.float32:
            return self.hyperparams[name]  # f32(value), the same bits either way
        return self.hyper(name, lambda x: jnp.asarray(x, dtype), ("cast", dtype))

    def complement(self, name: str, dtype: Any, in_dtype: bool = False) -> jax.Array:
        """``1 - value`` in ``dtype``: computed in Python and rounded once, as Keras 3's
        ``1 - self.beta_1`` (a changed value: in float32, then rounded); or with
        ``in_dtype``, computed in ``dtype`` from the value rounded to it, as TensorFlow's
        kernels (tf.keras 2)."""
        dtype = jnp.dtype(dtype)
        if in_dtype:
            return self._shared(
                name, ("1 - cast", dtype), lambda: jnp.asarray(1.0, dtype) - self.cast(name, dtype)
            )
        return self.hyper(name, lambda x: jnp.asarray(1 - x).astype(dtype), ("1 -", dtype))

    def epsilon(self, name: str, dtype: Any) -> jax.Array:
        """Hyperparameter ``name`` rounded to ``dtype``, a positive value never to 0
        (see :func:`jopt.formulas.numerics.nonzero`)."""
        dtype = jnp.dtype(dtype)
        initial = self.initial[name]
        if (
            name in self.hyperparams
            and dtype == jnp.float32
            and (initial <= 0 or np.float32(initial) != 0)
        ):
            return self.hyperparams[name]  # f32(value), the same bits either way
        return self.hyper(name, lambda x: nonzero(x, dtype), ("epsilon", dtype))

    def _shared(self, name: str, key: Any, make: Callable[[], Any]) -> Any:
        return self.shared((name, key), make)
