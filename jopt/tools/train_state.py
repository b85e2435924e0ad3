"""TrainState: params, optimizer state and optimizer in one pytree, for notebooks.

Keras keeps the weights and the optimizer's variables inside stateful objects; jopt keeps
them in explicit pytrees. :class:`TrainState` bundles the two with the optimizer so a
notebook reads like Keras (``state = state.apply_gradients(grads)``; ``state.step``,
``state.lr``) while staying a pure value: a pytree that goes in and out of ``jax.jit``,
``jax.vmap`` and checkpoints. The optimizer rides along as static data (it is frozen and
hashable), so it is part of the compiled program's cache key, never a traced input.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax

try:
    from flax import serialization
except ImportError:  # flax is optional
    serialization = None  # type: ignore[assignment]

from jopt.core.compiled import apply_gradients
from jopt.core.hyperparams import hyperparams, set_hyperparams
from jopt.core.packing import Layout
from jopt.core.protocol import LiveHyperparams, Transformation, require_transformation
from jopt.tools.rate_view import RateView
from jopt.tools.summaries import StateSummary, lr_of, step_of, summary

__all__ = ["TrainState"]

if serialization is not None:
    # A bucketed state's layout is static (no arrays): flax's to_bytes writes nothing for
    # it and from_bytes keeps the target's, as for any static part of a state.
    serialization.register_serialization_state(
        Layout, lambda _: {}, lambda target, _: target, override=True
    )

PyTree = Any


# eq=False: arrays have no single truth value; two states are equal only if identical.
@dataclasses.dataclass(frozen=True, eq=False)
class TrainState:
    """Params, optimizer state and optimizer in one immutable pytree (Keras-style steps).

    ``state = TrainState.create(params, opt)`` initializes the optimizer state;
    ``state = state.apply_gradients(grads)`` returns a new TrainState with one update
    applied, as ``params, opt_state = opt.apply_gradients(grads, opt_state, params)``
    does, to the bit. Nothing is mutated: rebind the name, as with any JAX value.

    A pytree whose leaves are the arrays of ``params`` and ``opt_state``; ``opt`` is
    static data (frozen and hashable), so a TrainState is passed to and returned from
    ``jax.jit`` directly, and a different optimizer means a different compiled program.
    Outside ``jit`` each ``apply_gradients`` runs jopt's compiled, cached step; inside
    your ``jit`` it is inlined.

    Attributes:
        params: the model's parameters, any pytree of float arrays.
        opt_state: the optimizer's functional state (:class:`jopt.OptimizerState` for a
            jopt optimizer: ``opt_state.slots["momentum"]``...).
        opt: the optimizer (any ``init``/``update`` transformation).

    Read-only views: ``step`` (Keras's ``iterations``), ``lr`` (the rate of the next
    update), ``hyperparams`` (the live values). orbax saves it as any pytree and restores
    it onto ``jax.eval_shape(lambda: state)``, optimizer included. Other model state
    (batch statistics, an RNG key) lives beside it, or use flax's TrainState with the
    jopt optimizer as its ``tx``. In IPython the state displays as :meth:`summary`.

    Example:
        >>> import jax, jax.numpy as jnp, jopt
        >>> state = jopt.TrainState.create({"w": jnp.ones(2)}, jopt.SGD(0.1, momentum=0.9))
        >>> step = jax.jit(lambda s, g: s.apply_gradients(g))
        >>> state = step(state, {"w": jnp.ones(2)})
        >>> state.params["w"], int(state.step), float(state.lr)
        (Array([0.9, 0.9], dtype=float32), 1, 0.10000000149011612)
        >>> state
        TrainState(step=1, lr=0.1, opt=SGD(learning_rate=0.1, momentum=0.9), params=1 array \
of 2 float32 (8 B), opt_state={momentum 8 B})
    """

    params: PyTree
    opt_state: PyTree
    opt: Transformation

    @classmethod
    def create(
        cls, params: PyTree, opt: Transformation | None = None, *, tx: Transformation | None = None
    ) -> TrainState:
        """Returns a TrainState at step 0: ``opt_state = opt.init(params)``.

        ``tx=`` is flax's keyword for the optimizer (``TrainState.create(params=p, tx=opt)``).

        Raises:
            TypeError: ``opt`` has no ``init``/``update`` methods (or ``params`` has
                integer leaves, from ``opt.init``).

        Example:
            >>> import jax.numpy as jnp, jopt
            >>> int(jopt.TrainState.create({"w": jnp.ones(2)}, jopt.Adam()).step)
            0
        """
        if opt is not None and tx is not None:
            raise TypeError("TrainState.create takes the optimizer once: opt or flax's tx")
        opt = tx if opt is None else opt
        if opt is None:
            raise TypeError("TrainState.create(params, opt) needs an optimizer: opt=... or tx=...")
        require_transformation(opt, "TrainState.create(params, opt): opt")
        return cls(params=params, opt_state=opt.init(params), opt=opt)

    def apply_gradients(self, grads: PyTree, *, donate: bool = False) -> TrainState:
        """Returns a new TrainState with one update from ``grads`` applied.

        The same numbers as ``opt.apply_gradients(grads, opt_state, params)``; see
        :func:`jopt.apply_gradients` for ``donate`` (outside ``jit``: this state's
        arrays are reused in place and must not be read afterwards).

        Raises:
            ValueError: ``grads`` differ from the params, naming the first differing path.

        Example:
            >>> import jax.numpy as jnp, jopt
            >>> state = jopt.TrainState.create({"w": jnp.ones(2)}, jopt.SGD(0.5))
            >>> state.apply_gradients({"w": jnp.ones(2)}).params["w"]
            Array([0.5, 0.5], dtype=float32)
        """
        params, opt_state = apply_gradients(
            self.opt, grads, self.opt_state, self.params, donate=donate
        )
        return dataclasses.replace(self, params=params, opt_state=opt_state)

    def replace(self, **changes: Any) -> TrainState:
        """Returns a copy with fields replaced (``params``, ``opt_state`` or ``opt``), as
        flax's ``TrainState.replace``."""
        return dataclasses.replace(self, **changes)

    @property
    def step(self) -> jax.Array:
        """int32, the number of updates applied (Keras's ``optimizer.iterations``).

        The optimizer state's own count, not a second one: for a wrapper
        (:class:`jopt.SkipNonFinite`, :class:`jopt.LossScaleOptimizer`) its inner
        optimizer's, so a skipped step does not count, as in Keras.
        """
        return step_of(self.opt_state)

    @property
    def lr(self) -> Any:
        """The learning rate of the next update, float32 (``opt.lr(opt_state)``); for a
        :func:`jopt.partition`, a dict of each group's.

        Read it as a value (``float(state.lr)``) or call it as Keras users type
        ``optimizer.learning_rate``-like reads: ``state.lr()`` returns the array (see
        :class:`jopt.tools.rate_view.RateView`).

        Raises:
            TypeError: the optimizer has no readable rate (a :func:`jopt.chain`).
        """
        rate = lr_of(self.opt, self.opt_state)
        return rate if isinstance(rate, dict) else RateView(rate)

    @property
    def hyperparams(self) -> dict[str, Any]:
        """The live hyperparameters (:func:`jopt.hyperparams` of ``opt_state``)."""
        return hyperparams(self.opt_state)

    def set_hyperparams(self, **values: Any) -> TrainState:
        """Returns a copy with live hyperparameters replaced, without recompiling (Keras's
        ``optimizer.learning_rate = 1e-4``).

        A jopt optimizer checks each value as its constructor does
        (:meth:`jopt.Optimizer.set_hyperparams`); other states take
        :func:`jopt.set_hyperparams`.

        Example:
            >>> import jax.numpy as jnp, jopt
            >>> state = jopt.TrainState.create({"w": jnp.ones(2)}, jopt.Adam(1e-3))
            >>> float(state.set_hyperparams(learning_rate=1e-4).lr)
            9.999999747378752e-05
        """
        if isinstance(self.opt, LiveHyperparams):
            return self.replace(opt_state=self.opt.set_hyperparams(self.opt_state, **values))
        return self.replace(opt_state=set_hyperparams(self.opt_state, **values))

    def summary_parts(self) -> tuple[Any, PyTree, PyTree]:
        """``(opt, params, opt_state)``, what :func:`jopt.summary` shows."""
        return self.opt, self.params, self.opt_state

    def summary(self) -> StateSummary:
        """A readable summary: step, next learning rate, live hyperparameters and the
        memory each slot holds (see :func:`jopt.summary`); IPython shows it as a table.
        """
        return summary(self.opt_state, self.opt, params=self.params)

    def __repr__(self) -> str:
        return self.summary().one_line("TrainState")

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self) if cycle else str(self.summary()))

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()


jax.tree_util.register_dataclass(
    TrainState, data_fields=["params", "opt_state"], meta_fields=["opt"]
)


def _state_dict(state: TrainState) -> dict[str, Any]:
    return {
        "params": serialization.to_state_dict(state.params),
        "opt_state": serialization.to_state_dict(state.opt_state),
    }


def _from_state_dict(target: TrainState, saved: dict[str, Any]) -> TrainState:
    return target.replace(
        params=serialization.from_state_dict(target.params, saved["params"]),
        opt_state=serialization.from_state_dict(target.opt_state, saved["opt_state"]),
    )


# flax.serialization.to_bytes / from_bytes(target, ...) of a TrainState, when flax is there.
if serialization is not None:
    serialization.register_serialization_state(TrainState, _state_dict, _from_state_dict)
