"""Gradient transformations as building blocks, for :func:`jopt.chain` and ``optax.chain``.

Each is a frozen, hashable ``(init, update)`` object built on the same formulas as the
optimizers' base options (``jopt/transforms``), so ``chain(clip_by_global_norm(1.0),
SGD(0.1))`` clips exactly as ``SGD(0.1, global_clipnorm=1.0)`` does. Their thresholds
live in an :class:`~jopt.OptimizerState` as float32 hyperparameters, so
:func:`jopt.set_hyperparams` changes them without recompiling, like any optimizer's.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from jopt.core.placement import replicate_like
from jopt.core.pytrees import check_same_tree
from jopt.core.state import OptimizerState
from jopt.core.validation import check_number, check_strings
from jopt.formulas.averaging import param_average
from jopt.formulas.clipping import clip_by_global_norm as _clip_global
from jopt.formulas.clipping import clip_by_norm as _clip_norm
from jopt.formulas.clipping import clip_by_value as _clip_value
from jopt.formulas.weight_decay import uses_weight_decay

__all__ = [
    "Block",
    "add_decayed_weights",
    "clip_by_global_norm",
    "clip_by_norm",
    "clip_by_value",
    "ema",
    "scale",
]

PyTree = Any

# Each block's hyperparameter, named as its constructor's argument (and Keras's option).
_ARGUMENT = {
    "clip_by_norm": "clipnorm",
    "clip_by_value": "clipvalue",
    "clip_by_global_norm": "global_clipnorm",
    "scale": "factor",
    "add_decayed_weights": "weight_decay",
    "ema": "ema_momentum",
}


@dataclasses.dataclass(frozen=True)
class Block:
    """A building block: ``kind`` names the formula, ``value`` its float hyperparameter,
    held in the state under the argument's name (``clipnorm``, ``factor``...).

    Build one with the functions of this module, not directly.

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> jopt.hyperparams(jopt.clip_by_value(0.5).init(None))
        {'clipvalue': Array(0.5, dtype=float32)}
    """

    kind: str
    value: float
    exclude: tuple[str, ...] | None = None

    def __repr__(self) -> str:
        """As it was built: ``clip_by_norm(1.0)``, ``add_decayed_weights(0.1, exclude=...)``."""
        exclude = "" if self.exclude is None else f", exclude={list(self.exclude)!r}"
        return f"{self.kind}({self.value!r}{exclude})"

    @property
    def name(self) -> str:
        return self.kind

    @property
    def hyperparam(self) -> str:
        """The state's name for ``value``: the constructor's argument name."""
        return _ARGUMENT[self.kind]

    def init(self, params: PyTree) -> OptimizerState:
        """Step 0, the hyperparameter as a live float32 scalar, and (for ``ema``) the average."""
        slots = {}
        if self.kind == "ema":
            # zeros_like keeps each param's sharding; the scalars go where the params are.
            slots["average"] = jax.tree.map(lambda p: jnp.zeros_like(p, jnp.result_type(p)), params)
        step, hyperparams = replicate_like(
            (jnp.zeros([], jnp.int32), {self.hyperparam: jnp.asarray(self.value, jnp.float32)}),
            params,
        )
        return OptimizerState(step, hyperparams, slots, {})

    def update(
        self, updates: PyTree, state: OptimizerState, params: PyTree | None = None, **extra: Any
    ) -> tuple[PyTree, OptimizerState]:
        """Transforms ``updates``; see each constructor for its rule."""
        del extra
        if not isinstance(state, OptimizerState) or self.hyperparam not in state.hyperparams:
            raise TypeError(
                f"{self.kind}.update expects the OptimizerState made by its init (holding "
                f"{self.hyperparam!r}), got {type(state).__name__}"
            )
        value = state.hyperparams[self.hyperparam]
        treedef: Any  # a PyTreeDef (jaxlib ships no type stub for it)
        leaves, treedef = jax.tree.flatten(updates)
        step = jnp.where(state.step < jnp.iinfo(jnp.int32).max, state.step + 1, state.step)
        if self.kind == "clip_by_norm":
            leaves = [_clip_norm(u, value.astype(u.dtype)) for u in leaves]
        elif self.kind == "clip_by_value":
            leaves = [_clip_value(u, value.astype(u.dtype)) for u in leaves]
        elif self.kind == "clip_by_global_norm":
            leaves = _clip_global(leaves, value) if leaves else leaves
        elif self.kind == "scale":
            leaves = [u * value.astype(u.dtype) for u in leaves]
        elif self.kind in ("add_decayed_weights", "ema"):
            if params is None:
                raise ValueError(f"{self.kind} needs params: call update(updates, state, params)")
            check_same_tree(params, updates, "params", "updates")
            p_leaves = treedef.flatten_up_to(params)
            if self.kind == "add_decayed_weights":
                paths = [
                    jax.tree_util.keystr(k)
                    for k, _ in jax.tree_util.tree_flatten_with_path(updates)[0]
                ]
                leaves = [
                    u + value.astype(u.dtype) * p if uses_weight_decay(path, self.exclude) else u
                    for u, p, path in zip(leaves, p_leaves, paths, strict=True)
                ]
            else:  # the average of the params after this update; updates pass through
                averages = treedef.flatten_up_to(state.slots["average"])
                new = [
                    param_average(a, (p + u).astype(a.dtype), value, state.step)
                    for a, p, u in zip(averages, p_leaves, leaves, strict=True)
                ]
                return updates, state._replace(step=step, slots={"average": treedef.unflatten(new)})
        return treedef.unflatten(leaves), state._replace(step=step)


def clip_by_norm(clipnorm: float) -> Block:
    """Clips each leaf to L2 norm ``clipnorm``: ``u * c / max(|u|, c)`` (Keras's ``clipnorm``).

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> tx = jopt.clip_by_norm(1.0)
        >>> tx.update({"w": jnp.array([3.0, 4.0])}, tx.init(None))[0]["w"]
        Array([0.6, 0.8], dtype=float32)
    """
    return Block("clip_by_norm", check_number("clipnorm", clipnorm, low=0.0, low_open=True))


def clip_by_global_norm(global_clipnorm: float) -> Block:
    """Scales every leaf by ``min(1, c / global_norm)`` (Keras's ``global_clipnorm``).

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> tx = jopt.clip_by_global_norm(1.0)
        >>> tx.update([jnp.array([3.0]), jnp.array([4.0])], tx.init(None))[0]
        [Array([0.6], dtype=float32), Array([0.8], dtype=float32)]
    """
    return Block(
        "clip_by_global_norm",
        check_number("global_clipnorm", global_clipnorm, low=0.0, low_open=True),
    )


def clip_by_value(clipvalue: float) -> Block:
    """Clips each element to ``[-clipvalue, clipvalue]`` (Keras's ``clipvalue``).

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> tx = jopt.clip_by_value(0.5)
        >>> tx.update({"w": jnp.array([-2.0, 0.25])}, tx.init(None))[0]["w"]
        Array([-0.5 ,  0.25], dtype=float32)
    """
    return Block("clip_by_value", check_number("clipvalue", clipvalue, low=0.0, low_open=True))


def scale(factor: float) -> Block:
    """Multiplies the updates by ``factor`` (e.g. ``-lr`` to turn gradients into a step).

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> tx = jopt.chain(jopt.clip_by_value(1.0), jopt.scale(-0.1))
        >>> tx.update({"w": jnp.array([5.0])}, tx.init({"w": jnp.zeros(1)}))[0]["w"]
        Array([-0.1], dtype=float32)
    """
    return Block("scale", check_number("factor", factor))


def add_decayed_weights(
    weight_decay: float, exclude: list[str] | tuple[str, ...] | None = None
) -> Block:
    """Adds ``weight_decay * params`` to the updates (L2-style decay before a rule).

    ``exclude``: regexes searched in each leaf's path (``"['dense']['bias']"``), as the
    optimizers' ``exclude_from_weight_decay``. (Keras's decoupled ``weight_decay`` is
    the optimizers' own option; this block is the composable, optax-style form.)

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> tx = jopt.add_decayed_weights(0.5, exclude=["bias"])
        >>> p = {"kernel": jnp.array([2.0]), "bias": jnp.array([2.0])}
        >>> u, _ = tx.update({"kernel": jnp.zeros(1), "bias": jnp.zeros(1)}, tx.init(p), p)
        >>> u["kernel"], u["bias"]
        (Array([1.], dtype=float32), Array([0.], dtype=float32))
    """
    return Block(
        "add_decayed_weights",
        check_number("weight_decay", weight_decay, low=0.0),
        None if exclude is None else check_strings("exclude", exclude, regex=True),
    )


def ema(ema_momentum: float = 0.99) -> Block:
    """Keeps Keras's moving average of the params (``use_ema``) in ``state.slots["average"]``:
    ``a = m * a + (1 - m) * (params + updates)``, ``a = params + updates`` on the first
    step. The updates pass through unchanged; put it last in a chain.

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> tx = jopt.chain(jopt.SGD(1.0), average=jopt.ema(0.5))
        >>> p = {"w": jnp.array([4.0])}
        >>> state = tx.init(p)
        >>> for _ in range(2):
        ...     u, state = tx.update({"w": jnp.array([1.0])}, state, p)
        ...     p = jopt.apply_updates(p, u)
        >>> p["w"], state["average"].slots["average"]["w"]
        (Array([2.], dtype=float32), Array([2.5], dtype=float32))
    """
    return Block("ema", check_number("ema_momentum", ema_momentum, 0.0, 1.0))
