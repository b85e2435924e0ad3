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
from jopt.schedules.schedule import LearningRateSchedule, deserialize, serialize

__all__ = [
    "Constant",
    "CosineDecay",
    "CosineDecayRestarts",
    "ExponentialDecay",
    "InverseTimeDecay",
    "Join",
    "LearningRateSchedule",
    "PiecewiseConstantDecay",
    "PolynomialDecay",
    "Warmup",
    "constant",
    "deserialize",
    "join",
    "serialize",
    "warmup",
]
