"""Per-parameter-group optimizers: label each leaf, give each label its own transformation.

:func:`partition` is optax's ``multi_transform`` and Keras's ``MultiOptimizer``, with a
state readable by name (``state.groups["adam"].slots["momentum"]``); :func:`freeze` is
the transformation of a group that must not move.

How a group sees the params: its transformation gets the **whole tree with every other
group's leaves replaced by** ``None``. Paths stay those of the full tree, so per-leaf
rules read the same paths they read without the partition (``exclude_from_weight_decay``,
Muon's choice of leaves), and whatever a jopt optimizer computes over all its leaves
(``global_clipnorm``, Nadam's first-leaf dtype) covers its group only: as in Keras, where
each inner optimizer of a ``MultiOptimizer`` sees only its own variables. A group's
numbers are therefore exactly those of its optimizer run alone on its leaves.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, NamedTuple, TypeGuard

import jax
import jax.numpy as jnp

from jopt.composites.delegation import Delegating
from jopt.composites.partition_config import labels_config, transform_config
from jopt.core.hyperparams import set_hyperparams
from jopt.core.placement import replicate_like
from jopt.core.protocol import Applies, HasLearningRate, apply_step, require_transformation
from jopt.core.pytrees import check_same_tree, leaves_with_paths
from jopt.core.registry import register_config_class
from jopt.core.serialization import deserialize
from jopt.core.state import html_state, next_step, pretty_state

__all__ = [
    "Freeze",
    "Partition",
    "PartitionState",
    "freeze",
    "partition",
    "set_group_hyperparams",
]

PyTree = Any
Labels = PyTree | Callable[[PyTree], PyTree] | Sequence[tuple[str | re.Pattern[str], str]]

_FREEZE = "freeze"


# ---- freeze --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Freeze(Applies):
    """The transformation of a group that must not move: zero updates, empty state.

    Rule: ``updates = -0.0`` for every leaf; ``apply`` returns the params as they are.
    ``-0.0`` is the zero for which ``p + u == p`` bit for bit, for every ``p`` (``-0.0``,
    NaN and Inf included), so frozen params stay bit-identical through
    :func:`jopt.apply_updates` and ``optax.apply_updates`` too, except subnormal values
    where the backend flushes them (eager XLA on CPU turns ``1e-45 + -0.0`` into 0);
    ``apply`` and :func:`jopt.apply_gradients` run no arithmetic on them at all. The
    state is ``()``. Build it with :func:`freeze`.

    Example:
        >>> import jax.numpy as jnp
        >>> from jopt.composites.groups import freeze
        >>> updates, state = freeze().update({"w": jnp.ones(2)}, ())
        >>> updates["w"], state
        (Array([-0., -0.], dtype=float32), ())
    """

    name: ClassVar[str] = "freeze"

    def __repr__(self) -> str:
        return "freeze()"

    def init(self, params: PyTree) -> tuple[()]:
        """The empty state ``()``."""
        del params
        return ()

    def update(
        self, updates: PyTree, state: tuple[()], params: PyTree | None = None, **extra: Any
    ) -> tuple[PyTree, tuple[()]]:
        """Returns ``(-0.0 like updates, state)``."""
        del params, extra
        return jax.tree.map(lambda g: -jnp.zeros_like(g), updates), state

    def apply(self, grads: PyTree, state: tuple[()], params: PyTree) -> tuple[PyTree, tuple[()]]:
        """Returns ``(params, state)`` unchanged: no arithmetic at all."""
        del grads
        return params, state

    def __iter__(self) -> Iterator[Callable[..., Any]]:
        """Unpacks as ``init, update``, like an ``optax.GradientTransformation``."""
        return iter((self.init, self.update))


def freeze() -> Freeze:
    """Returns the transformation that keeps its params bit-identical (see :class:`Freeze`).

    In :func:`partition`, a label mapped to ``None`` means the same, and so does the label
    ``"freeze"`` when ``transforms`` has no entry of that name.

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> from jopt.composites.groups import freeze, partition
        >>> tx = partition({"adam": jopt.Adam(0.1), "frozen": freeze()},
        ...                {"head": "adam", "body": "frozen"})
        >>> params = {"head": jnp.ones(2), "body": jnp.ones(2)}
        >>> grads = {"head": jnp.ones(2), "body": jnp.ones(2)}
        >>> params, state = tx.apply(grads, tx.init(params), params)
        >>> params["body"], sorted(state.groups), state.groups["frozen"]
        (Array([1., 1.], dtype=float32), ['adam', 'frozen'], ())
    """
    return Freeze()


# ---- labels --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _LabelTree:
    """A label pytree kept hashable: its structure and its leaves."""

    treedef: Any
    leaves: tuple[Any, ...]

    def tree(self) -> PyTree:
        return self.treedef.unflatten(self.leaves)

    def __repr__(self) -> str:
        return repr(self.tree())


@dataclasses.dataclass(frozen=True)
class _Patterns:
    """``(pattern, label)`` pairs: the first pattern searched in a leaf's path wins."""

    pairs: tuple[tuple[str | re.Pattern[str], str], ...]

    def __repr__(self) -> str:
        return repr(list(self.pairs))


def _is_patterns(labels: Any) -> TypeGuard[Sequence[tuple[str | re.Pattern[str], str]]]:
    return (
        isinstance(labels, list | tuple)
        and len(labels) > 0
        and all(
            isinstance(x, list | tuple)
            and len(x) == 2
            and isinstance(x[0], str | re.Pattern)
            and isinstance(x[1], str)
            for x in labels
        )
    )


def _paths(tree: PyTree) -> tuple[Any, list[tuple[Any, ...]]]:
    """The treedef (``None`` as an empty node) and each leaf's key path."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(tree)
    return treedef, [path for path, _ in flat]


def _labels_from_tree(labels: PyTree, ref: PyTree, keys: list[tuple[Any, ...]]) -> list[Any]:
    """Each leaf's label, read at its path or the nearest prefix of it in ``labels``."""
    by_path = {path: label for path, label in leaves_with_paths(labels) if label is not None}
    known = {jax.tree_util.keystr(k[:i]) for k, _ in _all_keys(ref) for i in range(len(k) + 1)}
    for path, label in by_path.items():
        if path not in known:
            raise ValueError(f"labels{path} is not in params (labels holds {label!r} there)")
    out = []
    for k in keys:
        prefixes = (jax.tree_util.keystr(k[:i]) for i in range(len(k), -1, -1))
        found = next((p for p in prefixes if p in by_path), None)
        if found is None:
            raise ValueError(
                f"labels{jax.tree_util.keystr(k)} is missing (params has it); give every "
                "param a label, or a label to a subtree above it"
            )
        out.append(by_path[found])
    return out


def _all_keys(tree: PyTree) -> list[tuple[tuple[Any, ...], Any]]:
    flat, _ = jax.tree_util.tree_flatten_with_path(tree, is_leaf=lambda x: x is None)
    return flat


# ---- the state -----------------------------------------------------------------------


class PartitionState(NamedTuple):
    """The state of a :func:`partition`: a step count and each group's state by label.

    Attributes:
        step: int32 scalar, the number of updates applied (Keras's
            ``MultiOptimizer.iterations``).
        groups: each label's own state, e.g. ``state.groups["adam"]`` is an
            :class:`~jopt.OptimizerState` with its own ``step`` (Keras's
            ``optimizer.iterations`` of that inner optimizer) and its slots, shaped like
            the params with ``None`` at the other groups' leaves. A group with no leaves
            is never updated: its step stays 0, as an unbuilt Keras optimizer's does.

    :func:`jopt.hyperparams` and :func:`jopt.set_hyperparams` reach every group's state;
    :func:`set_group_hyperparams` changes one group's.

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> from jopt.composites.groups import partition
        >>> tx = partition({"adam": jopt.Adam(), "sgd": jopt.SGD(momentum=0.9)},
        ...                [("kernel", "adam"), ("bias", "sgd")])
        >>> state = tx.init({"kernel": jnp.ones((2, 2)), "bias": jnp.zeros(2)})
        >>> int(state.step), state.groups["sgd"].slots["momentum"]
        (0, {'bias': Array([0., 0.], dtype=float32), 'kernel': None})
    """

    step: jax.Array
    groups: dict[str, PyTree]

    def children(self) -> Mapping[str, Any]:
        """Each group's state, by ``".groups['label']"``."""
        return {f".groups[{label!r}]": s for label, s in self.groups.items()}

    def counters(self) -> Mapping[str, Any]:
        """``{"step": step}``."""
        return {"step": self.step}

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        pretty_state(self, p, cycle)

    def _repr_html_(self) -> str:
        return html_state(self)


def set_group_hyperparams(state: PartitionState, group: str, /, **values: Any) -> PartitionState:
    """Returns ``state`` with live hyperparameters replaced in one group only.

    ``jopt.set_hyperparams(state, learning_rate=...)`` sets every group that holds the
    name; this sets ``state.groups[group]`` alone (Keras:
    ``multi.optimizers[i].learning_rate = value``). No recompilation follows.

    Raises:
        KeyError: ``group`` is not a label of ``state``.
        ValueError: that group holds no such hyperparameter (see :func:`jopt.set_hyperparams`).

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> from jopt.composites.groups import partition, set_group_hyperparams
        >>> tx = partition({"fast": jopt.SGD(0.1), "slow": jopt.SGD(0.1)},
        ...                {"a": "fast", "b": "slow"})
        >>> state = tx.init({"a": jnp.ones(1), "b": jnp.ones(1)})
        >>> state = set_group_hyperparams(state, "slow", learning_rate=0.01)
        >>> {k: float(v["learning_rate"]) for k, v in jopt.hyperparams(state).items()}
        {".groups['fast']": 0.10000000149011612, ".groups['slow']": 0.009999999776482582}
    """
    if not isinstance(state, PartitionState):
        raise TypeError(
            f"set_group_hyperparams expects a PartitionState, got {type(state).__name__}"
        )
    if group not in state.groups:
        raise KeyError(f"no group {group!r} in this state; its groups are {sorted(state.groups)}")
    return state._replace(
        groups={**state.groups, group: set_hyperparams(state.groups[group], **values)}
    )


# ---- the partition -------------------------------------------------------------------


@register_config_class
@dataclasses.dataclass(frozen=True)
class Partition(Delegating, Applies, HasLearningRate):
    """One transformation per label; build it with :func:`partition`, which documents it.

    A frozen, hashable configuration (a valid static ``jax.jit`` argument): equal
    transforms and labels make equal partitions. ``tx.transforms`` maps each label to
    its transformation, in the order given.

    Example:
        >>> import jopt
        >>> from jopt.composites.groups import partition
        >>> tx = partition({"adam": jopt.Adam()}, "adam")
        >>> tx == partition({"adam": jopt.Adam()}, "adam"), list(tx.transforms)
        (True, ['adam'])
    """

    name: ClassVar[str] = "partition"  # its key in a jopt.chain's state

    groups: tuple[tuple[str, Any], ...]
    labels: _LabelTree | _Patterns | Callable[[PyTree], PyTree]
    default: str | None = None

    @property
    def transforms(self) -> dict[str, Any]:
        """Each label's transformation (Keras's ``MultiOptimizer.optimizers``)."""
        return dict(self.groups)

    def __repr__(self) -> str:
        default = "" if self.default is None else f", default={self.default!r}"
        return f"partition({self.transforms!r}, {self.labels!r}{default})"

    def get_config(self) -> dict[str, Any]:
        """The groups' configs, the labels as data (a pytree or ``(regex, label)`` pairs)
        and the default; :func:`jopt.optimizers.deserialize` rebuilds it from
        ``jopt.optimizers.serialize(tx)``. Labels given as a function cannot be written
        down: a ``ValueError`` says so."""
        return {
            "transforms": {label: transform_config(label, tx) for label, tx in self.groups},
            "labels": labels_config(self.labels),
            "default": self.default,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Partition:
        """Rebuilds a partition from :meth:`get_config`'s dict (each group's optimizer
        deserialized, ``freeze`` by name).

        Example:
            >>> import jopt
            >>> tx = jopt.partition({"a": jopt.SGD(0.1), "b": jopt.freeze()}, {"x": "a", "y": "b"})
            >>> jopt.optimizers.deserialize(jopt.optimizers.serialize(tx)) == tx
            True
        """
        transforms = {
            label: freeze() if str(c.get("class_name")).lower() == "freeze" else deserialize(c)
            for label, c in config["transforms"].items()
        }
        labels = config["labels"]
        labels = (
            [tuple(pair) for pair in labels["patterns"]] if "patterns" in labels else labels["tree"]
        )
        return partition(transforms, labels, default=config.get("default"))

    def __iter__(self) -> Iterator[Callable[..., Any]]:
        """Unpacks as ``init, update``, like an ``optax.GradientTransformation``."""
        return iter((self.init, self.update))

    # ---- which leaf goes where ----

    def leaf_labels(self, params: PyTree) -> PyTree:
        """Returns the tree of labels the partition gives ``params`` (``None`` leaves stay).

        Example:
            >>> import jax.numpy as jnp, jopt
            >>> from jopt.composites.groups import partition
            >>> tx = partition({"adam": jopt.Adam(), "sgd": jopt.SGD()}, [("bias", "sgd")],
            ...                default="adam")
            >>> tx.leaf_labels({"kernel": jnp.ones(2), "bias": jnp.ones(2)})
            {'bias': 'sgd', 'kernel': 'adam'}
        """
        treedef, labels = self._split(params)
        return treedef.unflatten(labels)

    def _split(self, ref: PyTree) -> tuple[Any, list[str]]:
        """The treedef of ``ref`` and each of its leaves' label, checked."""
        treedef, keys = _paths(ref)
        if isinstance(self.labels, _Patterns):
            labels = [self._match(jax.tree_util.keystr(k)) for k in keys]
        else:
            tree = self.labels.tree() if isinstance(self.labels, _LabelTree) else self.labels(ref)
            labels = _labels_from_tree(tree, ref, keys)
        known = self.transforms
        for k, label in zip(keys, labels, strict=True):
            if label not in known and label != _FREEZE:
                raise ValueError(
                    f"label {label!r} of params{jax.tree_util.keystr(k)} has no transform; "
                    f"transforms has {sorted(known)} (or 'freeze')"
                )
        return treedef, labels

    def _match(self, path: str) -> str:
        assert isinstance(self.labels, _Patterns)
        for pattern, label in self.labels.pairs:
            if re.search(pattern, path):
                return label
        if self.default is not None:
            return self.default
        patterns = [p for p, _ in self.labels.pairs]
        raise ValueError(
            f"params{path} matches none of the patterns {patterns}; add one, or give "
            "partition a default label (to pass a label tree shaped like a list of pairs, "
            "pass it as labels=lambda params: tree)"
        )

    def _transform(self, label: str) -> Any:
        return self.transforms.get(label, Freeze()) if label == _FREEZE else self.transforms[label]

    # ---- the protocol ----

    def init(self, params: PyTree) -> PartitionState:
        """Returns step 0 and each group's ``init`` of its own leaves (others ``None``).

        Warns (``UserWarning``) for a transformation that gets no leaf: it keeps its
        initial state, as a Keras optimizer with no variables stays unbuilt.
        """
        treedef, labels = self._split(params)
        leaves = treedef.flatten_up_to(params)
        groups = {}
        for label in self._state_labels(labels):
            mine = [x if lab == label else None for x, lab in zip(leaves, labels, strict=True)]
            if label not in labels:
                warnings.warn(
                    f"partition: transform {label!r} gets no leaves (no param is labelled "
                    f"{label!r}); it is never updated",
                    UserWarning,
                    stacklevel=2,
                )
            groups[label] = self._transform(label).init(treedef.unflatten(mine))
        return PartitionState(replicate_like(jnp.zeros([], jnp.int32), params), groups)

    def _state_labels(self, labels: list[str]) -> list[str]:
        implicit = [_FREEZE] if _FREEZE in labels and _FREEZE not in self.transforms else []
        return list(self.transforms) + implicit

    def update(
        self, updates: PyTree, state: PartitionState, params: PyTree | None = None, **extra: Any
    ) -> tuple[PyTree, PartitionState]:
        """Returns ``(updates, new_state)``: each leaf's update from its group's transform.

        ``extra`` (optax's extra-args protocol) is accepted and not passed on.
        """
        del extra

        def step(t: Any, g: PyTree, s: Any, p: PyTree | None) -> tuple[PyTree, Any]:
            return t.update(g, s, p)

        return self._run(step, updates, state, params, "update")

    def apply(
        self, grads: PyTree, state: PartitionState, params: PyTree
    ) -> tuple[PyTree, PartitionState]:
        """Returns ``(new_params, new_state)``, each group through its own ``apply``.

        A group whose transformation has an ``apply`` (jopt optimizers and wrappers,
        :func:`freeze`) computes its new params with it, so a jopt optimizer keeps
        Keras's exact arithmetic; any other (optax) runs ``update`` then
        :func:`jopt.apply_updates`.
        """

        if params is None:
            raise ValueError("Partition.apply needs params: call apply(grads, state, params)")
        return self._run(apply_step, grads, state, params, "apply")

    def _run(
        self, step: Any, grads: PyTree, state: PartitionState, params: PyTree | None, what: str
    ) -> tuple[PyTree, PartitionState]:
        """Runs ``step(transform, grads, state, params)`` on each group's masked trees and
        gathers each leaf's result from its own group."""
        if not isinstance(state, PartitionState):
            raise TypeError(
                f"Partition.{what} expects the PartitionState made by its init, "
                f"got {type(state).__name__}"
            )
        if params is not None:
            check_same_tree(params, grads, "params", "grads")
        treedef, labels = self._split(grads if params is None else params)
        expected = self._state_labels(labels)
        if sorted(state.groups) != sorted(expected):
            raise ValueError(
                f"this state holds groups {sorted(state.groups)} but the partition has "
                f"{sorted(expected)}: it was made by a different partition"
            )
        g = treedef.flatten_up_to(grads)
        p = treedef.flatten_up_to(params) if params is not None else None
        out: list[Any] = [None] * len(g)
        groups = dict(state.groups)
        for label in expected:
            idx = [i for i, lab in enumerate(labels) if lab == label]
            if not idx:  # never updated, as Keras never builds an optimizer with no variables
                continue
            mask = set(idx)

            def masked(leaves: list[Any], mask: set[int] = mask) -> PyTree:
                return treedef.unflatten([x if i in mask else None for i, x in enumerate(leaves)])

            result, groups[label] = step(
                self._transform(label),
                masked(g),
                state.groups[label],
                None if p is None else masked(p),
            )
            flat = treedef.flatten_up_to(result)
            for i in idx:
                out[i] = flat[i]
        return treedef.unflatten(out), PartitionState(next_step(state.step), groups)

    # ---- capabilities ----

    def members(self) -> Mapping[str, Any]:
        """Each group's transformation, by ``".groups['label']"``."""
        return {f".groups[{label!r}]": t for label, t in self.groups}

    def replace_members(self, members: Mapping[str, Any]) -> Partition:
        """This partition with its groups' transformations replaced (same keys)."""
        groups = tuple((label, members[f".groups[{label!r}]"]) for label, _ in self.groups)
        return dataclasses.replace(self, groups=groups)

    def member_states(self, state: Any) -> Mapping[str, Any]:
        """Each group's state, by ``".groups['label']"``."""
        return {f".groups[{label!r}]": s for label, s in state.groups.items()}

    def replace_member_states(self, state: Any, states: Mapping[str, Any]) -> Any:
        """``state`` with some groups' states replaced."""
        groups = {label: states.get(f".groups[{label!r}]", s) for label, s in state.groups.items()}
        return state._replace(groups=groups)

    def lr(self, step_or_state: Any = None) -> dict[str, Any]:
        """Each group's learning rate by label (groups whose transformation reports one),
        at a step or from this partition's state.

        Example:
            >>> import jax.numpy as jnp, jopt
            >>> tx = jopt.partition({"a": jopt.SGD(0.1), "b": jopt.SGD(0.2)}, {"x": "a", "y": "b"})
            >>> {k: float(v) for k, v in tx.lr().items()}
            {'a': 0.10000000149011612, 'b': 0.20000000298023224}
        """
        is_state = isinstance(step_or_state, PartitionState)
        return {
            label: t.lr(step_or_state.groups[label] if is_state else step_or_state)
            for label, t in self.groups
            if isinstance(t, HasLearningRate)
        }


def partition(
    transforms: Mapping[str, Any],
    labels: Labels,
    *,
    default: str | None = None,
) -> Partition:
    r"""Returns a transformation that updates each group of leaves with its own transform.

    Rule: every leaf gets a label; the leaves labelled ``L`` are updated by
    ``transforms[L]`` as if it ran alone on them (it sees the full tree with the other
    leaves ``None``, so paths and per-leaf rules are unchanged, and anything global such
    as ``global_clipnorm`` covers its group only). The result is a transformation like
    any other: ``init`` / ``update`` (optax's protocol, usable in ``optax.chain`` and
    :func:`jopt.chain`), ``apply`` (Keras's arithmetic for jopt optimizers) and
    ``apply_gradients``.

    Args:
        transforms: label -> transformation: a jopt optimizer, a jopt or optax transform,
            :func:`freeze`, or ``None`` (short for :func:`freeze`). The label
            ``"freeze"`` needs no entry: it means :func:`freeze` unless given one.
        labels: which label each leaf gets, in one of three forms:

            * a pytree of label strings shaped like the params, or a prefix of it (a
              label on a subtree labels all its leaves; a single string labels all);
            * ``[(pattern, label), ...]``: each ``pattern`` is a regular expression
              searched in the leaf's path (``jax.tree_util.keystr``, e.g.
              ``"['encoder']['dense']['bias']"``); the first match wins;
            * a callable ``params -> label pytree``, called at ``init`` and ``update``
              (with the grads when no params are given) on structure and shapes only.
              It is also the way to give a label tree that looks like a list of pairs.
        default: with patterns, the label of a leaf no pattern matches (Keras's
            ``default_optimizer``); without it such a leaf is an error naming its path.

    Returns:
        a frozen, hashable :class:`Partition`; its state is a :class:`PartitionState`
        (``state.step``, ``state.groups["adam"].slots["momentum"]``...).

    Raises:
        ValueError: a label with no transform, a path no pattern matches, a label tree
            that is not shaped like the params (each names the path).
        TypeError: a transform without ``init``/``update``.

    A label with no leaves warns at ``init`` and is never updated (its step stays 0).
    Two labels are two groups with two states even when their transforms are equal.

    Keras -> jopt:

    - ``MultiOptimizer(OptimizerMap(sgd, {"enc/.*": adam}))`` ->
      ``partition({"adam": Adam(), "sgd": SGD()}, [(r"\['enc'\]", "adam")], default="sgd")``
    - ``MultiOptimizer(lambda variable: adam if ... else sgd)`` ->
      ``partition({"adam": Adam(), "sgd": SGD()}, lambda params: label_tree)``
    - ``multi.iterations`` -> ``state.step``; ``multi.optimizers`` -> ``tx.transforms``
    - ``multi.optimizers[i].iterations`` -> ``state.groups[label].step``
    - ``multi.optimizers[i].learning_rate`` -> ``tx.transforms[label].lr(state.groups[label])``
    - ``multi.optimizers[i].learning_rate = v`` ->
      ``state = set_group_hyperparams(state, label, learning_rate=v)``
    - ``multi.apply(grads, variables)`` -> ``params, state = tx.apply(grads, state, params)``
    - ``MultiOptimizer(..., loss_scale_factor=s)`` -> ``loss_scale_factor=s`` on each
      group's optimizer
    - a variable with ``trainable=False`` -> its label mapped to :func:`freeze`

    Differences: Keras matches ``OptimizerMap`` keys to a variable's path
    (``"enc/dense/kernel"``) exactly or with ``re.fullmatch`` and refuses a variable two
    keys match; jopt searches each pattern in the pytree path and the first match wins.
    Keras's ``MultiOptimizer`` sets every inner optimizer's ``loss_scale_factor`` to its
    own (``None`` unless given, discarding the inner ones'); jopt keeps each group's.

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> from jopt.composites.groups import partition
        >>> tx = partition({"adam": jopt.Adam(0.1), "sgd": jopt.SGD(0.1, momentum=0.9)},
        ...                [(r"\['kernel'\]", "adam"), (r"\['bias'\]", "sgd")])
        >>> params = {"kernel": jnp.ones((2, 2)), "bias": jnp.zeros(2)}
        >>> state = tx.init(params)
        >>> grads = {"kernel": jnp.ones((2, 2)), "bias": jnp.ones(2)}
        >>> params, state = tx.apply_gradients(grads, state, params)
        >>> params["bias"], int(state.step), int(state.groups["adam"].step)
        (Array([-0.1, -0.1], dtype=float32), 1, 1)
    """
    if not isinstance(transforms, Mapping) or not transforms:
        raise TypeError(
            "partition expects a non-empty dict of label -> transformation, "
            f"got {transforms!r:.100}"
        )
    groups = []
    for label, t in transforms.items():
        if not isinstance(label, str):
            raise TypeError(f"partition labels must be strings, got {label!r}")
        t = Freeze() if t is None else t
        require_transformation(t, f"partition's transforms[{label!r}]")
        groups.append((label, t))
    known = {label for label, _ in groups} | {_FREEZE}

    def check_label(label: Any, where: str) -> None:
        if label not in known:
            raise ValueError(
                f"label {label!r} ({where}) has no transform; transforms has "
                f"{sorted(transforms)} (or 'freeze')"
            )

    stored: _LabelTree | _Patterns | Callable[[PyTree], PyTree]
    if _is_patterns(labels):
        pairs = tuple((p, lab) for p, lab in labels)
        for p, lab in pairs:
            try:
                re.compile(p)
            except re.error as e:
                raise ValueError(f"pattern {p!r} is not a valid regular expression: {e}") from e
            check_label(lab, f"of pattern {p!r}")
        stored = _Patterns(pairs)
    elif callable(labels):
        stored = labels
    else:
        for path, lab in leaves_with_paths(labels):
            if lab is not None:
                if not isinstance(lab, str):
                    raise TypeError(f"labels{path} must be a label string, got {lab!r:.60}")
                check_label(lab, f"at labels{path}")
        leaves, treedef = jax.tree_util.tree_flatten(labels)
        stored = _LabelTree(treedef, tuple(leaves))
    if default is not None:
        if not isinstance(stored, _Patterns):
            raise TypeError("default applies to (pattern, label) pairs only")
        check_label(default, "the default")
    return Partition(tuple(groups), stored, default)
