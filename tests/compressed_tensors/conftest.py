"""Which of our compressed-tensors test files apply to the line under test.

The files are shared by the lines of compressed-tensors; a file that tests a patch the line
does not carry, through an API the release no longer has, is not collected there.
fp4stack sets FP4STACK_LINE=<upstream>@<version>; run by hand without it, every file is
collected (the 0.13.0 behaviour).
"""

from __future__ import annotations

import os

NOT_ON_LINE: dict[str, dict[str, str]] = {
    "compressed-tensors@0.20.1": {
        # patches 1, 2 and 3 of 0.13.0 shipped in 0.14.0/0.15.0 (patches/…/0.20.1/CHANGELOG.md);
        # these files drive the instance API (`NVFP4PackedCompressor().compress_weight`,
        # `CompressedLinear.from_linear`) that 0.20 replaced with classmethods
        "test_nvfp4_compress_keeps_scale.py": "patch 1 shipped in 0.14.0; CompressedLinear gone",
        "test_fp8_scale_arithmetic.py": "patch 2 shipped in 0.14.0 (user path); see CHANGELOG",
        "test_decompress_module_buffers.py": "patch 3 shipped in 0.15.0; instance API gone",
        # patches 4 and 6: 0.20 no longer compiles the fp4 packer/unpacker
        "test_pack_fp4_meta.py": "patch 4: 0.20 has no compiled fp4 packer",
        "test_unpack_fp4_shapes.py": "patch 6: 0.20 has no compiled fp4 unpacker",
        # the producer of that file is llm-compressor 0.9.0.5, which pins 0.13.0
        "test_llmcompressor_nvfp4.py": "llm-compressor 0.9.0.5 is not installed on this line",
        # the bias-125 MXFP4 encoding was 0.13.0's (fixed in 0.14.0); its producer is
        # llm-compressor 0.9.0.5 with the released 0.13.0 wheel
        "test_llmcompressor_mxfp4_cast.py": "bias-125 producer is 0.13.0 with llm-compressor",
        "test_mxfp4_scale_encoding.py": "0.13.0's MXFP4 encoder; fixed upstream in 0.14.0",
    },
}

# 0.17.0 (the release vLLM 0.33.0 pins) has 0.20.1's API and carries the same series.
NOT_ON_LINE["compressed-tensors@0.17.0"] = NOT_ON_LINE["compressed-tensors@0.20.1"]

collect_ignore = sorted(NOT_ON_LINE.get(os.environ.get("FP4STACK_LINE", ""), {}))
