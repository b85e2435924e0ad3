"""tf.keras 2's optimizers (``tf.keras.optimizers.legacy``), number for number.

For users porting code written before TF 2.11 who need identical runs. Same names,
arguments and slots as the Keras 3 classes in :mod:`jopt`; the rules differ where
tf.keras 2 differed (each was checked against trajectories recorded from
tensorflow + tf-keras 2.21 by ``tests/data/record_tf2.py``):

* hyperparameters are float32 tensors, so ``1 - rho`` and ``1 - beta`` are float32
  subtractions (``1 - f32(0.999)``, not ``f32(1 - 0.999)``: 1e-5 apart, relative);
* RMSprop without momentum adds epsilon *outside* the square root; with momentum it
  runs TensorFlow's fused kernel, which adds it inside, and updates the averages in
  the kernel's ``ms += (g**2 - ms) * (1 - rho)`` form;
* ``epsilon=None`` *and* ``epsilon=0`` mean 1e-7 (tf.keras 2 wrote ``epsilon or 1e-7``).

SGD's rule is the same as Keras 3's.

Example:
    >>> import jax.numpy as jnp, jopt
    >>> opt = jopt.legacy.RMSprop(lr=0.01, decay=1e-4)
    >>> params = {"w": jnp.array([1.0])}
    >>> params, _ = opt.apply_gradients({"w": jnp.array([0.5])}, opt.init(params), params)
    >>> params["w"]
    Array([0.96837723], dtype=float32)
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jopt import optimizers
from jopt.core.declarations import Hyperparam, keras_epsilon
from jopt.core.state import StepContext
from jopt.formulas.moments import ema_mix, ema_step
from jopt.formulas.momentum import heavy_ball

__all__ = ["SGD", "Adam", "RMSprop"]


class _Legacy:
    """Marks a tf.keras 2 optimizer in its repr, apart from jopt's Keras 3 class."""

    def __repr__(self) -> str:
        return f"legacy.{super().__repr__()}"


def _epsilon_or_default(name: str, value: Any) -> float:
    """tf.keras 2's ``epsilon or 1e-7``: ``None`` and 0 mean 1e-7, for numbers only
    (anything else is left to Keras 3's check to name: an array's truth value would be
    ambiguous)."""
    if isinstance(value, int | float) and value == 0:
        value = None
    return keras_epsilon(name, value)


class SGD(_Legacy, optimizers.SGD):
    """tf.keras 2's SGD: the same rule as :class:`jopt.SGD` (Keras's momentum kernel).

    Example:
        >>> import jopt
        >>> jopt.legacy.SGD(lr=0.1, momentum=0.9, decay=1e-3)
        legacy.SGD(learning_rate=0.1, momentum=0.9, decay=0.001)
    """

    keras_name = "SGD"


class RMSprop(_Legacy, optimizers.RMSprop):
    """tf.keras 2's RMSprop.

    Rule (float32 hyperparameters; ``g`` gradient, ``lr`` the rate at this step)::

        momentum == 0:
            v = rho * v + (1 - rho) * g**2             # slot "velocity" (tf.keras: "rms")
            centered: a = rho * a + (1 - rho) * g;  d = v - a**2    # slot "average_gradient"
            otherwise: d = v
            w = w - lr * g / (sqrt(d) + epsilon)        # epsilon OUTSIDE the root
        momentum > 0 (TensorFlow's ApplyRMSProp / ApplyCenteredRMSProp kernels):
            v = v + (g**2 - v) * (1 - rho)
            centered: a = a + (g - a) * (1 - rho);  d = v - a**2 + epsilon
            otherwise: d = v + epsilon
            m = momentum * m + lr * g / sqrt(d);  w = w - m   # slot "momentum"

    Defaults as :class:`jopt.RMSprop` (lr 0.001, rho 0.9, momentum 0, epsilon 1e-7);
    ``epsilon`` of ``None`` or 0 means 1e-7. The constructor's ``momentum`` picks the
    rule: one built with momentum > 0 and set to 0 live keeps the kernel rule (epsilon
    inside the root), and one built with 0 holds no live ``momentum``.

    Example:
        >>> import jopt
        >>> jopt.legacy.RMSprop(lr=0.01, momentum=0.9).slot_names()
        ('velocity', 'momentum')
    """

    keras_name = "RMSprop"
    epsilon = Hyperparam(1e-7, _epsilon_or_default)

    def leaf_update(
        self, g: jax.Array, p: jax.Array | None, slots: dict[str, jax.Array], ctx: StepContext
    ) -> tuple[jax.Array, dict[str, Any]]:
        dtype = g.dtype
        lr = ctx.lr_as(dtype)
        rho = ctx.cast("rho", dtype)
        one_minus_rho = ctx.complement("rho", dtype, in_dtype=True)
        epsilon = ctx.epsilon("epsilon", dtype)
        new: dict[str, Any] = {}
        if self.momentum == 0:
            new["velocity"] = denominator = ema_mix(
                slots["velocity"], jnp.square(g), rho, one_minus_rho
            )
            if self.centered:
                new["average_gradient"] = ema_mix(slots["average_gradient"], g, rho, one_minus_rho)
                denominator = denominator - jnp.square(new["average_gradient"])
            return -(lr * g / (jnp.sqrt(denominator) + epsilon)), new
        new["velocity"] = denominator = ema_step(slots["velocity"], jnp.square(g), one_minus_rho)
        if self.centered:
            new["average_gradient"] = ema_step(slots["average_gradient"], g, one_minus_rho)
            denominator = denominator - jnp.square(new["average_gradient"])
        increment = (g * lr) / jnp.sqrt(denominator + epsilon)
        new["momentum"] = heavy_ball(slots["momentum"], increment, ctx.cast("momentum", dtype))
        return -new["momentum"], new


class Adam(_Legacy, optimizers.Adam):
    """tf.keras 2's Adam (TensorFlow's ApplyAdam / ApplyAdamWithAmsgrad kernels).

    The rule of :class:`jopt.Adam` with ``1 - beta_1`` and ``1 - beta_2`` computed in
    float32 from float32 betas; ``epsilon`` of ``None`` or 0 means 1e-7. Defaults as
    :class:`jopt.Adam` (lr 0.001, betas 0.9 / 0.999, epsilon 1e-7, amsgrad off).

    Example:
        >>> import jopt
        >>> jopt.legacy.Adam(lr=0.01, amsgrad=True).slot_names()
        ('momentum', 'velocity', 'velocity_hat')
    """

    keras_name = "Adam"

    complement_in_leaf_dtype = True
    epsilon = Hyperparam(1e-7, _epsilon_or_default)
