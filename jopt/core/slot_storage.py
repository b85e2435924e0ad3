"""How a slot is stored between steps: in a dtype, or block-wise 8-bit.

``slot_dtypes={"momentum": "int8"}`` asks for 8-bit storage: the slot is kept as a
:class:`~jopt.formulas.quantization.Quantized` (one byte per element plus one float32
scale per block of 256, bitsandbytes' block-wise dynamic quantization), the rule runs in
float32 on its dequantized value, and the new value is quantized again, all inside the
step. A slot whose values are never negative (a second moment, an accumulator: the
optimizer lists them in ``nonnegative_slots``) uses the unsigned map, any other the
signed one. Leaves under :data:`MIN_QUANTIZED_SIZE` elements stay float32, as in
bitsandbytes (``min_8bit_size``): their bytes are few and their error would be worst.

The base optimizer calls :func:`init`, :func:`load` and :func:`store` at its three slot
points (plus :func:`compute_dtype`, :func:`check_quantizable` and :func:`shapes` for its
dtype rule, its constructor's checks and its grads-against-slots check); readers of
slots by name (``opt.slots(state)``, :func:`jopt.summary`, ``jopt.bucketed``) use
:func:`values` and :func:`is_quantized`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jopt.core.pytrees import as_dtype
from jopt.formulas.quantization import Quantized, quantize_blockwise

__all__ = [
    "INT8",
    "MIN_QUANTIZED_SIZE",
    "check_quantizable",
    "compute_dtype",
    "init",
    "is_quantized",
    "load",
    "shapes",
    "store",
    "values",
]

#: The ``slot_dtypes`` value that means block-wise 8-bit storage.
INT8 = jnp.dtype("int8")

#: Leaves with fewer elements stay float32 under ``"int8"`` (bitsandbytes' min_8bit_size).
MIN_QUANTIZED_SIZE = 4096


def is_quantized(x: Any) -> bool:
    """Whether ``x`` is a stored 8-bit slot leaf (for ``is_leaf`` in tree functions)."""
    return isinstance(x, Quantized)


def compute_dtype(dtype: Any) -> Any:
    """The dtype a slot stored in ``dtype`` is computed in: float32 for ``"int8"``."""
    dtype = jnp.dtype(dtype)
    return jnp.dtype(jnp.float32) if dtype == INT8 else dtype


def init(value: jax.Array, dtype: Any, signed: bool) -> Any:
    """A slot leaf's stored form from its initial ``value`` (in :func:`compute_dtype`):
    quantized for ``"int8"`` (``signed`` picks the map) unless the leaf is small, else
    ``value`` itself."""
    if jnp.dtype(dtype) != INT8:
        return value
    if jnp.size(value) < MIN_QUANTIZED_SIZE:
        return jnp.asarray(value, jnp.float32)
    return quantize_blockwise(value, signed)


def load(stored: Any, dtype: Any) -> jax.Array:
    """A stored slot leaf's value in ``dtype`` (dequantized when 8-bit)."""
    if isinstance(stored, Quantized):
        return stored.dequantize().astype(dtype)
    return as_dtype(stored, dtype)


def store(value: jax.Array, like: Any) -> Any:
    """``value`` stored as ``like`` (the slot leaf it replaces) is: quantized with the
    same map, or cast to its dtype."""
    if isinstance(like, Quantized):
        return quantize_blockwise(value, like.signed)
    return as_dtype(value, jnp.result_type(like))


def values(slot: Any) -> Any:
    """A slot tree with every 8-bit leaf dequantized (float32); other leaves unchanged.

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> opt = jopt.Adam(slot_dtypes={"momentum": "int8"})
        >>> state = opt.init({"w": jnp.ones(8192)})
        >>> type(state.slots["momentum"]["w"]).__name__, values(state.slots["momentum"])["w"].shape
        ('Quantized', (8192,))
    """
    return jax.tree.map(
        lambda x: load(x, jnp.float32) if isinstance(x, Quantized) else x,
        slot,
        is_leaf=is_quantized,
    )


def shapes(slot: Any) -> Any:
    """A slot tree with each 8-bit leaf replaced by its codes (the param's shape), so it
    can be checked against the grads."""
    return jax.tree.map(
        lambda x: x.codes if isinstance(x, Quantized) else x, slot, is_leaf=is_quantized
    )


# The base options' slots, read outside the rule or needed exactly.
_OPTION_SLOTS = {
    "master_weights": "it is the exact float32 copy of the params",
    "gradient_accumulator": "the accumulated gradients are summed exactly between updates",
    "average": "the EMA of the params is itself a copy of the params",
}


def check_quantizable(opt: Any, slot_dtypes: dict[str, Any]) -> None:
    """Raises ``ValueError`` naming a slot asked for ``"int8"`` that ``opt``'s rule
    cannot keep in 8 bits (its class's ``exact_slots`` says why)."""
    for name, dtype in slot_dtypes.items():
        if jnp.dtype(dtype) != INT8:
            continue
        why = (dict(opt.exact_slots) | _OPTION_SLOTS).get(name)
        if why is not None:
            raise ValueError(
                f"slot_dtypes[{name!r}] = 'int8': {type(opt).__name__}'s {name!r} cannot be "
                f"stored in 8 bits: {why}. Use a floating dtype (float32, bfloat16) for it"
            )
