"""Keras's Adafactor: a factored second moment, relative step size and update clipping."""

from __future__ import annotations

from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from typing_extensions import Unpack

from jopt.core.declarations import Hyperparam, boolean, in_range, keeps_int, non_negative, positive
from jopt.core.options import OptimizerOptions
from jopt.core.placement import zeros_on_axes
from jopt.core.state import StepContext
from jopt.formulas.moments import ema_mix
from jopt.optimizers.optimizer import LearningRate, Optimizer, default

__all__ = ["Adafactor"]

PyTree = Any


def _mean(x: jax.Array, axis: int | None = None, keepdims: bool = False) -> jax.Array:
    """Keras's ``ops.mean`` as XLA computes it: a float32 sum times ``f32(1 / n)``.

    ``ops.mean`` calls the jitted ``jnp.mean(x, dtype=float32)`` and casts back to
    ``x``'s dtype; compiled, XLA turns the division by ``n`` into a multiplication by the
    float32 reciprocal. Writing that product here gives Keras's bits in jopt's eager mode
    too, where a true division would differ in the last bit for ``n`` not a power of 2.
    """
    compute = jnp.promote_types(x.dtype, jnp.float32)
    n = x.size if axis is None else x.shape[axis]
    with np.errstate(divide="ignore"):  # n = 0: inf, so the empty mean is 0 * inf = nan
        reciprocal = np.asarray(1, compute) / np.asarray(n, compute)  # rounded once, as XLA
    total = jnp.sum(x, axis=axis, keepdims=keepdims, dtype=compute)
    return (total * reciprocal).astype(x.dtype)


def _factored_axes(ndim: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The param axes the slots ``r`` (the last axis averaged out) and ``c`` (the second
    to last) keep; none (scalar placeholders) below rank 2, as Keras's."""
    if ndim < 2:
        return (), ()
    return tuple(range(ndim - 1)), (*range(ndim - 2), ndim - 1)


def _leaf_rms(x: jax.Array, ctx: StepContext) -> jax.Array:
    """``sqrt(mean(x**2))`` over ``x``'s whole leaf, with :func:`_mean`'s arithmetic; one
    per leaf of a bucket (:meth:`StepContext.leaf_sum`)."""
    squares = jnp.square(x)
    if ctx.segments is None:
        return jnp.sqrt(_mean(squares))
    compute = jnp.promote_types(x.dtype, jnp.float32)
    with np.errstate(divide="ignore"):  # as _mean: f32(1 / n), rounded once per leaf
        reciprocal = np.asarray(1, compute) / ctx.leaf_size(x).astype(compute)
    total = ctx.leaf_sum(squares, compute)
    return jnp.sqrt((total * reciprocal).astype(x.dtype))


class Adafactor(Optimizer):
    """Adafactor with Keras 3's rule (Shazeer & Stern, 2018).

    Rule, with ``g`` the gradient, ``lr`` the rate at this step, ``t`` the 1-based
    number of this update, ``rms(x) = sqrt(mean(x**2))`` and every constant in the
    param's dtype::

        relative_step and lr is a number: lr = min(lr, 1 / sqrt(t))
        rho = min(lr, 1 / sqrt(t))
        alpha = max(epsilon_2, rms(w)) * rho
        s = g**2 + epsilon_1
        beta_2_t = 1 - t**beta_2_decay
        rank(w) >= 2 (factored over the last two axes):
            r = beta_2_t * r + (1 - beta_2_t) * mean(s, axis=-1)    # slot "r", w.shape[:-1]
            c = beta_2_t * c + (1 - beta_2_t) * mean(s, axis=-2)    # slot "c",
                                                                  # w.shape[:-2] + w.shape[-1:]
            v = (r / mean(r, axis=-1))[..., :, None] * c[..., None, :]   # slot "velocity"
        otherwise:
            v = beta_2_t * v + (1 - beta_2_t) * s
        u = g / sqrt(v)
        w = w - alpha * u / max(1, rms(u) / clip_threshold)

    Slots: ``"velocity"`` has the param's shape (Keras stores the full ``v`` even when
    it is rebuilt from the factors); ``"r"`` and ``"c"`` (Keras's ``_r`` and ``_c``) have
    the factored shapes above for leaves of rank >= 2, and are unused scalar zeros for
    leaves of rank 0 or 1, as Keras's placeholders are.

    Keras quirk, matched: ``rho`` is ``min(lr, 1 / sqrt(t))`` whatever ``relative_step``
    says, so ``relative_step=False`` gives the same numbers as ``True`` (and a schedule is
    capped at ``1 / sqrt(t)`` too); the argument is kept for Keras's config.

    Needs the params (``alpha`` scales with ``rms(w)``): call ``update(grads, state,
    params)``.

    Args:
        learning_rate: a float >= 0 or a schedule. Default 0.001.
        beta_2_decay: the exponent of the second-moment decay ``1 - t**beta_2_decay``,
            <= 0. Default -0.8.
        epsilon_1: added to the squared gradient, >= 0. Default 1e-30.
        epsilon_2: the floor of ``rms(w)`` in the step size, >= 0. Default 1e-3.
        clip_threshold: the update's RMS is clipped to it, > 0. Default 1.0.
        relative_step: cap a constant rate at ``1 / sqrt(t)``. Default ``True``.
        name: Keras's name; default ``None`` means ``"adafactor"``.

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> from jopt.optimizers.adafactor import Adafactor
        >>> opt = Adafactor(learning_rate=0.1)
        >>> params = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}
        >>> state = opt.init(params)
        >>> state.slots["r"]["w"].shape, state.slots["c"]["w"].shape
        ((2,), (3,))
        >>> grads = {"w": jnp.full((2, 3), 0.5), "b": jnp.ones(3)}
        >>> params, state = opt.apply_gradients(grads, state, params)
        >>> params["w"][0]
        Array([0.9, 0.9, 0.9], dtype=float32)
    """

    elementwise = False  # reads each leaf's shape and RMS (bucketed: matrices kept apart)
    rule_reads_params = True

    keras_name = "adafactor"
    exact_slots: ClassVar[dict[str, str]] = {
        name: "Adafactor's factored moments (r, c and the unfactored velocity) are "
        "row and column statistics of a whole leaf, not elementwise values"
        for name in ("velocity", "r", "c")
    }
    beta_2_decay = Hyperparam(-0.8, keeps_int(in_range(high=0.0)))
    epsilon_1 = Hyperparam(1e-30, non_negative)
    epsilon_2 = Hyperparam(1e-3, non_negative)
    clip_threshold = Hyperparam(1.0, positive)
    relative_step = Hyperparam(True, boolean, live=False)

    def __init__(
        self,
        learning_rate: LearningRate = default(0.001),
        beta_2_decay: float = -0.8,
        epsilon_1: float = 1e-30,
        epsilon_2: float = 1e-3,
        clip_threshold: float = 1.0,
        relative_step: bool = True,
        **options: Unpack[OptimizerOptions],
    ) -> None:
        super().__init__(
            learning_rate,
            dict(
                beta_2_decay=beta_2_decay,
                epsilon_1=epsilon_1,
                epsilon_2=epsilon_2,
                clip_threshold=clip_threshold,
                relative_step=relative_step,
            ),
            options,
        )

    def slot_names(self) -> tuple[str, ...]:
        # "velocity" first: it has the params' shapes, so the base checks grads against it.
        return ("velocity", "r", "c")

    def keeps_leaf_shape(self, path: str, ndim: int) -> bool:
        """Leaves of rank >= 2 (factored over their last two axes) keep their shape."""
        del path
        return ndim >= 2

    def init_slot(self, name: str, param: jax.Array, dtype: Any, path: str) -> jax.Array:
        """``"r"`` and ``"c"`` in their factored shapes, each kept axis split as the param's.

        Example:
            >>> import jax.numpy as jnp
            >>> state = Adafactor().init({"w": jnp.ones((4, 2, 3)), "b": jnp.ones(3)})
            >>> r, c = state.slots["r"], state.slots["c"]
            >>> r["w"].shape, c["w"].shape, r["b"].shape
            ((4, 2), (4, 3), ())
        """
        if name not in ("r", "c"):  # velocity, and the options' slots: the param's shape
            return jnp.zeros_like(param, dtype)
        rows, cols = _factored_axes(jnp.ndim(param))
        return zeros_on_axes(param, rows if name == "r" else cols, dtype)

    def leaf_update(
        self, g: jax.Array, p: jax.Array | None, slots: dict[str, jax.Array], ctx: StepContext
    ) -> tuple[jax.Array, dict[str, Any]]:
        if p is None:
            raise ValueError("Adafactor needs params: call update(grads, state, params)")
        dtype = g.dtype
        lr = ctx.lr_as(dtype)
        one = jnp.asarray(1.0, dtype)
        t = ctx.count(dtype)
        if not callable(self.learning_rate) and self.relative_step:
            lr = jnp.minimum(lr, 1 / jnp.sqrt(t))
        rho = jnp.minimum(lr, 1 / jnp.sqrt(t))
        alpha = jnp.maximum(ctx.cast("epsilon_2", dtype), _leaf_rms(p, ctx)) * rho
        s = jnp.square(g) + ctx.epsilon("epsilon_1", dtype)
        # A Python exponent as Keras's (an int takes integer_pow); a changed one in dtype.
        beta_2_t = 1 - ctx.hyper(
            "beta_2_decay",
            lambda e: jnp.power(t, e.astype(dtype) if isinstance(e, jax.Array) else e),
        )
        one_minus = 1 - beta_2_t
        new = dict(slots)
        if g.ndim >= 2:
            r = new["r"] = ema_mix(slots["r"], _mean(s, axis=-1), beta_2_t, one_minus)
            c = new["c"] = ema_mix(slots["c"], _mean(s, axis=-2), beta_2_t, one_minus)
            new["velocity"] = jnp.expand_dims(
                r / _mean(r, axis=-1, keepdims=True), -1
            ) * jnp.expand_dims(c, -2)
        else:
            new["velocity"] = ema_mix(slots["velocity"], s, beta_2_t, one_minus)
        u = g / jnp.sqrt(new["velocity"])
        u = u / ctx.spread(jnp.maximum(one, _leaf_rms(u, ctx) / ctx.value("clip_threshold", dtype)))
        return -(ctx.spread(alpha) * u), new
