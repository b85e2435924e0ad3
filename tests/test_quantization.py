"""Block-wise 8-bit quantization against its oracle, bitsandbytes (run live on CPU)."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jopt.formulas.quantization import (
    Quantized,
    dequantize_blockwise,
    dynamic_map,
    quantize_blockwise,
)

torch = pytest.importorskip("torch")
F = pytest.importorskip("bitsandbytes.functional")

SIGNS = [True, False]


def data(signed: bool, shape: tuple[int, ...] = (37, 300)) -> np.ndarray:
    """Normal values times magnitudes over 14 decades, so every decade of the map and
    many near-zero values (where bitsandbytes' CPU search misses) are hit."""
    rng = np.random.default_rng(int(signed))
    x = rng.standard_normal(shape) * np.exp(rng.uniform(-14, 2, shape))
    x[:3] = 0.0  # whole zero blocks too
    return (x if signed else np.abs(x)).astype(np.float32)


@pytest.mark.parametrize("signed", SIGNS)
def test_dynamic_map_is_bitsandbytes_bit_for_bit(signed: bool) -> None:
    np.testing.assert_array_equal(
        dynamic_map(signed), F.create_dynamic_map(signed=signed).numpy(), strict=True
    )


@pytest.mark.parametrize("signed", SIGNS)
def test_dequantize_is_bitsandbytes_bit_for_bit(signed: bool) -> None:
    rng = np.random.default_rng(2)
    index = rng.integers(0, 256, (5, 333), dtype=np.uint8)  # 1665: a short last block
    scale = (rng.standard_normal(7) * 10.0 ** rng.integers(-8, 4, 7)).astype(np.float32)
    codes = (index.astype(np.int16) - 128).astype(np.int8) if signed else index
    expected = F.dequantize_blockwise(
        torch.from_numpy(index),
        absmax=torch.from_numpy(scale),
        code=F.create_dynamic_map(signed=signed),
        blocksize=256,
    ).numpy()
    q = Quantized(jnp.asarray(codes), jnp.asarray(scale))
    for got in (dequantize_blockwise(q), jax.jit(dequantize_blockwise)(q)):
        np.testing.assert_array_equal(got, expected, strict=True)


@pytest.mark.parametrize("signed", SIGNS)
def test_quantize_is_nearest_and_bitsandbytes_wherever_bitsandbytes_is(signed: bool) -> None:
    x = data(signed)
    codes, state = F.quantize_blockwise(
        torch.from_numpy(x), code=F.create_dynamic_map(signed=signed), blocksize=256
    )
    theirs = codes.numpy().astype(np.int64)
    jitted = jax.jit(quantize_blockwise, static_argnums=1)
    for q in (quantize_blockwise(x, signed), jitted(x, signed)):
        np.testing.assert_array_equal(q.scale, state.absmax.numpy(), strict=True)
        ours = np.asarray(q.codes).astype(np.int64) + (128 if signed else 0)
        # Distances to x / scale (float32, as both compute it), exactly, in float64.
        m = dynamic_map(signed).astype(np.float64)
        s = np.repeat(np.asarray(q.scale), 256)[: x.size].reshape(x.shape)
        normed = np.where(s > 0, x / np.where(s > 0, s, 1), 0).astype(np.float32)
        d_ours, d_theirs = np.abs(m[ours] - normed), np.abs(m[theirs] - normed)
        assert (d_ours <= d_theirs).all()
        # Where bitsandbytes found the nearest code, it is ours: no tie differs.
        np.testing.assert_array_equal(ours[d_ours == d_theirs], theirs[d_ours == d_theirs])
        assert 0 < (ours != theirs).mean() < 0.5  # the misses this test is about exist


def test_quantize_works_on_any_shape_under_vmap_and_round_trips_within_half_a_code() -> None:
    x = jnp.asarray(data(True, (3, 5, 7, 11)))  # 1155 elements a batch item
    batched = jax.vmap(lambda v: quantize_blockwise(v, True))(x)
    for i in range(3):
        item = Quantized(batched.codes[i], batched.scale[i])
        chex.assert_trees_all_equal(item, quantize_blockwise(x[i]))
    back = np.asarray(jax.vmap(dequantize_blockwise)(batched), np.float64)
    # NumPy oracle: the nearest code's error is at most half the widest gap, times scale.
    m = dynamic_map(True).astype(np.float64)
    assert back.shape == x.shape
    scale = np.asarray(batched.scale).max()
    assert np.abs(back - np.asarray(x)).max() <= np.diff(m).max() / 2 * scale


def test_a_zero_block_stays_zero_and_bad_input_is_refused() -> None:
    q = quantize_blockwise(jnp.zeros(300), signed=False)
    np.testing.assert_array_equal(q.scale, [0.0, 0.0])
    np.testing.assert_array_equal(dequantize_blockwise(q), np.zeros(300))
    with pytest.raises(TypeError, match="signed must be a bool, got 1"):
        quantize_blockwise(jnp.ones(3), 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="needs a floating array, got int32"):
        quantize_blockwise(jnp.ones(3, jnp.int32))
    with pytest.raises(TypeError, match="needs a Quantized, got ArrayImpl"):
        dequantize_blockwise(jnp.ones(3))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="codes must be int8 or uint8, got int32"):
        dequantize_blockwise(Quantized(jnp.ones(3, jnp.int32), jnp.ones(1)))


@pytest.mark.parametrize("signed", SIGNS)
def test_the_table_search_is_searchsorted_at_every_threshold_and_between(signed: bool) -> None:
    from jopt.formulas.quantization import _THRESHOLDS, _nearest_index

    t = _THRESHOLDS[signed]
    around = [t, np.nextafter(t, -np.inf), np.nextafter(t, np.inf), data(signed).ravel() / 8]
    x = np.concatenate([*around, [0.0, -0.0, 1.0, -1.0, 1e-38, -1e-38]]).astype(np.float32)
    x = x if signed else np.abs(x)
    np.testing.assert_array_equal(
        _nearest_index(jnp.asarray(x), signed), np.searchsorted(t, x, side="right")
    )
