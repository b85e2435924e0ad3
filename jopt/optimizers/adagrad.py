"""Keras's Adagrad."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from typing_extensions import Unpack

from jopt.core.declarations import Hyperparam, keras_epsilon, non_negative
from jopt.core.options import OptimizerOptions
from jopt.core.state import StepContext
from jopt.formulas.accumulators import accumulate_square, constant_like
from jopt.optimizers.optimizer import LearningRate, Optimizer, default

__all__ = ["Adagrad"]

PyTree = Any


class Adagrad(Optimizer):
    """Adagrad with Keras 3's rule: epsilon inside the square root.

    Rule, with ``g`` the gradient and ``lr`` the rate at this step::

        a = a + g**2                  # slot "accumulator", starts at initial_accumulator_value
        w = w - lr * g / sqrt(a + epsilon)

    Args:
        learning_rate: a float >= 0 or a schedule. Default 0.001.
        initial_accumulator_value: the accumulator's starting value, >= 0. Default 0.1.
        epsilon: >= 0. Default 1e-7; ``None`` means 1e-7 (tf.keras 2's spelling).
        lr: tf.keras 2's alias of ``learning_rate``.
        decay: tf.keras 2's time-based decay ``lr_t / (1 + decay * t)``. Default 0.
        name: Keras's name; default ``None`` means ``"adagrad"`` (Keras adds a per-process
            counter to repeated names; jopt does not, so equal configs stay equal).

    Example:
        >>> import jax.numpy as jnp
        >>> from jopt.optimizers.adagrad import Adagrad
        >>> opt = Adagrad(learning_rate=0.1)
        >>> params = {"w": jnp.array([1.0])}
        >>> params, state = opt.apply_gradients({"w": jnp.array([1.0])}, opt.init(params), params)
        >>> params["w"], state.slots["accumulator"]["w"]
        (Array([0.9046537], dtype=float32), Array([1.1], dtype=float32))
    """

    keras_name = "adagrad"
    nonnegative_slots = frozenset({"accumulator"})
    # initial_accumulator_value is read by init only: it stays in the config.
    initial_accumulator_value = Hyperparam(0.1, non_negative, live=False)
    epsilon = Hyperparam(1e-7, keras_epsilon)

    def __init__(
        self,
        learning_rate: LearningRate = default(0.001),
        initial_accumulator_value: float = 0.1,
        epsilon: float | None = 1e-7,
        **options: Unpack[OptimizerOptions],
    ) -> None:
        super().__init__(
            learning_rate,
            dict(initial_accumulator_value=initial_accumulator_value, epsilon=epsilon),
            options,
        )

    def slot_names(self) -> tuple[str, ...]:
        return ("accumulator",)

    def init_slot(self, name: str, param: jax.Array, dtype: Any, path: str) -> jax.Array:
        """The accumulator starts at ``initial_accumulator_value``, in its slot's dtype;
        the options' slots (gradient accumulator, average) at zeros, as in Keras."""
        zeros = jnp.zeros_like(param, dtype)
        if name == "accumulator":
            return constant_like(zeros, self.initial_accumulator_value)
        return zeros

    def leaf_update(
        self, g: jax.Array, p: jax.Array | None, slots: dict[str, jax.Array], ctx: StepContext
    ) -> tuple[jax.Array, dict[str, Any]]:
        lr = ctx.lr_as(g.dtype)
        accumulator = accumulate_square(slots["accumulator"], g)
        return -((lr * g) / jnp.sqrt(accumulator + ctx.epsilon("epsilon", g.dtype))), {
            "accumulator": accumulator
        }
