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

"""Invalid input to the static NVFP4 fake-quant kernel is refused before any launch."""

import pytest
import torch

from modelopt.torch.kernels.quantization.gemm.fp4_kernel import static_blockwise_fp4_fake_quant


def test_empty_amax_raises_value_error():
    with pytest.raises(ValueError, match=r"amax of shape \(0,\)"):
        static_blockwise_fp4_fake_quant(torch.ones(4, 16), torch.empty(0))


def test_blocks_crossing_rows_raise_value_error():
    # 4 x 24 elements in 6 blocks of 16: blocks would straddle rows
    with pytest.raises(ValueError, match="must tile the last dim 24"):
        static_blockwise_fp4_fake_quant(torch.ones(4, 24), torch.ones(6))


def test_block_size_not_a_power_of_two_raises_value_error():
    # 4 x 24 elements in 8 blocks of 12: tiles the rows, but tl.arange needs a power of two
    with pytest.raises(ValueError, match="block size 12 must be a power of two"):
        static_blockwise_fp4_fake_quant(torch.ones(4, 24), torch.ones(8))
