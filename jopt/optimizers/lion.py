"""Keras's Lion: the sign of an interpolated momentum."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from typing_extensions import Unpack

from jopt.core.declarations import Hyperparam, in_range, unit_interval
from jopt.core.options import OptimizerOptions
from jopt.core.state import StepContext
from jopt.formulas.moments import ema_mix
from jopt.optimizers.optimizer import LearningRate, Optimizer, default

__all__ = ["Lion"]


class Lion(Optimizer):
    """Lion (EvoLved Sign Momentum) with Keras 3's rule.

    Rule, with ``g`` the gradient and ``lr`` the rate at this step; ``beta_1`` and
    ``beta_2`` are rounded to the param's dtype and ``1 - beta`` is computed in it::

        w = w - lr * sign(beta_1 * m + (1 - beta_1) * g)
        m = beta_2 * m + (1 - beta_2) * g               # slot "momentum"

    Its steps all have size ``lr``, so it wants a learning rate 3-10x smaller than
    AdamW's, and (through the ``weight_decay`` option) a weight decay 3-10x larger.

    Args:
        learning_rate: a float >= 0 or a schedule. Default 0.001.
        beta_1: weight of the momentum in the update's direction, in (0, 1] (0 would
            make it signSGD, which Keras refuses). Default 0.9.
        beta_2: decay of the momentum, in [0, 1]. Default 0.99.
        lr: tf.keras 2's alias of ``learning_rate``.
        decay: tf.keras 2's time-based decay ``lr_t / (1 + decay * t)``. Default 0.
        name: Keras's name; default ``None`` means ``"lion"`` (Keras adds a per-process
            counter to repeated names; jopt does not, so equal configs stay equal).

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> from jopt.optimizers.lion import Lion
        >>> opt = Lion(learning_rate=0.1)
        >>> params = {"w": jnp.array([1.0, 1.0])}
        >>> grads = {"w": jnp.array([3.0, -0.001])}
        >>> params, _ = opt.apply_gradients(grads, opt.init(params), params)
        >>> params["w"]
        Array([0.9, 1.1], dtype=float32)
    """

    keras_name = "lion"
    beta_1 = Hyperparam(0.9, in_range(0.0, 1.0, low_open=True))
    beta_2 = Hyperparam(0.99, unit_interval)

    def __init__(
        self,
        learning_rate: LearningRate = default(0.001),
        beta_1: float = 0.9,
        beta_2: float = 0.99,
        **options: Unpack[OptimizerOptions],
    ) -> None:
        super().__init__(learning_rate, dict(beta_1=beta_1, beta_2=beta_2), options)

    def slot_names(self) -> tuple[str, ...]:
        return ("momentum",)

    def leaf_update(
        self, g: jax.Array, p: jax.Array | None, slots: dict[str, jax.Array], ctx: StepContext
    ) -> tuple[jax.Array, dict[str, Any]]:
        dtype = g.dtype
        m = slots["momentum"]
        beta_1, beta_2 = ctx.cast("beta_1", dtype), ctx.cast("beta_2", dtype)
        direction = jnp.sign(ema_mix(m, g, beta_1, 1 - beta_1))
        new_m = ema_mix(m, g, beta_2, 1 - beta_2)
        return -(ctx.lr_as(dtype) * direction), {"momentum": new_m}
