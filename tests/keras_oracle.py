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

from tests.problems import SHAPES, STEPS, make_problem


def keras_run(
    make_keras: Callable[[], Any],
    dtype: str = "float32",
    shapes: Sequence[tuple[int, ...]] = SHAPES,
    steps: int = STEPS,
    configure: Callable[[Any, list[Any]], None] | None = None,
    final: Callable[[Any], Any] | None = None,
    stateless: bool = False,
) -> list[np.ndarray]:
    """Each variable's value (as float32) after each of ``steps`` Keras updates.

    ``configure(opt, variables)`` runs once before the first step (e.g. to exclude
    variables from weight decay); ``final(opt)``, if given, is appended to the result
    (e.g. Keras's moving averages after the last step). ``stateless=True`` runs Keras's
    ``stateless_apply`` under ``jax.jit``, the path ``model.fit`` takes on the JAX
    backend (and the fast one where eager Keras re-traces a ``lax.cond`` every step).
    """
    init, grads = make_problem(shapes=tuple(shapes), steps=steps)
    variables = [keras.Variable(x, dtype=dtype, name=f"v{j}") for j, x in enumerate(init)]
    opt = make_keras()
    if configure is not None:
        opt.build(variables)
        configure(opt, variables)
    out: list[list[np.ndarray]] = [[] for _ in variables]
    if stateless:
        opt.build(variables)
        step = jax.jit(opt.stateless_apply)
        opt_values = [v.value for v in opt.variables]
    for t in range(steps):
        g_t = [jnp.asarray(g[t], dtype) for g in grads]
        if stateless:
            values, opt_values = step(opt_values, g_t, [v.value for v in variables])
            for v, value in zip(variables, values, strict=True):
                v.assign(value)
            for v, value in zip(opt.variables, opt_values, strict=True):
                v.assign(value)
        else:
            opt.apply_gradients(list(zip(g_t, variables, strict=True)))
        for j, v in enumerate(variables):
            out[j].append(np.asarray(jnp.asarray(v.value).astype(jnp.float32)))
    result = [np.stack(o) for o in out]
    return result if final is None else [*result, final(opt)]


def jopt_run(
    opt: Any,
    mode: str = "compiled",
    dtype: Any = jnp.float32,
    shapes: Sequence[tuple[int, ...]] = SHAPES,
    steps: int = STEPS,
    final: Callable[[Any, Any], Any] | None = None,
) -> list[np.ndarray]:
    """jopt's twin of :func:`keras_run`; ``mode`` is ``"compiled"`` (``apply_gradients``)
    or ``"eager"`` (``apply`` under ``jax.disable_jit``, op by op as Keras runs)."""
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
                params, state = opt.apply(g_t, state, params)
        for j, p in enumerate(params):
            assert p.dtype == dtype, f"param {j} became {p.dtype}"
            out[j].append(np.asarray(p.astype(jnp.float32)))
    result = [np.stack(o) for o in out]
    return result if final is None else [*result, final(opt, state)]


def _same_config_value(a: Any, b: Any) -> bool:
    # Keras writes float rates rounded to float32 (0.05 -> 0.05000000074505806).
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 1e-7 * abs(b)
    if isinstance(a, dict):  # a serialized schedule
        return a["class_name"] == b["class_name"] and a["config"] == b["config"]
    return a == b


def assert_config_matches_keras(make: Callable[[], Any], make_keras: Callable[[], Any]) -> None:
    """jopt's config has Keras's keys and values, and both configs rebuild the optimizer.

    Keras appends a per-process counter to repeated default names ("adam_3"); jopt keeps
    the plain auto name (its ``keras_name``) so equal configs stay equal and hash alike.
    """
    ours, theirs = make().get_config(), make_keras().get_config()
    assert ours.keys() == theirs.keys()
    assert theirs["name"].startswith(ours["name"])
    for key in ours.keys() - {"name"}:
        assert _same_config_value(ours[key], theirs[key]), key
    assert type(make()).from_config(ours) == make()
    rebuilt = type(make()).from_config(theirs | {"name": ours["name"]})
    for key, value in rebuilt.get_config().items():
        assert _same_config_value(value, ours[key]), key
