"""Keras's RMSprop: plain, centered, with momentum."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from typing_extensions import Unpack

from jopt.core.declarations import (
    Hyperparam,
    boolean,
    keras_epsilon,
    none_means,
    unit_interval,
    unit_interval_open,
)
from jopt.core.options import OptimizerOptions
from jopt.core.state import StepContext
from jopt.formulas.moments import ema_mix
from jopt.formulas.momentum import heavy_ball
from jopt.optimizers.optimizer import LearningRate, Optimizer, default

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """RMSprop with Keras 3's rule: epsilon inside the square root.

    Rule, with ``g`` the gradient and ``lr`` the rate at this step::

        v = rho * v + (1 - rho) * g**2                  # slot "velocity"
        centered:  a = rho * a + (1 - rho) * g          # slot "average_gradient"
                   d = v - a**2 + epsilon
        otherwise: d = v + epsilon
        inc = lr * g / sqrt(d)
        momentum == 0: w = w - inc
        otherwise:     m = momentum * m + inc;  w = w - m   # slot "momentum"

    (tf.keras 2 put epsilon outside the root when momentum is 0: see
    :class:`jopt.legacy.RMSprop` for that rule.)

    Args:
        learning_rate: a float >= 0 or a schedule. Default 0.001.
        rho: discount of the squared-gradient average, in [0, 1). Default 0.9.
        momentum: in [0, 1]. Default 0.0; ``None`` means 0.0. Held live in the state
            only when it is not 0 (0 builds the step without the slot).
        epsilon: >= 0. Default 1e-7; ``None`` means 1e-7 (tf.keras 2's spelling).
        centered: divide by an estimate of the variance instead of the second moment.
            Default ``False``.
        lr: tf.keras 2's alias of ``learning_rate``.
        decay: tf.keras 2's time-based decay ``lr_t / (1 + decay * t)``. Default 0.
        name: Keras's name; default ``None`` means ``"rm_sprop"`` (Keras adds a per-process
            counter to repeated names; jopt does not, so equal configs stay equal).

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> opt = jopt.RMSprop(learning_rate=0.01)
        >>> params = {"w": jnp.array([1.0])}
        >>> params, _ = opt.apply_gradients({"w": jnp.array([0.5])}, opt.init(params), params)
        >>> params["w"]
        Array([0.9683773], dtype=float32)
    """

    keras_name = "rm_sprop"
    nonnegative_slots = frozenset({"velocity"})
    rho = Hyperparam(0.9, unit_interval_open)
    momentum = Hyperparam(0.0, none_means(0.0, unit_interval), live="when on")
    epsilon = Hyperparam(1e-7, keras_epsilon)
    centered = Hyperparam(False, boolean, live=False)

    def __init__(
        self,
        learning_rate: LearningRate = default(0.001),
        rho: float = 0.9,
        momentum: float | None = 0.0,
        epsilon: float | None = 1e-7,
        centered: bool = False,
        **options: Unpack[OptimizerOptions],
    ) -> None:
        super().__init__(
            learning_rate,
            dict(rho=rho, momentum=momentum, epsilon=epsilon, centered=centered),
            options,
        )

    def slot_names(self) -> tuple[str, ...]:
        return (
            ("velocity",)
            + (("momentum",) if self.momentum > 0 else ())
            + (("average_gradient",) if self.centered else ())
        )

    def leaf_update(
        self, g: jax.Array, p: jax.Array | None, slots: dict[str, jax.Array], ctx: StepContext
    ) -> tuple[jax.Array, dict[str, Any]]:
        dtype = g.dtype
        lr = ctx.lr_as(dtype)
        rho, one_minus_rho = ctx.value("rho", dtype), ctx.complement("rho", dtype)
        new: dict[str, Any] = {
            "velocity": ema_mix(slots["velocity"], jnp.square(g), rho, one_minus_rho)
        }
        if self.centered:
            new["average_gradient"] = ema_mix(slots["average_gradient"], g, rho, one_minus_rho)
            denominator = (
                new["velocity"]
                - jnp.square(new["average_gradient"])
                + ctx.epsilon("epsilon", dtype)
            )
        else:
            denominator = new["velocity"] + ctx.epsilon("epsilon", dtype)
        increment = (lr * g) / jnp.sqrt(denominator)
        if self.momentum > 0:
            new["momentum"] = heavy_ball(slots["momentum"], increment, ctx.value("momentum", dtype))
            return -new["momentum"], new
        return -increment, new
