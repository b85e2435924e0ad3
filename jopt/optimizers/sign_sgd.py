"""signSGD, and with momentum Signum: steps of size ``lr`` in the gradient's sign."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from typing_extensions import Unpack

from jopt.core.declarations import Hyperparam, unit_interval_open
from jopt.core.options import OptimizerOptions
from jopt.core.state import StepContext
from jopt.formulas.moments import ema_mix
from jopt.optimizers.optimizer import LearningRate, Optimizer, default

__all__ = ["SignSGD"]


class SignSGD(Optimizer):
    """signSGD and Signum (Bernstein et al., 2018) with optax's rules (``optax.sign_sgd``,
    ``optax.signum``).

    Rule, with ``g`` the gradient and ``lr`` the rate at this step::

        momentum == 0:  w = w - lr * sign(g)
        otherwise:      m = momentum * m + (1 - momentum) * g     # slot "momentum"
                        w = w - lr * sign(m)

    Args:
        learning_rate: a float >= 0 or a schedule. Default 0.01.
        momentum: in [0, 1). Default 0.0 (signSGD, no slot); optax's ``signum`` uses 0.9.
            Held live when not 0.

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> opt = jopt.SignSGD(learning_rate=0.1, momentum=0.9)
        >>> params = {"w": jnp.array([1.0, 1.0])}
        >>> grads = {"w": jnp.array([3.0, -0.001])}
        >>> params, _ = opt.apply_gradients(grads, opt.init(params), params)
        >>> params["w"]
        Array([0.9, 1.1], dtype=float32)
    """

    keras_name = "sign_sgd"
    momentum = Hyperparam(0.0, unit_interval_open, live="when on")

    def __init__(
        self,
        learning_rate: LearningRate = default(0.01),
        momentum: float = 0.0,
        **options: Unpack[OptimizerOptions],
    ) -> None:
        super().__init__(learning_rate, dict(momentum=momentum), options)

    def slot_names(self) -> tuple[str, ...]:
        return ("momentum",) if self.momentum != 0 else ()

    def leaf_update(
        self, g: jax.Array, p: jax.Array | None, slots: dict[str, jax.Array], ctx: StepContext
    ) -> tuple[jax.Array, dict[str, Any]]:
        dtype = g.dtype
        if self.momentum == 0:
            return -(ctx.lr_as(dtype) * jnp.sign(g)), {}
        m = ema_mix(
            slots["momentum"], g, ctx.cast("momentum", dtype), ctx.complement("momentum", dtype)
        )
        return -(ctx.lr_as(dtype) * jnp.sign(m)), {"momentum": m}
