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

"""All-zero NVFP4 blocks get the same FP8 block scale from static and dynamic quantizers."""

import pytest
import torch

from modelopt.torch.quantization.nn import NVFP4StaticQuantizer, TensorQuantizer
from modelopt.torch.quantization.qtensor import NVFP4QTensor


def _static_quantizer(weight):
    quantizer = TensorQuantizer()
    quantizer.block_sizes = {-1: 16, "type": "static", "scale_bits": (4, 3)}
    quantizer.register_buffer("_amax", weight.reshape(-1, 16).abs().amax(-1, keepdim=True))
    return NVFP4StaticQuantizer.from_tensor_quantizer(quantizer, global_amax=weight.abs().max())


@pytest.mark.parametrize("magnitude", [1.0, 1e-3])
def test_zero_block_scale_matches_dynamic_path(magnitude):
    weight = torch.linspace(-1.0, 1.0, 4 * 48).reshape(4, 48) * magnitude
    weight[1, 16:32] = 0.0
    weight[3] = 0.0

    dynamic, _ = NVFP4QTensor.get_weights_scaling_factor(weight, 16)
    static, _ = NVFP4QTensor.get_weights_scaling_factor_from_quantizer(
        _static_quantizer(weight), weight
    )

    zero_blocks = weight.reshape(4, 3, 16).abs().amax(-1) == 0
    assert torch.all(dynamic.float()[zero_blocks] == 1.0)
    assert torch.equal(static.float(), dynamic.float())


def test_all_zero_weight_gets_unit_static_scales():
    weight = torch.zeros(2, 32)

    static, _ = NVFP4QTensor.get_weights_scaling_factor_from_quantizer(
        _static_quantizer(weight), weight
    )

    assert torch.all(static.float() == 1.0)
