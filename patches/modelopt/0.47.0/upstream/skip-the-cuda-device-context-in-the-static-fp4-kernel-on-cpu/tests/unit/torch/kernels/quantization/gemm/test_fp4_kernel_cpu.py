# SPDX-FileCopyrightText: Copyright (c) 2026 NVIDIA CORPORATION & AFFILIATES. All rights reserved.
# SPDX-License-Identifier: Apache-2.0
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
# http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""The static NVFP4 fake-quant kernel on CPU tensors, under the Triton interpreter."""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # must be set before triton is imported

import pytest
import torch

from modelopt.torch.kernels.quantization.gemm.fp4_kernel import static_blockwise_fp4_fake_quant

E2M1 = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]


def _representable_blocks(num_blocks: int, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Blocks of signed E2M1 values times a power of two, whose amax is 6 times that power.

    Every value is exactly representable in NVFP4 with an FP8 block scale, so fake
    quantization must return the input unchanged.
    """
    codes = torch.tensor(E2M1).repeat(block_size // len(E2M1) + 1)[:block_size]
    codes[-1] = 6.0  # the block maximum
    signs = torch.tensor([1.0, -1.0]).repeat(block_size // 2)
    powers = 2.0 ** torch.arange(-num_blocks // 2, num_blocks - num_blocks // 2)
    x = (codes * signs).unsqueeze(0) * powers.unsqueeze(1)
    return x, 6.0 * powers


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_static_fp4_fake_quant_runs_on_cpu(dtype):
    x, amax = _representable_blocks(num_blocks=6, block_size=16)
    x = x.reshape(3, 32).to(dtype)

    out = static_blockwise_fp4_fake_quant(x, amax)

    assert out.device.type == "cpu"
    assert out.dtype == dtype
    assert torch.equal(out, x)


def test_static_fp4_fake_quant_on_cpu_with_global_amax():
    x, amax = _representable_blocks(num_blocks=4, block_size=16)

    out = static_blockwise_fp4_fake_quant(x, amax, amax.max(), out_dtype=torch.float32)

    assert torch.equal(out, x)
