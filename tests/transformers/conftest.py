"""Which of our transformers test files apply to the line under test.

Each file tests one generation of transformers' loader with the producer of its era: the
4.57 loader with llm-compressor 0.9.0.5 (installed in that line's env), the 5.x loader with
the checkpoints llm-compressor 0.14.0.1 wrote (tests/transformers/data/). fp4stack sets
FP4STACK_LINE=<upstream>@<version>; run by hand without it, every file is collected.
"""

from __future__ import annotations

import os

NOT_ON_LINE: dict[str, dict[str, str]] = {
    "transformers@4.57.6": {
        "test_llmcompressor_checkpoints.py": "the 5.x loader (fused MoE experts, load operations)",
    },
    "transformers@5.25.0": {
        "test_compressed_tensors_float16_load.py": "the 4.57 loader; its producer, llm-compressor "
        "0.9.0.5, pins compressed-tensors 0.13.0",
    },
}

collect_ignore = sorted(NOT_ON_LINE.get(os.environ.get("FP4STACK_LINE", ""), {}))
