"""Keras's Nadam: Adam with Nesterov momentum and Dozat's momentum schedule."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from typing_extensions import Unpack

from jopt.core.declarations import Hyperparam, keras_epsilon, unit_interval_open
from jopt.core.options import OptimizerOptions
from jopt.core.state import StepContext
from jopt.formulas.moments import ema_step
from jopt.optimizers.optimizer import LearningRate, Optimizer, default

__all__ = ["Nadam"]

PyTree = Any


def _cast_rounded(x: jax.Array, dtype: Any) -> jax.Array:
    """``x.astype(dtype)`` that keeps ``x``'s rounding under ``jit`` too.

    XLA may compute a narrow (bfloat16) value in float32 and, when it is cast back up,
    skip the rounding in between (``xla_allow_excess_precision``, on by default);
    Keras's eager ops round, so ``reduce_precision`` pins that rounding.
    """
    if x.dtype == dtype:
        return x
    info = jnp.finfo(x.dtype)
    return lax.reduce_precision(x, info.nexp, info.nmant).astype(dtype)


def _schedule_factor(t: jax.Array) -> jax.Array:
    """Dozat's momentum warm-up ``1 - 0.5 * 0.96**t``, in ``t``'s dtype."""
    return 1.0 - 0.5 * jnp.power(jnp.asarray(0.96, t.dtype), t)


class Nadam(Optimizer):
    """Nadam with Keras 3's rule, including its optimizer-wide running product.

    Rule, with ``g`` the gradient, ``lr`` the rate at this step and ``t`` the 1-based
    number of this update; ``beta_1``, ``beta_2`` and 0.96 are rounded to the param's
    dtype and ``1 - beta`` is computed in it::

        mu(t) = beta_1 * (1 - 0.5 * 0.96**t)
        P = P * mu(t)                                   # state.scalars["u_product"]
        m = m + (g - m) * (1 - beta_1)                  # slot "momentum"
        v = v + (g**2 - v) * (1 - beta_2)               # slot "velocity"
        m_hat = mu(t+1) * m / (1 - P * mu(t+1)) + (1 - mu(t)) * g / (1 - P)
        v_hat = v / (1 - beta_2**t)
        w = w - m_hat * lr / (sqrt(v_hat) + epsilon)

    ``P`` (Keras's ``_u_product``, starting at 1) is shared by every leaf and updated
    once per step, before the leaves. Keras keeps it in the dtype of the first
    variable it was built with; jopt uses the first leaf of the params in
    ``jax.tree.leaves`` order (so a list of params in Keras's variable order gives
    Keras's choice; float32 for an empty tree). Each leaf casts it to its own dtype.

    Kept from Keras: with bfloat16 params the default ``beta_2=0.999`` rounds to 1.0,
    so ``1 - beta_2**t`` is 0 and every update is NaN; use e.g. ``beta_2=0.99``.

    Args:
        learning_rate: a float >= 0 or a schedule. Default 0.001.
        beta_1: first-moment decay, in [0, 1). Default 0.9.
        beta_2: second-moment decay, in [0, 1). Default 0.999.
        epsilon: >= 0. Default 1e-7; ``None`` means 1e-7 (tf.keras 2's spelling).
        lr: tf.keras 2's alias of ``learning_rate``.
        decay: tf.keras 2's time-based decay ``lr_t / (1 + decay * t)``. Default 0.
        name: Keras's name; default ``None`` means ``"nadam"`` (Keras adds a per-process
            counter to repeated names; jopt does not, so equal configs stay equal).

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> from jopt.optimizers.nadam import Nadam
        >>> opt = Nadam(learning_rate=0.1)
        >>> params = {"w": jnp.array([1.0])}
        >>> state = opt.init(params)
        >>> params, state = opt.apply_gradients({"w": jnp.array([3.0])}, state, params)
        >>> params["w"], state.scalars["u_product"]
        (Array([0.8937212], dtype=float32), Array(0.46799996, dtype=float32))
    """

    keras_name = "nadam"
    nonnegative_slots = frozenset({"velocity"})
    beta_1 = Hyperparam(0.9, unit_interval_open)
    beta_2 = Hyperparam(0.999, unit_interval_open)
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
        return ("momentum", "velocity")

    def init_scalars(self, params: PyTree) -> dict[str, jax.Array]:
        """Keras keeps ``u_product`` in its first variable's dtype: here the dtype the
        first leaf's rule runs in (float32 with master weights or wider slots)."""
        leaves = jax.tree.leaves(params)
        dtype = self.compute_dtype(jnp.result_type(leaves[0])) if leaves else jnp.float32
        return {"u_product": jnp.ones([], dtype)}

    def begin_step(self, ctx: StepContext) -> StepContext:
        u_product = ctx.scalars["u_product"]
        t = (ctx.step.astype(jnp.uint32) + 1).astype(u_product.dtype)  # no int32 wrap
        u_product = u_product * ctx.value("beta_1", u_product.dtype) * _schedule_factor(t)
        return ctx._replace(scalars={**ctx.scalars, "u_product": u_product})

    @staticmethod
    def _factors(ctx: StepContext, dtype: Any) -> tuple[jax.Array, ...]:
        """The step's scalars every leaf of ``dtype`` shares."""
        t = ctx.count(dtype)
        beta_1, beta_2 = ctx.cast("beta_1", dtype), ctx.cast("beta_2", dtype)
        u_t = beta_1 * _schedule_factor(t)
        u_t_1 = beta_1 * _schedule_factor((ctx.step.astype(jnp.uint32) + 2).astype(dtype))
        u_product_t = _cast_rounded(ctx.scalars["u_product"], dtype)
        return u_t, u_t_1, u_product_t, u_product_t * u_t_1, jnp.power(beta_2, t)

    def leaf_update(
        self, g: jax.Array, p: jax.Array | None, slots: dict[str, jax.Array], ctx: StepContext
    ) -> tuple[jax.Array, dict[str, Any]]:
        dtype = g.dtype
        u_t, u_t_1, u_product_t, u_product_t_1, beta_2_power = ctx.shared(
            ("nadam factors", dtype), lambda: self._factors(ctx, dtype)
        )
        m = ema_step(slots["momentum"], g, ctx.complement("beta_1", dtype, in_dtype=True))
        v = ema_step(
            slots["velocity"], jnp.square(g), ctx.complement("beta_2", dtype, in_dtype=True)
        )
        m_hat = (u_t_1 * m) / (1 - u_product_t_1) + ((1 - u_t) * g) / (1 - u_product_t)
        v_hat = v / (1 - beta_2_power)
        update = (m_hat * ctx.lr_as(dtype)) / (jnp.sqrt(v_hat) + ctx.epsilon("epsilon", dtype))
        return -update, {"momentum": m, "velocity": v}
