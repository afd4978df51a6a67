"""The cast's output formats: one interface, one implementation module per format.

This module only names the formats (no numpy), so the CLI can offer ``--format`` choices
without importing the cast; :func:`get` imports the implementation of one format.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Protocol, cast

from fp4stack.core.errors import UsageError

if TYPE_CHECKING:
    from fp4stack.checkpoint.cast.emit import BiasOutput, Output
    from fp4stack.checkpoint.cast.source import QuantUnit

# --format name -> the module of this package whose ``FORMAT`` implements it
_MODULES: dict[str, str] = {"modelopt": "modelopt", "compressed-tensors": "compressed_tensors"}
NAMES: tuple[str, ...] = tuple(_MODULES)
DEFAULT = "modelopt"


class OutputFormat(Protocol):
    """How one NVFP4 format names, shapes and writes the cast's tensors and metadata."""

    name: str  # the --format value
    splits_experts: bool  # fused 3-D gpt-oss experts become per-expert Linear modules

    def unit_outputs(self, unit: QuantUnit) -> list[Output]:
        """The output tensors of one MXFP4 unit, each with the function that writes it."""
        ...

    def bias_outputs(
        self, unit: QuantUnit, name: str, dtype: str, shape: tuple[int, ...]
    ) -> list[BiasOutput]:
        """The output tensors of the fused expert bias ``name`` (E, rows) of ``unit``; each
        function takes the raw source bytes viewed as an ``(E, rows, itemsize)`` array."""
        ...

    def metadata_files(
        self, config: dict[str, Any], excluded: list[str]
    ) -> dict[str, dict[str, Any]]:
        """JSON files to write beside the tensors, by file name: ``config.json`` (the source
        config with its quantization_config replaced) and any file of the format's own.

        :param excluded: the Linear-like modules left in high precision, sorted.
        """
        ...


def get(name: str) -> OutputFormat:
    """The format registered as ``name``; raises UsageError for an unknown one."""
    if name not in _MODULES:
        raise UsageError(
            f"unknown output format {name!r}", hint=f"choose one of: {', '.join(NAMES)}"
        )
    module = importlib.import_module(f"{__name__}.{_MODULES[name]}")
    return cast("OutputFormat", module.FORMAT)
