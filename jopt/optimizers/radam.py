"""RAdam: Adam whose adaptive step is rectified, and off while its variance is unbounded."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from typing_extensions import Unpack

from jopt.core.declarations import Hyperparam, boolean, non_negative, real, unit_interval_open
from jopt.core.options import OptimizerOptions
from jopt.core.state import StepContext
from jopt.formulas.bias_correction import debias, nesterov_debias
from jopt.formulas.moments import ema_mix
from jopt.optimizers.optimizer import LearningRate, Optimizer, default

__all__ = ["RAdam"]


def _rho_inf(beta_2: Any) -> jax.Array:
    """``[rho_inf, (rho_inf - 4) * (rho_inf - 2)]`` for ``beta_2``, in float32 (computed
    in Python for a Python number, as optax does)."""
    rho_inf = 2.0 / (1.0 - beta_2) - 1.0
    return jnp.stack([jnp.asarray(rho_inf), jnp.asarray((rho_inf - 4.0) * (rho_inf - 2.0))])


class RAdam(Optimizer):
    """Rectified Adam (Liu et al., 2020) with optax's rule (``optax.radam``).

    Rule, with ``g`` the gradient, ``lr`` the rate at this step and ``t`` the 1-based
    number of this update::

        m = beta_1 * m + (1 - beta_1) * g               # slot "momentum"
        v = beta_2 * v + (1 - beta_2) * g**2            # slot "velocity"
        m_hat = m / (1 - beta_1**t)   (nesterov: beta_1 * m / (1 - beta_1**(t+1))
                                                 + (1 - beta_1) * g / (1 - beta_1**t))
        v_hat = v / (1 - beta_2**t)
        rho_inf = 2 / (1 - beta_2) - 1
        rho = rho_inf - 2 t beta_2**t / (1 - beta_2**t)
        r = sqrt((rho - 4)(rho - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho))
        w = w - lr * r * m_hat / (sqrt(v_hat) + epsilon)   if rho >= threshold
        w = w - lr * m_hat                                 otherwise (the first steps)

    ``torch.optim.RAdam`` has the same rule with epsilon added to ``sqrt(v)`` before the
    bias correction and ``rho > 5``: equal while ``sqrt(v)`` is far above epsilon. Its
    ``weight_decay`` (L2, added to the gradient) has no counterpart here; the base
    option ``weight_decay`` is Keras's decoupled decay ``w -= lr * weight_decay * w``
    (torch's ``decoupled_weight_decay=True``).

    Args:
        learning_rate: a float >= 0 or a schedule. Default 0.001.
        beta_1: first-moment decay, in [0, 1). Default 0.9.
        beta_2: second-moment decay, in [0, 1). Default 0.999.
        epsilon: >= 0. Default 1e-8 (optax's and torch's).
        threshold: the smallest ``rho`` at which the adaptive step is used. Default 5.0.
        nesterov: Nesterov's look-ahead momentum. Default ``False``.

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> opt = jopt.RAdam(learning_rate=0.1)
        >>> params = {"w": jnp.array([1.0])}
        >>> params, _ = opt.apply_gradients({"w": jnp.array([3.0])}, opt.init(params), params)
        >>> params["w"]  # the first steps are SGD with momentum: 1 - 0.1 * 3
        Array([0.70000005], dtype=float32)
    """

    keras_name = "radam"
    beta_1 = Hyperparam(0.9, unit_interval_open)
    beta_2 = Hyperparam(0.999, unit_interval_open)
    epsilon = Hyperparam(1e-8, non_negative)
    threshold = Hyperparam(5.0, real)
    nesterov = Hyperparam(False, boolean, live=False)

    def __init__(
        self,
        learning_rate: LearningRate = default(0.001),
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        threshold: float = 5.0,
        nesterov: bool = False,
        **options: Unpack[OptimizerOptions],
    ) -> None:
        super().__init__(
            learning_rate,
            dict(
                beta_1=beta_1,
                beta_2=beta_2,
                epsilon=epsilon,
                threshold=threshold,
                nesterov=nesterov,
            ),
            options,
        )

    def slot_names(self) -> tuple[str, ...]:
        return ("momentum", "velocity")

    @staticmethod
    def _factors(ctx: StepContext, dtype: Any) -> tuple[jax.Array, ...]:
        """The step's scalars: beta_1**t, beta_1**(t+1), beta_2**t, r, rho >= threshold."""
        t = ctx.count(jnp.float32)
        b1t, b2t = ctx.beta_power("beta_1"), ctx.beta_power("beta_2")
        b1t1 = ctx.beta_power("beta_1", ahead=1)
        rho_inf, rho_inf_prod = ctx.hyper("beta_2", _rho_inf, ("rho_inf", jnp.float32))
        rho = rho_inf - 2 * t * b2t / (1 - b2t)
        r = jnp.sqrt((rho - 4.0) * (rho - 2.0) * rho_inf / (rho_inf_prod * rho))
        on = rho >= ctx.value("threshold", jnp.float32)
        return b1t, b1t1, b2t, r.astype(dtype), on

    def leaf_update(
        self, g: jax.Array, p: jax.Array | None, slots: dict[str, jax.Array], ctx: StepContext
    ) -> tuple[jax.Array, dict[str, Any]]:
        dtype = g.dtype
        b1t, b1t1, b2t, r, on = ctx.shared(("radam", dtype), lambda: self._factors(ctx, dtype))
        b1, c1 = ctx.cast("beta_1", dtype), ctx.complement("beta_1", dtype)
        m = ema_mix(slots["momentum"], g, b1, c1)
        v = ema_mix(
            slots["velocity"],
            jnp.square(g),
            ctx.cast("beta_2", dtype),
            ctx.complement("beta_2", dtype),
        )
        m_hat = nesterov_debias(m, g, b1, c1, b1t, b1t1) if self.nesterov else debias(m, b1t)
        adaptive = r * m_hat / (jnp.sqrt(debias(v, b2t)) + ctx.epsilon("epsilon", dtype))
        direction = jnp.where(on, adaptive, m_hat)
        return -(ctx.lr_as(dtype) * direction), {"momentum": m, "velocity": v}
