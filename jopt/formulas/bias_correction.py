"""Adam-style bias correction of a zero-started moving average, plain and Nesterov's.

optax's ``scale_by_*`` transformations divide a moment by ``1 - beta**t`` after it is
updated (Keras folds the correction into the step size instead, see
:func:`jopt.formulas.learning_rate.adam_step_size`); the optimizers that follow
optax (RAdam, AdaBelief, Yogi, Adan, AdEMAMix) use these.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["beta_power", "debias", "nesterov_debias"]


def beta_power(beta: Any, t: jax.Array) -> jax.Array:
    """``beta ** t`` in ``t``'s dtype (``t`` the 1-based count of this update).

    Example:
        >>> float(beta_power(jnp.float32(0.5), jnp.float32(3.0)))
        0.125
    """
    return jnp.power(jnp.asarray(beta, t.dtype), t)


def debias(moment: jax.Array, power: jax.Array) -> jax.Array:
    """``moment / (1 - beta**t)``, with ``power = beta**t`` (optax's ``bias_correction``).

    Example:
        >>> debias(jnp.float32(0.25), jnp.float32(0.5))
        Array(0.5, dtype=float32)
    """
    return moment / (1 - power).astype(moment.dtype)


def nesterov_debias(
    m: jax.Array,
    g: jax.Array,
    beta: Any,
    one_minus_beta: Any,
    power: jax.Array,
    next_power: jax.Array,
) -> jax.Array:
    """Nesterov's look-ahead of a debiased momentum (optax's ``nesterov=True``)::

        beta * m / (1 - beta**(t+1)) + (1 - beta) * g / (1 - beta**t)

    Example:
        >>> b = jnp.float32(0.5)
        >>> float(nesterov_debias(jnp.float32(1.0), jnp.float32(2.0), b, 0.5, b, b * b))
        2.6666667461395264
    """
    return beta * debias(m, next_power) + one_minus_beta * debias(g, power)
