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
from jopt._version import __version__ as __version__
from jopt.composites.chain import Chain, chain
from jopt.composites.groups import (
    Partition,
    PartitionState,
    freeze,
    partition,
    set_group_hyperparams,
)
from jopt.composites.lookahead import Lookahead, LookaheadState
from jopt.composites.sam import SAM, SAMState
from jopt.composites.schedule_free import ScheduleFree, ScheduleFreeState
from jopt.core.compiled import apply_gradients
from jopt.core.hyperparams import hyperparams, set_hyperparams
from jopt.core.protocol import (
    Applies,
    Composite,
    EvaluatesLoss,
    GradientTransformation,
    HasLearningRate,
    LiveHyperparams,
    PerLeafRule,
    StateContainer,
    Transformation,
    apply_updates,
)
from jopt.core.state import OptimizerState, StepContext
from jopt.formulas.quantization import Quantized
from jopt.layout import Bucketed, BucketedState, bucketed
from jopt.optimizers import (
    ADOPT,
    LARS,
    LBFGS,
    SGD,
    AdaBelief,
    Adadelta,
    Adafactor,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    Adan,
    AdEMAMix,
    Ftrl,
    Lamb,
    LBFGSState,
    Lion,
    LossScaleOptimizer,
    LossScaleState,
    Muon,
    Nadam,
    Optimizer,
    Prodigy,
    RAdam,
    RMSprop,
    Rprop,
    ScheduleFreeAdamW,
    SignSGD,
    SkipNonFinite,
    SkipNonFiniteState,
    Yogi,
)
from jopt.tools.checkpoint import RestoreReport, restore_state
from jopt.tools.minimization import MinimizeResult, minimize
from jopt.tools.plateau import PlateauState, ReduceLROnPlateau
from jopt.tools.summaries import summary
from jopt.tools.sweeps import sweep_init
from jopt.tools.train_state import TrainState
from jopt.transforms import (
    Block,
    add_decayed_weights,
    clip_by_global_norm,
    clip_by_norm,
    clip_by_value,
    ema,
    scale,
)

__all__ = [
    "ADOPT",
    "LARS",
    "LBFGS",
    "SAM",
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
    "Applies",
    "Block",
    "Bucketed",
    "BucketedState",
    "Chain",
    "Composite",
    "EvaluatesLoss",
    "Ftrl",
    "GradientTransformation",
    "HasLearningRate",
    "LBFGSState",
    "Lamb",
    "Lion",
    "LiveHyperparams",
    "Lookahead",
    "LookaheadState",
    "LossScaleOptimizer",
    "LossScaleState",
    "MinimizeResult",
    "Muon",
    "Nadam",
    "Optimizer",
    "OptimizerState",
    "Partition",
    "PartitionState",
    "PerLeafRule",
    "PlateauState",
    "Prodigy",
    "Quantized",
    "RAdam",
    "RMSprop",
    "ReduceLROnPlateau",
    "RestoreReport",
    "Rprop",
    "SAMState",
    "ScheduleFree",
    "ScheduleFreeAdamW",
    "ScheduleFreeState",
    "SignSGD",
    "SkipNonFinite",
    "SkipNonFiniteState",
    "StateContainer",
    "StepContext",
    "TrainState",
    "Transformation",
    "Yogi",
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
    "minimize",
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
