"""Keras's Adadelta."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from typing_extensions import Unpack

from jopt.core.declarations import Hyperparam, keras_epsilon, unit_interval
from jopt.core.options import OptimizerOptions
from jopt.core.state import StepContext
from jopt.formulas.moments import ema_mix
from jopt.optimizers.optimizer import LearningRate, Optimizer, default

__all__ = ["Adadelta"]


class Adadelta(Optimizer):
    """Adadelta with Keras 3's rule: a learning rate on top of Zeiler's step.

    Rule, with ``g`` the gradient, ``lr`` the rate at this step and
    ``rms(x) = sqrt(x + epsilon)``::

        a = rho * a + (1 - rho) * g**2                  # slot "accumulated_grad"
        delta = -(rms(d) * g / rms(a))                  # d before this step's update
        d = rho * d + (1 - rho) * delta**2              # slot "accumulated_delta_var"
        w = w + lr * delta

    Both slots start at zero. ``learning_rate=1.0`` is the paper's rule.

    Args:
        learning_rate: a float >= 0 or a schedule. Default 0.001.
        rho: decay of both averages, in [0, 1] (Keras does not check it; 1 keeps both
            averages at zero, which is plain SGD). Default 0.95.
        epsilon: >= 0. Default 1e-7; ``None`` means 1e-7 (tf.keras 2's spelling).
        lr: tf.keras 2's alias of ``learning_rate``.
        decay: tf.keras 2's time-based decay ``lr_t / (1 + decay * t)``. Default 0.
        name: Keras's name; default ``None`` means ``"adadelta"`` (Keras adds a per-process
            counter to repeated names; jopt does not, so equal configs stay equal).

    Example:
        >>> import jax.numpy as jnp
        >>> from jopt.optimizers.adadelta import Adadelta
        >>> opt = Adadelta(learning_rate=1.0)
        >>> params = {"w": jnp.array([1.0])}
        >>> params, _ = opt.apply_gradients({"w": jnp.array([1.0])}, opt.init(params), params)
        >>> params["w"]
        Array([0.99858576], dtype=float32)
    """

    keras_name = "adadelta"
    nonnegative_slots = frozenset({"accumulated_grad", "accumulated_delta_var"})
    rho = Hyperparam(0.95, unit_interval)
    epsilon = Hyperparam(1e-7, keras_epsilon)

    def __init__(
        self,
        learning_rate: LearningRate = default(0.001),
        rho: float = 0.95,
        epsilon: float | None = 1e-7,
        **options: Unpack[OptimizerOptions],
    ) -> None:
        super().__init__(learning_rate, dict(rho=rho, epsilon=epsilon), options)

    def slot_names(self) -> tuple[str, ...]:
        return ("accumulated_grad", "accumulated_delta_var")

    def leaf_update(
        self, g: jax.Array, p: jax.Array | None, slots: dict[str, jax.Array], ctx: StepContext
    ) -> tuple[jax.Array, dict[str, Any]]:
        dtype = g.dtype
        lr = ctx.lr_as(dtype)
        rho, one_minus_rho = ctx.value("rho", dtype), ctx.complement("rho", dtype)
        epsilon = ctx.epsilon("epsilon", dtype)

        def rms(x: jax.Array) -> jax.Array:
            return jnp.sqrt(x + epsilon)

        grad_average = ema_mix(slots["accumulated_grad"], jnp.square(g), rho, one_minus_rho)
        delta = -((rms(slots["accumulated_delta_var"]) * g) / rms(grad_average))
        delta_average = ema_mix(
            slots["accumulated_delta_var"], jnp.square(delta), rho, one_minus_rho
        )
        return lr * delta, {
            "accumulated_grad": grad_average,
            "accumulated_delta_var": delta_average,
        }
