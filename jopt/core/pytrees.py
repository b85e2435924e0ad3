"""Pytree checks shared by every optimizer: errors that name the first differing path.

A mismatch between grads and params is the most common user error in a functional
optimizer; JAX's own message ("Custom node type mismatch...") names neither the
argument nor the path. These checks run at trace time only (structure and shapes are
static), so they cost nothing inside a compiled step.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["as_dtype", "check_float_leaves", "check_same_tree", "leaves_with_paths"]


def as_dtype(x: Any, dtype: Any) -> jax.Array:
    """``x`` as an array of ``dtype``: itself when it already is one (no op to trace,
    which a step pays per leaf and per slot), else converted."""
    if isinstance(x, jax.Array) and x.dtype == dtype and not x.weak_type:
        return x
    return jnp.asarray(x).astype(dtype)


def _is_none(x: Any) -> bool:
    return x is None


def leaves_with_paths(tree: Any) -> list[tuple[str, Any]]:
    """Returns ``[(path, leaf), ...]`` in flattening order, ``None`` leaves included.

    Paths are written as JAX writes them (``"['enc']['bias']"``, ``"[0]"``, ``".mu"``).
    """
    flat, _ = jax.tree_util.tree_flatten_with_path(tree, is_leaf=_is_none)
    return [(jax.tree_util.keystr(path), leaf) for path, leaf in flat]


def check_same_tree(reference: Any, other: Any, ref_name: str, other_name: str) -> None:
    """Raises ``ValueError`` naming the first path where ``other`` differs from ``reference``.

    Compares the set of paths (a missing or extra entry), then ``None`` leaves, then leaf
    shapes, then the container types. Cheap enough to call at every trace.

    Example:
        >>> check_same_tree({"w": 1.0, "b": 2.0}, {"w": 1.0}, "params", "grads")
        Traceback (most recent call last):
        ...
        ValueError: grads['b'] is missing (params has it)
    """
    ref_def: Any  # a PyTreeDef (jaxlib ships no type stub for it)
    other_def: Any
    ref_flat, ref_def = jax.tree_util.tree_flatten(reference, is_leaf=_is_none)
    other_flat, other_def = jax.tree_util.tree_flatten(other, is_leaf=_is_none)
    # Fast path, taken on every call that is right: no path strings are built.
    if ref_def == other_def and all(
        (a is None) == (b is None) and (a is None or np.shape(a) == np.shape(b))
        for a, b in zip(ref_flat, other_flat, strict=True)
    ):
        return
    ref_leaves = leaves_with_paths(reference)
    other_leaves = leaves_with_paths(other)
    if ref_def != other_def:
        ref_paths = {p for p, _ in ref_leaves}
        other_paths = {p for p, _ in other_leaves}
        for path, _ in ref_leaves:
            if path not in other_paths:
                raise ValueError(f"{other_name}{path} is missing ({ref_name} has it)")
        for path, _ in other_leaves:
            if path not in ref_paths:
                raise ValueError(f"{other_name}{path} is not in {ref_name}")
    for (path, a), (_, b) in zip(ref_leaves, other_leaves, strict=True):
        if (a is None) != (b is None):
            which = (other_name, ref_name) if b is None else (ref_name, other_name)
            raise ValueError(
                f"{which[0]}{path} is None but {which[1]}{path} is not; "
                "give both the same structure"
            )
        if a is not None and np.shape(a) != np.shape(b):
            raise ValueError(
                f"{other_name}{path} has shape {np.shape(b)} but {ref_name}{path} has "
                f"shape {np.shape(a)}"
            )
    if ref_def != other_def:
        raise ValueError(
            f"{other_name} and {ref_name} hold the same paths in different containers: "
            f"{other_name} is {other_def}, {ref_name} is {ref_def}"
        )


def check_float_leaves(tree: Any, name: str) -> None:
    """Raises ``TypeError`` naming the first leaf that is not a real floating-point array.

    What jopt does with each kind of leaf, everywhere (``init``, ``update``, ``apply``,
    :func:`jopt.apply_updates`):

    * float16, bfloat16, float32, float64 arrays (and Python floats): updated, each
      keeping its dtype; grads of another float dtype are cast to the param's, as Keras
      casts them to the variable's;
    * ``None``: passed through as ``None`` (an empty subtree);
    * integer or boolean leaves: a ``TypeError`` naming the path. They have no gradient;
      keep them out of the optimized tree, or label them ``"freeze"`` in a
      :func:`jopt.partition`, whose frozen leaves are never touched;
    * complex leaves: a ``TypeError`` naming the path. Keras's rules are written for real
      numbers (``g**2``, not ``|g|**2``); optimize the real and imaginary parts as two
      real leaves instead;
    * anything else (a string, an object): a ``TypeError`` naming the path.

    Only dtypes are read, so the check costs nothing at run time and works on traced
    values; path strings are built only for the error message.

    Example:
        >>> import jax.numpy as jnp
        >>> check_float_leaves({"n": jnp.int32(3)}, "params")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        TypeError: params['n'] has dtype int32; jopt optimizers update real floating-point ...
    """
    for leaf in jax.tree_util.tree_leaves(tree):
        if not _is_float(leaf):
            break
    else:
        return  # the common case: no path string is built
    for path, leaf in leaves_with_paths(tree):
        if leaf is None or _is_float(leaf):
            continue
        try:
            dtype = jnp.result_type(leaf)
        except TypeError:
            raise TypeError(
                f"{name}{path} has type {type(leaf).__name__} ({leaf!r:.60}), not an array; jopt "
                "optimizers update real floating-point arrays only"
            ) from None
        raise TypeError(
            f"{name}{path} has dtype {dtype}; jopt optimizers update real floating-point "
            "leaves only (float16, bfloat16, float32, float64). Keep integer or complex "
            "values out of the tree you optimize, or split them off with a label."
        )


def _is_float(leaf: Any) -> bool:
    if isinstance(leaf, float):
        return True
    dtype = getattr(leaf, "dtype", None)
    if dtype is None or isinstance(leaf, str | bytes):
        return False
    try:
        return bool(jnp.issubdtype(dtype, jnp.floating))
    except TypeError:
        return False
