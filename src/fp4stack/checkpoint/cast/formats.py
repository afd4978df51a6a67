"""Names of the output formats; kept free of numpy so the CLI can list them cheaply."""

from __future__ import annotations

MODELOPT = "modelopt"
COMPRESSED_TENSORS = "compressed-tensors"
FORMATS = (MODELOPT, COMPRESSED_TENSORS)
