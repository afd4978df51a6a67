# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project

import pytest
import torch
from compressed_tensors.compressors.mx_utils import (
    compress_mx_scale,
    decompress_mx_scale,
)
from compressed_tensors.compressors.mxfp4.base import MXFP4PackedCompressor
from compressed_tensors.quantization.quant_scheme import preset_name_to_scheme


# powers of two in the range MXFP4 weight scales take, with their E8M0 bits
POWERS = [2.0**-9, 2.0**-6, 2.0**-1, 1.0, 8.0]
BITS = [118, 121, 126, 127, 130]


def test_compress_mx_scale_to_e8m0_stores_the_exponent_bits():
    scale = torch.tensor(POWERS)

    stored = compress_mx_scale(scale, torch.float8_e8m0fnu)

    assert stored.dtype == torch.float8_e8m0fnu
    assert stored.view(torch.uint8).tolist() == BITS
    assert stored.float().tolist() == POWERS


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float8_e8m0fnu])
def test_decompress_mx_scale_reads_both_storage_dtypes(dtype):
    bits = torch.tensor(BITS, dtype=torch.uint8)
    stored = bits if dtype == torch.uint8 else bits.view(torch.float8_e8m0fnu)

    assert decompress_mx_scale(stored).float().tolist() == POWERS


def test_mxfp4_decompress_with_e8m0_scale():
    # one row per scale, each a group of 32 fp4 values 0.5 (code 1, two per byte)
    rows = len(POWERS)
    state_dict = {
        "weight_packed": torch.full((rows, 16), 0x11, dtype=torch.uint8),
        "weight_scale": torch.tensor(BITS, dtype=torch.uint8)
        .view(torch.float8_e8m0fnu)
        .reshape(rows, 1),
    }
    scheme = preset_name_to_scheme("MXFP4", ["Linear"])

    weight = MXFP4PackedCompressor.decompress(state_dict, scheme)["weight"]

    expected = 0.5 * torch.tensor(POWERS).reshape(rows, 1).expand(rows, 32)
    assert torch.equal(weight.float(), expected)
