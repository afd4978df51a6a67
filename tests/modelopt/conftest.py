"""Shared setup for the ModelOpt regression tests (CPU only).

The static NVFP4 Triton kernel is exercised through the Triton interpreter, which
reads ``TRITON_INTERPRET`` when a kernel is decorated, i.e. when
the ``fp4_kernel`` module (``modelopt.torch.kernels.quantization.gemm`` since 0.45.0,
``modelopt.torch.quantization.triton`` before) is first imported. Set it here,
before any test module imports ModelOpt.
"""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")
