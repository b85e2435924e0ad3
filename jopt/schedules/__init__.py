"""Learning-rate schedules: frozen, hashable callables of the step, with Keras's formulas.

A schedule maps the number of updates already applied (Keras's ``iterations``) to a
float32 rate. Every schedule here is a pure JAX function of the step: it works on
Python ints, NumPy and JAX scalars, arrays of steps (broadcasting), traced steps under
``jax.jit`` and ``jax.vmap``, and ``jax.grad`` with respect to a float step. Any other
callable ``step -> rate`` is accepted wherever a schedule is.

Keras 3's six schedules keep Keras's names, arguments, defaults, configs and arithmetic
(operation order and float32 constants), so they give Keras's numbers. Three more,
:func:`warmup`, :func:`join` and :func:`constant`, compose schedules; they serialize
in the same ``{"class_name", "config"}`` form, with wrapped schedules nested.

PyTorch's schedulers give torch's numbers (``get_last_lr()`` after ``step`` calls of
``scheduler.step()``): :class:`OneCycle` (``OneCycleLR``), :class:`CyclicLR` (its three
modes), :class:`StepDecay` (``StepLR``) and :class:`MultiStepDecay` (``MultiStepLR``).
:class:`WarmupStableDecay` is the warmup-stable-decay schedule of large-model training.
:func:`plot` draws any schedule with matplotlib.

Steps are expected to be >= 0: at negative steps a few formulas differ from Keras's
(which are meaningless there anyway).
"""

from jopt.schedules.composition import Constant, Join, Warmup, constant, join, warmup
from jopt.schedules.decay import (
    CosineDecay,
    CosineDecayRestarts,
    ExponentialDecay,
    InverseTimeDecay,
    PiecewiseConstantDecay,
    PolynomialDecay,
)
from jopt.schedules.plotting import plot
from jopt.schedules.pytorch import CyclicLR, MultiStepDecay, OneCycle, StepDecay
from jopt.schedules.schedule import LearningRateSchedule, deserialize, serialize
from jopt.schedules.wsd import WarmupStableDecay

__all__ = [
    "Constant",
    "CosineDecay",
    "CosineDecayRestarts",
    "CyclicLR",
    "ExponentialDecay",
    "InverseTimeDecay",
    "Join",
    "LearningRateSchedule",
    "MultiStepDecay",
    "OneCycle",
    "PiecewiseConstantDecay",
    "PolynomialDecay",
    "StepDecay",
    "Warmup",
    "WarmupStableDecay",
    "constant",
    "deserialize",
    "join",
    "plot",
    "serialize",
    "warmup",
]
