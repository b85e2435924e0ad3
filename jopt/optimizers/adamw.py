"""Keras's AdamW: Adam with decoupled weight decay on by default."""

from __future__ import annotations

from typing_extensions import Unpack

from jopt.core.options import OptimizerOptions
from jopt.optimizers.adam import Adam
from jopt.optimizers.optimizer import LearningRate, default

__all__ = ["AdamW"]


class AdamW(Adam):
    """AdamW: Keras 3's Adam rule plus the base optimizer's decoupled weight decay.

    Keras's ``AdamW`` is ``Adam`` with ``weight_decay`` defaulting to 0.004 (and
    ``None`` refused); the decay is the base optimizer's, applied to each param
    before the Adam rule reads it. Rule, with ``g`` the gradient, ``lr`` the rate at
    this step and ``t`` the 1-based number of this update::

        w = w - w * weight_decay * lr                   # skipped for excluded leaves
        alpha = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)
        m = m + (g - m) * (1 - beta_1)                  # slot "momentum"
        v = v + (g**2 - v) * (1 - beta_2)               # slot "velocity"
        amsgrad: v_hat = max(v_hat, v); v = v_hat       # slot "velocity_hat"
        w = w - m * alpha / (sqrt(v) + epsilon)

    Args:
        learning_rate: a float >= 0 or a schedule. Default 0.001.
        weight_decay: a float >= 0 (not ``None``). Default 0.004. Leaves whose path
            matches ``exclude_from_weight_decay`` are not decayed.
        beta_1: first-moment decay, in [0, 1). Default 0.9.
        beta_2: second-moment decay, in [0, 1). Default 0.999.
        epsilon: >= 0. Default 1e-7; ``None`` means 1e-7.
        amsgrad: use the running maximum of the second moment. Default ``False``.
        lr: tf.keras 2's alias of ``learning_rate``.
        decay: tf.keras 2's time-based decay ``lr_t / (1 + decay * t)``. Default 0.
        name: Keras's name; default ``None`` means ``"adam_w"`` (Keras adds a per-process
            counter to repeated names; jopt does not, so equal configs stay equal).

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> from jopt.optimizers.adamw import AdamW
        >>> opt = AdamW(learning_rate=0.1, weight_decay=0.5)
        >>> params = {"w": jnp.array([1.0])}
        >>> params, _ = opt.apply_gradients({"w": jnp.array([3.0])}, opt.init(params), params)
        >>> params["w"]  # 1 - 1 * 0.5 * 0.1, then Adam's first step of 0.1
        Array([0.85000074], dtype=float32)
    """

    keras_name = "adam_w"

    # weight_decay is also a common option (OptimizerOptions): here it is the rule's own,
    # with Keras's default for this class, which mypy reports as an overlap.
    def __init__(  # type: ignore[misc]
        self,
        learning_rate: LearningRate = default(0.001),
        weight_decay: float = 0.004,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float | None = 1e-7,
        amsgrad: bool = False,
        **options: Unpack[OptimizerOptions],
    ) -> None:
        if weight_decay is None:
            raise ValueError("weight_decay must be a number >= 0 for AdamW, got None")
        super().__init__(
            learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay=weight_decay, **options
        )
