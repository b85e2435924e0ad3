"""apply_gradients: one compiled update step, cached, with optional buffer donation.

It dispatches only on the declared capabilities (:mod:`jopt.core.protocol`): any
transformation steps here, with its own arithmetic when it :class:`Applies` it.
"""

from __future__ import annotations

from typing import Any

import jax

from jopt.core.diagnostics import (
    check_pairs_are_arrays,
    check_params_not_state,
    check_state_fits_params,
)
from jopt.core.missing_grads import find_missing_grads
from jopt.core.protocol import (
    Transformation,
    apply_step,
    require_transformation,
)
from jopt.core.pytrees import check_same_tree
from jopt.core.validation import check_bool

__all__ = ["CompiledStep", "apply_gradients"]

PyTree = Any


def _step(
    tx: Transformation, grads: PyTree, params: PyTree, state: PyTree
) -> tuple[PyTree, PyTree]:
    # Keras's arithmetic for the new params where the transformation has it.
    return apply_step(tx, grads, state, params)


# The optimizer is a static argument: it is frozen and hashable, and equal optimizers
# share one compiled program per input shapes. Donation gets its own cache entry because
# it changes the compiled program's input/output aliasing. The donated inputs come in the
# order of the outputs (params, then state): XLA pairs donated buffers with outputs of
# the same shape in order, and any other order makes it write params into a slot's
# buffer and add a full copy to keep the old slot readable (2-5x slower steps).
_compiled = jax.jit(_step, static_argnums=0)
_compiled_donating = jax.jit(_step, static_argnums=0, donate_argnums=(2, 3))


def _step_in_layout(
    tx: Transformation, layout: tuple[Any, ...], grads: PyTree, params: PyTree, state: PyTree
) -> tuple[PyTree, PyTree]:
    new_params, new_state = _step(tx, grads, params, state)
    leaves, treedef = jax.tree.flatten((new_params, new_state))
    pinned = [jax.lax.with_sharding_constraint(x, s) for x, s in zip(leaves, layout, strict=True)]
    return jax.tree.unflatten(treedef, pinned)


# Arrays spread over several devices come back in the layout they went in: left to
# itself XLA may return replicated params split like a ZeRO-sharded state. The layout
# (every leaf's sharding, hashable) is part of the cache key.
_compiled_in_layout = jax.jit(_step_in_layout, static_argnums=(0, 1))
_compiled_donating_in_layout = jax.jit(
    _step_in_layout, static_argnums=(0, 1), donate_argnums=(3, 4)
)


def _layout(params: PyTree, state: PyTree) -> tuple[Any, ...] | None:
    """Every leaf's sharding when one spans several devices; None on one device."""
    leaves = jax.tree.leaves((params, state))
    # On the hot path: one device, the common case, is read from the first leaf alone
    # (a compiled step's committed arrays all live on the same devices).
    first = getattr(leaves[0], "sharding", None) if leaves else None
    if first is None or len(first.device_set) == 1:
        return None
    shardings = tuple(getattr(x, "sharding", None) for x in leaves)
    if any(s is None for s in shardings):
        return None  # NumPy arrays or Python numbers: placed by the step
    if any(_explicit(s) for s in shardings):
        return None  # explicit axes: the sharding is the arrays' type, kept by the step
    return shardings


def _explicit(sharding: Any) -> bool:
    mesh = getattr(sharding, "mesh", None)
    types = getattr(mesh, "axis_types", ())
    return any(t == jax.sharding.AxisType.Explicit for t in types)


def _check_not_shared(grads: PyTree, params: PyTree, state: PyTree) -> None:
    """Donated params and state must not also be the grads (XLA would fail on a buffer
    donated and read at once)."""
    grad_ids = {id(x) for x in jax.tree.leaves(grads)}
    for path, x in jax.tree_util.tree_flatten_with_path((params, state))[0]:
        if id(x) in grad_ids:
            where = ("params", "state")[path[0].idx] + jax.tree_util.keystr(path[1:])
            raise ValueError(
                f"donate=True: {where} is also passed as a gradient; donated buffers are "
                "overwritten, so pass a copy or donate=False"
            )


def _is_traced(tree: PyTree) -> bool:
    return any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(tree))


def _split_pairs(grads_and_vars: Any) -> tuple[list[Any], list[Any]]:
    pairs = list(grads_and_vars)
    for i, pair in enumerate(pairs):
        if not (isinstance(pair, tuple | list) and len(pair) == 2):
            raise TypeError(
                "apply_gradients without params expects Keras's zip(grads, var_list) form, "
                f"an iterable of (grad, variable) pairs; item {i} is {type(pair).__name__}"
            )
    return [g for g, _ in pairs], [v for _, v in pairs]


def apply_gradients(
    tx: Transformation,
    grads: Any,
    state: PyTree,
    params: PyTree | None = None,
    *,
    donate: bool = False,
) -> tuple[Any, PyTree]:
    """Runs ``update`` then ``apply_updates`` as one compiled step; returns ``(params, state)``.

    Two forms:

    * functional: ``params, state = apply_gradients(opt, grads, state, params)`` for any
      pytrees (``opt.apply_gradients(grads, state, params)`` is the same call);
    * Keras's: ``new_vars, state = opt.apply_gradients(zip(grads, var_list), state)``
      returns a list in ``var_list``'s order (``state`` comes from ``opt.init(var_list)``).

    The step is ``jax.jit``-compiled once per optimizer and input shapes and cached, so
    later calls do not re-trace. Called inside a user's own ``jax.jit`` it is inlined
    into the caller's program instead.

    Donation: by default the caller's arrays stay valid, as everywhere in JAX, and the
    step writes new buffers. With ``donate=True`` params and state are donated, so the
    update happens in place and no second copy of params + state is held (what Keras
    does with its variables); the arrays passed in must not be used afterwards. Grads
    are never donated. Inside an outer ``jit``, donation is the outer function's choice.

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> opt = jopt.SGD(0.5)
        >>> params = {"w": jnp.ones(2)}
        >>> state = opt.init(params)
        >>> params, state = jopt.apply_gradients(opt, {"w": jnp.ones(2)}, state, params)
        >>> params["w"], int(state.step)
        (Array([0.5, 0.5], dtype=float32), 1)
    """
    require_transformation(tx, "apply_gradients's optimizer")
    check_bool("donate", donate)
    keras_form = params is None
    if keras_form:
        grads, params = _split_pairs(grads)
        check_pairs_are_arrays(grads, params)
    check_params_not_state(state, params)
    check_state_fits_params(state, params)
    if (missing := find_missing_grads(grads, params)) is not None:
        # Keras skips a variable without a gradient (with a warning): so do we.
        sub_params, sub_state = missing.drop(params, state)
        new_params, new_state = apply_gradients(tx, grads, sub_state, sub_params, donate=donate)
        new_params, state = missing.restore(new_params, new_state, params, state)
        return (list(new_params) if keras_form else new_params), state
    check_same_tree(params, grads, "params", "grads")
    if donate:
        _check_not_shared(grads, params, state)
    if _is_traced((grads, state, params)):
        new_params, state = _step(tx, grads, params, state)
    elif (layout := _layout(params, state)) is not None:
        step_in = _compiled_donating_in_layout if donate else _compiled_in_layout
        new_params, state = step_in(tx, layout, grads, params, state)
    else:
        step = _compiled_donating if donate else _compiled
        new_params, state = step(tx, grads, params, state)
    return (list(new_params) if keras_form else new_params), state


class CompiledStep:
    """Gives a transformation the method form ``tx.apply_gradients(grads, state, params)``
    of :func:`apply_gradients` (every jopt optimizer, wrapper, layout and composite)."""

    def apply_gradients(
        self, grads: Any, state: Any, params: PyTree | None = None, *, donate: bool = False
    ) -> tuple[Any, Any]:
        """One compiled update: returns ``(new_params, new_state)``.

        See :func:`jopt.apply_gradients` for the forms accepted and for donation.
        """
        return apply_gradients(self, grads, state, params, donate=donate)  # type: ignore[arg-type]
