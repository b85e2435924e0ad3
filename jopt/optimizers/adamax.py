"""Keras's Adamax: Adam with the infinity norm in place of the second moment."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from typing_extensions import Unpack

from jopt.core.declarations import Hyperparam, keras_epsilon, unit_interval, unit_interval_open
from jopt.core.options import OptimizerOptions
from jopt.core.state import StepContext
from jopt.formulas.moments import ema_step
from jopt.optimizers.optimizer import LearningRate, Optimizer, default

__all__ = ["Adamax"]


class Adamax(Optimizer):
    """Adamax with Keras 3's rule: bias correction of the first moment only.

    Rule, with ``g`` the gradient, ``lr`` the rate at this step and ``t`` the 1-based
    number of this update::

        m = m + (g - m) * (1 - beta_1)                  # slot "momentum"
        u = max(beta_2 * u, |g|)                        # slot "norm"
        w = w - (lr * m) / ((1 - beta_1**t) * (u + epsilon))

    ``1 - beta_1`` is rounded once from the Python value, ``beta_1**t`` is computed
    from ``beta_1`` rounded to the param's dtype, as Keras does.

    Args:
        learning_rate: a float >= 0 or a schedule. Default 0.001.
        beta_1: first-moment decay, in [0, 1). Default 0.9.
        beta_2: decay of the infinity norm, in [0, 1]. Default 0.999.
        epsilon: >= 0. Default 1e-7; ``None`` means 1e-7 (tf.keras 2's spelling).
        lr: tf.keras 2's alias of ``learning_rate``.
        decay: tf.keras 2's time-based decay ``lr_t / (1 + decay * t)``. Default 0.
        name: Keras's name; default ``None`` means ``"adamax"`` (Keras adds a per-process
            counter to repeated names; jopt does not, so equal configs stay equal).

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> from jopt.optimizers.adamax import Adamax
        >>> opt = Adamax(learning_rate=0.1)
        >>> params = {"w": jnp.array([1.0])}
        >>> params, _ = opt.apply_gradients({"w": jnp.array([3.0])}, opt.init(params), params)
        >>> params["w"]
        Array([0.90000004], dtype=float32)
    """

    keras_name = "adamax"
    nonnegative_slots = frozenset({"norm"})
    beta_1 = Hyperparam(0.9, unit_interval_open)
    beta_2 = Hyperparam(0.999, unit_interval)
    epsilon = Hyperparam(1e-7, keras_epsilon)

    def __init__(
        self,
        learning_rate: LearningRate = default(0.001),
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float | None = 1e-7,
        **options: Unpack[OptimizerOptions],
    ) -> None:
        super().__init__(
            learning_rate,
            dict(beta_1=beta_1, beta_2=beta_2, epsilon=epsilon),
            options,
        )

    def slot_names(self) -> tuple[str, ...]:
        return ("momentum", "norm")

    def leaf_update(
        self, g: jax.Array, p: jax.Array | None, slots: dict[str, jax.Array], ctx: StepContext
    ) -> tuple[jax.Array, dict[str, Any]]:
        dtype = g.dtype
        beta_1_power = ctx.shared(
            ("beta_1 ** t", dtype), lambda: jnp.power(ctx.cast("beta_1", dtype), ctx.count(dtype))
        )
        m = ema_step(slots["momentum"], g, ctx.complement("beta_1", dtype))
        u = jnp.maximum(ctx.value("beta_2", dtype) * slots["norm"], jnp.abs(g))
        epsilon = ctx.epsilon("epsilon", dtype)
        update = (ctx.lr_as(dtype) * m) / ((1 - beta_1_power) * (u + epsilon))
        return -update, {"momentum": m, "norm": u}
