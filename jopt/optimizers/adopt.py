"""ADOPT: Adam with the second moment of the previous step, and the first moment after it."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from typing_extensions import Unpack

from jopt.core.declarations import Hyperparam, boolean, positive, unit_interval_open
from jopt.core.options import OptimizerOptions
from jopt.core.state import StepContext
from jopt.formulas.moments import ema_mix
from jopt.optimizers.optimizer import LearningRate, Optimizer, default

__all__ = ["ADOPT"]


class ADOPT(Optimizer):
    """ADOPT (Taniguchi et al., 2024) with optax's rule (``optax.contrib.adopt``).

    Rule, with ``g`` the gradient, ``lr`` the rate at this step and ``k`` the number of
    updates applied before this one; at ``k = 0`` both betas act as if ``beta_1 = 1``
    and ``beta_2 = 0``, so the first step only fills ``v`` and moves nothing::

        u = g / max(sqrt(v), epsilon)                   # v of the previous step
        use_clipping: u = clip(u, -k**0.25, k**0.25)
        v = beta_2 * v + (1 - beta_2) * g**2            # slot "velocity"
        m = beta_1 * m + (1 - beta_1) * u               # slot "momentum"
        w = w - lr * m        (nesterov: w - lr * (beta_1 * m + (1 - beta_1) * u))

    ``1 - beta`` is computed in the leaf's dtype, as optax does. optax's
    ``clip_value_fn`` (a callable) is fixed to its default ``k**0.25``.

    Args:
        learning_rate: a float >= 0 or a schedule. Default 0.001.
        beta_1: momentum decay, in [0, 1). Default 0.9.
        beta_2: second-moment decay, in [0, 1). Default 0.9999.
        epsilon: > 0 floor of ``sqrt(v)``. Default 1e-6.
        nesterov: Nesterov's look-ahead momentum. Default ``False``.
        use_clipping: clip the normalized gradient to ``k**0.25``. Default ``True``.

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> opt = jopt.ADOPT(learning_rate=0.1)
        >>> params = {"w": jnp.array([1.0])}
        >>> state = opt.init(params)
        >>> for _ in range(2):
        ...     params, state = opt.apply_gradients({"w": jnp.array([3.0])}, state, params)
        >>> params["w"]  # step 1 moves nothing; step 2 by lr * 0.1 * clip(3 / 3, 1)
        Array([0.99], dtype=float32)
    """

    keras_name = "adopt"
    beta_1 = Hyperparam(0.9, unit_interval_open)
    beta_2 = Hyperparam(0.9999, unit_interval_open)
    epsilon = Hyperparam(1e-6, positive)
    nesterov = Hyperparam(False, boolean, live=False)
    use_clipping = Hyperparam(True, boolean, live=False)

    def __init__(
        self,
        learning_rate: LearningRate = default(0.001),
        beta_1: float = 0.9,
        beta_2: float = 0.9999,
        epsilon: float = 1e-6,
        nesterov: bool = False,
        use_clipping: bool = True,
        **options: Unpack[OptimizerOptions],
    ) -> None:
        super().__init__(
            learning_rate,
            dict(
                beta_1=beta_1,
                beta_2=beta_2,
                epsilon=epsilon,
                nesterov=nesterov,
                use_clipping=use_clipping,
            ),
            options,
        )

    def slot_names(self) -> tuple[str, ...]:
        return ("momentum", "velocity")

    def leaf_update(
        self, g: jax.Array, p: jax.Array | None, slots: dict[str, jax.Array], ctx: StepContext
    ) -> tuple[jax.Array, dict[str, Any]]:
        dtype = g.dtype
        started = ctx.step > 0
        b1 = jnp.where(started, ctx.cast("beta_1", dtype), jnp.ones([], dtype))
        b2 = jnp.where(started, ctx.cast("beta_2", dtype), jnp.zeros([], dtype))
        v_old = slots["velocity"]
        v = ema_mix(v_old, jnp.square(g), b2, 1 - b2)
        u = g / jnp.maximum(jnp.sqrt(v_old), ctx.epsilon("epsilon", dtype))
        if self.use_clipping:
            bound = jnp.power(ctx.step.astype(jnp.float32), 0.25).astype(dtype)
            u = jnp.clip(u, -bound, bound)
        m = ema_mix(slots["momentum"], u, b1, 1 - b1)
        direction = ema_mix(m, u, b1, 1 - b1) if self.nesterov else m
        return -(ctx.lr_as(dtype) * direction), {"momentum": m, "velocity": v}
