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

"""set_expert_quantizer_amax with per-block amax that is all zero or on the meta device."""

import pytest
import torch

from modelopt.torch.export.layer_utils import set_expert_quantizer_amax
from modelopt.torch.quantization.nn import TensorQuantizer


def _weight_quantizer(amax):
    quantizer = TensorQuantizer()
    quantizer.register_buffer("_amax", amax)
    return quantizer


def test_all_zero_per_block_amax_is_filled_in_its_own_shape():
    experts = torch.nn.Module()
    experts.gate_up_proj_weight_quantizer = _weight_quantizer(torch.full((16, 1), 4.0))
    experts.down_proj_weight_quantizer = _weight_quantizer(torch.zeros(8, 1))
    names = ["gate_up_proj_weight_quantizer", "down_proj_weight_quantizer"]

    with pytest.warns(UserWarning, match="down_proj_weight_quantizer"):
        set_expert_quantizer_amax(experts, names)

    assert torch.equal(experts.down_proj_weight_quantizer.amax, torch.full((8, 1), 4.0))


def test_meta_amax_is_left_alone():
    experts = torch.nn.Module()
    experts.gate_up_proj_weight_quantizer = _weight_quantizer(torch.full((16, 1), 4.0))
    experts.down_proj_weight_quantizer = _weight_quantizer(torch.empty(8, 1, device="meta"))
    names = ["gate_up_proj_weight_quantizer", "down_proj_weight_quantizer"]

    set_expert_quantizer_amax(experts, names)

    assert experts.down_proj_weight_quantizer.amax.is_meta
