"""Which of our vLLM test files apply to the line under test.

The files are shared by the lines of vLLM; a file that proves a patch the line does not
carry, because upstream shipped the fix, is not collected there. fp4stack sets
FP4STACK_LINE=<upstream>@<version>; run by hand without it, every file is collected (the
0.28.0 behaviour).
"""

from __future__ import annotations

import os

NOT_ON_LINE: dict[str, dict[str, str]] = {
    "vllm@0.33.0": {
        # accept-weight-scale-in-the-fp8-block-quant-marlin-kernel.patch: fixed upstream (#52966)
        # (patches/vllm/0.33.0/CHANGELOG.md); its fixture replaces 0.28.0's per-layer Marlin
        # workspace helper, which 0.33.0 no longer has
        "test_marlin_fp8_block_scale_name.py": "fixed differently upstream (#52966); see CHANGELOG",
    },
}
NOT_ON_LINE["vllm@0.34.0"] = NOT_ON_LINE["vllm@0.33.0"]

collect_ignore = sorted(NOT_ON_LINE.get(os.environ.get("FP4STACK_LINE", ""), {}))
