"""The Keras optimizer classes: a short module each, composing :mod:`jopt.transforms`."""

from jopt.optimizers.adam import Adam
from jopt.optimizers.base import Optimizer
from jopt.optimizers.rmsprop import RMSprop
from jopt.optimizers.sgd import SGD

__all__ = ["SGD", "Adam", "Optimizer", "RMSprop"]
