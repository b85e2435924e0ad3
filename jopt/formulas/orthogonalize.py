"""Orthogonalization of matrix updates by Newton-Schulz iteration (Muon's core)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["newton_schulz"]


def _swap_last_two(x: jax.Array) -> jax.Array:
    axes = list(range(x.ndim))
    axes[-2], axes[-1] = axes[-1], axes[-2]
    return jnp.transpose(x, axes)


def newton_schulz(x: jax.Array, steps: int, a: Any, b: Any, c: Any) -> jax.Array:
    """Approximately orthogonalizes the last two axes of ``x``: ``U S' V^T`` for ``x = U S V^T``.

    Keras 3's ``Muon.zeropower_via_newtonschulz5``, op for op: a matrix taller than wide
    is transposed first, so the Gram matrix is the smaller one; then::

        x = x / (||x||_F + 1e-7)                 # spectral norm <= 1
        repeat steps times:
            A = x @ x^T
            B = b * A + (c * A) @ A
            x = a * x + B @ x

    The quintic's coefficients ``(a, b, c)`` (Muon's defaults ``3.4445, -4.7750, 2.0315``)
    maximise the slope at zero, so the singular values are pushed towards 1 in few steps
    without fully converging. Leading axes are batch axes. The arithmetic stays in ``x``'s
    dtype.

    Args:
        x: an array of rank >= 2.
        steps: number of iterations (Keras's ``ns_steps``), >= 0.
        a, b, c: the quintic's coefficients.

    Returns:
        An array of ``x``'s shape and dtype.

    Raises:
        ValueError: ``x`` has rank < 2.

    Example:
        >>> import jax.numpy as jnp
        >>> q = newton_schulz(jnp.array([[3.0, 0.0], [0.0, 0.5]]), 5, 3.4445, -4.7750, 2.0315)
        >>> bool(jnp.all(jnp.abs(jnp.diag(q) - 1.0) < 0.3))
        True
    """
    if x.ndim < 2:
        raise ValueError(
            f"newton_schulz needs an array of rank >= 2 (a matrix or a batch of them), "
            f"got shape {x.shape}"
        )
    tall = x.shape[-2] > x.shape[-1]
    if tall:
        x = _swap_last_two(x)
    x = x / (jnp.linalg.norm(x, axis=(-2, -1), keepdims=True) + 1e-7)
    for _ in range(steps):
        gram = x @ _swap_last_two(x)
        poly = b * gram + c * gram @ gram
        x = a * x + poly @ x
    if tall:
        x = _swap_last_two(x)
    return x
