"""NVFP4 export math runs where no CUDA device is usable.

Each check runs in a child interpreter with ``CUDA_VISIBLE_DEVICES=""``, so torch sees no
GPU on any machine: on a CPU-only machine and on a GPU machine alike the test asks the
same question, and gives the same verdict. The child inherits PYTHONPATH, so it imports
the same (pristine or patched) ModelOpt as this process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap


def _run_without_cuda(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, check=False, timeout=600)  # fmt: skip


def _assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]


def test_hardware_checks_are_false_without_cuda() -> None:
    _assert_ok(
        _run_without_cuda("""
            import torch
            assert not torch.cuda.is_available()
            from modelopt.torch.quantization.backends.utils import fp4_compatible, fp8_compatible
            assert fp4_compatible() is False
            assert fp8_compatible() is False
        """)
    )


def test_nvfp4_qtensor_round_trip_on_cpu() -> None:
    _assert_ok(
        _run_without_cuda("""
            import torch
            from modelopt.torch.quantization.qtensor import NVFP4QTensor

            w = torch.randn(32, 64, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
            qtensor, scale, scale_2 = NVFP4QTensor.quantize(w, 16)
            assert qtensor._quantized_data.dtype == torch.uint8
            assert qtensor._quantized_data.shape == (32, 32)
            assert scale.dtype == torch.float8_e4m3fn and scale.shape == (32, 4)
            back = qtensor.dequantize(
                dtype=torch.float32, scale=scale, double_scale=scale_2, block_sizes={-1: 16}
            )
            rel = (back - w.float()).norm() / w.float().norm()
            assert rel < 0.15, f"NVFP4 round trip relative error {rel:.3f}"
        """)
    )
