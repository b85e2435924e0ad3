"""Keras's Adam, with AMSGrad."""

from __future__ import annotations

from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from typing_extensions import Unpack

from jopt.core.declarations import Hyperparam, boolean, keras_epsilon, unit_interval_open
from jopt.core.options import OptimizerOptions
from jopt.core.state import StepContext
from jopt.formulas.learning_rate import adam_step_size
from jopt.formulas.moments import ema_step
from jopt.optimizers.optimizer import LearningRate, Optimizer, default

__all__ = ["Adam"]


class Adam(Optimizer):
    """Adam with Keras 3's rule: bias correction folded into the step, epsilon outside the root.

    Rule, with ``g`` the gradient, ``lr`` the rate at this step and ``t`` the 1-based
    number of this update::

        alpha = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)
        m = m + (g - m) * (1 - beta_1)                  # slot "momentum"
        v = v + (g**2 - v) * (1 - beta_2)               # slot "velocity"
        amsgrad: v_hat = max(v_hat, v); v = v_hat       # slot "velocity_hat"
        w = w - m * alpha / (sqrt(v) + epsilon)

    Args:
        learning_rate: a float >= 0 or a schedule. Default 0.001.
        beta_1: first-moment decay, in [0, 1). Default 0.9.
        beta_2: second-moment decay, in [0, 1). Default 0.999.
        epsilon: >= 0. Default 1e-7; ``None`` means 1e-7 (tf.keras 2's spelling).
        amsgrad: use the running maximum of the second moment. Default ``False``.
        lr: tf.keras 2's alias of ``learning_rate``.
        decay: tf.keras 2's time-based decay ``lr_t / (1 + decay * t)``. Default 0.
        name: Keras's name; default ``None`` means ``"adam"`` (Keras adds a per-process
            counter to repeated names; jopt does not, so equal configs stay equal).

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> opt = jopt.Adam(learning_rate=0.1)
        >>> params = {"w": jnp.array([1.0])}
        >>> params, _ = opt.apply_gradients({"w": jnp.array([3.0])}, opt.init(params), params)
        >>> params["w"]
        Array([0.90000075], dtype=float32)
    """

    keras_name = "adam"
    nonnegative_slots = frozenset({"velocity", "velocity_hat"})
    beta_1 = Hyperparam(0.9, unit_interval_open)
    beta_2 = Hyperparam(0.999, unit_interval_open)
    epsilon = Hyperparam(1e-7, keras_epsilon)
    amsgrad = Hyperparam(False, boolean, live=False)

    #: Whether ``1 - beta`` is computed in the leaf's dtype (tf.keras 2's kernels, as
    #: :class:`jopt.legacy.Adam`) rather than in Python and rounded once (Keras 3).
    complement_in_leaf_dtype: ClassVar[bool] = False

    def __init__(
        self,
        learning_rate: LearningRate = default(0.001),
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float | None = 1e-7,
        amsgrad: bool = False,
        **options: Unpack[OptimizerOptions],
    ) -> None:
        super().__init__(
            learning_rate,
            dict(beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, amsgrad=amsgrad),
            options,
        )

    def slot_names(self) -> tuple[str, ...]:
        return ("momentum", "velocity") + (("velocity_hat",) if self.amsgrad else ())

    def leaf_update(
        self, g: jax.Array, p: jax.Array | None, slots: dict[str, jax.Array], ctx: StepContext
    ) -> tuple[jax.Array, dict[str, Any]]:
        dtype = g.dtype
        alpha = ctx.shared(
            ("adam step size", dtype),
            lambda: adam_step_size(
                ctx.lr_as(dtype),
                ctx.cast("beta_1", dtype),
                ctx.cast("beta_2", dtype),
                ctx.count(dtype),
            ),
        )
        in_dtype = self.complement_in_leaf_dtype
        new = {
            "momentum": ema_step(slots["momentum"], g, ctx.complement("beta_1", dtype, in_dtype)),
            "velocity": ema_step(
                slots["velocity"], jnp.square(g), ctx.complement("beta_2", dtype, in_dtype)
            ),
        }
        v = new["velocity"]
        if self.amsgrad:
            new["velocity_hat"] = v = jnp.maximum(slots["velocity_hat"], v)
        return -((new["momentum"] * alpha) / (jnp.sqrt(v) + ctx.epsilon("epsilon", dtype))), new
