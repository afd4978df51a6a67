"""Offline MXFP4 → NVFP4 checkpoint cast: numpy and the standard library only (no torch)."""
