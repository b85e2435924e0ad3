"""Block-wise 8-bit quantization with the dynamic map of Dettmers et al. (2022).

"8-bit Optimizers via Block-wise Quantization" (bitsandbytes) stores an optimizer slot as
one byte per element plus one float32 scale per block of :data:`BLOCK_SIZE` consecutive
elements (of the leaf flattened in C order): the block's absolute maximum. An element
``x`` of a block with scale ``s`` is stored as the index ``i`` of the code ``map[i]``
nearest to ``x / s``, and read back as ``map[i] * s``.

The map is bitsandbytes' dynamic (non-linear) data type, 256 sorted float32 values in
[-1, 1] (signed: for slots that can be negative) or [0, 1] (unsigned: a second moment):
for each decade ``10**-6 ... 10**0`` the midpoints of an even split of [0.1, 1], so small
values keep their relative precision. :func:`dynamic_map` equals
``bitsandbytes.functional.create_dynamic_map(signed)`` bit for bit (torch's float32
``linspace`` and products are reproduced exactly), and :func:`dequantize_blockwise`
equals ``bitsandbytes.functional.dequantize_blockwise`` (block 256).

:func:`quantize_blockwise` picks the code nearest to ``x / s`` (in float32), always:
bitsandbytes' CPU kernel does not for a few percent of the unsigned map's small values.
The search is exact against the 255 decision thresholds (the float32 values just above
each midpoint of two neighbouring codes), and cheap under XLA: a table lookup on the
value's float32 bits and one compare, usable under ``jit`` and ``vmap``.

Signed codes are stored as ``int8`` (the index minus 128) and unsigned ones as ``uint8``
(the index), so a stored slot says itself which map it uses.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "BLOCK_SIZE",
    "Quantized",
    "dequantize_blockwise",
    "dynamic_map",
    "quantize_blockwise",
]

#: Elements per block, each with its own float32 scale (bitsandbytes' optimizers' 256).
BLOCK_SIZE = 256


def _torch_linspace_float32(start: float, end: float, steps: int) -> np.ndarray:
    """torch's CPU float32 ``linspace``, bit for bit: the first half counts up from
    ``start`` and the second half down from ``end``, each a fused multiply-add (one
    rounding), with a float32 step."""
    lo, hi = np.float32(start), np.float32(end)
    step = np.float32((hi - lo) / np.float32(steps - 1))
    i = np.arange(steps, dtype=np.float64)
    up = (np.float64(lo) + np.float64(step) * i).astype(np.float32)
    down = (np.float64(hi) - np.float64(step) * (steps - 1 - i)).astype(np.float32)
    return np.where(i < steps // 2, up, down)


def _dynamic_map(signed: bool) -> np.ndarray:
    values: list[np.ndarray] = []
    for i in range(7):  # decades 1e-6 ... 1e0; 7 exponent bits, none left for extra items
        bounds = _torch_linspace_float32(0.1, 1.0, 2 ** (i if signed else i + 1) + 1)
        means = (bounds[:-1] + bounds[1:]) / np.float32(2.0)
        scaled = np.float32(10.0 ** (i - 6)) * means  # a float32 product, as torch's
        values += [scaled, -scaled] if signed else [scaled]
    values.append(np.array([0.0, 1.0], np.float32))
    return np.sort(np.concatenate(values))


_MAPS = {signed: _dynamic_map(signed) for signed in (True, False)}


def _thresholds(codes: np.ndarray) -> np.ndarray:
    # x (float32) is nearer the upper of two neighbours iff x > their exact midpoint,
    # i.e. iff x >= the smallest float32 above it: an exact test in float32.
    mid = (codes[:-1].astype(np.float64) + codes[1:].astype(np.float64)) / 2
    below = mid.astype(np.float32)
    return np.where(
        below.astype(np.float64) > mid, below, np.nextafter(below, np.float32(np.inf))
    ).astype(np.float32)


_THRESHOLDS = {signed: _thresholds(m) for signed, m in _MAPS.items()}

# The nearest-code search, cheap in XLA: the float32 bits of x / s, shifted to keep the
# sign, the exponent and _KEY_BITS mantissa bits, index a table of the first threshold
# index of that narrow range of values; a range holds at most _STEPS thresholds (1 for
# 7 bits, for both maps), so _STEPS compares finish the search exactly.
_KEY_BITS = 7


def _search_table(thresholds: np.ndarray) -> tuple[np.ndarray, int]:
    keys = np.arange(2 ** (9 + _KEY_BITS), dtype=np.uint32)
    low_bits = keys << (23 - _KEY_BITS)
    ends = low_bits.view(np.float32), (low_bits | ((1 << (23 - _KEY_BITS)) - 1)).view(np.float32)
    finite = np.isfinite(ends[0]) & np.isfinite(ends[1])  # NaN and Inf keys: any entry
    low = np.where(finite, np.minimum(*ends), 0)
    high = np.where(finite, np.maximum(*ends), 0)
    first = np.searchsorted(thresholds, low, side="right")
    steps = int((np.searchsorted(thresholds, high, side="right") - first).max())
    return first.astype(np.uint8), steps


_TABLES = {signed: _search_table(t) for signed, t in _THRESHOLDS.items()}


def _nearest_index(normed: jax.Array, signed: bool) -> jax.Array:
    """``searchsorted(thresholds, normed, side="right")`` for float32 ``normed``: the
    index of the nearest code."""
    table, steps = _TABLES[signed]
    # +inf after the last threshold: a value in the top range compares False past it.
    thresholds = jnp.asarray(np.append(_THRESHOLDS[signed], np.float32(np.inf)))
    key = jax.lax.shift_right_logical(
        jax.lax.bitcast_convert_type(normed, jnp.uint32), jnp.uint32(23 - _KEY_BITS)
    )
    index = jnp.asarray(table)[key].astype(jnp.int32)
    for _ in range(steps):
        index = index + (normed >= thresholds[index]).astype(jnp.int32)
    return index


def dynamic_map(signed: bool = True) -> np.ndarray:
    """The 256 sorted float32 codes of bitsandbytes' dynamic map.

    Equal, bit for bit, to ``bitsandbytes.functional.create_dynamic_map(signed)``: for
    each decade ``10**k`` (``k = -6 ... 0``) the midpoints of ``2**(k+6)`` (signed, with
    their negatives) or ``2**(k+7)`` (unsigned) equal steps of [0.1, 1], times ``10**k``;
    plus 0 and 1.

    Example:
        >>> m = dynamic_map(signed=False)
        >>> m.shape, float(m[0]), float(m[-1])
        ((256,), 0.0, 1.0)
    """
    if not isinstance(signed, bool):
        raise TypeError(f"signed must be a bool, got {signed!r:.100}")
    return _MAPS[signed].copy()


class Quantized(NamedTuple):
    """A block-wise 8-bit array: ``codes`` shaped like the array it stands for, and one
    float32 ``scale`` (absmax) per block of :data:`BLOCK_SIZE` elements of the array
    flattened in C order (the last block may be short).

    ``codes`` is ``int8`` for the signed map (the code's index minus 128) or ``uint8``
    for the unsigned one (the index). A pytree, so it passes through ``jit``, ``vmap``,
    checkpoints and ``jax.tree`` functions as two arrays.

    Example:
        >>> import jax.numpy as jnp
        >>> q = quantize_blockwise(jnp.linspace(-1.0, 1.0, 300), signed=True)
        >>> q.codes.dtype, q.scale.shape, q.shape
        (dtype('int8'), (2,), (300,))
    """

    codes: jax.Array
    scale: jax.Array

    @property
    def signed(self) -> bool:
        """Whether the codes index the signed map (``int8`` codes)."""
        return jnp.dtype(self.codes.dtype) == jnp.int8

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of the array it stands for."""
        return tuple(self.codes.shape)

    def dequantize(self) -> jax.Array:
        """The float32 array it stands for (see :func:`dequantize_blockwise`)."""
        return dequantize_blockwise(self)


def _whole(x: jax.Array) -> tuple[jax.Array, Any]:
    """``x`` replicated if it is split over explicit mesh axes (whose arrays cannot be
    flattened into blocks as they are), and its sharding to give the result back."""
    sharding: Any = getattr(jax.typeof(x), "sharding", None)
    mesh: Any = getattr(sharding, "mesh", None)
    explicit = mesh is not None and any(
        t == jax.sharding.AxisType.Explicit for t in getattr(mesh, "axis_types", ())
    )
    if not explicit or all(s is None for s in sharding.spec):
        return x, None
    return jax.sharding.reshard(x, jax.sharding.NamedSharding(mesh, jax.P())), sharding


def _placed(x: jax.Array, sharding: Any) -> jax.Array:
    return x if sharding is None else jax.sharding.reshard(x, sharding)


def _blocks(x: jax.Array) -> jax.Array:
    """``x`` flattened, zero-padded to whole blocks, as ``(blocks, BLOCK_SIZE)``."""
    flat = jnp.reshape(x, (-1,))
    pad = -flat.shape[0] % BLOCK_SIZE
    return jnp.pad(flat, (0, pad)).reshape(-1, BLOCK_SIZE)


def quantize_blockwise(x: Any, signed: bool = True) -> Quantized:
    """``x`` (any shape, any float dtype, computed in float32) as a :class:`Quantized`.

    Each block's scale is ``s = max|x|`` over the block (float32); each element becomes
    the index of the code nearest to ``x / s`` (the signed map when ``signed``, else the
    unsigned one, which suits values >= 0 only: a negative value becomes code 0; the
    signed map has no -1, so -max|x| comes back as -0.99297 max|x|). A
    block of zeros has scale 0 and the code of 0. NaN in a block makes its scale NaN.

    Example:
        >>> import jax.numpy as jnp
        >>> q = quantize_blockwise(jnp.array([0.5, -1.0, 0.25]))
        >>> dequantize_blockwise(q)
        Array([ 0.50078124, -0.99296874,  0.24765624], dtype=float32)
    """
    if not isinstance(signed, bool):
        raise TypeError(f"signed must be a bool, got {signed!r:.100}")
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"quantize_blockwise needs a floating array, got {x.dtype}")
    x, sharding = _whole(x)
    blocks = _blocks(x.astype(jnp.float32))
    scale = jnp.max(jnp.abs(blocks), axis=1)
    normed = blocks / jnp.where(scale == 0, jnp.float32(1), scale)[:, None]
    index = _nearest_index(normed, signed)
    index = index.reshape(-1)[: x.size].reshape(x.shape)
    codes = (index - 128).astype(jnp.int8) if signed else index.astype(jnp.uint8)
    return Quantized(_placed(codes, sharding), scale)


def dequantize_blockwise(q: Quantized) -> jax.Array:
    """The float32 array ``map[code] * scale`` of a :class:`Quantized`, per block.

    Equal, bit for bit, to ``bitsandbytes.functional.dequantize_blockwise`` with
    ``blocksize=256`` on the same codes (as uint8 indices) and scales.

    Example:
        >>> import jax.numpy as jnp
        >>> q = Quantized(jnp.zeros(3, jnp.uint8) + 255, jnp.array([2.0]))
        >>> dequantize_blockwise(q)
        Array([2., 2., 2.], dtype=float32)
    """
    if not isinstance(q, Quantized):
        raise TypeError(f"dequantize_blockwise needs a Quantized, got {type(q).__name__}")
    codes = jnp.asarray(q.codes)
    signed = jnp.dtype(codes.dtype) == jnp.int8
    if not signed and jnp.dtype(codes.dtype) != jnp.uint8:
        raise TypeError(f"Quantized.codes must be int8 or uint8, got {codes.dtype}")
    codes, sharding = _whole(codes)
    scale, _ = _whole(jnp.asarray(q.scale, jnp.float32))
    index = codes.astype(jnp.int32) + (128 if signed else 0)
    values = jnp.asarray(_MAPS[bool(signed)])[_blocks(index)]
    out = values * scale[:, None]
    return _placed(out.reshape(-1)[: codes.size].reshape(codes.shape), sharding)
