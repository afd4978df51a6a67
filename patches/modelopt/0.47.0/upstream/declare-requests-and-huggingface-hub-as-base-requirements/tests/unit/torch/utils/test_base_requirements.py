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

"""Third-party modules imported at module level by modelopt.torch are base requirements."""

from importlib.metadata import requires

import pytest
from packaging.requirements import Requirement


def _base_requirements():
    parsed = [Requirement(r) for r in requires("nvidia-modelopt") or []]
    return {r.name.lower().replace("_", "-") for r in parsed if r.marker is None}


@pytest.mark.parametrize(
    ("distribution", "imported_by"),
    [
        ("requests", "modelopt.torch.utils.dataset_utils"),
        ("huggingface-hub", "modelopt.torch.opt.plugins.huggingface"),
    ],
)
def test_module_level_import_is_a_base_requirement(distribution, imported_by):
    assert distribution in _base_requirements(), (
        f"{imported_by} imports {distribution} at module level, but a plain "
        "`pip install nvidia-modelopt` does not install it"
    )
