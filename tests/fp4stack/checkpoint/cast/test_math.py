"""Per-tensor math, checked with the consumers' decoders: compressed-tensors MXFP4 for the
source, compressed-tensors NVFP4 and ModelOpt NVFP4QTensor for the result, and ModelOpt's
own NVFP4 quantizer as the "plain dequantize → requantize" baseline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from modelopt.torch.quantization.qtensor.nvfp4_tensor import NVFP4QTensor

from fp4stack.checkpoint.cast.convert import cast_mxfp4

from .cast_decoders import ct_mxfp4, ct_nvfp4, modelopt_nvfp4

ROWS, COLS = 128, 512


def _source(seed: int, spread: int, top: int = 120) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    packed = rng.integers(0, 256, (ROWS, COLS // 2), dtype=np.uint8)
    e8m0 = rng.integers(top - spread, top + 1, (ROWS, COLS // 32)).astype(np.uint8)
    return packed, e8m0


def _decode_both(result) -> torch.Tensor:
    packed = torch.from_numpy(np.ascontiguousarray(result.packed))
    scale = torch.from_numpy(np.ascontiguousarray(result.scales)).view(torch.float8_e4m3fn)
    by_modelopt = modelopt_nvfp4(packed, scale, torch.tensor(result.tensor_scale))
    gs = torch.tensor([1.0 / result.tensor_scale], dtype=torch.float32)
    by_ct = ct_nvfp4(packed, scale, gs)
    if np.log2(result.tensor_scale).is_integer():  # every product exact, even in bf16
        assert torch.equal(by_modelopt, by_ct), "ModelOpt and compressed-tensors disagree"
    else:  # compressed-tensors decodes in bf16 and divides by the reciprocal
        torch.testing.assert_close(by_ct, by_modelopt, rtol=2**-7, atol=0)
    return by_modelopt


def _plain_requantize_mse(x: torch.Tensor) -> float:
    q, scale, scale_2 = NVFP4QTensor.quantize(x, 16)
    y = q.dequantize(dtype=torch.float32, scale=scale, double_scale=scale_2, block_sizes={-1: 16})
    return float(((y.double() - x.double()) ** 2).mean())


def _cast(packed: np.ndarray, e8m0: np.ndarray):
    ref = ct_mxfp4(torch.from_numpy(packed), torch.from_numpy(e8m0))
    result = cast_mxfp4(packed.copy(), e8m0, "t")
    out = _decode_both(result)
    assert torch.isfinite(out).all()
    return ref, result, out


@pytest.mark.parametrize("spread", [0, 1, 8, 16, 17])
def test_in_range_is_bit_exact_and_verbatim(spread):
    packed, e8m0 = _source(spread, spread)
    ref, result, out = _cast(packed, e8m0)
    assert torch.equal(out, ref)
    assert np.array_equal(result.packed, packed)
    assert result.stats.path == "exact" and result.stats.lossless_pct == 100.0
    assert result.tensor_scale == 2.0 ** (int(e8m0.max()) - 127 - 8)


@pytest.mark.parametrize("spread", [18, 20, 25, 30, 40])
def test_wide_spreads_never_worse_than_plain_requantize(spread):
    packed, e8m0 = _source(100 + spread, spread)
    ref, result, out = _cast(packed, e8m0)
    mse = float(((out.double() - ref.double()) ** 2).mean())
    assert mse <= _plain_requantize_mse(ref) * (1 + 1e-12)
    assert mse == pytest.approx(result.stats.mse, rel=1e-6, abs=1e-30)
    in_range = (e8m0.astype(int) >= int(e8m0.max()) - 17).repeat(32, axis=1)
    assert torch.equal(out[torch.from_numpy(in_range)], ref[torch.from_numpy(in_range)]) or (
        result.stats.path == "requantize"
    )


def test_zero_blocks_do_not_set_the_range():
    packed, e8m0 = _source(7, 10)
    packed[:, :16] = 0  # first block of each row: all +0 ...
    packed[:3, 16:32] = 0x88  # ... and some -0 blocks
    e8m0[:, 0] = 0  # E8M0 0 = 2**-127
    e8m0[:3, 1] = 254  # a huge exponent on all-zero blocks changes nothing either
    ref, result, out = _cast(packed, e8m0)
    assert torch.equal(out, ref)
    assert result.stats.path == "exact"
    assert np.array_equal(result.packed, packed)


def test_all_zero_tensor():
    packed = np.zeros((4, 64), np.uint8)
    e8m0 = np.zeros((4, 4), np.uint8)
    ref, result, out = _cast(packed, e8m0)
    assert torch.equal(out, ref) and result.stats.path == "exact"


def test_single_dominant_outlier_beats_or_ties_plain_requantize():
    rng = np.random.default_rng(3)
    packed = rng.integers(0, 256, (ROWS, COLS // 2), dtype=np.uint8)
    e8m0 = rng.integers(112, 121, (ROWS, COLS // 32)).astype(np.uint8)
    packed[5, 32:48] = 0x77  # the block at (5, 2): all ±6 ...
    e8m0[5, 2] = 150  # ... with a scale 2**30 above the others
    ref, result, out = _cast(packed, e8m0)
    mse = float(((out.double() - ref.double()) ** 2).mean())
    plain = _plain_requantize_mse(ref)
    assert mse <= plain * (1 + 1e-12)
    assert result.stats.oor_blocks > 0


def test_outlier_where_plain_requantize_wins_is_kept():
    """A tensor whose OOR blocks dominate the error: the plain path must be chosen."""
    rng = np.random.default_rng(4)
    packed = np.full((ROWS, COLS // 2), 0x77, dtype=np.uint8)  # every value ±6 ...
    e8m0 = np.full((ROWS, COLS // 32), 100, dtype=np.uint8)
    packed[0, :16] = 0x11  # ... and one block of 0.5s with scale 2**20 above the rest
    e8m0[0, 0] = 120
    noise = rng.integers(0, 256, (ROWS, COLS // 2), dtype=np.uint8)
    packed[1:] = noise[1:]
    ref, result, out = _cast(packed, e8m0)
    mse = float(((out.double() - ref.double()) ** 2).mean())
    assert mse <= _plain_requantize_mse(ref) * (1 + 1e-12)
    assert result.stats.path == "requantize"
    q, scale, _ = NVFP4QTensor.quantize(ref, 16)  # and it is ModelOpt's result, bit for bit
    assert np.array_equal(result.packed, q._quantized_data.numpy())
    assert np.array_equal(result.scales, scale.view(torch.uint8).numpy())


def test_e8m0_255_is_rejected():
    from fp4stack.core.errors import UsageError

    packed, e8m0 = _source(5, 4)
    e8m0[3, 7] = 255
    with pytest.raises(UsageError, match=r"f\.safetensors: 'w'.*255.*\(3, 7\)"):
        cast_mxfp4(packed, e8m0, "f.safetensors: 'w'")


@pytest.mark.parametrize("zero_exp", [0, 100, 140, 200, 254])
def test_zero_blocks_with_any_exponent(zero_exp):
    """All-zero blocks whose E8M0 lies far below or above the others are still exact."""
    packed, e8m0 = _source(9, 6)
    packed[::3, 32:48] = 0
    e8m0[::3, 2] = zero_exp
    ref, result, out = _cast(packed, e8m0)
    assert torch.equal(out, ref) and result.stats.path == "exact"
    assert result.scales.max() <= 0x7E  # never the NaN code


@pytest.mark.parametrize("top", [120, 254, 20])
@pytest.mark.parametrize("spread", [0, 3, 6, 7, 9, 14, 20])
def test_scale_codes_fast_path_matches_table(top, spread):
    from fp4stack.checkpoint.cast.convert import _scale_codes, _scale_lut

    e8m0 = np.random.default_rng(spread).integers(top - spread, top + 1, (8, 6)).astype(np.uint8)
    e8m0[0, 0], e8m0[0, 1] = top, top - spread
    m = top - 127 - 8
    e8m0[1, :2] = [min(top + 5, 254), 0]  # zero blocks far above and below: clamped
    expected = np.repeat(_scale_lut(m)[0][e8m0], 2, axis=-1)
    got = _scale_codes(e8m0, m, int(e8m0.min()), int(e8m0.max()))
    exact = (e8m0.astype(int) - 127 - m >= -9).repeat(2, axis=-1)  # OOR codes are set later
    assert np.array_equal(got[exact], expected[exact])


def test_sparse_exponent_levels_are_exact():
    """Zero blocks at E8M0 254 and a huge gap below: still exact. (That the levels are visited,
    not counted down, is timed in bench/cast_levels_bench.py.)"""
    packed, e8m0 = _source(12, 4, top=20)
    packed[0, :16] = 0
    e8m0[0, 0] = 254
    ref, result, out = _cast(packed, e8m0)
    assert torch.equal(out, ref) and result.stats.path == "exact"


@pytest.mark.parametrize("top", [253, 254])
def test_huge_exponents_stay_finite(top):
    """Values near the E8M0 ceiling: the plain path cannot exist in FP32; no NaN code, finite
    scales, and the in-range blocks still exact (checked in float64, beyond FP32's range)."""
    from fp4stack.checkpoint.fp4 import E2M1_VALUES, E4M3_VALUES, unpack_nibbles

    packed, e8m0 = _source(21, 40, top=top)
    result = cast_mxfp4(packed.copy(), e8m0, "t")
    assert result.stats.path == "closed-form" and result.stats.oor_blocks > 0
    assert result.scales.max() <= 0x7E and np.isfinite(np.float32(result.tensor_scale))
    vals = E2M1_VALUES[unpack_nibbles(result.packed)].reshape(ROWS, -1, 16)
    got = (vals * E4M3_VALUES[result.scales][..., None] * result.tensor_scale).reshape(ROWS, -1)
    src = E2M1_VALUES[unpack_nibbles(packed)].reshape(ROWS, -1, 32)
    ref = (src * np.exp2(e8m0.astype(float) - 127)[..., None]).reshape(ROWS, -1)
    in_range = (e8m0.astype(int) >= int(e8m0.max()) - 17).repeat(32, axis=1)
    assert np.array_equal(got[in_range], ref[in_range])


def test_stats_path_and_job_kind_reject_typos():
    """``TensorStats.path`` and ``Job.kind`` are Literal fields: a typo fails where it is set,
    instead of silently meaning another path or job."""
    from fp4stack.checkpoint.cast.convert import TensorStats
    from fp4stack.checkpoint.cast.plan import Job

    with pytest.raises(ValueError, match="'requantise'"):
        TensorStats("t", 1, 1, 0, 0.0, 32, "requantise")
    stats = TensorStats("t", 1, 1, 0, 0.0, 32, "exact")
    with pytest.raises(ValueError, match="'closed form'"):
        stats.path = "closed form"
    with pytest.raises(ValueError, match="'cpy'"):
        Job("cpy", "model.safetensors", "w", 1)
