"""Keras's SGD: plain, with momentum, and Nesterov."""

from __future__ import annotations

from typing import Any

import jax
from typing_extensions import Unpack

from jopt.core.declarations import Hyperparam, boolean, none_means, unit_interval
from jopt.core.options import OptimizerOptions
from jopt.core.state import StepContext
from jopt.formulas.momentum import nesterov_update, velocity
from jopt.optimizers.optimizer import LearningRate, Optimizer, default

__all__ = ["SGD"]


class SGD(Optimizer):
    """Stochastic gradient descent with Keras 3's momentum (velocity) form.

    Rule, with ``g`` the gradient and ``lr`` the rate at this step::

        momentum == 0:  w = w - lr * g
        otherwise:      v = momentum * v - lr * g          # slot "momentum", starts at 0
                        w = w + v                          # nesterov=False
                        w = w + momentum * v - lr * g      # nesterov=True (v is the new v)

    Args:
        learning_rate: a float >= 0 or a schedule (callable ``step -> rate``).
            Default 0.01.
        momentum: in [0, 1]. Default 0.0; ``None`` means 0.0 (tf.keras 2's spelling).
            Held live in the state only when it is not 0 (0 builds the step without
            the slot).
        nesterov: use Nesterov momentum. Default ``False``.
        lr: tf.keras 2's alias of ``learning_rate`` (giving both is a ``TypeError``).
        decay: tf.keras 2's time-based decay, >= 0: the rate of the update after ``t``
            applied updates is ``lr_t / (1 + decay * t)``, composed with any schedule.
            Default 0 (off, as in Keras 3, which removed it).
        name: Keras's name; default ``None`` means ``"sgd"`` (Keras adds a per-process
            counter to repeated names; jopt does not, so equal configs stay equal).

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> opt = jopt.SGD(learning_rate=0.1, momentum=0.9)
        >>> params = {"w": jnp.array([1.0, 2.0])}
        >>> state = opt.init(params)
        >>> params, state = opt.apply_gradients({"w": jnp.array([1.0, -1.0])}, state, params)
        >>> params["w"]
        Array([0.9, 2.1], dtype=float32)
    """

    keras_name = "sgd"
    momentum = Hyperparam(0.0, none_means(0.0, unit_interval), live="when on")
    nesterov = Hyperparam(False, boolean, live=False)

    def __init__(
        self,
        learning_rate: LearningRate = default(0.01),
        momentum: float | None = 0.0,
        nesterov: bool = False,
        **options: Unpack[OptimizerOptions],
    ) -> None:
        super().__init__(learning_rate, dict(momentum=momentum, nesterov=nesterov), options)

    def slot_names(self) -> tuple[str, ...]:
        return ("momentum",) if self.momentum != 0 else ()

    def leaf_update(
        self, g: jax.Array, p: jax.Array | None, slots: dict[str, jax.Array], ctx: StepContext
    ) -> tuple[jax.Array, dict[str, Any]]:
        lr = ctx.lr_as(g.dtype)
        if self.momentum == 0:
            return -(g * lr), {}
        m = ctx.cast("momentum", g.dtype)
        v = velocity(slots["momentum"], g, lr, m)
        update = nesterov_update(v, g, lr, m) if self.nesterov else v
        return update, {"momentum": v}
