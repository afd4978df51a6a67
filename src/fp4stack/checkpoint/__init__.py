"""Checkpoint tools: the safetensors reader, FP4 codecs, and the MXFP4 -> NVFP4 cast."""
