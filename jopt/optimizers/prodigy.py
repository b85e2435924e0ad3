"""Prodigy: Adam whose step size ``d`` is estimated from the distance travelled."""

from __future__ import annotations

import functools
import operator
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from typing_extensions import Unpack

from jopt.core.declarations import (
    Hyperparam,
    boolean,
    non_negative,
    optional,
    positive,
    unit_interval_open,
)
from jopt.core.options import OptimizerOptions
from jopt.core.state import StepContext
from jopt.formulas.moments import ema_mix
from jopt.formulas.numerics import nonzero
from jopt.optimizers.optimizer import LearningRate, Optimizer, default

__all__ = ["Prodigy"]

PyTree = Any
_STEP = ("prodigy step",)  # the ctx.cache key of the step's shared scalars


def _gradient_sum(s: jax.Array, dg: jax.Array, beta_3: Any, weight: Any, d0: Any) -> jax.Array:
    """``beta_3 * s + weight * dg / d0``, the slot "gradient_sum" (optax's order)."""
    return beta_3 * s + weight * dg / d0


class Prodigy(Optimizer):
    """Prodigy (Mishchenko and Defazio, 2023) with optax's rule (``optax.contrib.prodigy``).

    Rule, with ``g`` the gradient, ``lr`` the rate at this step (a multiplier of the
    estimate, 1 by default), ``t`` the 1-based number of this update, ``w0`` the params
    at ``init`` and sums over every element of every leaf::

        dlr = d * lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)
        m = beta_1 * m + (1 - beta_1) * d * g           # slot "momentum"
        v = beta_2 * v + (1 - beta_2) * (d * g)**2      # slot "velocity"
        s = beta_3 * s + dlr * d * g / d0               # slot "gradient_sum"
                 (safeguard_warmup: d * d * g / d0)
        N = beta_3 * N + d / d0 * dlr * sum(g * (w0 - w))     # state.scalars["numerator"]
        d_new = max(d, d_coef * N / sum(|s|))                 # state.scalars["d"]
        w = w - adaptive_weight_decay * dlr * w - dlr * m / (sqrt(v) + d_new * epsilon)

    ``d`` (starting at ``d0``) and ``N`` are optimizer-wide float32 scalars (optax keeps
    them in the params' lowest dtype); the slot "initial_params" holds ``w0``. The sums
    span all leaves, computed once per step before the leaves
    (:meth:`begin_step_with_leaves`; under ``jopt.bucketed`` over the buckets, the
    same elements summed in another order), and a NaN or Inf in one gradient element
    makes every leaf NaN, as in optax.
    While every gradient so far is zero (``sum(|s|) = 0``) ``d`` stays as it is; optax's
    estimate is then ``0 / 0`` and its params NaN; and ``d * epsilon`` is kept above 0
    in a float16 leaf. ``adaptive_weight_decay`` is optax's ``weight_decay`` (scaled by
    ``dlr``); the base option ``weight_decay`` is Keras's ``w -= lr * weight_decay * w``,
    which is not scaled by ``d``.

    Args:
        learning_rate: a float >= 0 or a schedule, multiplying the estimate. Default 1.0.
        beta_1: first-moment decay, in [0, 1). Default 0.9.
        beta_2: second-moment decay, in [0, 1). Default 0.999.
        beta_3: decay of the sums, in [0, 1), or ``None`` for ``sqrt(beta_2)``. Default
            ``None``.
        epsilon: >= 0, times ``d``. Default 1e-8.
        d0: the initial estimate, > 0. Default 1e-6.
        d_coef: multiplies each new estimate, > 0. Default 1.0.
        adaptive_weight_decay: >= 0. Default 0.0.
        safeguard_warmup: leave ``lr`` and the bias correction out of ``s``. Default
            ``False``.

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> opt = jopt.Prodigy()
        >>> params = {"w": jnp.array([1.0, -2.0])}
        >>> state = opt.init(params)
        >>> for _ in range(30):
        ...     params, state = opt.apply_gradients(params, state, params)  # grad of |w|^2 / 2
        >>> bool(state.scalars["d"] > 1e-3)  # the estimate grew from 1e-6
        True
    """

    elementwise = False  # its estimate sums over every leaf (bucketed: over the buckets)
    rule_reads_params = True

    keras_name = "prodigy"
    beta_1 = Hyperparam(0.9, unit_interval_open)
    beta_2 = Hyperparam(0.999, unit_interval_open)
    beta_3 = Hyperparam(None, optional(unit_interval_open))
    epsilon = Hyperparam(1e-8, non_negative)
    d0 = Hyperparam(1e-6, positive)
    d_coef = Hyperparam(1.0, positive)
    adaptive_weight_decay = Hyperparam(0.0, non_negative)
    safeguard_warmup = Hyperparam(False, boolean, live=False)

    def __init__(
        self,
        learning_rate: LearningRate = default(1.0),
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        beta_3: float | None = None,
        epsilon: float = 1e-8,
        d0: float = 1e-6,
        d_coef: float = 1.0,
        adaptive_weight_decay: float = 0.0,
        safeguard_warmup: bool = False,
        **options: Unpack[OptimizerOptions],
    ) -> None:
        super().__init__(
            learning_rate,
            dict(
                beta_1=beta_1,
                beta_2=beta_2,
                beta_3=beta_3,
                epsilon=epsilon,
                d0=d0,
                d_coef=d_coef,
                adaptive_weight_decay=adaptive_weight_decay,
                safeguard_warmup=safeguard_warmup,
            ),
            options,
        )

    @classmethod
    def check_relations(cls, values: dict[str, Any]) -> dict[str, Any]:
        """``beta_3=None`` means ``sqrt(beta_2)`` (the paper's and PyTorch's default)."""
        if values["beta_3"] is None:
            return values | {"beta_3": values["beta_2"] ** 0.5}
        return values

    def slot_names(self) -> tuple[str, ...]:
        return ("momentum", "velocity", "gradient_sum", "initial_params")

    def init_slot(self, name: str, param: jax.Array, dtype: Any, path: str) -> jax.Array:
        """``initial_params`` starts as a copy of the params; the other slots at zero."""
        if name == "initial_params":
            return jnp.asarray(param).astype(dtype)
        return super().init_slot(name, param, dtype, path)

    def init_scalars(self, params: PyTree) -> dict[str, jax.Array]:
        return {
            "d": jnp.asarray(self.d0, jnp.float32),
            "numerator": jnp.zeros([], jnp.float32),
        }

    def begin_step_with_leaves(
        self,
        ctx: StepContext,
        grads: list[jax.Array],
        params: list[jax.Array | None],
        slots: dict[str, list[jax.Array]],
    ) -> StepContext:
        """The sums over every leaf, and the new estimate ``d``, before the leaves."""
        known = [p for p in params if p is not None]
        if len(known) != len(params):
            raise ValueError("Prodigy needs params: call update(grads, state, params)")
        f32 = jnp.float32
        d, numerator = ctx.scalars["d"], ctx.scalars["numerator"]
        b3 = ctx.cast("beta_3", f32)
        d0 = ctx.cast("d0", f32)
        bias_correction = jnp.sqrt(1 - ctx.beta_power("beta_2")) / (1 - ctx.beta_power("beta_1"))
        dlr = d * ctx.lr * bias_correction
        weight = d if self.safeguard_warmup else dlr

        def total(xs: list[jax.Array]) -> jax.Array:
            return functools.reduce(operator.add, xs, jnp.zeros([], f32))

        travelled = total(
            [
                jnp.vdot(g, s0.astype(p.dtype) - p, precision=lax.Precision.HIGHEST).astype(f32)
                for g, s0, p in zip(grads, slots["initial_params"], known, strict=True)
            ]
        )
        sums = total(
            [
                jnp.sum(jnp.abs(_gradient_sum(s.astype(g.dtype), d * g, b3, weight, d0))).astype(
                    f32
                )
                for s, g in zip(slots["gradient_sum"], grads, strict=True)
            ]
        )
        numerator = b3 * numerator + d / d0 * dlr * travelled
        # optax's max(d, 0 / 0) is NaN while every gradient so far is 0: keep d then.
        estimate = ctx.cast("d_coef", f32) * numerator / jnp.where(sums == 0, 1, sums)
        new_d = jnp.where(sums == 0, d, jnp.maximum(d, estimate))  # NaN sums: NaN, as optax
        cache = {} if ctx.cache is None else ctx.cache
        cache[_STEP] = (d, dlr, weight, new_d)
        return ctx._replace(scalars={"d": new_d, "numerator": numerator}, cache=cache)

    def leaf_update(
        self, g: jax.Array, p: jax.Array | None, slots: dict[str, jax.Array], ctx: StepContext
    ) -> tuple[jax.Array, dict[str, Any]]:
        assert p is not None and ctx.cache is not None  # begin_step_with_leaves checked
        dtype = g.dtype
        d, dlr, weight = (x.astype(dtype) for x in ctx.cache[_STEP][:3])
        dg = d * g
        m = ema_mix(
            slots["momentum"], dg, ctx.cast("beta_1", dtype), ctx.complement("beta_1", dtype)
        )
        # optax's order: (1 - beta_2) * dg * dg, not (1 - beta_2) * (dg * dg)
        v = (
            ctx.cast("beta_2", dtype) * slots["velocity"]
            + ctx.complement("beta_2", dtype) * dg * dg
        )
        s = _gradient_sum(
            slots["gradient_sum"], dg, ctx.cast("beta_3", dtype), weight, ctx.cast("d0", dtype)
        )
        decay = ctx.cast("adaptive_weight_decay", dtype) * dlr * p
        # d * epsilon kept above 0 in the leaf's dtype (float16): a zero gradient gives 0, not 0 / 0
        floor = nonzero(ctx.cache[_STEP][3] * ctx.value("epsilon", jnp.float32), dtype)
        update = -decay - dlr * m / (jnp.sqrt(v) + floor)
        new = {
            "momentum": m,
            "velocity": v,
            "gradient_sum": s,
            "initial_params": slots["initial_params"],
        }
        return update, new
