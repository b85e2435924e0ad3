"""Keras's Ftrl (follow the regularized leader), with L1, L2 and L2-shrinkage."""

from __future__ import annotations

from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from typing_extensions import Unpack

from jopt.core.declarations import Hyperparam, in_range, keeps_int, non_negative
from jopt.core.options import OptimizerOptions
from jopt.core.state import StepContext
from jopt.formulas.accumulators import accumulate_square, constant_like
from jopt.optimizers.optimizer import LearningRate, Optimizer, default

__all__ = ["Ftrl"]

PyTree = Any


class Ftrl(Optimizer):
    """FTRL-Proximal with Keras 3's rule: the param is recomputed from two slots each step.

    Rule, with ``g`` the gradient, ``lr`` the rate at this step, ``w`` the param before
    this update and ``q = -learning_rate_power``::

        l2 = l2_regularization_strength + beta / (2 * lr)
        g_s = g + 2 * l2_shrinkage_regularization_strength * w
        n_new = n + g**2                            # slot "accumulator", starts at
                                                    #   initial_accumulator_value
        z = z + g_s - (n_new**q - n**q) / lr * w    # slot "linear", starts at 0
        w = (clip(z, -l1, l1) - z) / (n_new**q / lr + 2 * l2)

    with ``l1 = l1_regularization_strength``: where ``|z| <= l1`` the param is exactly 0.
    Keras assigns the new ``w``, and so does jopt's ``apply`` / ``apply_gradients``
    (bit-identical to Keras); ``update`` returns ``w_new - w``, so it needs params, and
    ``w + (w_new - w)`` can round to a neighbour of ``w_new`` now and then.

    Args:
        learning_rate: a float >= 0 or a schedule. Default 0.001.
        learning_rate_power: <= 0; 0 keeps the rate fixed. Default -0.5. A Python int
            stays an int, as in Keras, whose ``n**q`` is then an exact integer power
            rather than ``pow`` (for ``q = 3`` a quarter of the results differ in the
            last bit).
        initial_accumulator_value: >= 0. Default 0.1.
        l1_regularization_strength: >= 0. Default 0.0.
        l2_regularization_strength: >= 0 (the stabilizing L2 of the paper). Default 0.0.
        l2_shrinkage_regularization_strength: >= 0 (an L2 penalty added to the
            gradient: a magnitude penalty). Default 0.0.
        beta: the paper's beta, >= 0 (Keras does not check it; a negative one can make
            the denominator negative). Default 0.0.
        lr: tf.keras 2's alias of ``learning_rate``.
        decay: tf.keras 2's time-based decay ``lr_t / (1 + decay * t)``. Default 0.
        name: Keras's name; default ``None`` means ``"ftrl"`` (Keras adds a per-process
            counter to repeated names; jopt does not, so equal configs stay equal).

    Example:
        >>> import jax.numpy as jnp
        >>> from jopt.optimizers.ftrl import Ftrl
        >>> opt = Ftrl(learning_rate=0.1, l1_regularization_strength=0.5)
        >>> params = {"w": jnp.array([0.0, 0.0])}
        >>> grads = {"w": jnp.array([0.1, 1.0])}
        >>> params, _ = opt.apply_gradients(grads, opt.init(params), params)
        >>> params["w"]  # |z| <= l1 gives exactly 0
        Array([ 0.        , -0.04767313], dtype=float32)
    """

    keras_name = "ftrl"
    exact_slots: ClassVar[dict[str, str]] = {
        name: "Ftrl sets the weights from its accumulator and linear term themselves "
        "directly, so 8-bit rounding of them would move the weights, not just the step"
        for name in ("accumulator", "linear")
    }
    assigns_params = True
    # initial_accumulator_value is read by init only: it stays in the config.
    learning_rate_power = Hyperparam(-0.5, keeps_int(in_range(high=0.0)))
    initial_accumulator_value = Hyperparam(0.1, non_negative, live=False)
    l1_regularization_strength = Hyperparam(0.0, non_negative)
    l2_regularization_strength = Hyperparam(0.0, non_negative)
    l2_shrinkage_regularization_strength = Hyperparam(0.0, non_negative)
    beta = Hyperparam(0.0, non_negative)

    def __init__(
        self,
        learning_rate: LearningRate = default(0.001),
        learning_rate_power: float = -0.5,
        initial_accumulator_value: float = 0.1,
        l1_regularization_strength: float = 0.0,
        l2_regularization_strength: float = 0.0,
        l2_shrinkage_regularization_strength: float = 0.0,
        beta: float = 0.0,
        **options: Unpack[OptimizerOptions],
    ) -> None:
        super().__init__(
            learning_rate,
            dict(
                learning_rate_power=learning_rate_power,
                initial_accumulator_value=initial_accumulator_value,
                l1_regularization_strength=l1_regularization_strength,
                l2_regularization_strength=l2_regularization_strength,
                l2_shrinkage_regularization_strength=l2_shrinkage_regularization_strength,
                beta=beta,
            ),
            options,
        )

    def slot_names(self) -> tuple[str, ...]:
        return ("accumulator", "linear")

    def init_slot(self, name: str, param: jax.Array, dtype: Any, path: str) -> jax.Array:
        """The accumulator starts at ``initial_accumulator_value``, in its slot's dtype."""
        zeros = jnp.zeros_like(param, dtype)
        if name == "accumulator":
            return constant_like(zeros, self.initial_accumulator_value)
        return zeros

    def leaf_update(
        self, g: jax.Array, p: jax.Array | None, slots: dict[str, jax.Array], ctx: StepContext
    ) -> tuple[jax.Array, dict[str, Any]]:
        if p is None:
            raise ValueError("Ftrl needs params: call update(grads, state, params)")
        return self._new_param(g, jnp.asarray(p, g.dtype), slots, ctx)

    def _power(self, x: jax.Array, ctx: StepContext) -> jax.Array:
        """``x ** -learning_rate_power``, with the live power."""
        name = "learning_rate_power"
        # Keras's exponent is a weakly typed float32 array: it takes x's dtype.
        q = -ctx.value(name, x.dtype)
        power = self.learning_rate_power
        if not isinstance(power, int):
            return jnp.power(x, q)
        # An int exponent stays an int, so jnp.power takes integer_pow exactly as Keras;
        # a changed value takes pow, in x's dtype.
        exact = jnp.power(x, jnp.asarray(-power))
        if name not in ctx.hyperparams:
            return exact
        return jnp.where(ctx.is_initial(name), exact, jnp.power(x, q))

    def _new_param(
        self, g: jax.Array, w: jax.Array, slots: dict[str, jax.Array], ctx: StepContext
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """The param Keras assigns, and the new slots."""
        dtype = g.dtype
        lr = ctx.lr_as(dtype)
        l1 = ctx.value("l1_regularization_strength", dtype)
        l2 = ctx.value("l2_regularization_strength", dtype) + ctx.value("beta", dtype) / (2.0 * lr)
        shrinkage = ctx.hyper(
            "l2_shrinkage_regularization_strength", lambda s: jnp.asarray(2 * s).astype(dtype)
        )
        grad = g + shrinkage * w
        accumulator = accumulate_square(slots["accumulator"], g)
        accumulator_q = self._power(accumulator, ctx)
        linear = slots["linear"] + (
            grad - ((accumulator_q - self._power(slots["accumulator"], ctx)) / lr) * w
        )
        quadratic = accumulator_q / lr + 2 * l2
        new_w = (jnp.clip(linear, -l1, l1) - linear) / quadratic
        return new_w, {"accumulator": accumulator, "linear": linear}
