"""LARS: SGD with momentum whose step per leaf is scaled by a layer-wise trust ratio."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from typing_extensions import Unpack

from jopt.core.declarations import Hyperparam, boolean, non_negative, positive, unit_interval
from jopt.core.options import OptimizerOptions
from jopt.core.state import StepContext
from jopt.optimizers.optimizer import LearningRate, Optimizer, default

__all__ = ["LARS"]


def lars_trust_ratio(
    w: jax.Array, u: jax.Array, coefficient: Any, epsilon: Any, ctx: StepContext
) -> jax.Array:
    """``coefficient * ||w|| / (||u|| + epsilon)`` over the whole leaf, or 1 where either
    norm is 0 (optax's ``scale_by_trust_ratio``); one per leaf of a bucket
    (:meth:`StepContext.leaf_sum`). The norms are ``jnp.linalg.norm``'s arithmetic."""
    w_norm, u_norm = (jnp.sqrt(ctx.leaf_sum(x * x)) for x in (w, u))
    ratio = coefficient * w_norm / (u_norm + epsilon)
    return jnp.where((w_norm == 0) | (u_norm == 0), jnp.ones([], w.dtype), ratio)


class LARS(Optimizer):
    """Layer-wise adaptive rate scaling (You et al., 2017) with optax's rule (``optax.lars``).

    Rule, per leaf (one "layer" is one leaf of the params), with ``g`` the gradient and
    ``lr`` the rate at this step::

        u = g + coupled_weight_decay * w
        r = trust_coefficient * ||w|| / (||u|| + epsilon), or 1 if either norm is 0
        m = momentum * m - lr * r * u                   # slot "momentum"
        w = w + m             (nesterov: w + momentum * m - lr * r * u)

    ``coupled_weight_decay`` is optax's ``weight_decay``: it enters the gradient, so the
    trust ratio and the momentum see it. The base option ``weight_decay`` is Keras's
    decoupled ``w -= lr * weight_decay * w`` before the rule, a different rule. optax's
    masks (``weight_decay_mask``, ``trust_ratio_mask``) are not offered: use
    ``jopt.partition`` to give some leaves (biases, norms) another optimizer. A NaN or
    Inf in one gradient element makes its whole leaf non-finite (the norms), as in optax.

    Args:
        learning_rate: a float >= 0 or a schedule. Default 1.0.
        momentum: in [0, 1]. Default 0.9.
        nesterov: Nesterov's look-ahead momentum. Default ``False``.
        trust_coefficient: > 0. Default 0.001.
        epsilon: >= 0, added to the update's norm. Default 0.0.
        coupled_weight_decay: >= 0, L2 decay added to the gradient. Default 0.0.

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> opt = jopt.LARS(learning_rate=1.0)
        >>> params = {"w": jnp.array([3.0, 4.0])}
        >>> grads = {"w": jnp.array([1.0, 0.0])}
        >>> params, _ = opt.apply_gradients(grads, opt.init(params), params)
        >>> params["w"]  # a step of 0.001 * ||w|| = 0.005
        Array([2.995, 4.   ], dtype=float32)
    """

    elementwise = False  # the trust ratio reads each leaf's norms (bucketed: segment sums)
    rule_reads_params = True

    keras_name = "lars"
    momentum = Hyperparam(0.9, unit_interval)
    nesterov = Hyperparam(False, boolean, live=False)
    trust_coefficient = Hyperparam(0.001, positive)
    epsilon = Hyperparam(0.0, non_negative)
    coupled_weight_decay = Hyperparam(0.0, non_negative)

    def __init__(
        self,
        learning_rate: LearningRate = default(1.0),
        momentum: float = 0.9,
        nesterov: bool = False,
        trust_coefficient: float = 0.001,
        epsilon: float = 0.0,
        coupled_weight_decay: float = 0.0,
        **options: Unpack[OptimizerOptions],
    ) -> None:
        super().__init__(
            learning_rate,
            dict(
                momentum=momentum,
                nesterov=nesterov,
                trust_coefficient=trust_coefficient,
                epsilon=epsilon,
                coupled_weight_decay=coupled_weight_decay,
            ),
            options,
        )

    def slot_names(self) -> tuple[str, ...]:
        return ("momentum",)

    def leaf_update(
        self, g: jax.Array, p: jax.Array | None, slots: dict[str, jax.Array], ctx: StepContext
    ) -> tuple[jax.Array, dict[str, Any]]:
        if p is None:
            raise ValueError("LARS needs params: call update(grads, state, params)")
        dtype = g.dtype
        u = g + ctx.cast("coupled_weight_decay", dtype) * p
        ratio = lars_trust_ratio(
            p, u, ctx.cast("trust_coefficient", dtype), ctx.cast("epsilon", dtype), ctx
        )
        u = -ctx.lr_as(dtype) * (u * ctx.spread(ratio))
        momentum = ctx.cast("momentum", dtype)
        m = u + momentum * slots["momentum"]
        return (u + momentum * m if self.nesterov else m), {"momentum": m}
