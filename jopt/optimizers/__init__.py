"""The Keras optimizer classes: a short module each, composing :mod:`jopt.transforms`."""

from jopt.optimizers.adam import Adam
from jopt.optimizers.base import Optimizer
from jopt.optimizers.loss_scale import (
    LossScaleOptimizer,
    LossScaleState,
    SkipNonFinite,
    SkipNonFiniteState,
)
from jopt.optimizers.rmsprop import RMSprop
from jopt.optimizers.sgd import SGD

__all__ = [
    "SGD",
    "Adam",
    "LossScaleOptimizer",
    "LossScaleState",
    "Optimizer",
    "RMSprop",
    "SkipNonFinite",
    "SkipNonFiniteState",
]
