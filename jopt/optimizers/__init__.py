"""The Keras optimizer classes: a short module each, composing :mod:`jopt.formulas`."""

from jopt.composites.wrappers import (
    LossScaleOptimizer,
    LossScaleState,
    SkipNonFinite,
    SkipNonFiniteState,
)
from jopt.core.serialization import deserialize, get, serialize
from jopt.optimizers.adabelief import AdaBelief
from jopt.optimizers.adadelta import Adadelta
from jopt.optimizers.adafactor import Adafactor
from jopt.optimizers.adagrad import Adagrad
from jopt.optimizers.adam import Adam
from jopt.optimizers.adamax import Adamax
from jopt.optimizers.adamw import AdamW
from jopt.optimizers.adan import Adan
from jopt.optimizers.ademamix import AdEMAMix
from jopt.optimizers.adopt import ADOPT
from jopt.optimizers.ftrl import Ftrl
from jopt.optimizers.lamb import Lamb
from jopt.optimizers.lars import LARS
from jopt.optimizers.lbfgs import LBFGS, LBFGSState
from jopt.optimizers.lion import Lion
from jopt.optimizers.muon import Muon
from jopt.optimizers.nadam import Nadam
from jopt.optimizers.optimizer import Optimizer
from jopt.optimizers.prodigy import Prodigy
from jopt.optimizers.radam import RAdam
from jopt.optimizers.rmsprop import RMSprop
from jopt.optimizers.rprop import Rprop
from jopt.optimizers.schedule_free import ScheduleFreeAdamW
from jopt.optimizers.sgd import SGD
from jopt.optimizers.sign_sgd import SignSGD
from jopt.optimizers.yogi import Yogi

__all__ = [
    "ADOPT",
    "LARS",
    "LBFGS",
    "SGD",
    "AdEMAMix",
    "AdaBelief",
    "Adadelta",
    "Adafactor",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "Adan",
    "Ftrl",
    "LBFGSState",
    "Lamb",
    "Lion",
    "LossScaleOptimizer",
    "LossScaleState",
    "Muon",
    "Nadam",
    "Optimizer",
    "Prodigy",
    "RAdam",
    "RMSprop",
    "Rprop",
    "ScheduleFreeAdamW",
    "SignSGD",
    "SkipNonFinite",
    "SkipNonFiniteState",
    "Yogi",
    "deserialize",
    "get",
    "serialize",
]
