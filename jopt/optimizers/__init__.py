"""The Keras optimizer classes: a short module each, composing :mod:`jopt.formulas`."""

from jopt.composites.wrappers import (
    LossScaleOptimizer,
    LossScaleState,
    SkipNonFinite,
    SkipNonFiniteState,
)
from jopt.core.serialization import deserialize, get, serialize
from jopt.optimizers.adadelta import Adadelta
from jopt.optimizers.adafactor import Adafactor
from jopt.optimizers.adagrad import Adagrad
from jopt.optimizers.adam import Adam
from jopt.optimizers.adamax import Adamax
from jopt.optimizers.adamw import AdamW
from jopt.optimizers.ftrl import Ftrl
from jopt.optimizers.lamb import Lamb
from jopt.optimizers.lbfgs import LBFGS, LBFGSState
from jopt.optimizers.lion import Lion
from jopt.optimizers.muon import Muon
from jopt.optimizers.nadam import Nadam
from jopt.optimizers.optimizer import Optimizer
from jopt.optimizers.rmsprop import RMSprop
from jopt.optimizers.schedule_free import ScheduleFreeAdamW
from jopt.optimizers.sgd import SGD

__all__ = [
    "LBFGS",
    "SGD",
    "Adadelta",
    "Adafactor",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "Ftrl",
    "LBFGSState",
    "Lamb",
    "Lion",
    "LossScaleOptimizer",
    "LossScaleState",
    "Muon",
    "Nadam",
    "Optimizer",
    "RMSprop",
    "ScheduleFreeAdamW",
    "SkipNonFinite",
    "SkipNonFiniteState",
    "deserialize",
    "get",
    "serialize",
]
