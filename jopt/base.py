"""The protocol: a transformation is a pure ``(init, update)`` pair, as in optax.

Everything in jopt speaks it, and so does every optax transformation, so the two
compose both ways: a jopt optimizer goes into ``optax.chain`` and an optax transform
goes into :func:`jopt.chain`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np

from jopt.pytrees import check_float_leaves, check_same_tree
from jopt.transforms.numerics import nonzero

__all__ = [
    "GradientTransformation",
    "OptimizerState",
    "StepContext",
    "Transformation",
    "apply_updates",
    "chain",
]

PyTree = Any


@runtime_checkable
class Transformation(Protocol):
    """Anything with optax's two methods: a jopt optimizer, a jopt chain, an optax transform."""

    def init(self, params: PyTree) -> PyTree: ...

    # Positional-only: implementations name the first argument grads or updates.
    def update(
        self, updates: PyTree, state: PyTree, params: PyTree | None = None, /
    ) -> tuple[PyTree, PyTree]: ...


class GradientTransformation(NamedTuple):
    """A pure ``(init, update)`` pair; the same shape as ``optax.GradientTransformation``.

    ``state = init(params)``; ``updates, state = update(grads, state, params=None)``;
    then ``params = apply_updates(params, updates)``.

    Example:
        >>> import jax, jax.numpy as jnp, jopt
        >>> halve = jopt.GradientTransformation(
        ...     init=lambda params: (),
        ...     update=lambda g, s, p=None: (jax.tree.map(lambda x: -0.5 * x, g), s))
        >>> halve.update({"w": jnp.ones(2)}, ())[0]["w"]
        Array([-0.5, -0.5], dtype=float32)
    """

    init: Callable[[PyTree], PyTree]
    update: Callable[..., tuple[PyTree, PyTree]]


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

    # IPython and Jupyter show a summary (jopt.summary) instead of every array; repr()
    # stays the NamedTuple's own.
    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        from jopt.summaries import summary  # summaries imports this module

        p.text(repr(self) if cycle else str(summary(self)))

    def _repr_html_(self) -> str:
        from jopt.summaries import summary

        return summary(self)._repr_html_()


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
        (see :func:`jopt.transforms.numerics.nonzero`)."""
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


def apply_updates(params: PyTree, updates: PyTree) -> PyTree:
    """Returns ``params + updates``, each leaf keeping its own dtype.

    The sum is computed in the promoted dtype of the two leaves and cast back to the
    param's, so a bfloat16 param stays bfloat16. ``None`` leaves stay ``None``.

    Raises:
        ValueError: naming the first path where ``updates`` differs from ``params``.

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> jopt.apply_updates({"w": jnp.ones(2)}, {"w": jnp.full(2, -0.5)})["w"]
        Array([0.5, 0.5], dtype=float32)
    """
    check_same_tree(params, updates, "params", "updates")
    check_float_leaves(updates, "updates")

    def add(p: Any, u: Any) -> Any:
        p = jnp.asarray(p)
        return (p + u).astype(p.dtype)

    return jax.tree.map(add, params, updates)


def _transform_name(transform: Any, index: int) -> str:
    name = getattr(transform, "name", None)
    return name if isinstance(name, str) and name else str(index)


def chain(*transforms: Transformation, **named: Transformation) -> GradientTransformation:
    """Applies transformations in order; each sees the updates of the one before.

    Accepts jopt optimizers, jopt transformations and optax transformations alike.
    The state is a dict keyed by name, so it stays readable: a positional transform is
    named after its ``name`` attribute (jopt optimizers have Keras's, e.g. ``"adam"``)
    or its position (``"0"``, ``"1"``, ...); keyword transforms are named by their
    keyword. Names are made unique with a ``_1``, ``_2``... suffix.

    Example:
        >>> import jax.numpy as jnp, optax, jopt
        >>> tx = jopt.chain(clip=optax.clip_by_global_norm(1.0), adam=jopt.Adam())
        >>> params = {"w": jnp.ones(3)}
        >>> state = tx.init(params)
        >>> updates, state = tx.update({"w": jnp.full(3, 10.0)}, state, params)
        >>> sorted(state)
        ['adam', 'clip']
    """
    items: list[tuple[str, Any]] = []
    seen: set[str] = set()
    for i, (name, t) in enumerate(
        [(_transform_name(t, i), t) for i, t in enumerate(transforms)] + list(named.items())
    ):
        if not (hasattr(t, "init") and hasattr(t, "update")):
            raise TypeError(
                f"chain argument {name!r} (position {i}) has no init/update methods; "
                f"got {type(t).__name__}"
            )
        unique, k = name, 0
        while unique in seen:
            k += 1
            unique = f"{name}_{k}"
        seen.add(unique)
        items.append((unique, t))

    def init(params: PyTree) -> dict[str, PyTree]:
        return {name: t.init(params) for name, t in items}

    def update(
        updates: PyTree, state: dict[str, PyTree], params: PyTree | None = None, **extra: Any
    ) -> tuple[PyTree, dict[str, PyTree]]:
        del extra  # accepted for optax's extra-args protocol; jopt transforms need none
        if not isinstance(state, Mapping) or set(state) != {name for name, _ in items}:
            held = sorted(state) if isinstance(state, Mapping) else type(state).__name__
            raise ValueError(
                f"this chain's state holds {held} but the chain has "
                f"{[name for name, _ in items]}: it was made by a different chain"
            )
        new_state = {}
        for name, t in items:
            updates, new_state[name] = t.update(updates, state[name], params)
        return updates, new_state

    return GradientTransformation(init, update)
