"""The static NVFP4 fake-quant Triton kernel, run on CPU under the Triton interpreter.

Every case is checked against a pure-torch reference written from the NVFP4 definition
(FP8 E4M3 block scales under a per-tensor FP32 scale, E2M1 values rounded to nearest,
ties to the even code), not against ModelOpt's own helpers.
"""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported

import pytest
import torch

try:  # 0.45.0 and later: the kernel moved under modelopt.torch.kernels
    from modelopt.torch.kernels.quantization.gemm import fp4_kernel
except ImportError:  # 0.44.0
    from modelopt.torch.quantization.triton import fp4_kernel  # type: ignore[no-redef]

E2M1_VALUES = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0])


def _round_to_e2m1(magnitude: torch.Tensor) -> torch.Tensor:
    distance = (magnitude.unsqueeze(-1) - E2M1_VALUES).abs()
    nearest = distance == distance.min(dim=-1, keepdim=True).values
    even_code = (torch.arange(len(E2M1_VALUES)) % 2 == 0).float()
    choice = (nearest.float() * (1.0 + even_code)).argmax(dim=-1)
    return E2M1_VALUES[choice]


def reference_fake_quant(
    x: torch.Tensor, amax: torch.Tensor, global_amax: torch.Tensor | None = None
) -> torch.Tensor:
    blocks = x.float().reshape(amax.numel(), -1)
    block_amax = amax.float().reshape(-1, 1)
    scale = block_amax / 6.0
    top = (block_amax.max() if global_amax is None else global_amax.float()) / 6.0
    top = torch.where(top <= 2.0**-24, torch.ones_like(top), top)
    to_fp8 = 448.0 / top  # multiply, then multiply by the inverse: FP32 rounding as in FP8 QDQ
    scale = (scale * to_fp8).clamp(max=448.0).to(torch.float8_e4m3fn).float() * (1.0 / to_fp8)
    scale = torch.where((scale == 0) | ~torch.isfinite(scale), torch.ones_like(scale), scale)
    q = _round_to_e2m1(blocks.abs() / scale) * scale
    return torch.where(blocks >= 0, q, -q).reshape(x.shape).to(x.dtype)


def _weights(shape: tuple[int, ...], block: int, dtype: torch.dtype, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g) * torch.rand((*shape[:-1], 1), generator=g) * 3
    flat = x.view(-1, block)
    flat[1].zero_()  # an all-zero block
    flat[-1].zero_()
    return x.to(dtype)


def _block_amax(x: torch.Tensor, block: int) -> torch.Tensor:
    return x.float().reshape(-1, block).abs().amax(dim=-1)


def _check(x: torch.Tensor, amax: torch.Tensor, global_amax: torch.Tensor | None = None) -> None:
    want = reference_fake_quant(x.float(), amax, global_amax)
    # Exact comparison in FP32: the interpreter rounds FP32 -> BF16 toward zero where a
    # GPU rounds to nearest, so a BF16 output may differ from the reference by one ulp.
    got = fp4_kernel.static_blockwise_fp4_fake_quant(x, amax, global_amax, out_dtype=torch.float32)
    assert got.shape == x.shape
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
    zero_blocks = x.float().reshape(amax.numel(), -1).abs().amax(dim=-1) == 0
    assert torch.all(got.reshape(amax.numel(), -1)[zero_blocks] == 0)

    same_dtype = fp4_kernel.static_blockwise_fp4_fake_quant(x, amax, global_amax)
    assert same_dtype.shape == x.shape and same_dtype.dtype == x.dtype
    torch.testing.assert_close(same_dtype.float(), want, rtol=2**-7, atol=0.0)


@pytest.mark.parametrize("amax_shape", ["[N]", "[N,1]"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_runs_on_cpu_2d(amax_shape: str, dtype: torch.dtype) -> None:
    x = _weights((24, 16), 16, dtype, seed=0)
    amax = _block_amax(x, 16)
    amax = amax if amax_shape == "[N]" else amax.unsqueeze(-1)
    _check(x, amax)


def test_runs_on_cpu_2d_with_global_amax() -> None:
    x = _weights((8, 16), 16, torch.float32, seed=1)
    amax = _block_amax(x, 16).unsqueeze(-1)
    _check(x, amax, global_amax=amax.max() * 2)


@pytest.mark.parametrize(
    ("shape", "block"),
    [((4, 8, 32), 16), ((2, 3, 2, 4, 16), 16), ((3, 6, 64), 32)],
    ids=["3d-experts", "5d", "3d-block32"],
)
def test_nd_input_matches_reference(shape: tuple[int, ...], block: int) -> None:
    x = _weights(shape, block, torch.bfloat16, seed=2)
    _check(x, _block_amax(x, block).unsqueeze(-1))


@pytest.mark.parametrize("amax_shape", [(64,), (4, 8, 2), (4, 16, 1)])
def test_nd_input_accepts_any_amax_shape(amax_shape: tuple[int, ...]) -> None:
    x = _weights((4, 8, 32), 16, torch.float32, seed=3)
    _check(x, _block_amax(x, 16).reshape(amax_shape))


def test_empty_amax_is_a_clear_error() -> None:
    x = torch.ones(4, 16)
    with pytest.raises(ValueError, match=r"amax is empty"):
        fp4_kernel.static_blockwise_fp4_fake_quant(x, torch.empty(0))


@pytest.mark.parametrize(
    ("shape", "num_blocks"),
    [((3, 16), 5), ((4, 24), 6), ((4, 24), 8)],
    ids=["numel-not-divisible", "block-crosses-rows", "block-not-power-of-two"],
)
def test_non_divisible_size_is_a_clear_error(shape: tuple[int, ...], num_blocks: int) -> None:
    x = torch.ones(shape)
    # 0.45.0 and later check divisibility themselves, with their own message: either is clear.
    clear = r"static_blockwise_fp4_fake_quant: x of shape|is not divisible by amax\.numel\(\)"
    with pytest.raises(ValueError, match=clear):
        fp4_kernel.static_blockwise_fp4_fake_quant(x, torch.ones(num_blocks))
