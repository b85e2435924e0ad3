"""Whether a state is an optimizer's own: the checks ``update``, ``slots`` and
``set_hyperparams`` run first, with messages that say what was given and what to do."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax.numpy as jnp

from jopt.core.state import OptimizerState
from jopt.core.validation import RESTORED_DICT

if TYPE_CHECKING:
    from jopt.optimizers.optimizer import Optimizer

__all__ = ["check_state"]


def check_state(opt: Optimizer, state: Any) -> None:
    """Raises unless ``state`` is ``opt``'s: an unbatched :class:`OptimizerState` with
    its configuration's slots, scalars and live hyperparameters.

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> state = jopt.SGD().init({"w": jnp.ones(2)})
        >>> check_state(jopt.SGD(momentum=0.9), state)  # doctest: +NORMALIZE_WHITESPACE
        Traceback (most recent call last):
        ...
        ValueError: this state holds slots [] but SGD(momentum=0.9) uses ['momentum']:
        it was made by a differently configured optimizer
    """
    owner = type(opt).__name__
    if isinstance(state, dict) and "step" in state:
        raise TypeError(
            f"{owner}.update expects the OptimizerState made by its init; "
            + RESTORED_DICT.format(got="a dict with a 'step'")
        )
    if not isinstance(state, OptimizerState):
        raise TypeError(
            f"{owner}.update expects the OptimizerState made by its init, "
            f"got {type(state).__name__}"
        )
    if jnp.ndim(state.step) != 0:
        # A sweep's stacked states would otherwise broadcast K rates over a leaf's
        # last axis: a silent wrong answer.
        raise ValueError(
            f"this state is batched (step has shape {jnp.shape(state.step)}): map the "
            "update over it with jax.vmap, as for a sweep made by jopt.sweep_init"
        )
    for what, held, used in (
        ("slots", state.slots, opt.all_slot_names()),
        ("scalars", state.scalars, opt.init_scalars(None)),
        ("hyperparameters", state.hyperparams, opt.initial_hyperparams()),
    ):
        if set(held) != set(used):
            raise ValueError(
                f"this state holds {what} {sorted(held)} but {opt!r} uses {sorted(used)}: "
                "it was made by a differently configured optimizer"
            )
