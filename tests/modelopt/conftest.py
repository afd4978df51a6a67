"""Shared setup for the ModelOpt regression tests (CPU only).

The static NVFP4 Triton kernel is exercised through the Triton interpreter, which
reads ``TRITON_INTERPRET`` when a kernel is decorated, i.e. when
``modelopt.torch.quantization.triton.fp4_kernel`` is first imported. Set it here,
before any test module imports ModelOpt.
"""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")
