"""Running sums of squared gradients (Adagrad, Ftrl) and slots that start at a constant.

Adagrad and Ftrl keep ``accumulator = initial_accumulator_value + sum of g**2``; Keras
creates that slot with its ``Constant`` initializer rather than zeros, so the starting
value is made here too, rounded as Keras rounds it.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["accumulate_square", "constant_like"]

PyTree = Any


def constant_like(tree: PyTree, value: float) -> PyTree:
    """Each leaf's shape and dtype, filled with ``value`` (Keras's ``Constant`` initializer).

    Keras casts a Python number to ``bfloat16`` through float32 (it cannot build bfloat16
    arrays from Python values directly), so a bfloat16 leaf gets ``bf16(f32(value))``;
    other dtypes get ``value`` rounded once.

    Example:
        >>> constant_like({"w": jnp.zeros(2, jnp.bfloat16)}, 0.1)["w"]
        Array([0.100098, 0.100098], dtype=bfloat16)
    """

    # full_like, not full(shape): the slot keeps its leaf's sharding.
    def fill(leaf: Any) -> jax.Array:
        dtype = jnp.result_type(leaf)
        if dtype == jnp.bfloat16:
            return jnp.full_like(leaf, jnp.float32(value), jnp.float32).astype(dtype)
        return jnp.full_like(leaf, value, dtype)

    return jax.tree.map(fill, tree)


def accumulate_square(accumulator: jax.Array, g: jax.Array) -> jax.Array:
    """``accumulator + g**2``: Adagrad's and Ftrl's running sum of squared gradients.

    Example:
        >>> accumulate_square(jnp.array([0.1]), jnp.array([2.0]))
        Array([4.1], dtype=float32)
    """
    return accumulator + jnp.square(g)
