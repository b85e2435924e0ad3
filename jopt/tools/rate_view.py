"""The learning rate as a value and as Keras's call: ``float(state.lr)`` and ``state.lr()``."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

__all__ = ["RateView"]


class RateView:
    """A learning rate read as a value (``float(state.lr)``, ``state.lr * 2``, NumPy and
    JAX functions) or called as Keras users type it (``state.lr()`` returns the array).

    A pytree with the array as its one leaf, so it passes through ``jax.jit``.

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> state = jopt.TrainState.create({"w": jnp.ones(2)}, jopt.SGD(0.5))
        >>> float(state.lr), state.lr()
        (0.5, Array(0.5, dtype=float32))
    """

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __call__(self) -> Any:
        return self.value

    def __jax_array__(self) -> Any:
        return self.value

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(self.value, dtype=dtype)

    def __float__(self) -> float:
        return float(self.value)

    def __repr__(self) -> str:
        return repr(self.value)

    def __getattr__(self, name: str) -> Any:  # shape, dtype, item(), astype(), ...
        if name == "value":
            raise AttributeError(name)
        return getattr(self.value, name)

    def __eq__(self, other: Any) -> Any:
        return self.value == other

    def __hash__(self) -> int:
        return id(self)

    def __mul__(self, other: Any) -> Any:
        return self.value * other

    __rmul__ = __mul__

    def __truediv__(self, other: Any) -> Any:
        return self.value / other

    def __rtruediv__(self, other: Any) -> Any:
        return other / self.value

    def __add__(self, other: Any) -> Any:
        return self.value + other

    __radd__ = __add__

    def __sub__(self, other: Any) -> Any:
        return self.value - other

    def __rsub__(self, other: Any) -> Any:
        return other - self.value

    def __lt__(self, other: Any) -> Any:
        return self.value < other

    def __gt__(self, other: Any) -> Any:
        return self.value > other


jax.tree_util.register_pytree_node(
    RateView, lambda r: ((r.value,), None), lambda _, children: RateView(children[0])
)
