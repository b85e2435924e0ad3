"""AdaBelief: Adam whose second moment tracks the gradient's deviation from its mean."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from typing_extensions import Unpack

from jopt.core.declarations import Hyperparam, boolean, non_negative, unit_interval_open
from jopt.core.options import OptimizerOptions
from jopt.core.state import StepContext
from jopt.formulas.bias_correction import debias, nesterov_debias
from jopt.formulas.moments import ema_mix
from jopt.optimizers.optimizer import LearningRate, Optimizer, default

__all__ = ["AdaBelief"]


class AdaBelief(Optimizer):
    """AdaBelief (Zhuang et al., 2020) with optax's rule (``optax.adabelief``).

    Rule, with ``g`` the gradient, ``lr`` the rate at this step and ``t`` the 1-based
    number of this update::

        m = beta_1 * m + (1 - beta_1) * g                           # slot "momentum"
        s = beta_2 * s + (1 - beta_2) * (g - m)**2 + epsilon_root   # slot "velocity"
        m_hat = m / (1 - beta_1**t)   (nesterov: as in jopt.RAdam)
        w = w - lr * m_hat / (sqrt(s / (1 - beta_2**t)) + epsilon)

    Args:
        learning_rate: a float >= 0 or a schedule. Default 0.001.
        beta_1: first-moment decay, in [0, 1). Default 0.9.
        beta_2: decay of the squared deviation, in [0, 1). Default 0.999.
        epsilon: >= 0, added to the root. Default 1e-16 (optax's).
        epsilon_root: >= 0, added to ``s`` each step (kept in the slot). Default 1e-16.
        nesterov: Nesterov's look-ahead momentum. Default ``False``.

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> opt = jopt.AdaBelief(learning_rate=0.1)
        >>> params = {"w": jnp.array([1.0])}
        >>> params, _ = opt.apply_gradients({"w": jnp.array([3.0])}, opt.init(params), params)
        >>> params["w"]  # m_hat = 3, s_hat = (3 - 0.3)**2: a step of 0.1 * 3 / 2.7
        Array([0.8888896], dtype=float32)
    """

    keras_name = "adabelief"
    beta_1 = Hyperparam(0.9, unit_interval_open)
    beta_2 = Hyperparam(0.999, unit_interval_open)
    epsilon = Hyperparam(1e-16, non_negative)
    epsilon_root = Hyperparam(1e-16, non_negative)
    nesterov = Hyperparam(False, boolean, live=False)

    def __init__(
        self,
        learning_rate: LearningRate = default(0.001),
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-16,
        epsilon_root: float = 1e-16,
        nesterov: bool = False,
        **options: Unpack[OptimizerOptions],
    ) -> None:
        super().__init__(
            learning_rate,
            dict(
                beta_1=beta_1,
                beta_2=beta_2,
                epsilon=epsilon,
                epsilon_root=epsilon_root,
                nesterov=nesterov,
            ),
            options,
        )

    def slot_names(self) -> tuple[str, ...]:
        return ("momentum", "velocity")

    def leaf_update(
        self, g: jax.Array, p: jax.Array | None, slots: dict[str, jax.Array], ctx: StepContext
    ) -> tuple[jax.Array, dict[str, Any]]:
        dtype = g.dtype
        b1t, b2t = ctx.beta_power("beta_1"), ctx.beta_power("beta_2")
        b1t1 = ctx.beta_power("beta_1", ahead=1)
        b1, c1 = ctx.cast("beta_1", dtype), ctx.complement("beta_1", dtype)
        m = ema_mix(slots["momentum"], g, b1, c1)
        s = ema_mix(
            slots["velocity"],
            jnp.square(g - m),
            ctx.cast("beta_2", dtype),
            ctx.complement("beta_2", dtype),
        ) + ctx.cast("epsilon_root", dtype)
        m_hat = nesterov_debias(m, g, b1, c1, b1t, b1t1) if self.nesterov else debias(m, b1t)
        direction = m_hat / (jnp.sqrt(debias(s, b2t)) + ctx.epsilon("epsilon", dtype))
        return -(ctx.lr_as(dtype) * direction), {"momentum": m, "velocity": s}
