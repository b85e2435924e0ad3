"""Yogi: Adam whose second moment moves additively, by at most ``(1 - beta_2) g**2``."""

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

__all__ = ["Yogi"]


def yogi_second_moment(v: jax.Array, g2: jax.Array, one_minus_beta_2: Any) -> jax.Array:
    """``v - (1 - beta_2) * sign(v - g**2) * g**2``, with ``g2 = g**2`` (optax's order)."""
    return v - one_minus_beta_2 * jnp.sign(v - g2) * g2


class Yogi(Optimizer):
    """Yogi (Zaheer et al., 2018) with optax's rule (``optax.yogi``).

    Rule, with ``g`` the gradient, ``lr`` the rate at this step and ``t`` the 1-based
    number of this update; both slots start at ``initial_accumulator_value``::

        m = beta_1 * m + (1 - beta_1) * g                       # slot "momentum"
        v = v - (1 - beta_2) * sign(v - g**2) * g**2            # slot "velocity"
        w = w - lr * (m / (1 - beta_1**t)) / (sqrt(v / (1 - beta_2**t)) + epsilon)

    Args:
        learning_rate: a float >= 0 or a schedule. Default 0.01 (the paper's).
        beta_1: first-moment decay, in [0, 1). Default 0.9.
        beta_2: second-moment decay, in [0, 1). Default 0.999.
        epsilon: >= 0. Default 1e-3 (optax's and the paper's).
        initial_accumulator_value: both slots' start, >= 0. Default 1e-6.

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> opt = jopt.Yogi(learning_rate=0.1)
        >>> params = {"w": jnp.array([1.0])}
        >>> params, _ = opt.apply_gradients({"w": jnp.array([3.0])}, opt.init(params), params)
        >>> params["w"]
        Array([0.90003926], dtype=float32)
    """

    keras_name = "yogi"
    beta_1 = Hyperparam(0.9, unit_interval_open)
    beta_2 = Hyperparam(0.999, unit_interval_open)
    epsilon = Hyperparam(1e-3, non_negative)
    initial_accumulator_value = Hyperparam(1e-6, non_negative, live=False)

    def __init__(
        self,
        learning_rate: LearningRate = default(0.01),
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-3,
        initial_accumulator_value: float = 1e-6,
        **options: Unpack[OptimizerOptions],
    ) -> None:
        super().__init__(
            learning_rate,
            dict(
                beta_1=beta_1,
                beta_2=beta_2,
                epsilon=epsilon,
                initial_accumulator_value=initial_accumulator_value,
            ),
            options,
        )

    def slot_names(self) -> tuple[str, ...]:
        return ("momentum", "velocity")

    def init_slot(self, name: str, param: jax.Array, dtype: Any, path: str) -> jax.Array:
        """Both moments start at ``initial_accumulator_value`` (optax's); the base
        options' slots (accumulated gradients, average) at zero."""
        if name not in self.slot_names():
            return super().init_slot(name, param, dtype, path)
        return jnp.full_like(param, self.initial_accumulator_value, dtype)

    def leaf_update(
        self, g: jax.Array, p: jax.Array | None, slots: dict[str, jax.Array], ctx: StepContext
    ) -> tuple[jax.Array, dict[str, Any]]:
        dtype = g.dtype
        b1t, b2t = ctx.beta_power("beta_1"), ctx.beta_power("beta_2")
        m = ema_mix(
            slots["momentum"], g, ctx.cast("beta_1", dtype), ctx.complement("beta_1", dtype)
        )
        v = yogi_second_moment(slots["velocity"], jnp.square(g), ctx.complement("beta_2", dtype))
        direction = debias(m, b1t) / (jnp.sqrt(debias(v, b2t)) + ctx.epsilon("epsilon", dtype))
        return -(ctx.lr_as(dtype) * direction), {"momentum": m, "velocity": v}
