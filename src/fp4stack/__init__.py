"""fp4stack: patch stacks, patched wheels and checkpoint tools for low-bit model serving."""

from __future__ import annotations

__version__ = "0.1.0"
