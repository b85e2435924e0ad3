"""Keras's Muon: orthogonalized momentum for matrices, AdamW for every other leaf."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from typing_extensions import Unpack

from jopt.core.declarations import (
    Hyperparam,
    boolean,
    integer,
    non_negative,
    optional,
    positive,
    real,
    unit_interval,
    unit_interval_open,
)
from jopt.core.options import OptimizerOptions
from jopt.core.placement import replicate_like
from jopt.core.state import StepContext
from jopt.core.validation import check_strings
from jopt.formulas.learning_rate import adam_step_size
from jopt.formulas.moments import ema_step
from jopt.formulas.orthogonalize import newton_schulz
from jopt.formulas.weight_decay import uses_weight_decay
from jopt.optimizers.optimizer import LearningRate, Optimizer, default

__all__ = ["Muon"]

PyTree = Any


def _check_patterns(name: str, value: Any) -> tuple[str, ...] | None:
    """A list of regular expressions as a tuple (hashable); ``None`` for none, as Keras's
    ``exclude_layers or []``."""
    if value is None:
        return None
    value = check_strings(name, value)
    for pattern in value:
        try:
            re.compile(pattern)
        except re.error as e:
            raise ValueError(f"{name}: {pattern!r} is not a valid regular expression: {e}") from e
    return tuple(value) or None


class Muon(Optimizer):
    """Muon with Keras 3's rule: Newton-Schulz-orthogonalized momentum on 2-D leaves.

    Each leaf takes one of two rules, chosen from its pytree path (the string
    ``jax.tree_util.keystr`` writes, e.g. ``"['dense']['kernel']"``; Keras uses the
    variable's ``path``, e.g. ``"dense/kernel"``) and its rank:

    * the AdamW rule if the leaf's rank is not 2, or ``exclude_embeddings`` and the path
      contains ``"embedding"`` (any case), or ``re.search(pattern, path)`` matches one
      of ``exclude_layers``;
    * the Muon rule otherwise.

    Rules, with ``g`` the gradient, ``lr`` the rate at this step and ``t`` the 1-based
    number of this update::

        Muon:   m = m + (g + m * (momentum - 1))                     # slot "momentum"
                d = g + momentum * m   if nesterov else   m
                o = newton_schulz(d, ns_steps, muon_a, muon_b, muon_c)
                w = w - lr * o * sqrt(max(rows, cols)) * rms_rate    # rms_rate None: no factor
        AdamW:  lr_a = lr * adam_lr_ratio
                m = m + (g - m) * (1 - adam_beta_1)                  # slot "momentum"
                v = v + (g**2 - v) * (1 - adam_beta_2)               # slot "velocity"
                w = w - m * lr_a * sqrt(1 - adam_beta_2**t) / (1 - adam_beta_1**t)
                          / (sqrt(v) + epsilon)

    Weight decay comes first (the base applies it before the rule, as Keras does):
    ``w = w - w * wd * lr`` with ``lr`` the step's rate (not scaled by ``adam_lr_ratio``)
    and ``wd`` chosen per leaf by :meth:`leaf_weight_decay`: ``adam_weight_decay`` on
    AdamW leaves, ``weight_decay`` on Muon leaves, ``None`` skipping it. Decay needs the
    params: call ``update(grads, state, params)``.

    So a pytree's leaves take the rule their path gives them: a flat list of params
    (paths ``"[0]"``, ``"[1]"``...) matches no layer name or ``"embedding"``.

    The rule of each leaf is decided by :meth:`init` and recorded in the state: a leaf
    on the AdamW rule has a param-shaped ``"velocity"`` slot; one on the Muon rule has
    none in Keras, here a placeholder of shape ``(1,)``. On bfloat16 params a Muon
    leaf's update is float32 (Keras subtracts the float32 ``lr * o`` and rounds once).

    Args:
        learning_rate: a float >= 0 or a schedule. Default 0.001.
        adam_beta_1: AdamW's first-moment decay, in [0, 1). Default 0.9.
        adam_beta_2: AdamW's second-moment decay, in [0, 1). Default 0.999.
        adam_weight_decay: decay of AdamW leaves, >= 0 or ``None``. Default 0.004.
        epsilon: AdamW's epsilon, >= 0. Default 1e-7.
        weight_decay: decay of Muon leaves, >= 0 or ``None``. Default 0.004.
        exclude_layers: regular expressions; a leaf whose path matches one takes the
            AdamW rule. Default ``None`` (none).
        exclude_embeddings: leaves whose path contains ``"embedding"`` take the AdamW
            rule. Default ``True``.
        muon_a: the Newton-Schulz quintic's first coefficient. Default 3.4445.
        muon_b: its second coefficient. Default -4.7750.
        muon_c: its third coefficient. Default 2.0315.
        adam_lr_ratio: the AdamW rule's rate over ``learning_rate``, >= 0. Default 1.
        momentum: the Muon rule's momentum, in [0, 1]. Default 0.95.
        ns_steps: Newton-Schulz iterations, an integer >= 0. Default 5.
        nesterov: Nesterov momentum for the Muon rule. Default ``True``.
        rms_rate: scales a Muon update by ``sqrt(max(rows, cols)) * rms_rate`` (Moonlight's
            RMS matching), > 0, or ``None`` for no scaling. Default 0.2.
        name: Keras's name; default ``None`` means ``"muon"``.

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> from jopt.optimizers.muon import Muon
        >>> opt = Muon(learning_rate=0.01, weight_decay=None, adam_weight_decay=None)
        >>> params = {"dense": {"kernel": jnp.ones((2, 2)), "bias": jnp.zeros(2)}}
        >>> state = opt.init(params)
        >>> state.slots["velocity"]["dense"]["kernel"].shape  # Muon rule: a placeholder
        (1,)
        >>> grads = {"dense": {"kernel": jnp.eye(2), "bias": jnp.ones(2)}}
        >>> params, state = opt.apply_gradients(grads, state, params)
        >>> params["dense"]["bias"]
        Array([-0.0099999, -0.0099999], dtype=float32)
    """

    elementwise = False  # reads each matrix's shape (bucketed: kept apart)

    keras_name = "muon"
    nonnegative_slots = frozenset({"velocity"})
    # weight_decay is the base option's; exclude_*, ns_steps and nesterov shape the step.
    adam_beta_1 = Hyperparam(0.9, unit_interval_open)
    adam_beta_2 = Hyperparam(0.999, unit_interval_open)
    adam_weight_decay = Hyperparam(0.004, optional(non_negative), live="when on")
    epsilon = Hyperparam(1e-7, non_negative)
    exclude_layers = Hyperparam(None, _check_patterns, live=False)
    exclude_embeddings = Hyperparam(True, boolean, live=False)
    muon_a = Hyperparam(3.4445, real)
    muon_b = Hyperparam(-4.7750, real)
    muon_c = Hyperparam(2.0315, real)
    adam_lr_ratio = Hyperparam(1, non_negative)
    momentum = Hyperparam(0.95, unit_interval)
    ns_steps = Hyperparam(5, integer(0), live=False)
    nesterov = Hyperparam(True, boolean, live=False)
    rms_rate = Hyperparam(0.2, optional(positive), live="when on")

    # weight_decay is also a common option (OptimizerOptions): here it is the rule's own,
    # with Keras's default for this class, which mypy reports as an overlap.
    def __init__(  # type: ignore[misc]
        self,
        learning_rate: LearningRate = default(0.001),
        adam_beta_1: float = 0.9,
        adam_beta_2: float = 0.999,
        adam_weight_decay: float | None = 0.004,
        epsilon: float = 1e-7,
        weight_decay: float | None = 0.004,
        exclude_layers: Sequence[str] | None = None,
        exclude_embeddings: bool = True,
        muon_a: float = 3.4445,
        muon_b: float = -4.7750,
        muon_c: float = 2.0315,
        adam_lr_ratio: float = 1,
        momentum: float = 0.95,
        ns_steps: int = 5,
        nesterov: bool = True,
        rms_rate: float | None = 0.2,
        **options: Unpack[OptimizerOptions],
    ) -> None:
        options = {"weight_decay": weight_decay, **options}
        super().__init__(
            learning_rate,
            dict(
                adam_beta_1=adam_beta_1,
                adam_beta_2=adam_beta_2,
                adam_weight_decay=adam_weight_decay,
                epsilon=epsilon,
                exclude_layers=exclude_layers,
                exclude_embeddings=exclude_embeddings,
                muon_a=muon_a,
                muon_b=muon_b,
                muon_c=muon_c,
                adam_lr_ratio=adam_lr_ratio,
                momentum=momentum,
                ns_steps=ns_steps,
                nesterov=nesterov,
                rms_rate=rms_rate,
            ),
            options,
        )

    def get_config(self) -> dict[str, Any]:
        """Keras's config; ``exclude_layers`` is written as Keras writes it, a list."""
        config = super().get_config()
        config["exclude_layers"] = list(self.exclude_layers or ())
        return config

    def uses_adamw(self, path: str, ndim: int) -> bool:
        """Whether the leaf at ``path`` (a ``keystr``) of rank ``ndim`` takes the AdamW rule.

        Example:
            >>> from jopt.optimizers.muon import Muon
            >>> opt = Muon(exclude_layers=["head"])
            >>> [opt.uses_adamw(p, 2) for p in ("['dense']['kernel']", "['head']['kernel']")]
            [False, True]
            >>> opt.uses_adamw("['Embedding']['embeddings']", 2), opt.uses_adamw("['b']", 1)
            (True, True)
        """
        if ndim != 2:
            return True
        if self.exclude_embeddings and "embedding" in path.lower():
            return True
        return any(re.search(pattern, path) for pattern in self.exclude_layers or ())

    def slot_names(self) -> tuple[str, ...]:
        return ("momentum", "velocity")

    def keeps_leaf_shape(self, path: str, ndim: int) -> bool:
        """Leaves on the Muon rule (orthogonalized as matrices) keep their shape."""
        return not self.uses_adamw(path, ndim)

    def init_slot(self, name: str, param: jax.Array, dtype: Any, path: str) -> jax.Array:
        """A ``"velocity"`` slot only on the leaves on the AdamW rule."""
        if name != "velocity" or self.uses_adamw(path, jnp.ndim(param)):
            return jnp.zeros_like(param, dtype)
        # A one-element placeholder: checkpointers refuse zero-size arrays (orbax),
        # and no Muon-rule leaf (2-D) has this shape, so the rule stays readable.
        return replicate_like(jnp.zeros((1,), dtype), param)  # on the param's devices

    def weight_decay_name(self, path: str, ndim: int) -> str | None:
        """The weight decay of the leaf at ``path`` of rank ``ndim``, as Keras's Muon
        chooses it: ``"adam_weight_decay"`` on AdamW leaves, ``"weight_decay"`` on Muon
        leaves, ``None`` (no decay) where ``exclude_from_weight_decay`` matches the path
        or the chosen decay is ``None`` or 0.

        Example:
            >>> from jopt.optimizers.muon import Muon
            >>> opt = Muon(exclude_from_weight_decay=["bias"])
            >>> [opt.leaf_weight_decay(p, 2) for p in ("['dense']['kernel']", "['dense']['bias']")]
            [0.004, None]
            >>> opt.weight_decay_name("['dense']['kernel']", 2)
            'weight_decay'
        """
        if not uses_weight_decay(path, self.exclude_from_weight_decay):
            return None
        name = "adam_weight_decay" if self.uses_adamw(path, ndim) else "weight_decay"
        return name if getattr(self, name) else None

    def decays_weights(self) -> bool:
        """Whether any leaf may get weight decay (then ``update`` needs the params)."""
        return bool(self.weight_decay or self.adam_weight_decay)

    def leaf_update(
        self, g: jax.Array, p: jax.Array | None, slots: dict[str, jax.Array], ctx: StepContext
    ) -> tuple[jax.Array, dict[str, Any]]:
        if slots["velocity"].shape == g.shape:
            step, new = self._adamw_step(g, slots, ctx)
        else:
            step, new = self._muon_step(g, slots, ctx)
        return -step, new

    def _adamw_step(
        self, g: jax.Array, slots: dict[str, jax.Array], ctx: StepContext
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        dtype = g.dtype
        alpha = ctx.shared(
            ("adam step size", dtype),
            lambda: adam_step_size(
                (ctx.lr * ctx.value("adam_lr_ratio", ctx.lr.dtype)).astype(dtype),
                ctx.cast("adam_beta_1", dtype),
                ctx.cast("adam_beta_2", dtype),
                ctx.count(dtype),
            ),
        )
        m = ema_step(slots["momentum"], g, ctx.complement("adam_beta_1", dtype))
        v = ema_step(slots["velocity"], jnp.square(g), ctx.complement("adam_beta_2", dtype))
        return (m * alpha) / (jnp.sqrt(v) + ctx.epsilon("epsilon", dtype)), {
            "momentum": m,
            "velocity": v,
        }

    def _muon_step(
        self, g: jax.Array, slots: dict[str, jax.Array], ctx: StepContext
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        dtype = g.dtype
        # Keras's momentum - 1 is computed in Python and rounded once.
        decay = ctx.hyper("momentum", lambda b: jnp.asarray(b - 1).astype(dtype))
        m = slots["momentum"] + (g + slots["momentum"] * decay)
        d = g + ctx.value("momentum", dtype) * m if self.nesterov else m
        a, b, c = (ctx.value(name, dtype) for name in ("muon_a", "muon_b", "muon_c"))
        x = ctx.lr * newton_schulz(d, self.ns_steps, a, b, c)
        if self.rms_rate is not None:
            # Keras's Moonlight scaling: sqrt of an int32 max, a float32 factor.
            x = x * jnp.sqrt(jnp.maximum(x.shape[0], x.shape[1])) * ctx.value("rms_rate", x.dtype)
        return x, {"momentum": m, "velocity": slots["velocity"]}
