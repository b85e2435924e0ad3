"""The protocol: a transformation is a pure ``(init, update)`` pair, as in optax.

Everything in jopt speaks it, and so does every optax transformation, so the two
compose both ways: a jopt optimizer goes into ``optax.chain`` and an optax transform
goes into :func:`jopt.chain`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol, runtime_checkable

import jax
import jax.numpy as jnp

from jopt.pytrees import check_same_tree

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

    def update(
        self, updates: PyTree, state: PyTree, params: PyTree | None = None
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
        hyperparams: live float32 scalars by name: ``{"learning_rate": ...}`` when the
            learning rate is a number, ``{"learning_rate_scale": 1.0}`` (a multiplier
            on the schedule) when it is a schedule. The constructor gives the initial
            values; the state holds the ones the next update uses, so a restored
            checkpoint resumes with its own. Read and change them with
            :func:`jopt.hyperparams` and :func:`jopt.set_hyperparams`.
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
    """

    step: jax.Array
    hyperparams: dict[str, jax.Array]
    slots: dict[str, PyTree]
    scalars: dict[str, jax.Array]


class StepContext(NamedTuple):
    """What every leaf of one update shares, computed once per step.

    Attributes:
        step: int32, the number of updates applied before this one.
        lr: float32, this update's learning rate.
        scalars: the optimizer-wide values for this step (see ``OptimizerState.scalars``);
            what the update leaves here is stored in the new state.

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> ctx = jopt.StepContext(jnp.int32(0), jnp.float32(0.1), {})
        >>> ctx.lr_as(jnp.bfloat16).dtype
        dtype(bfloat16)
    """

    step: jax.Array
    lr: jax.Array
    scalars: dict[str, jax.Array]

    def lr_as(self, dtype: Any) -> jax.Array:
        """The rate cast to a leaf's dtype, as Keras casts it to the variable's."""
        return self.lr.astype(dtype)


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
        new_state = {}
        for name, t in items:
            updates, new_state[name] = t.update(updates, state[name], params)
        return updates, new_state

    return GradientTransformation(init, update)
