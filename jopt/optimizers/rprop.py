"""Rprop: a step size per element, grown while the gradient keeps its sign."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from typing_extensions import Unpack

from jopt.core.declarations import Hyperparam, in_range, non_negative
from jopt.core.options import OptimizerOptions
from jopt.core.state import StepContext
from jopt.core.validation import check_number
from jopt.optimizers.optimizer import LearningRate, Optimizer, default

__all__ = ["Rprop"]


def rprop_step(
    g: jax.Array,
    previous: jax.Array,
    step_size: jax.Array,
    eta_minus: Any,
    eta_plus: Any,
    min_step: Any,
    max_step: Any,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """One Rprop step (torch's ``Rprop``): returns ``(update, step_size, gradient kept)``."""
    agree = g * previous
    factor = jnp.where(agree > 0, eta_plus, jnp.where(agree < 0, eta_minus, jnp.ones_like(g)))
    step_size = jnp.clip(step_size * factor, min_step, max_step)
    kept = jnp.where(agree < 0, jnp.zeros_like(g), g)
    # torch's sign(NaN) is 0: a NaN element is not moved (and its step size is kept).
    direction = jnp.where(jnp.isnan(kept), jnp.zeros_like(kept), jnp.sign(kept))
    return -(direction * step_size), step_size, kept


class Rprop(Optimizer):
    """Resilient backpropagation with torch's rule (``torch.optim.Rprop``).

    Rule, elementwise, with ``g`` the gradient and ``g_prev`` the slot "previous_gradient"
    (0 at first); the slot "step_size" starts at ``learning_rate``::

        s = g * g_prev
        step_size = clip(step_size * (eta_plus if s > 0, eta_minus if s < 0, else 1),
                         min_step_size, max_step_size)
        g = 0 where s < 0                               # a sign change skips the step
        w = w - sign(g) * step_size
        g_prev = g

    ``learning_rate`` is only the initial step size (torch's ``lr``): the rate of later
    steps, a schedule's or a live value's, is not read. As in torch, a NaN gradient element
    leaves its param and step size as they are (``sign(NaN) = 0``; the NaN is kept as
    ``g_prev``, so the next step does not grow or shrink that step size).
    ``optax.rprop`` returns each step one update late (its first update is 0); jopt
    follows torch.

    Args:
        learning_rate: the initial step size, > 0. Default 0.01 (torch's).
        eta_minus: step-size factor after a sign change, in (0, 1). Default 0.5.
        eta_plus: step-size factor while the sign holds, > 1. Default 1.2.
        min_step_size: >= 0. Default 1e-6.
        max_step_size: >= ``min_step_size``. Default 50.0.

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> opt = jopt.Rprop(learning_rate=0.1)
        >>> params = {"w": jnp.array([1.0])}
        >>> state = opt.init(params)
        >>> for _ in range(2):
        ...     params, state = opt.apply_gradients({"w": jnp.array([3.0])}, state, params)
        >>> params["w"]  # 1 - 0.1 - 0.12
        Array([0.78], dtype=float32)
    """

    keras_name = "rprop"
    eta_minus = Hyperparam(0.5, in_range(0.0, 1.0, low_open=True, high_open=True))
    eta_plus = Hyperparam(1.2, in_range(1.0, low_open=True))
    min_step_size = Hyperparam(1e-6, non_negative)
    max_step_size = Hyperparam(50.0, non_negative)

    def __init__(
        self,
        learning_rate: LearningRate = default(0.01),
        eta_minus: float = 0.5,
        eta_plus: float = 1.2,
        min_step_size: float = 1e-6,
        max_step_size: float = 50.0,
        **options: Unpack[OptimizerOptions],
    ) -> None:
        super().__init__(
            learning_rate,
            dict(
                eta_minus=eta_minus,
                eta_plus=eta_plus,
                min_step_size=min_step_size,
                max_step_size=max_step_size,
            ),
            options,
        )

    @classmethod
    def check_relations(cls, values: dict[str, Any]) -> dict[str, Any]:
        """``max_step_size`` must be at least ``min_step_size``."""
        low = values["min_step_size"]
        return values | {
            "max_step_size": check_number("max_step_size", values["max_step_size"], low)
        }

    def slot_names(self) -> tuple[str, ...]:
        return ("step_size", "previous_gradient")

    def init_slot(self, name: str, param: jax.Array, dtype: Any, path: str) -> jax.Array:
        """The step sizes start at the rate of step 0; the other slots at zero."""
        if name != "step_size":
            return super().init_slot(name, param, dtype, path)
        return jnp.full_like(param, self.rate(0), dtype)

    def leaf_update(
        self, g: jax.Array, p: jax.Array | None, slots: dict[str, jax.Array], ctx: StepContext
    ) -> tuple[jax.Array, dict[str, Any]]:
        dtype = g.dtype
        update, step_size, kept = rprop_step(
            g,
            slots["previous_gradient"],
            slots["step_size"],
            *(ctx.cast(n, dtype) for n in self.hyperparam_names),
        )
        return update, {"step_size": step_size, "previous_gradient": kept}
