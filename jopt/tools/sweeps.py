"""Hyperparameter sweeps: K copies of a model, each with its own live hyperparameters.

Because the live hyperparameters are arrays in the state, a sweep is just a batch axis:
``jax.vmap`` a train step over K params and K states and one compiled program trains
all K models at once; a new set of K values reuses that program.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jopt.core.hyperparams import set_hyperparams
from jopt.core.protocol import Transformation

__all__ = ["sweep_init"]

PyTree = Any


def _sweep_length(hyperparams: dict[str, Any]) -> int:
    """The common length K of the swept values; raises naming the argument that differs."""
    lengths = {}
    for name, values in hyperparams.items():
        shape = np.shape(values)
        if len(shape) != 1 or shape[0] == 0:
            raise ValueError(
                f"{name} must be a non-empty 1-D sequence of values, one per model, "
                f"got shape {shape}"
            )
        lengths[name] = shape[0]
    if len(set(lengths.values())) > 1:
        raise ValueError(
            f"every swept hyperparameter needs the same number of values, got {lengths}"
        )
    return next(iter(lengths.values()))


def sweep_init(opt: Transformation, params: PyTree, **hyperparams: Any) -> tuple[PyTree, PyTree]:
    """Returns ``(params_k, state_k)``: K copies of ``params`` and K states, stacked on axis 0.

    Model ``k`` starts from ``params`` with the live hyperparameter ``name`` set to
    ``hyperparams[name][k]``; every other part of its state is ``opt.init(params)``.
    Each value is a 1-D sequence (list, NumPy or JAX array) of length K, the same K for
    all. The state is exactly::

        jax.vmap(lambda *v: jopt.set_hyperparams(opt.init(params), **dict(zip(names, v))))(
            *values)

    Train the K models with one compiled step by mapping any single-model step over
    axis 0 of params and state, and not over the data:
    ``jax.jit(jax.vmap(step, in_axes=(0, 0, None, None)))``. Model ``k`` then computes
    the same formulas as a separate run with ``set_hyperparams(state, name=values[k])``,
    to float32 rounding: batched kernels sum in another order, so a member can start an
    ulp away from its separate run, and a chaotic training run can amplify that over
    hundreds of steps (the optimizer's own step is elementwise and agrees exactly). A new
    set of K values (same K) reuses the compiled step.

    When it pays off: vmap turns K matmuls into one batched matmul, which is faster than
    K separate steps (an MLP on 2 CPU cores: 2.2x for K=4); K convolutions become one
    grouped convolution, which XLA's CPU backend runs slower than K plain ones (a small
    CNN: 0.73x). Measure your model with ``benchmarks/sweep_models.py``. ``opt`` is any jopt
    optimizer or a container of them (a :func:`jopt.chain`); with a schedule as learning
    rate, sweep ``learning_rate_scale``. For K different initial params, ``jax.vmap`` an
    init of your own instead.

    Each value is checked by :func:`jopt.set_hyperparams`, so a bad one raises its error,
    prefixed with the entry (``learning_rate[2]: ...``); traced values are not checked.

    Raises:
        TypeError: no hyperparameter was given.
        ValueError: a value is not 1-D and non-empty, the lengths differ, no state holds
            a name, or an entry is out of range.

    Example:
        >>> import jax, jax.numpy as jnp, jopt
        >>> from jopt.tools.sweeps import sweep_init
        >>> opt = jopt.SGD(momentum=0.9)
        >>> params_k, state_k = sweep_init(opt, {"w": jnp.ones(2)}, learning_rate=[0.1, 0.5])
        >>> params_k["w"].shape, jopt.hyperparams(state_k)["learning_rate"]
        ((2, 2), Array([0.1, 0.5], dtype=float32))
        >>> step = jax.jit(jax.vmap(lambda p, s, g: opt.apply(g, s, p), in_axes=(0, 0, None)))
        >>> params_k, state_k = step(params_k, state_k, {"w": jnp.ones(2)})
        >>> params_k["w"]
        Array([[0.9, 0.9],
               [0.5, 0.5]], dtype=float32)
    """
    if not hyperparams:
        raise TypeError(
            "sweep_init needs at least one hyperparameter to sweep, e.g. learning_rate=[1e-3, 1e-2]"
        )
    k = _sweep_length(hyperparams)
    state = opt.init(params)
    for name, values in hyperparams.items():
        if isinstance(values, jax.core.Tracer):
            continue
        for i, value in enumerate(np.asarray(values).tolist()):
            try:
                set_hyperparams(state, **{name: value})
            except (TypeError, ValueError) as e:
                raise type(e)(f"{name}[{i}]: {e}") from e

    names = list(hyperparams)

    def one(*values: Any) -> PyTree:
        return set_hyperparams(opt.init(params), **dict(zip(names, values, strict=True)))

    state_k = jax.vmap(one)(*(jnp.asarray(hyperparams[n], jnp.float32) for n in names))
    params_k = jax.tree.map(lambda p: jnp.broadcast_to(p, (k, *np.shape(p))), params)
    return params_k, state_k
