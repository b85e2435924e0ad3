"""Keras's ScheduleFreeAdamW: Adam steps on one sequence, the params interpolate an average."""

from __future__ import annotations

from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from typing_extensions import Unpack

from jopt.core.declarations import Hyperparam, in_range, integer, non_negative, unit_interval_open
from jopt.core.options import OptimizerOptions
from jopt.core.state import OptimizerState, StepContext
from jopt.formulas.moments import ema_mix, ema_step
from jopt.optimizers.optimizer import LearningRate, Optimizer, default

__all__ = ["ScheduleFreeAdamW"]

PyTree = Any


class ScheduleFreeAdamW(Optimizer):
    """Schedule-free AdamW with Keras 3's rule (Defazio et al., 2024).

    Three sequences: ``z`` (slot ``"momentum"``, where the Adam steps land; it starts as a
    copy of the params), the average ``x`` (not stored: recovered from ``y`` and ``z``)
    and ``y``, an interpolation of the two, which is what the params hold. Rule, with
    ``g`` the gradient (taken at ``y``), ``lr`` the rate at this step, ``t`` the 1-based
    number of this update and every constant in the param's dtype::

        warmup_steps > 0: lr = lr * min(t / warmup_steps, 1)
        v = v + (g**2 - v) * (1 - beta_2)                   # slot "velocity"
        z_new = z - lr * g / (sqrt(v / (1 - beta_2**t)) + epsilon)
        x = (y - (1 - beta_1) * z) / beta_1                 # the average, from the old z
        x = (1 - 1/t) * x + (1/t) * z_new
        y = (1 - beta_1) * z_new + beta_1 * x               # the new params

    So the params a model is trained with are ``y``; evaluate at the average ``x``, which
    :meth:`eval_params` recovers (Keras leaves that to the user). Weight decay (the base
    option) decays ``y`` before the rule, as Keras does.

    Needs the params: call ``update(grads, state, params)``.

    Args:
        learning_rate: a float >= 0 or a schedule. Default 0.0025.
        beta_1: the interpolation weight of ``x`` in ``y``, in (0, 1]. Default 0.9.
        beta_2: second-moment decay, in [0, 1). Default 0.999.
        epsilon: >= 0. Default 1e-8.
        warmup_steps: the rate rises linearly over this many steps, an integer >= 0.
            Default 0.
        name: Keras's name; default ``None`` means ``"schedule_free_adam_w"``.

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> from jopt.optimizers.schedule_free import ScheduleFreeAdamW
        >>> opt = ScheduleFreeAdamW(learning_rate=0.1)
        >>> params = {"w": jnp.array([1.0])}
        >>> state = opt.init(params)
        >>> for g in (2.0, -1.0):
        ...     params, state = opt.apply_gradients({"w": jnp.array([g])}, state, params)
        >>> params["w"], opt.eval_params(params, state)["w"]  # y, and x to evaluate at
        (Array([0.93479013], dtype=float32), Array([0.9316274], dtype=float32))
    """

    keras_name = "schedule_free_adam_w"
    nonnegative_slots = frozenset({"velocity"})
    exact_slots: ClassVar[dict[str, str]] = {
        "momentum": "it is z, the iterate the params are interpolated from (a copy of "
        "the params, needed exactly)"
    }
    # warmup_steps is an int that shapes the step: it stays in the config.
    beta_1 = Hyperparam(0.9, in_range(0.0, 1.0, low_open=True))
    beta_2 = Hyperparam(0.999, unit_interval_open)
    epsilon = Hyperparam(1e-8, non_negative)
    warmup_steps = Hyperparam(0, integer(0), live=False)
    # Keras assigns y_new to the variable: leaf_update returns it, not a difference.
    assigns_params = True

    def __init__(
        self,
        learning_rate: LearningRate = default(0.0025),
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        warmup_steps: int = 0,
        **options: Unpack[OptimizerOptions],
    ) -> None:
        super().__init__(
            learning_rate,
            dict(beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, warmup_steps=warmup_steps),
            options,
        )

    def slot_names(self) -> tuple[str, ...]:
        return ("momentum", "velocity")

    def init_slot(self, name: str, param: jax.Array, dtype: Any, path: str) -> jax.Array:
        """``"momentum"`` (``z``) starts as a copy of the param (a distinct buffer, so
        params and state can both be donated); the other slots at zeros."""
        if name == "momentum":
            return jnp.array(param, dtype, copy=True)
        return jnp.zeros_like(param, dtype)

    def eval_params(self, params: PyTree, state: OptimizerState) -> PyTree:
        """The averaged sequence ``x = (y - (1 - beta_1) * z) / beta_1``, where to evaluate.

        ``params`` are the trained params ``y``, ``state`` this optimizer's state after the
        same step.

        Example:
            >>> import jax.numpy as jnp
            >>> opt = ScheduleFreeAdamW()
            >>> params = {"w": jnp.ones(2)}
            >>> opt.eval_params(params, opt.init(params))["w"]  # before any step, x = y = z
            Array([1., 1.], dtype=float32)
        """

        ctx = StepContext(
            state.step, self.lr(state), state.scalars, state.hyperparams, self._initial
        )

        def x(y: jax.Array, z: jax.Array) -> jax.Array:
            beta_1 = ctx.cast("beta_1", y.dtype)  # the live value
            return (y - (1 - beta_1) * z) / beta_1

        return jax.tree.map(x, params, self.slots(state, params)["momentum"])

    def leaf_update(
        self, g: jax.Array, p: jax.Array | None, slots: dict[str, jax.Array], ctx: StepContext
    ) -> tuple[jax.Array, dict[str, Any]]:
        if p is None:
            raise ValueError("ScheduleFreeAdamW needs params: call update(grads, state, params)")
        dtype = g.dtype
        lr = ctx.lr_as(dtype)
        t = ctx.count(dtype)
        beta_1, beta_2 = ctx.cast("beta_1", dtype), ctx.cast("beta_2", dtype)
        if self.warmup_steps > 0:
            lr = lr * jnp.minimum(t / jnp.asarray(self.warmup_steps, dtype), 1.0)
        z = slots["momentum"]
        v = ema_step(slots["velocity"], jnp.square(g), 1 - beta_2)
        denominator = jnp.sqrt(
            v / ctx.shared(("1 - beta_2 ** t", dtype), lambda: 1 - jnp.power(beta_2, t))
        ) + ctx.epsilon("epsilon", dtype)
        z_new = z - (lr * g) / denominator
        weight = 1.0 / t
        x = (p - (1 - beta_1) * z) / beta_1
        x = ema_mix(x, z_new, 1 - weight, weight)
        y = ema_mix(x, z_new, beta_1, 1 - beta_1)
        return y, {"momentum": z_new, "velocity": v}
