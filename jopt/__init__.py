"""jopt: Keras's optimizers, with Keras's numbers, as pure functional JAX.

Every optimizer is a frozen, hashable object with optax's ``init`` / ``update``::

    opt = jopt.Adam(learning_rate=1e-3)
    state = opt.init(params)
    params, state = opt.apply_gradients(grads, state, params)   # one compiled step

or, Keras-style, with params, state and optimizer in one pytree::

    state = jopt.TrainState.create(params, jopt.Adam(learning_rate=1e-3))
    state = state.apply_gradients(grads)          # state.step, state.lr, state.params

The public API is defined here, in one place; ``tests/test_api.py`` checks that each
name is exported and documented.
"""

from jopt import layout, legacy, optimizers, schedules, sharding
from jopt.core.compiled import apply_gradients
from jopt.core.protocol import GradientTransformation, Transformation, apply_updates
from jopt.core.state import OptimizerState, StepContext
from jopt.composites.chain import chain
from jopt.transforms import (
    Block,
    add_decayed_weights,
    clip_by_global_norm,
    clip_by_norm,
    clip_by_value,
    ema,
    scale,
)
from jopt.tools.checkpoint import RestoreReport, restore_state
from jopt.composites.groups import Partition, PartitionState, freeze, partition, set_group_hyperparams
from jopt.core.hyperparams import hyperparams, set_hyperparams
from jopt.layout import Bucketed, BucketedState, bucketed
from jopt.optimizers import (
    SGD,
    Adadelta,
    Adafactor,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    Ftrl,
    Lamb,
    Lion,
    LossScaleOptimizer,
    LossScaleState,
    Muon,
    Nadam,
    Optimizer,
    RMSprop,
    ScheduleFreeAdamW,
    SkipNonFinite,
    SkipNonFiniteState,
)
from jopt.tools.plateau import PlateauState, ReduceLROnPlateau
from jopt.tools.summaries import summary
from jopt.tools.sweeps import sweep_init
from jopt.tools.train_state import TrainState

__version__ = "0.1.0"

__all__ = [
    "SGD",
    "Adadelta",
    "Adafactor",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "Block",
    "Bucketed",
    "BucketedState",
    "Ftrl",
    "GradientTransformation",
    "Lamb",
    "Lion",
    "LossScaleOptimizer",
    "LossScaleState",
    "Muon",
    "Nadam",
    "Optimizer",
    "OptimizerState",
    "Partition",
    "PartitionState",
    "PlateauState",
    "RMSprop",
    "ReduceLROnPlateau",
    "RestoreReport",
    "ScheduleFreeAdamW",
    "SkipNonFinite",
    "SkipNonFiniteState",
    "StepContext",
    "TrainState",
    "Transformation",
    "add_decayed_weights",
    "apply_gradients",
    "apply_updates",
    "bucketed",
    "chain",
    "clip_by_global_norm",
    "clip_by_norm",
    "clip_by_value",
    "ema",
    "freeze",
    "hyperparams",
    "layout",
    "legacy",
    "optimizers",
    "partition",
    "restore_state",
    "scale",
    "schedules",
    "set_group_hyperparams",
    "set_hyperparams",
    "sharding",
    "summary",
    "sweep_init",
]
