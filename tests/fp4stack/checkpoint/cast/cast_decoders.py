"""Decode checkpoints with the formats' own libraries (never with fp4stack code).

MXFP4: compressed-tensors' MXFP4PackedCompressor.decompress and transformers' gpt-oss
convert_moe_packed_tensors. NVFP4: compressed-tensors' NVFP4PackedCompressor.decompress and
ModelOpt's NVFP4QTensor.dequantize. All return float32 torch tensors in (..., out, in) layout.
"""

from __future__ import annotations

import torch
from compressed_tensors.compressors.mxfp4.base import MXFP4PackedCompressor
from compressed_tensors.compressors.nvfp4.base import NVFP4PackedCompressor
from compressed_tensors.quantization import QuantizationScheme
from compressed_tensors.quantization.quant_scheme import MXFP4A16, NVFP4A16
from modelopt.torch.quantization.qtensor.nvfp4_tensor import NVFP4QTensor
from transformers.integrations.mxfp4 import convert_moe_packed_tensors

_NV = QuantizationScheme(targets=["Linear"], **NVFP4A16)
_MX = QuantizationScheme(targets=["Linear"], **MXFP4A16)


def ct_mxfp4(packed: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """compressed-tensors MXFP4: packed (out, in/2) U8, scale (out, in/32) U8 E8M0."""
    sd = {"weight_packed": packed, "weight_scale": scale}
    return MXFP4PackedCompressor.decompress(sd, _MX)["weight"].float()


def transformers_gpt_oss(blocks: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """transformers gpt-oss: blocks (E, out, G, 16), scales (E, out, G) → (E, out, in)."""
    return convert_moe_packed_tensors(blocks, scales, dtype=torch.float32).transpose(1, 2)


def ct_nvfp4(packed: torch.Tensor, scale: torch.Tensor, global_scale: torch.Tensor) -> torch.Tensor:
    """compressed-tensors NVFP4: packed (out, in/2), scale (out, in/16) F8, global (1,)."""
    sd = {"weight_packed": packed, "weight_scale": scale, "weight_global_scale": global_scale}
    return NVFP4PackedCompressor.decompress(sd, _NV)["weight"].float()


def modelopt_nvfp4(
    packed: torch.Tensor, scale: torch.Tensor, scale_2: torch.Tensor
) -> torch.Tensor:
    """ModelOpt NVFP4: packed (..., out, in/2), scale (..., out, in/16) F8, scale_2 ()."""
    shape = (*packed.shape[:-1], packed.shape[-1] * 2)
    q = NVFP4QTensor(torch.Size(shape), torch.float32, packed)
    return q.dequantize(
        dtype=torch.float32, scale=scale, double_scale=scale_2, block_sizes={-1: 16}
    ).float()


def modelopt_experts(
    packed: torch.Tensor, scale: torch.Tensor, scale_2: torch.Tensor
) -> torch.Tensor:
    """ModelOpt fused experts (E, in/2, out) / (E, in/16, out): transposed first, as its
    export documents, then NVFP4QTensor → (E, out, in)."""
    return modelopt_nvfp4(
        packed.transpose(1, 2).contiguous(), scale.transpose(1, 2).contiguous(), scale_2
    )
