"""AdEMAMix: Adam plus a second, slow momentum that remembers old gradients."""

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

__all__ = ["AdEMAMix"]


class AdEMAMix(Optimizer):
    """AdEMAMix (Pagliardini et al., 2024) with optax's rule (``optax.contrib.ademamix``).

    Rule, with ``g`` the gradient, ``lr`` the rate at this step and ``t`` the 1-based
    number of this update::

        m1 = beta_1 * m1 + (1 - beta_1) * g             # slot "momentum"
        m2 = beta_3 * m2 + (1 - beta_3) * g             # slot "slow_momentum" (not debiased)
        v = beta_2 * v + (1 - beta_2) * g**2            # slot "velocity"
        w = w - lr * (m1 / (1 - beta_1**t) + alpha * m2) / (sqrt(v / (1 - beta_2**t)) + epsilon)

    ``beta_3`` and ``alpha`` are numbers held live in the state (optax also takes
    schedules of them: set them per step with ``jopt.set_hyperparams``). optax's
    ``weight_decay`` adds ``weight_decay * w`` to the direction before the rate; the base
    option ``weight_decay`` decays ``w -= lr * weight_decay * w`` before the rule, the same
    step in exact arithmetic (equal to float32 rounding, ``tests/test_optimizers_catalogue.py``).

    Args:
        learning_rate: a float >= 0 or a schedule. Default 0.001.
        beta_1: fast momentum decay, in [0, 1). Default 0.9.
        beta_2: second-moment decay, in [0, 1). Default 0.999.
        beta_3: slow momentum decay, in [0, 1). Default 0.9999.
        alpha: weight of the slow momentum, >= 0. Default 5.0 (optax's ``ademamix``).
        epsilon: >= 0. Default 1e-8.

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> opt = jopt.AdEMAMix(learning_rate=0.1)
        >>> params = {"w": jnp.array([1.0])}
        >>> params, _ = opt.apply_gradients({"w": jnp.array([3.0])}, opt.init(params), params)
        >>> params["w"]  # 1 - 0.1 * (3 + 5 * 3e-4) / 3
        Array([0.8999507], dtype=float32)
    """

    keras_name = "ademamix"
    beta_1 = Hyperparam(0.9, unit_interval_open)
    beta_2 = Hyperparam(0.999, unit_interval_open)
    beta_3 = Hyperparam(0.9999, unit_interval_open)
    alpha = Hyperparam(5.0, non_negative)
    epsilon = Hyperparam(1e-8, non_negative)

    def __init__(
        self,
        learning_rate: LearningRate = default(0.001),
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        beta_3: float = 0.9999,
        alpha: float = 5.0,
        epsilon: float = 1e-8,
        **options: Unpack[OptimizerOptions],
    ) -> None:
        super().__init__(
            learning_rate,
            dict(beta_1=beta_1, beta_2=beta_2, beta_3=beta_3, alpha=alpha, epsilon=epsilon),
            options,
        )

    def slot_names(self) -> tuple[str, ...]:
        return ("momentum", "slow_momentum", "velocity")

    def leaf_update(
        self, g: jax.Array, p: jax.Array | None, slots: dict[str, jax.Array], ctx: StepContext
    ) -> tuple[jax.Array, dict[str, Any]]:
        dtype = g.dtype
        b1t, b2t = ctx.beta_power("beta_1"), ctx.beta_power("beta_2")

        def ema(slot: str, beta: str, x: jax.Array) -> jax.Array:
            return ema_mix(slots[slot], x, ctx.cast(beta, dtype), ctx.complement(beta, dtype))

        m1, m2 = ema("momentum", "beta_1", g), ema("slow_momentum", "beta_3", g)
        v = ema("velocity", "beta_2", jnp.square(g))
        direction = (debias(m1, b1t) + ctx.cast("alpha", dtype) * m2) / (
            jnp.sqrt(debias(v, b2t)) + ctx.epsilon("epsilon", dtype)
        )
        new = {"momentum": m1, "slow_momentum": m2, "velocity": v}
        return -(ctx.lr_as(dtype) * direction), new
