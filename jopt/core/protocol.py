"""The protocol: a transformation is a pure ``(init, update)`` pair, as in optax, plus the
optional capabilities everything above dispatches on.

Everything in jopt speaks the protocol, and so does every optax transformation, so the
two compose both ways: a jopt optimizer goes into ``optax.chain`` and an optax transform
goes into :func:`jopt.chain`.

A capability is declared once, here, as an abstract base; a class has it by inheriting
it, and code above never asks for a concrete class:

* :class:`Applies`: computes the new params itself (Keras's arithmetic), not only
  updates to add;
* :class:`HasLearningRate`: reports the rate of the next update, ``lr(step_or_state)``;
* :class:`Composite`: holds other transformations (a wrapper's ``inner``, a partition's
  groups, a chain's members) and their states inside its own;
* :class:`LiveHyperparams`: sets live hyperparameters, checking them as its
  constructor does;
* :class:`PerLeafRule`: a per-leaf rule that can also run on flat buckets of leaves;
* :class:`EvaluatesLoss`: its ``update`` takes the loss and the loss function (a line
  search), as optax's extra arguments.

States that hold other states declare :class:`StateContainer`, so summaries, step
counts and checkpoints walk any of them alike.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol, runtime_checkable

import jax
import jax.numpy as jnp

from jopt.core.pytrees import check_float_leaves, check_same_tree

__all__ = [
    "Applies",
    "Composite",
    "EvaluatesLoss",
    "GradientTransformation",
    "HasLearningRate",
    "LiveHyperparams",
    "PerLeafRule",
    "StateContainer",
    "Transformation",
    "apply_step",
    "apply_updates",
    "is_transformation",
    "require_transformation",
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


def is_transformation(x: Any) -> bool:
    """Whether ``x`` has the protocol's two methods (jopt's and optax's transformations)."""
    return callable(getattr(x, "init", None)) and callable(getattr(x, "update", None))


def require_transformation(x: Any, where: str) -> None:
    """Raises ``TypeError`` naming ``where`` unless ``x`` is a transformation.

    Example:
        >>> require_transformation(0.1, "SkipNonFinite's inner")
        Traceback (most recent call last):
        ...
        TypeError: SkipNonFinite's inner must be a transformation with init and update \
(a jopt optimizer such as jopt.Adam(), a jopt.chain, a partition, or an optax \
transformation), got 0.1 (float)
    """
    if not is_transformation(x):
        raise TypeError(
            f"{where} must be a transformation with init and update (a jopt optimizer "
            "such as jopt.Adam(), a jopt.chain, a partition, or an optax transformation), "
            f"got {x!r:.100} ({type(x).__name__})"
        )


class Applies(abc.ABC):
    """Capability: computes the new params itself, with Keras's arithmetic.

    ``apply(grads, state, params) -> (new_params, new_state)``. Without it, a step is
    ``update`` then :func:`apply_updates` (see :func:`apply_step`).

    Example:
        >>> import optax, jopt
        >>> isinstance(jopt.Adam(), jopt.Applies), isinstance(optax.adam(1e-3), jopt.Applies)
        (True, False)
    """

    @abc.abstractmethod
    def apply(self, grads: PyTree, state: Any, params: PyTree) -> tuple[PyTree, Any]:
        """Returns ``(new_params, new_state)`` for one update."""


class HasLearningRate(abc.ABC):
    """Capability: reports the learning rate of the next update.

    Example:
        >>> import jopt
        >>> opt = jopt.SkipNonFinite(jopt.SGD(0.1))
        >>> isinstance(opt, jopt.HasLearningRate), float(opt.lr())
        (True, 0.10000000149011612)
    """

    @abc.abstractmethod
    def lr(self, step_or_state: Any = None) -> Any:
        """The rate at a step (an int or array) or of the next update from a state."""


class Composite(abc.ABC):
    """Capability: holds other transformations, and their states inside its own.

    The members and their states are keyed alike (``".inner"`` for a wrapper,
    ``".groups['a']"`` for a partition's group, ``"['adam']"`` for a chain's member), so
    a key is also the path of a member's state in the composite's state.

    Example:
        >>> import jopt
        >>> dict(jopt.SkipNonFinite(jopt.Adam()).members())
        {'.inner': Adam()}
    """

    @abc.abstractmethod
    def members(self) -> Mapping[str, Any]:
        """The transformations held, by key, in application order."""

    @abc.abstractmethod
    def replace_members(self, members: Mapping[str, Any]) -> Any:
        """The same composite holding ``members`` (same keys) instead: a layout rewraps
        each member this way."""

    @abc.abstractmethod
    def member_states(self, state: Any) -> Mapping[str, Any]:
        """Each member's state inside ``state``, by the member's key."""

    @abc.abstractmethod
    def replace_member_states(self, state: Any, states: Mapping[str, Any]) -> Any:
        """``state`` with the members' states in ``states`` (some keys) replaced."""


class LiveHyperparams(abc.ABC):
    """Capability: sets live hyperparameters in its state, checking each value as its
    constructor would (:func:`jopt.set_hyperparams` alone checks only finiteness).

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> tx = jopt.chain(jopt.SGD(0.1))
        >>> state = tx.set_hyperparams(tx.init({"w": jnp.ones(2)}), learning_rate=0.2)
        >>> float(tx.lr(state))
        0.20000000298023224
    """

    @abc.abstractmethod
    def set_hyperparams(self, state: Any, **values: Any) -> Any:
        """``state`` with the named live hyperparameters replaced."""


class PerLeafRule(abc.ABC):
    """Capability: a rule run leaf by leaf that can also run on flat buckets of leaves
    (a jopt :class:`~jopt.Optimizer`), which :func:`jopt.bucketed` needs.

    Example:
        >>> import jopt
        >>> jopt.Adam().bucket_refusal() is None, jopt.Lamb().bucket_refusal() is None
        (True, True)
        >>> jopt.Adafactor().keeps_leaf_shape("['w']", 2), jopt.Adam().keeps_leaf_shape("['w']", 2)
        (True, False)
    """

    @abc.abstractmethod
    def bucket_refusal(self) -> str | None:
        """Why the rule cannot run on flat buckets, or ``None`` when it can: concatenated
        leaves keep their numbers (per-leaf sums taken on segments, leaves whose shape
        the rule reads kept apart, see :meth:`keeps_leaf_shape`)."""

    @abc.abstractmethod
    def keeps_leaf_shape(self, path: str, ndim: int) -> bool:
        """Whether the rule reads the shape of the leaf at ``path`` of rank ``ndim`` (a
        matrix's rows and columns), so a bucketed layout keeps it alone, unraveled."""

    @abc.abstractmethod
    def run(
        self,
        grads: PyTree,
        state: Any,
        params: PyTree | None,
        want_params: bool,
        decay_names: list[str | None] | None = None,
        segments: list[Any] | None = None,
    ) -> tuple[PyTree, PyTree, Any]:
        """The whole update: ``(updates, new params or None, new state)``; ``decay_names``
        gives each leaf's weight-decay hyperparameter and ``segments`` its leaves' sizes
        (for buckets of leaves)."""

    @abc.abstractmethod
    def weight_decay_name(self, path: str, ndim: int) -> str | None:
        """The hyperparameter that decays the leaf at ``path``, or ``None``."""

    @abc.abstractmethod
    def decays_weights(self) -> bool:
        """Whether any leaf gets weight decay."""

    @abc.abstractmethod
    def sets_params(self, param_dtypes: list[Any]) -> bool:
        """Whether new params are the rule's own values rather than ``param + update``."""

    @abc.abstractmethod
    def init_scalars(self, params: PyTree) -> dict[str, Any]:
        """The optimizer-wide values of a new state."""

    @abc.abstractmethod
    def init_leaves(self, params: PyTree) -> Any:
        """The state over ``params`` taken leaf by leaf (each leaf may be a bucket)."""

    @abc.abstractmethod
    def reads_params(self) -> bool:
        """Whether ``update`` needs the params even when new params are not wanted."""


class EvaluatesLoss(abc.ABC):
    """Capability: ``update`` takes optax's extra arguments ``value``, ``grad`` and
    ``value_fn`` (the loss at the params, its gradient, the loss function), as a line
    search needs, and may leave the loss and gradient at the new params in its state.

    Example:
        >>> import jopt
        >>> [isinstance(o, jopt.EvaluatesLoss) for o in (jopt.LBFGS(), jopt.Adam())]
        [True, False]
    """

    @abc.abstractmethod
    def evaluated(self, old: Any, new: Any) -> tuple[Any, Any, Any] | None:
        """``(loss, gradient, stalled)`` at the new params, left in the ``new`` state by
        the update from ``old`` (``stalled``: it could not lower the loss at all), or
        ``None`` when this configuration computes none (no line search)."""


@runtime_checkable
class StateContainer(Protocol):
    """A state that holds other states (a wrapper's, a partition's, a layout's).

    ``children()`` gives them by key (as :meth:`Composite.members` keys the
    transformations that made them); ``counters()`` the container's own values, by
    name, as a summary shows them (a ``"step"`` among them is the update count).

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> state = jopt.SkipNonFinite(jopt.SGD(0.1)).init({"w": jnp.ones(2)})
        >>> isinstance(state, jopt.StateContainer), list(state.children())
        (True, ['.inner'])
    """

    def children(self) -> Mapping[str, PyTree]: ...

    def counters(self) -> Mapping[str, Any]: ...


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
        if getattr(u, "dtype", None) == p.dtype and jnp.shape(u) == p.shape:
            return jax.lax.add(p, u)  # the common case, without promotion's trace cost
        return (p + u).astype(p.dtype)

    return jax.tree.map(add, params, updates)


def apply_step(tx: Any, grads: PyTree, state: Any, params: PyTree) -> tuple[PyTree, Any]:
    """One update of any transformation: ``(new_params, new_state)``.

    Its own ``apply`` when it has the :class:`Applies` capability (Keras's arithmetic),
    else ``update`` then :func:`apply_updates`.

    Example:
        >>> import jax.numpy as jnp, optax, jopt
        >>> params = {"w": jnp.ones(2)}
        >>> tx = optax.sgd(0.5)
        >>> apply_step(tx, {"w": jnp.ones(2)}, tx.init(params), params)[0]["w"]
        Array([0.5, 0.5], dtype=float32)
    """
    if isinstance(tx, Applies):
        return tx.apply(grads, state, params)
    updates, state = tx.update(grads, state, params)
    return apply_updates(params, updates), state
