"""Adan: Nesterov-style adaptive momentum from gradients and their differences."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from typing_extensions import Unpack

from jopt.core.declarations import Hyperparam, non_negative, unit_interval_open
from jopt.core.options import OptimizerOptions
from jopt.core.state import StepContext
from jopt.formulas.bias_correction import debias
from jopt.formulas.moments import ema_mix
from jopt.optimizers.optimizer import LearningRate, Optimizer, default

__all__ = ["Adan"]


class Adan(Optimizer):
    """Adan (Xie et al., 2022) with optax's rule (``optax.adan``).

    Rule, with ``g`` the gradient, ``lr`` the rate at this step, ``t`` the 1-based number
    of this update and ``d = g - g_prev`` (0 at the first step)::

        m = beta_1 * m + (1 - beta_1) * g                           # slot "momentum"
        n_d = beta_2 * n_d + (1 - beta_2) * d                       # slot "difference_momentum"
        v = beta_3 * v + (1 - beta_3) * (g + (1 - beta_2) * d)**2   # slot "velocity"
        g_prev = g                                                  # slot "previous_gradient"
        u = m / (1 - beta_1**t) + (1 - beta_2) * n_d / (1 - beta_2**t)
        w = w - lr * u / (sqrt(v / (1 - beta_3**t) + epsilon_root) + epsilon)

    optax's ``weight_decay`` adds ``weight_decay * w`` to ``u``; the base option
    ``weight_decay`` decays ``w -= lr * weight_decay * w`` before the rule, the same step
    in exact arithmetic (equal to float32 rounding, tested). The paper's proximal decay
    ``w / (1 + lr * weight_decay)`` is not offered.

    Args:
        learning_rate: a float >= 0 or a schedule. Default 0.001.
        beta_1: gradient momentum decay, in [0, 1). Default 0.98.
        beta_2: gradient-difference momentum decay, in [0, 1). Default 0.92.
        beta_3: second-moment decay, in [0, 1). Default 0.99.
        epsilon: >= 0, added to the root. Default 1e-8.
        epsilon_root: >= 0, added under the root. Default 1e-8 (optax's ``adan``).

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> opt = jopt.Adan(learning_rate=0.1)
        >>> params = {"w": jnp.array([1.0])}
        >>> params, _ = opt.apply_gradients({"w": jnp.array([3.0])}, opt.init(params), params)
        >>> params["w"]  # the first step is sign-like: 1 - 0.1 * 3 / 3
        Array([0.9], dtype=float32)
    """

    keras_name = "adan"
    beta_1 = Hyperparam(0.98, unit_interval_open)
    beta_2 = Hyperparam(0.92, unit_interval_open)
    beta_3 = Hyperparam(0.99, unit_interval_open)
    epsilon = Hyperparam(1e-8, non_negative)
    epsilon_root = Hyperparam(1e-8, non_negative)

    def __init__(
        self,
        learning_rate: LearningRate = default(0.001),
        beta_1: float = 0.98,
        beta_2: float = 0.92,
        beta_3: float = 0.99,
        epsilon: float = 1e-8,
        epsilon_root: float = 1e-8,
        **options: Unpack[OptimizerOptions],
    ) -> None:
        super().__init__(
            learning_rate,
            dict(
                beta_1=beta_1,
                beta_2=beta_2,
                beta_3=beta_3,
                epsilon=epsilon,
                epsilon_root=epsilon_root,
            ),
            options,
        )

    def slot_names(self) -> tuple[str, ...]:
        return ("momentum", "difference_momentum", "velocity", "previous_gradient")

    def leaf_update(
        self, g: jax.Array, p: jax.Array | None, slots: dict[str, jax.Array], ctx: StepContext
    ) -> tuple[jax.Array, dict[str, Any]]:
        dtype = g.dtype
        b1t, b2t, b3t = (
            ctx.beta_power("beta_1"),
            ctx.beta_power("beta_2"),
            ctx.beta_power("beta_3"),
        )

        def ema(slot: str, beta: str, x: jax.Array) -> jax.Array:
            return ema_mix(slots[slot], x, ctx.cast(beta, dtype), ctx.complement(beta, dtype))

        c2 = ctx.complement("beta_2", dtype)
        d = jnp.where(ctx.step == 0, jnp.zeros_like(g), g - slots["previous_gradient"])
        m, n_d = ema("momentum", "beta_1", g), ema("difference_momentum", "beta_2", d)
        v = ema("velocity", "beta_3", jnp.square(g + c2 * d))
        u = debias(m, b1t) + c2 * debias(n_d, b2t)
        root = jnp.sqrt(debias(v, b3t) + ctx.cast("epsilon_root", dtype))
        direction = u / (root + ctx.epsilon("epsilon", dtype))
        new = {"momentum": m, "difference_momentum": n_d, "velocity": v, "previous_gradient": g}
        return -(ctx.lr_as(dtype) * direction), new
