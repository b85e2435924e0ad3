"""Checkpoints: save with the ecosystem's tools, restore into the same or a changed model.

Every jopt state is a tree of NamedTuples, dicts, lists and arrays (``OptimizerState``,
a :func:`jopt.chain`'s dict, ``PartitionState``, ``SkipNonFiniteState``,
``LossScaleState``), so the JAX tools save and restore it as they are, with no jopt
format in between:

* orbax-checkpoint: ``ocp.StandardCheckpointer().save(path, {"params": params, "state":
  state})``, and ``restore(path, jax.eval_shape(lambda: {"params": params, "state":
  opt.init(params)}))`` gives back the same NamedTuples;
* flax: ``flax.serialization.to_bytes(state)`` / ``from_bytes(opt.init(params), data)``
  and ``to_state_dict`` / ``from_state_dict`` work on every jopt state (flax treats
  NamedTuples as dicts keyed by field name).

A run resumed from such a checkpoint is bit-identical to one never stopped: the state
holds everything the next step reads (the step count, the live hyperparameters, every
slot), and ``opt.lr(state)`` reports the restored step's rate.

Both tools need the saved structure exactly. :func:`restore_state` is the step for
everything else: a state read without a target (orbax's ``restore(path)``, flax's
``msgpack_restore``), a model that gained, lost or reshaped layers since the save, or a
check that a checkpoint fits a differently configured optimizer. It relies on jopt's
state layout: each slot is a pytree shaped like the params, keyed by the same paths.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from jopt.core.protocol import Transformation, require_transformation
from jopt.core.state import OptimizerState

__all__ = ["RestoreReport", "restore_state"]

PyTree = Any
_Key = tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class RestoreReport:
    """What :func:`restore_state` did with each param path of the saved slots.

    Attributes:
        kept: paths whose slots were restored as saved.
        new: paths not in the saved state: their slots are fresh (as ``opt.init`` makes
            them).
        dropped: saved paths that the new params no longer have: their slots are gone.
        reshaped: paths whose slot shapes changed: their slots are fresh.
        recast: paths restored with their slots cast to a new dtype (the param's dtype
            changed).
        moved: paths that moved from one group of a :func:`jopt.partition` to another:
            fresh slots in the new group.
        details: a note per reshaped or recast path (saved and new shape or dtype).

    ``str(report)`` is the message :func:`restore_state` warns or raises with.

    Example:
        >>> from jopt.tools.checkpoint import RestoreReport
        >>> report = RestoreReport(kept=("['a']",), new=("['b']",))
        >>> report.changed
        True
        >>> print(report)
        restore_state adapted the saved optimizer state to the new params (1 path kept):
          new (fresh slots): ['b']
    """

    kept: tuple[str, ...] = ()
    new: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()
    reshaped: tuple[str, ...] = ()
    recast: tuple[str, ...] = ()
    moved: tuple[str, ...] = ()
    details: Mapping[str, str] = dataclasses.field(default_factory=dict, compare=False)

    @property
    def changed(self) -> bool:
        """Whether any path was not restored exactly as saved."""
        return bool(self.new or self.dropped or self.reshaped or self.recast or self.moved)

    def __str__(self) -> str:
        if not self.changed:
            return f"restore_state restored every saved slot ({len(self.kept)} paths kept)"
        lines = [
            "restore_state adapted the saved optimizer state to the new params "
            f"({len(self.kept)} path{'s' if len(self.kept) != 1 else ''} kept):"
        ]
        for title, paths in (
            ("new (fresh slots)", self.new),
            ("dropped (not in the new params; their slots are discarded)", self.dropped),
            ("reshaped (fresh slots)", self.reshaped),
            ("recast (restored in the new dtype)", self.recast),
            ("moved to another partition group (fresh slots)", self.moved),
        ):
            if paths:
                shown = [p + (f" {self.details[p]}" if p in self.details else "") for p in paths]
                lines.append(f"  {title}: {', '.join(shown)}")
        return "\n".join(lines)


def _key_name(key: Any) -> str:
    """A path entry as a string, the same for a typed tree and its state-dict form."""
    for attr in ("key", "idx", "name"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def _flat(tree: PyTree) -> dict[_Key, tuple[str, Any]]:
    """``{normalized key path: (display path, leaf)}``, ``None`` leaves included."""
    flat, _ = jax.tree_util.tree_flatten_with_path(tree, is_leaf=lambda x: x is None)
    return {
        tuple(_key_name(k) for k in path): (jax.tree_util.keystr(path), leaf) for path, leaf in flat
    }


def _children(node: Any) -> dict[str, Any] | None:
    """A container's children by key name (NamedTuple field, dict key, list index);
    ``None`` for a leaf."""
    if isinstance(node, tuple) and hasattr(node, "_fields"):
        return {f: getattr(node, f) for f in node._fields}
    if isinstance(node, Mapping):
        return {str(k): v for k, v in node.items()}
    if isinstance(node, list | tuple):
        return {str(i): v for i, v in enumerate(node)}
    return None


class _Restorer:
    """One walk over the template state (``opt.init(new params)``) and the saved one."""

    def __init__(self, opt: Any, params: PyTree) -> None:
        self.opt = opt
        self.params = _flat(params)
        self.kept: dict[str, None] = {}
        self.new: dict[str, None] = {}
        self.dropped: dict[str, None] = {}
        self.reshaped: dict[str, None] = {}
        self.recast: dict[str, None] = {}
        self.details: dict[str, str] = {}

    def mismatch(self, where: str, what: str, saved: Any, ours: Any) -> ValueError:
        return ValueError(
            f"state{where}: the saved state holds {what} {sorted(saved)} but {self.opt!r} "
            f"holds {sorted(ours)}: it was saved from a differently configured optimizer "
            "(another class, option, chain or partition); build the optimizer it was saved "
            "with, or start this one from opt.init(params)"
        )

    def leaf(self, template: Any, saved: Any, where: str) -> Any:
        if template is None:
            if saved is not None:
                raise ValueError(f"state{where} is None here but the saved state holds an array")
            return None
        if saved is None or _children(saved) is not None:
            raise ValueError(
                f"state{where}: the saved state holds {type(saved).__name__} where {self.opt!r} "
                "holds an array: it was saved from a differently configured optimizer"
            )
        t_shape, s_shape = np.shape(template), np.shape(saved)
        if t_shape != s_shape:
            hint = " (a sweep's stacked state? restore each model's own)" if s_shape else ""
            raise ValueError(
                f"state{where} has shape {s_shape} in the saved state but {t_shape} here{hint}"
            )
        t_dtype, s_dtype = jnp.result_type(template), jnp.result_type(saved)
        if t_dtype != s_dtype:
            raise ValueError(
                f"state{where} has dtype {s_dtype} in the saved state but {t_dtype} here"
            )
        return jnp.asarray(saved, t_dtype)

    def tree(self, template: Any, saved: Any, where: str) -> Any:
        if isinstance(template, OptimizerState):
            return self.optimizer_state(template, saved, where)
        t_children = _children(template)
        if t_children is None:
            return self.leaf(template, saved, where)
        s_children = _children(saved)
        if s_children is None:
            raise ValueError(
                f"state{where}: the saved state holds {type(saved).__name__} where {self.opt!r} "
                f"holds a {type(template).__name__}: it was saved from a differently "
                "configured optimizer"
            )
        if set(s_children) != set(t_children):
            raise self.mismatch(where, "entries", s_children, t_children)
        out = {
            k: self.tree(v, s_children[k], f"{where}{self._step(template, k)}")
            for k, v in t_children.items()
        }
        if isinstance(template, tuple) and hasattr(template, "_fields"):
            return type(template)(**out)
        if isinstance(template, Mapping):
            mapping_type: Any = type(template)  # a concrete dict-like class, not Mapping
            return mapping_type({k: out[str(k)] for k in template})
        return type(template)(out[str(i)] for i in range(len(template)))

    @staticmethod
    def _step(template: Any, key: str) -> str:
        if isinstance(template, tuple) and hasattr(template, "_fields"):
            return f".{key}"
        return f"[{key!r}]" if isinstance(template, Mapping) else f"[{key}]"

    def optimizer_state(self, template: OptimizerState, saved: Any, where: str) -> OptimizerState:
        s = _children(saved)
        # ``layout`` is static (no arrays): a saved state has no entry for it.
        required = set(OptimizerState._fields) - {"layout"}
        if s is None or not required <= set(s) <= set(OptimizerState._fields):
            raise ValueError(
                f"state{where}: {self.opt!r} holds an OptimizerState (step, hyperparams, slots, "
                f"scalars) but the saved state holds {type(saved).__name__}"
                + (f" with entries {sorted(s)}" if s is not None else "")
                + ": it was saved from a differently configured optimizer (a wrapper, chain "
                "or partition around it, or none)"
            )
        for field in ("hyperparams", "slots", "scalars"):
            saved_names = _children(s[field]) or {}
            if set(saved_names) != set(getattr(template, field)):
                raise self.mismatch(
                    f"{where}.{field}", field, saved_names, getattr(template, field)
                )
        step = self.leaf(template.step, s["step"], f"{where}.step")
        hyperparams = {
            k: self.leaf(v, _children(s["hyperparams"])[k], f"{where}.hyperparams[{k!r}]")  # type: ignore[index]
            for k, v in template.hyperparams.items()
        }
        scalars = self.tree(template.scalars, s["scalars"], f"{where}.scalars")
        saved_slots = _children(s["slots"]) or {}
        restarted = bool(np.asarray(s["step"]) > 0)
        slots = {
            name: self.slot(name, value, saved_slots[name], restarted)
            for name, value in template.slots.items()
        }
        # The layout is static: the template's (made by the same optimizer and params).
        return OptimizerState(step, hyperparams, slots, scalars, template.layout)

    def slot(self, name: str, template: PyTree, saved: PyTree, restarted: bool) -> PyTree:
        ours, theirs = _flat(template), _flat(saved)
        leaves: list[Any] = []
        for key, (path, t) in ours.items():
            s = theirs.get(key, (path, None))[1]
            if t is None:
                leaves.append(None)
                continue
            if s is None:
                self.new[path] = None
                leaves.append(self.fresh(name, key, t, restarted))
            elif np.shape(s) != np.shape(t):
                self.reshaped[path] = None
                self.details[path] = f"(saved {np.shape(s)}, now {np.shape(t)})"
                leaves.append(self.fresh(name, key, t, restarted))
            else:
                if jnp.result_type(s) != jnp.result_type(t):
                    self.recast[path] = None
                    self.details[path] = f"(saved {jnp.result_type(s)}, now {jnp.result_type(t)})"
                else:
                    self.kept[path] = None
                leaves.append(jnp.asarray(s, jnp.result_type(t)))
        for key, (path, s) in theirs.items():
            if s is not None and ours.get(key, (path, None))[1] is None:
                self.dropped[path] = None
        # A PyTreeDef (jaxlib ships no type stub for it).
        treedef: Any = jax.tree_util.tree_structure(template, is_leaf=lambda x: x is None)
        return treedef.unflatten(leaves)

    def fresh(self, name: str, key: _Key, template: Any, restarted: bool) -> Any:
        # An EMA of a leaf that appears after step 0 starts at the leaf's value, as Keras's
        # average does on its first step; init's zeros would drag it towards 0.
        if name == "average" and restarted and key in self.params:
            return jnp.asarray(self.params[key][1], jnp.result_type(template))
        return template

    def report(self) -> RestoreReport:
        moved = [p for p in self.new if p in self.dropped]
        return RestoreReport(
            kept=tuple(p for p in self.kept if p not in self.reshaped and p not in self.recast),
            new=tuple(p for p in self.new if p not in moved),
            dropped=tuple(p for p in self.dropped if p not in moved and p not in self.kept),
            reshaped=tuple(self.reshaped),
            recast=tuple(self.recast),
            moved=tuple(moved),
            details=dict(self.details),
        )


def restore_state(
    opt: Transformation,
    saved_state: PyTree,
    params: PyTree,
    *,
    on_change: Literal["warn", "error", "ignore"] = "warn",
) -> tuple[PyTree, RestoreReport]:
    """Returns ``(state, report)``: ``saved_state`` fitted to ``opt`` and ``params``.

    ``saved_state`` is a state of ``opt`` as saved: the NamedTuples themselves, or their
    state-dict form (orbax's ``restore(path)`` without a target, flax's
    ``msgpack_restore`` or ``to_state_dict``). ``params`` are the params to train from
    now on, possibly of a changed model. Rule, for each optimizer state within ``opt``'s
    (every group of a partition, every member of a chain, a wrapper's inner one):

    * the step count, the live hyperparameters, the optimizer-wide scalars and the
      wrappers' values (skip count, loss scale) are restored as saved;
    * each slot is restored at every param path that still exists with the same slot
      shape (cast if the param's dtype changed: ``report.recast``);
    * a path that is new, reshaped, or moved to another partition group gets a fresh slot,
      exactly as ``opt.init(params)`` makes it (an EMA ``average`` slot starts at the
      param's value); the step count goes on, so for such leaves the next update is
      that of a fresh slot at step ``k + 1`` (Adam's bias correction then divides by
      ``1 - beta**(k+1)``, not ``1 - beta``);
    * saved paths the params no longer have are dropped.

    With an unchanged model and optimizer the result equals ``saved_state`` leaf for
    leaf, so the run resumes bit-identically. Paths are reported as JAX writes them
    (``"['dense_1']['kernel']"``); an optimizer without slots (plain SGD) has no
    per-path state to adapt.

    Args:
        opt: the optimizer (or chain, partition, wrapper) to resume with.
        saved_state: the restored state of the optimizer it was saved from.
        params: the params to resume with; only their structure, shapes and dtypes are
            read, and the values of leaves that get fresh master weights or averages.
        on_change: what to do when anything was not restored exactly as saved:
            ``"warn"`` (default, a ``UserWarning`` with the report), ``"error"`` (a
            ``ValueError`` with the report) or ``"ignore"``.

    Returns:
        the state to resume from, and a :class:`RestoreReport`.

    Raises:
        ValueError: the saved state comes from a differently configured optimizer (other
            slots, hyperparameters, chain members or partition groups; the message names
            the place and both sets), a non-slot value has another shape or dtype, or
            ``on_change="error"`` and the model changed.
        TypeError: ``on_change`` is not one of its three values.

    A state of identical structure from another optimizer (Adam's and Lamb's are alike)
    cannot be told apart by its contents; save ``opt.get_config()`` next to it to check.

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> opt = jopt.Adam(0.1)
        >>> old = {"dense": {"kernel": jnp.ones((2, 2))}}
        >>> state = opt.apply_gradients(old, opt.init(old), old)[1]   # one step
        >>> new = {"dense": {"kernel": jnp.ones((2, 2))}, "head": {"kernel": jnp.ones(2)}}
        >>> state, report = jopt.restore_state(opt, state, new, on_change="ignore")
        >>> report.kept, report.new, int(state.step)
        (("['dense']['kernel']",), ("['head']['kernel']",), 1)
        >>> state.slots["momentum"]["head"]["kernel"]
        Array([0., 0.], dtype=float32)
    """
    if on_change not in ("warn", "error", "ignore"):
        raise TypeError(f"on_change must be 'warn', 'error' or 'ignore', got {on_change!r}")
    require_transformation(opt, "restore_state's opt")
    restorer = _Restorer(opt, params)
    state = restorer.tree(opt.init(params), saved_state, "")
    report = restorer.report()
    if report.changed:
        if on_change == "error":
            raise ValueError(str(report))
        if on_change == "warn":
            warnings.warn(str(report), UserWarning, stacklevel=2)
    return state, report
