"""Run the same gradient sequence through a Keras 3 optimizer and a jopt one.

Keras is the oracle: ``keras_run`` feeds ``make_problem()``'s gradients to
``keras.optimizers.X.apply_gradients`` on ``keras.Variable``s; ``jopt_run`` feeds them to
a jopt optimizer, compiled (``apply_gradients``) or eagerly (``update`` under
``jax.disable_jit``). Both return each variable's value after each step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import keras
import numpy as np

import jopt
from tests.problems import SHAPES, STEPS, make_problem


def keras_run(
    make_keras: Callable[[], Any],
    dtype: str = "float32",
    shapes: Sequence[tuple[int, ...]] = SHAPES,
    steps: int = STEPS,
) -> list[np.ndarray]:
    """Each variable's value (as float32) after each of ``steps`` Keras updates."""
    init, grads = make_problem(shapes=tuple(shapes), steps=steps)
    variables = [keras.Variable(x, dtype=dtype) for x in init]
    opt = make_keras()
    out: list[list[np.ndarray]] = [[] for _ in variables]
    for t in range(steps):
        opt.apply_gradients(
            [(jnp.asarray(g[t], dtype), v) for g, v in zip(grads, variables, strict=True)]
        )
        for j, v in enumerate(variables):
            out[j].append(np.asarray(jnp.asarray(v.value).astype(jnp.float32)))
    return [np.stack(o) for o in out]


def jopt_run(
    opt: Any,
    mode: str = "compiled",
    dtype: Any = jnp.float32,
    shapes: Sequence[tuple[int, ...]] = SHAPES,
    steps: int = STEPS,
) -> list[np.ndarray]:
    """jopt's twin of :func:`keras_run`; ``mode`` is ``"compiled"`` or ``"eager"``."""
    init, grads = make_problem(shapes=tuple(shapes), steps=steps)
    params = [jnp.asarray(x, dtype) for x in init]
    state = opt.init(params)
    out: list[list[np.ndarray]] = [[] for _ in params]
    for t in range(steps):
        g_t = [jnp.asarray(g[t], dtype) for g in grads]
        if mode == "compiled":
            params, state = opt.apply_gradients(g_t, state, params)
        else:
            with jax.disable_jit():
                updates, state = opt.update(g_t, state, params)
                params = jopt.apply_updates(params, updates)
        for j, p in enumerate(params):
            assert p.dtype == dtype, f"param {j} became {p.dtype}"
            out[j].append(np.asarray(p.astype(jnp.float32)))
    return [np.stack(o) for o in out]
