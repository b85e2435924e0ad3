"""ReduceLROnPlateau: Keras's callback as a pure, jittable ``(init, update)`` pair.

Keras's callback mutates the optimizer between epochs. jopt's optimizers hold their
rate in the state (a live hyperparameter), so the same rule is a pure function of the
metric, its own small state and the optimizer state: it runs inside a compiled step,
and changing the rate never recompiles.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jopt.core.hyperparams import hyperparams
from jopt.core.protocol import Composite
from jopt.core.state import OptimizerState
from jopt.core.validation import check_int, check_number
from jopt.optimizers.optimizer import Optimizer
from jopt.tools.summaries import format_value
from jopt.tools.train_state import TrainState

__all__ = ["PlateauState", "ReduceLROnPlateau"]

PyTree = Any
_INT32_MAX = np.iinfo(np.int32).max


class PlateauState(NamedTuple):
    """The state of :class:`ReduceLROnPlateau`: Keras's callback's counters, by name.

    Attributes:
        best: float32, the best metric seen (``inf``, or ``-inf`` in ``"max"`` mode,
            before the first; a first metric of NaN is kept as the best, as Keras does).
        wait: int32, calls without improvement since the last improvement or reduction
            (Keras's ``wait``).
        cooldown_counter: int32, calls of cooldown left after a reduction (Keras's
            ``cooldown_counter``).
        seen: int32, the metrics seen (saturates at the int32 maximum).
        reductions: int32, the reductions made so far.

    Example:
        >>> import jopt
        >>> jopt.ReduceLROnPlateau().init()
        PlateauState(best=inf, wait=0, cooldown_counter=0, seen=0, reductions=0)
    """

    best: jax.Array
    wait: jax.Array
    cooldown_counter: jax.Array
    seen: jax.Array
    reductions: jax.Array

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={format_value(v)}" for k, v in self._asdict().items())
        return f"PlateauState({fields})"


def _map_states(
    fn: Callable[[OptimizerState, Any], OptimizerState], state: PyTree, opt: Any
) -> PyTree:
    """``state`` with ``fn(s, o)`` applied to each jopt optimizer state ``s`` in it, ``o``
    being the optimizer that made ``s`` where it is known (a plain optimizer, or any
    composite's member: a partition's group, a chain's part, a wrapper's or layout's
    inner optimizer), else ``None`` (optax containers)."""
    if isinstance(state, OptimizerState):
        return fn(state, opt)
    if isinstance(opt, Composite):
        members, states = opt.members(), opt.member_states(state)
        return opt.replace_member_states(
            state, {k: _map_states(fn, s, members.get(k)) for k, s in states.items()}
        )
    return jax.tree.map(
        lambda s: fn(s, None) if isinstance(s, OptimizerState) else s,
        state,
        is_leaf=lambda s: isinstance(s, OptimizerState),
    )


def _halves(x: Any) -> tuple[Any, Any]:
    """Veltkamp's split: ``x = high + low``, each with at most 12 significant bits, so the
    product of two halves is exact in float32."""
    c = x * np.float32(4097)
    high = c - (c - x)
    return high, x - high


@jax.jit
def _times(x: jax.Array, factor: tuple[jax.Array, jax.Array, jax.Array, jax.Array]) -> jax.Array:
    """``x * factor`` rounded once to float32, as Keras's float64 product is, for a float64
    ``factor`` given as ``(f32(factor), the rest, and the halves of f32(factor))``.

    ``x * f32(factor)`` alone would carry the rounding of ``factor`` (1.5e-8 relative for
    0.1), compounding cut after cut. Dekker's two-product gives ``x * f32(factor)``
    exactly as ``product + error``, then the rest of ``factor`` is added, with one
    rounding at the end: plain float32 operations, exact with or without fused
    multiply-adds (and compiled, so eager calls round as a compiled step does).
    """
    high, low, high_h, high_l = factor
    product = x * high
    x_h, x_l = _halves(x)
    error = ((x_h * high_h - product) + x_h * high_l + x_l * high_h) + x_l * high_l
    return product + (error + x * low)


def _minimize(mode: str, monitor: str) -> bool:
    if mode != "auto":
        return mode == "min"
    name = monitor.removeprefix("val_")
    if name == "loss":
        return True
    if "acc" in name:
        return False
    raise ValueError(
        f"mode='auto' cannot tell whether monitor={monitor!r} should fall or rise (it "
        "knows loss/val_loss and names with 'acc'): pass mode='min' or mode='max'"
    )


@dataclasses.dataclass(frozen=True)
class ReduceLROnPlateau:
    """Keras's ``ReduceLROnPlateau`` callback as a pure, jittable pair on any jopt state.

    ``pstate = plateau.init()``, then after each evaluation (an epoch, or every N
    steps) ``opt_state, pstate = plateau.update(metric, pstate, opt_state)``. Keras's rule,
    call by call::

        if cooldown_counter > 0:  cooldown_counter -= 1; wait = 0
        if first metric or metric + min_delta < best:  best = metric; wait = 0
        #  ("max" mode: metric - min_delta > best)
        elif cooldown_counter == 0:
            wait += 1
            if wait >= patience and some rate > min_lr:
                every rate > min_lr:  rate = max(rate * factor, min_lr)
                cooldown_counter = cooldown; wait = 0

    It changes every live learning rate in ``opt_state``: a plain optimizer's, each
    group of a :func:`jopt.partition` (as Keras's callback treats an optimizer with
    ``optimizers``: a rate already at ``min_lr`` stays, the others are cut), a
    :func:`jopt.chain`'s optimizers, and the inner optimizer of :class:`jopt.SkipNonFinite`,
    :class:`jopt.LossScaleOptimizer` and :func:`jopt.bucketed`. Given a
    :class:`jopt.TrainState` instead, it returns the TrainState with its ``opt_state``
    changed. A NaN metric is no improvement (it counts towards ``patience``), as in Keras.

    **A schedule as the rate.** The state then holds ``learning_rate_scale``, a multiplier
    on the schedule: the rule multiplies that by ``factor``, so the schedule keeps its
    shape, scaled down. ``min_lr`` bounds the *effective* rate ``schedule(step) *
    learning_rate_scale`` at the call: a state is cut only while its effective rate is
    above ``min_lr``, and never to below ``min_lr`` then (``scale = max(scale * factor,
    min_lr / schedule(step))``); the schedule's own decay afterwards is not bounded.
    That needs the schedule, which lives in the optimizer: pass it as ``opt`` (a
    TrainState brings its own). Without it (or inside a chain, whose parts cannot be
    read) ``min_lr`` must be 0 there, and a scale > 0 counts as above it. Keras's callback
    cannot change a scheduled rate at all.

    **Inside a compiled step.** Everything is traced: the comparisons are selects, so
    ``jax.jit`` of a train step that calls ``update`` compiles once and the rate changes
    in the state (see ``tests/test_plateau.py``'s compile counter).

    Against Keras's callback (``keras.callbacks.ReduceLROnPlateau`` on Keras 3, whose
    rule this is) the rates are the same float32 numbers: Keras multiplies by the
    float64 ``factor`` and rounds once, and so does the cut here, with an exact float32
    two-product (``python -m tests.lr_control_report`` shows 0 error); the metric is
    compared in float32, as Keras's ``ops.less`` does. ``mode`` is
    checked at construction (Keras falls back to ``"auto"`` with a warning); ``"auto"``
    means ``"min"`` for a ``monitor`` named ``loss``/``val_loss`` and ``"max"`` for one
    containing ``acc``.
    Against torch's ``ReduceLROnPlateau``: torch's ``threshold_mode="rel"`` (its
    default) compares with ``best * (1 - threshold)``, which on negative losses demands
    the opposite of an improvement; ``threshold_mode="abs"`` is ``min_delta``. Torch
    reduces after ``patience + 1`` bad calls, and its cooldown of ``c`` ignores ``c``
    calls where Keras's ignores ``c - 1``: Keras's ``patience=p, cooldown=c`` is torch's
    ``patience=p - 1, cooldown=max(c - 1, 0)``, which then give the same rates (both
    tested). Torch starts from ``best = inf`` (a first NaN is bad; here and in Keras it
    becomes the best, and nothing improves on NaN), and skips cuts smaller than its
    ``eps`` (1e-8).

    Args:
        factor: the cut, ``new_rate = rate * factor``, in [0, 1) (default ``0.1``).
        patience: calls without improvement before a cut, an integer >= 0 (default
            ``10``).
        mode: ``"min"`` (default; the metric should fall), ``"max"`` (rise) or
            ``"auto"`` (from ``monitor``).
        min_delta: the least change that counts as an improvement, >= 0 (default
            ``1e-4``).
        cooldown: calls to wait after a cut before counting again, an integer >= 0
            (default ``0``).
        min_lr: the floor of every rate, >= 0 (default ``0.0``).
        monitor: the metric's name, read only by ``mode="auto"`` (default
            ``"val_loss"``).

    Example:
        >>> import jax, jax.numpy as jnp, jopt
        >>> opt = jopt.Adam(1e-3)
        >>> opt_state = opt.init({"w": jnp.ones(2)})
        >>> plateau = jopt.ReduceLROnPlateau(factor=0.5, patience=2)
        >>> pstate = plateau.init()
        >>> update = jax.jit(plateau.update)
        >>> for val_loss in [1.0, 0.9, 0.95, 0.91]:  # no improvement on 0.9 for 2 calls
        ...     opt_state, pstate = update(val_loss, pstate, opt_state)
        >>> float(opt.lr(opt_state)), pstate
        (0.0005000000237487257, PlateauState(best=0.9, wait=0, cooldown_counter=0, seen=4, \
reductions=1))
    """

    factor: float = 0.1
    patience: int = 10
    mode: str = "min"
    min_delta: float = 1e-4
    cooldown: int = 0
    min_lr: float = 0.0
    monitor: str = "val_loss"

    def __post_init__(self) -> None:
        check_number("factor", self.factor, low=0.0, high=1.0, high_open=True)
        check_int("patience", self.patience, 0)
        if self.mode not in ("min", "max", "auto"):
            raise ValueError(f"mode must be one of ['min', 'max', 'auto'], got {self.mode!r:.100}")
        check_number("min_delta", self.min_delta, low=0.0)
        check_int("cooldown", self.cooldown, 0)
        check_number("min_lr", self.min_lr, low=0.0)
        if not isinstance(self.monitor, str):
            raise TypeError(f"monitor must be a string, got {self.monitor!r:.100}")
        _minimize(self.mode, self.monitor)  # an unknown direction raises here, not in update

    @property
    def minimize(self) -> bool:
        """Whether a lower metric is better (``mode``, with ``"auto"`` read from
        ``monitor``).

        Example:
            >>> import jopt
            >>> jopt.ReduceLROnPlateau(mode="auto", monitor="val_accuracy").minimize
            False
        """
        return _minimize(self.mode, self.monitor)

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments, by name.

        Example:
            >>> import jopt
            >>> jopt.ReduceLROnPlateau(patience=3).get_config()["patience"]
            3
        """
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ReduceLROnPlateau:
        """Rebuilds the rule from :meth:`get_config`'s dict.

        Example:
            >>> import jopt
            >>> p = jopt.ReduceLROnPlateau(factor=0.5)
            >>> jopt.ReduceLROnPlateau.from_config(p.get_config()) == p
            True
        """
        return cls(**config)

    def init(self) -> PlateauState:
        """The state before the first metric: no best yet, counters at 0.

        Example:
            >>> import jopt
            >>> float(jopt.ReduceLROnPlateau(mode="max").init().best)
            -inf
        """
        zero = jnp.zeros((), jnp.int32)
        best = jnp.float32(np.inf if self.minimize else -np.inf)
        return PlateauState(best, zero, zero, zero, zero)

    def update(
        self, metric: Any, state: PlateauState, opt_state: PyTree, opt: Any = None
    ) -> tuple[PyTree, PlateauState]:
        """One evaluation: returns ``(opt_state, state)``, the rates cut if due.

        Args:
            metric: the monitored value, a real scalar (a Python number or a 0-d array,
                traced or not).
            state: this rule's state (:meth:`init`'s, then each call's).
            opt_state: any jopt optimizer state (or container of them), or a
                :class:`jopt.TrainState` (then a TrainState is returned).
            opt: the optimizer that made ``opt_state``: needed only when a rate is a
                schedule and ``min_lr > 0`` (see the class docstring).

        Raises:
            TypeError: ``metric`` is not a real number, or ``opt_state`` holds no jopt
                optimizer state.
            ValueError: ``metric`` is not a scalar; ``opt_state`` holds no learning rate;
                or ``min_lr > 0`` with a schedule whose optimizer is not known.

        Example:
            >>> import jax.numpy as jnp, jopt
            >>> state = jopt.TrainState.create({"w": jnp.ones(2)}, jopt.SGD(0.1))
            >>> plateau = jopt.ReduceLROnPlateau(patience=0)
            >>> state, pstate = plateau.update(0.5, plateau.init(), state)
            >>> state, pstate = plateau.update(0.7, pstate, state)  # worse: cut at once
            >>> round(float(state.lr), 6)
            0.01
        """
        if isinstance(opt_state, TrainState):
            inner, state = self.update(
                metric, state, opt_state.opt_state, opt_state.opt if opt is None else opt
            )
            return opt_state.replace(opt_state=inner), state
        if not isinstance(state, PlateauState):
            raise TypeError(
                f"state must be this rule's PlateauState (plateau.init()), got "
                f"{type(state).__name__}; the call is update(metric, pstate, opt_state)"
            )
        value = self._metric(metric)
        held = hyperparams(opt_state)  # a TypeError when no jopt state is inside
        rates: list[jax.Array] = []
        _map_states(lambda s, o: self._collect(s, o, rates), opt_state, opt)
        if not rates:
            raise ValueError(
                "opt_state holds no learning rate to reduce: no learning_rate or "
                f"learning_rate_scale among its live hyperparameters ({held})"
            )

        counter = state.cooldown_counter
        in_cooldown = counter > 0
        counter = jnp.where(in_cooldown, counter - 1, counter)
        wait = jnp.where(in_cooldown, 0, state.wait)
        delta = jnp.float32(self.min_delta)
        if self.minimize:
            better = value + delta < state.best
        else:
            better = value - delta > state.best
        improved = (state.seen == 0) | better
        best = jnp.where(improved, value, state.best)
        counting = ~improved & (counter == 0)
        wait = jnp.where(improved, 0, jnp.where(counting, wait + 1, wait))
        due = counting & (wait >= self.patience)

        floor = jnp.float32(self.min_lr)
        reduce = due & jnp.any(jnp.stack([jnp.any(r > floor) for r in rates]))
        opt_state = _map_states(lambda s, o: self._cut(s, o, reduce), opt_state, opt)

        seen = state.seen + (state.seen < _INT32_MAX).astype(jnp.int32)
        return opt_state, PlateauState(
            best=best,
            wait=jnp.where(reduce, 0, wait).astype(jnp.int32),
            cooldown_counter=jnp.where(reduce, self.cooldown, counter).astype(jnp.int32),
            seen=seen,
            reductions=state.reductions + reduce.astype(jnp.int32),
        )

    # ---- the parts ----------------------------------------------------------------------

    @staticmethod
    def _metric(metric: Any) -> jax.Array:
        dtype = getattr(metric, "dtype", None)
        real = (
            jnp.issubdtype(dtype, jnp.integer) or jnp.issubdtype(dtype, jnp.floating)
            if dtype is not None
            else isinstance(metric, int | float) and not isinstance(metric, bool)
        )
        if not real:
            raise TypeError(
                f"metric must be a real number or a 0-d array of one, got {metric!r:.60} "
                f"({type(metric).__name__})"
            )
        if jnp.ndim(metric) != 0:
            raise ValueError(
                f"metric must be a scalar, got shape {jnp.shape(metric)}: one value per "
                "call (jax.vmap the update for a sweep's many models)"
            )
        return jnp.asarray(metric).astype(jnp.float32)

    def _schedule_value(self, s: OptimizerState, o: Any) -> jax.Array | None:
        """The schedule's float32 value at ``s``'s step, or ``None`` when unknown."""
        if isinstance(o, Optimizer) and callable(o.learning_rate):
            return jnp.asarray(o.learning_rate(s.step), jnp.float32)
        if self.min_lr > 0:
            raise ValueError(
                f"min_lr={self.min_lr} bounds a scheduled rate's effective value, "
                "schedule(step) * learning_rate_scale, but this state's optimizer is not "
                "known: pass it, plateau.update(metric, pstate, opt_state, opt), or update "
                "a jopt.TrainState; inside a chain (whose parts cannot be read) use "
                "min_lr=0"
            )
        return None

    def _collect(self, s: OptimizerState, o: Any, rates: list[jax.Array]) -> OptimizerState:
        if "learning_rate" in s.hyperparams:
            rates.append(s.hyperparams["learning_rate"])
        elif "learning_rate_scale" in s.hyperparams:
            scale = s.hyperparams["learning_rate_scale"]
            schedule = self._schedule_value(s, o)
            rates.append(scale if schedule is None else schedule * scale)
        return s

    def _times_factor(self, x: jax.Array) -> jax.Array:
        """``x * factor`` rounded once, as Keras rounds its float64 product."""
        high = np.float32(self.factor)
        low = np.float32(self.factor - float(high))
        parts = (high, low, *_halves(high))
        return _times(x, tuple(jnp.float32(v) for v in parts))

    def _cut(self, s: OptimizerState, o: Any, reduce: jax.Array) -> OptimizerState:
        live = dict(s.hyperparams)
        floor = jnp.float32(self.min_lr)
        if "learning_rate" in live:
            rate = live["learning_rate"]
            cut = jnp.maximum(self._times_factor(rate), floor)
            live["learning_rate"] = jnp.where(reduce & (rate > floor), cut, rate)
        elif "learning_rate_scale" in live:
            scale = live["learning_rate_scale"]
            schedule = self._schedule_value(s, o)
            if schedule is None:
                effective, lowest = scale, jnp.zeros_like(scale)
            else:
                effective = schedule * scale
                # Divided only where the schedule is positive: elsewhere nothing is cut.
                lowest = floor / jnp.where(schedule > 0, schedule, 1.0)
            cut = jnp.maximum(self._times_factor(scale), lowest)
            live["learning_rate_scale"] = jnp.where(reduce & (effective > floor), cut, scale)
        else:
            return s
        return s._replace(hyperparams=live)
