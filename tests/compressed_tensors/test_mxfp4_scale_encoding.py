"""MXFP4 scales are stored as standard E8M0 (bias 127), the exponent the fake-quant used.

compressed-tensors 0.13.0 as released stores ``127 + floor(log2 s) - 2`` for the power-of-two
scale ``s`` its own fake-quant divides by: a byte 2 below what every MX reader (bias 127)
decodes, so every weight of a saved checkpoint reads back as 1/4 of what was meant. The
patched build stores ``127 + log2 s``, and records a version (``0.13.0+fp4stack...``) that
tells its checkpoints apart from the released 0.13.0's.
"""

from __future__ import annotations

import json

import torch
from compressed_tensors.compressors import ModelCompressor
from compressed_tensors.compressors.quantized_compressors.fp4_quantized import (
    MXFP4PackedCompressor,
)
from compressed_tensors.config import CompressionFormat
from compressed_tensors.quantization import (
    QuantizationConfig,
    QuantizationScheme,
    QuantizationStatus,
)
from compressed_tensors.quantization.lifecycle.forward import fake_quantize
from compressed_tensors.quantization.quant_scheme import MXFP4A16
from compressed_tensors.quantization.utils import calculate_qparams

ROWS, COLS, GROUP = 8, 256, 32


def mxfp4_weight() -> torch.Tensor:
    """Rows of groups spanning 2**-14 .. 2**5, so many exponents are covered; bfloat16,
    the only dtype 0.13.0's MXFP4 observer math accepts (``round_to_power_2``)."""
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(ROWS, COLS, generator=generator)
    exponents = torch.randint(-14, 5, (ROWS, COLS // GROUP), generator=generator)
    weight = weight * torch.exp2(exponents.float()).repeat_interleave(GROUP, dim=1)
    return weight.to(torch.bfloat16)


def fake_quant_scale(weight: torch.Tensor) -> torch.Tensor:
    """The per-group scale the fake-quant divides by, computed as an observer does."""
    args = MXFP4A16["weights"]
    groups = weight.reshape(ROWS, COLS // GROUP, GROUP)
    scale, _ = calculate_qparams(groups.amin(dim=-1), groups.amax(dim=-1), args)
    return scale


def test_stored_e8m0_is_the_fake_quant_exponent():
    """Offset 0: the stored byte minus 127 is log2 of the fake-quant's scale, every group."""
    weight = mxfp4_weight()
    scale = fake_quant_scale(weight)
    exponent = torch.log2(scale.float())
    assert torch.equal(exponent, exponent.round()), "MXFP4 scales are powers of two"
    args = MXFP4A16["weights"]
    # the fake-quant really uses this scale (its output is a multiple of it, within ±6 s)
    qdq = fake_quantize(weight, scale, torch.zeros_like(scale, dtype=torch.uint8), args)
    ratio = qdq.reshape(ROWS, -1, GROUP) / scale.unsqueeze(-1)
    assert ratio.abs().max() <= 6

    stored = MXFP4PackedCompressor().compress_weight(
        weight, scale, global_scale=None, quantization_args=args
    )["weight_scale"]
    assert stored.dtype == torch.uint8
    offset = stored.to(torch.int32) - 127 - exponent.to(torch.int32)
    assert offset.unique().tolist() == [0], f"stored E8M0 - 127 - log2(scale): {offset.unique()}"


def test_saved_config_records_a_version_readers_can_tell_apart(tmp_path):
    """The released 0.13.0 records "0.13.0" with bias-125 bytes; this build must not."""
    (tmp_path / "config.json").write_text("{}")
    config = QuantizationConfig(
        config_groups={"group_0": QuantizationScheme(targets=["Linear"], **MXFP4A16)},
        format=CompressionFormat.mxfp4_pack_quantized.value,
        quantization_status=QuantizationStatus.COMPRESSED,
    )
    ModelCompressor(quantization_config=config).update_config(str(tmp_path))
    written = json.loads((tmp_path / "config.json").read_text())["quantization_config"]
    version = written["version"]
    assert version.startswith("0.13.0+fp4stack"), version
