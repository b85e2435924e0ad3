"""``jopt.ScheduleFree(opt)``: schedule-free averaging around any optimizer (optax's
``contrib.schedule_free``); ``jopt.ScheduleFreeAdamW`` is Keras's AdamW form of it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jopt.core.protocol import HasLearningRate, Transformation, require_transformation
from jopt.core.validation import check_number

__all__ = ["ScheduleFree", "ScheduleFreeState"]

PyTree = Any


class ScheduleFreeState(NamedTuple):
    """``inner_state``: the wrapped optimizer's state; ``z``: the sequence its steps move,
    shaped like the params; ``weight_sum``: float32 sum of the averaging weights;
    ``max_lr``: float32 largest rate so far; ``step``: int32 updates applied.

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> state = jopt.ScheduleFree(jopt.SGD(0.1)).init({"w": jnp.ones(2)})
        >>> state.z["w"], float(state.weight_sum), int(state.step)
        (Array([1., 1.], dtype=float32), 0.0, 0)
    """

    inner_state: PyTree
    z: PyTree
    weight_sum: jax.Array
    max_lr: jax.Array
    step: jax.Array


@dataclasses.dataclass(frozen=True)
class ScheduleFree:
    """Schedule-free learning (Defazio et al., 2024) around any transformation, with
    optax's rule (``optax.contrib.schedule_free``).

    The inner optimizer steps ``z``; the params hold ``y``, an interpolation of ``z`` and
    the weighted average ``x`` of the ``z`` sequence. Rule, with ``u`` the inner update
    (computed from the gradient at ``y``) and ``lr`` this step's rate::

        max_lr = max(max_lr, lr); c = max_lr**weight_lr_power
        weight_sum = weight_sum + c; c = c / weight_sum
        z_new = z + u
        x = (y - (1 - beta_1) * z) / beta_1               # the average, from the old z
        x = (1 - c) * x + c * z_new
        y = beta_1 * x + (1 - beta_1) * z_new              # the new params

    Evaluate at ``x``: :meth:`eval_params` (optax's ``schedule_free_eval_params``). Give
    the inner optimizer no momentum of its own (``beta_1=0`` for Adam): the
    interpolation is the momentum. ``ScheduleFree(jopt.AdamW(lr, weight_decay=0.0,
    beta_1=0.0, epsilon=eps))`` is ``jopt.ScheduleFreeAdamW(lr, epsilon=eps)`` up to where
    Keras's Adam adds epsilon (before the bias correction; equal while ``sqrt(v)`` is
    far above epsilon) and how it rounds ``1 - beta_2`` (AdamW: ``f32(1 - beta_2)``;
    ScheduleFreeAdamW: ``1 - f32(beta_2)``, as Keras; 1.3e-5 apart for 0.999; see
    ``tests/test_schedule_free.py``); with weight decay the two
    differ (the wrapper's inner decay moves ``z``, ScheduleFreeAdamW decays ``y``).

    ``lr``: by default the inner jopt optimizer's own rate at its step (so a schedule is
    read where the inner reads it); optax's ``learning_rate`` argument, when given (a
    number, or a schedule of this wrapper's 0-based step; optax calls its schedule with
    the 1-based count). An inner transformation that is not a jopt optimizer needs it.

    Args:
        inner: any transformation (a jopt optimizer, chain or partition, an optax one).
        learning_rate: ``None`` (the inner's rate), a float > 0 or a schedule. Default None.
        beta_1: the weight of ``x`` in ``y``, in (0, 1]. Default 0.9.
        weight_lr_power: the averaging weight is ``max_lr**weight_lr_power``. Default 2.0.

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> opt = jopt.ScheduleFree(jopt.SGD(0.1))
        >>> params = {"w": jnp.array([1.0])}
        >>> state = opt.init(params)
        >>> updates, state = opt.update({"w": jnp.array([1.0])}, state, params)
        >>> params = jopt.apply_updates(params, updates)
        >>> params["w"], opt.eval_params(state, params)["w"]  # first step: x = y = z = 0.9
        (Array([0.8999999], dtype=float32), Array([0.9], dtype=float32))
    """

    inner: Transformation
    learning_rate: float | Callable[[Any], Any] | None = None
    beta_1: float = 0.9
    weight_lr_power: float = 2.0

    def __post_init__(self) -> None:
        require_transformation(self.inner, "ScheduleFree's inner")
        if self.learning_rate is None and not isinstance(self.inner, HasLearningRate):
            raise ValueError(
                f"ScheduleFree(learning_rate=None) reads a jopt optimizer's rate; "
                f"{type(self.inner).__name__} has none: pass learning_rate (the rate its "
                "updates are scaled by)"
            )
        if self.learning_rate is not None and not callable(self.learning_rate):
            check_number("learning_rate", self.learning_rate, low=0.0, low_open=True)
        check_number("beta_1", self.beta_1, 0.0, 1.0, low_open=True)
        check_number("weight_lr_power", self.weight_lr_power)

    def __iter__(self) -> Iterator[Callable[..., Any]]:
        """Unpacks as ``init, update = opt``, like an ``optax.GradientTransformation``."""
        return iter((self.init, self.update))

    def init(self, params: PyTree) -> ScheduleFreeState:
        """The inner state, ``z`` a copy of the params, zero weights and step."""
        zero = jnp.zeros([], jnp.float32)
        z = jax.tree.map(jnp.array, params)  # a copy: donating params leaves it intact
        return ScheduleFreeState(self.inner.init(params), z, zero, zero, jnp.zeros([], jnp.int32))

    def _rate(self, state: ScheduleFreeState) -> jax.Array:
        if self.learning_rate is None:
            assert isinstance(self.inner, HasLearningRate)
            return jnp.asarray(self.inner.lr(state.inner_state), jnp.float32)
        if callable(self.learning_rate):
            return jnp.asarray(self.learning_rate(state.step), jnp.float32)
        return jnp.asarray(self.learning_rate, jnp.float32)

    def update(
        self, grads: PyTree, state: ScheduleFreeState, params: PyTree | None = None, **extra: Any
    ) -> tuple[PyTree, ScheduleFreeState]:
        """Returns ``(updates of y, new state)``; needs the params (``y``)."""
        if not isinstance(state, ScheduleFreeState):
            raise TypeError(
                "ScheduleFree.update expects the ScheduleFreeState made by its init, got "
                f"{type(state).__name__}"
            )
        if params is None:
            raise ValueError("ScheduleFree needs params: call update(grads, state, params)")
        max_lr = jnp.maximum(state.max_lr, self._rate(state))
        weight = max_lr**self.weight_lr_power
        weight_sum = state.weight_sum + weight
        # optax's: NaN stays NaN; 0 / 0 (a zero rate so far) is 0
        c = jnp.where(
            jnp.isnan(weight) | jnp.isnan(weight_sum),
            jnp.full(weight.shape, jnp.nan),
            jnp.nan_to_num(weight / weight_sum, nan=0.0, posinf=jnp.inf),
        )
        updates, inner_state = self.inner.update(grads, state.inner_state, params, **extra)
        b1 = self.beta_1
        z = jax.tree.map(lambda zi, ui: jnp.asarray(zi + ui).astype(zi.dtype), state.z, updates)
        x = jax.tree.map(lambda yi, zi: (yi - (1.0 - b1) * zi) / b1, params, state.z)
        x = jax.tree.map(lambda xi, zi: (1.0 - c) * xi + c * zi, x, z)
        y = jax.tree.map(lambda xi, zi: b1 * xi + (1.0 - b1) * zi, x, z)
        new_updates = jax.tree.map(lambda yi, pi: yi - pi, y, params)
        step = state.step + jnp.where(state.step < jnp.iinfo(jnp.int32).max, 1, 0)
        return new_updates, ScheduleFreeState(inner_state, z, weight_sum, max_lr, step)

    def eval_params(self, state: ScheduleFreeState, params: PyTree) -> PyTree:
        """The average ``x = (y - (1 - beta_1) * z) / beta_1``, the params to evaluate at."""
        b1 = self.beta_1
        return jax.tree.map(lambda yi, zi: (yi - (1.0 - b1) * zi) / b1, params, state.z)
