"""Keras's Lamb: Adam's direction, scaled per leaf by a trust ratio."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from typing_extensions import Unpack

from jopt.core.declarations import Hyperparam, non_negative, unit_interval_open
from jopt.core.options import OptimizerOptions
from jopt.core.state import StepContext
from jopt.formulas.moments import ema_step
from jopt.optimizers.optimizer import LearningRate, Optimizer, default

__all__ = ["Lamb"]


def _trust_ratio(w: jax.Array, update: jax.Array, ctx: StepContext) -> jax.Array:
    """``||w|| / ||update||`` over the whole leaf, or 1 where either norm is 0 (Keras's
    Lamb); one per leaf of a bucket (:meth:`StepContext.leaf_sum`)."""
    w_norm = jnp.sqrt(ctx.leaf_sum(jnp.power(w, 2)))
    u_norm = jnp.sqrt(ctx.leaf_sum(jnp.power(update, 2)))
    return jnp.where(w_norm > 0, jnp.where(u_norm > 0, w_norm / u_norm, 1.0), 1.0)


class Lamb(Optimizer):
    """Lamb with Keras 3's rule: bias-corrected Adam moments, epsilon outside the root.

    Rule, with ``g`` the gradient, ``lr`` the rate at this step and ``t`` the 1-based
    number of this update::

        m = m + (g - m) * (1 - beta_1)                  # slot "momentum"
        v = v + (g**2 - v) * (1 - beta_2)               # slot "velocity"
        u = (m / (1 - beta_1**t)) / (sqrt(v / (1 - beta_2**t)) + epsilon)
        r = ||w|| / ||u||, or 1 if either norm is 0      # norms over the whole leaf
        w = w - r * lr * u

    One "layer" of the paper is one leaf of the params pytree (Keras: one variable),
    whatever its rank; ``w`` is the param before this update, so ``update`` needs params.

    Args:
        learning_rate: a float >= 0 or a schedule. Default 0.001.
        beta_1: first-moment decay, in [0, 1). Default 0.9.
        beta_2: second-moment decay, in [0, 1). Default 0.999.
        epsilon: >= 0. Default 1e-7.
        lr: tf.keras 2's alias of ``learning_rate``.
        decay: tf.keras 2's time-based decay ``lr_t / (1 + decay * t)``. Default 0.
        name: Keras's name; default ``None`` means ``"lamb"`` (Keras adds a per-process
            counter to repeated names; jopt does not, so equal configs stay equal).

    Example:
        >>> import jax.numpy as jnp
        >>> from jopt.optimizers.lamb import Lamb
        >>> opt = Lamb(learning_rate=0.1)
        >>> params = {"w": jnp.array([3.0, 4.0])}
        >>> grads = {"w": jnp.array([1.0, 1.0])}
        >>> params, _ = opt.apply_gradients(grads, opt.init(params), params)
        >>> params["w"]  # the step has norm lr * ||w|| = 0.5
        Array([2.6464467, 3.6464467], dtype=float32)
    """

    elementwise = False  # reads each leaf's norm (bucketed: a segment sum)
    rule_reads_params = True

    keras_name = "lamb"
    nonnegative_slots = frozenset({"velocity"})
    beta_1 = Hyperparam(0.9, unit_interval_open)
    beta_2 = Hyperparam(0.999, unit_interval_open)
    epsilon = Hyperparam(1e-7, non_negative)

    def __init__(
        self,
        learning_rate: LearningRate = default(0.001),
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        **options: Unpack[OptimizerOptions],
    ) -> None:
        super().__init__(
            learning_rate,
            dict(beta_1=beta_1, beta_2=beta_2, epsilon=epsilon),
            options,
        )

    def slot_names(self) -> tuple[str, ...]:
        return ("momentum", "velocity")

    def leaf_update(
        self, g: jax.Array, p: jax.Array | None, slots: dict[str, jax.Array], ctx: StepContext
    ) -> tuple[jax.Array, dict[str, Any]]:
        if p is None:
            raise ValueError("Lamb needs params: call update(grads, state, params)")
        dtype = g.dtype
        lr = ctx.lr_as(dtype)
        beta_1_power, beta_2_power = ctx.shared(
            ("beta ** t", dtype),
            lambda: tuple(
                jnp.power(ctx.cast(b, dtype), ctx.count(dtype)) for b in ("beta_1", "beta_2")
            ),
        )
        m = ema_step(slots["momentum"], g, ctx.complement("beta_1", dtype))
        v = ema_step(slots["velocity"], jnp.square(g), ctx.complement("beta_2", dtype))
        m_hat = m / (1.0 - beta_1_power)
        v_sqrt = jnp.sqrt(v / (1.0 - beta_2_power)) + ctx.epsilon("epsilon", v.dtype)
        update = m_hat / v_sqrt
        ratio = ctx.spread(_trust_ratio(jnp.asarray(p, dtype), update, ctx) * lr)
        return -(ratio * update), {"momentum": m, "velocity": v}
