"""What every output format shares: the writer signature, and the writers of a unit's
packed bytes and scales. Each format's tensor names and shapes live in ``formats/``."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fp4stack.checkpoint.cast.convert import CastResult
from fp4stack.checkpoint.cast.sink import Sink
from fp4stack.checkpoint.cast.source import QuantUnit
from fp4stack.checkpoint.safetensors_io import OutTensor

Write = Callable[[Sink, int, CastResult], None]
Output = tuple[OutTensor, Write]
BiasOutput = tuple[OutTensor, Callable[[np.ndarray], np.ndarray]]


def module_of(unit: QuantUnit) -> str:
    """The Linear module a 2-D unit belongs to."""
    return unit.base.removesuffix(".weight")


def packed(sink: Sink, offset: int, r: CastResult) -> None:
    """The packed nibbles as they are; unchanged source bytes are copied in the kernel."""
    if r.unchanged:
        sink.source_bytes(r.packed.nbytes, offset)
    else:
        sink.array(r.packed, offset)


def scales(sink: Sink, offset: int, r: CastResult) -> None:
    """The E4M3 scale codes as they are."""
    sink.array(r.scales, offset)
