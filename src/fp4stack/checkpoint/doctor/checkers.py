"""The doctor's validators: one :class:`FormatChecker` per format, looked up by the format's
label from :mod:`fp4stack.checkpoint.detect` (as the cast's output formats are by name)."""

from __future__ import annotations

from typing import Protocol

from fp4stack.checkpoint import detect
from fp4stack.checkpoint.detect import Detected
from fp4stack.checkpoint.doctor.findings import Report
from fp4stack.checkpoint.doctor.fp8 import Fp8Checker
from fp4stack.checkpoint.doctor.mxfp4 import Mxfp4Checker
from fp4stack.checkpoint.doctor.nvfp4 import Nvfp4Checker
from fp4stack.checkpoint.reader import Checkpoint


class FormatChecker(Protocol):
    """Validates the tensors of one format against what config.json declares."""

    def check(self, ckpt: Checkpoint, found: Detected, report: Report, headers_only: bool) -> int:
        """Add the format's findings to ``report``; return how many quantized weights it has.

        :param headers_only: read no tensor data (scale values), only the headers.
        """
        ...


CHECKERS: dict[str, FormatChecker] = {
    detect.CT_NVFP4: Nvfp4Checker(modelopt=False),
    detect.MODELOPT_NVFP4: Nvfp4Checker(modelopt=True),
    detect.CT_MXFP4: Mxfp4Checker(gpt_oss=False),
    detect.GPT_OSS_MXFP4: Mxfp4Checker(gpt_oss=True),
    detect.CT_FP8: Fp8Checker(compressed_tensors=True),
    detect.FP8_BLOCK: Fp8Checker(compressed_tensors=False),
}


def checker(fmt: str) -> FormatChecker:
    """The checker of the format labelled ``fmt``.

    :raises LookupError: no checker is registered for it (a format the detector gives but
        nothing validates: a gap in this table, not something to check as another format).
    """
    try:
        return CHECKERS[fmt]
    except KeyError:
        raise LookupError(
            f"the doctor has no checker for format {fmt!r} (it checks: {', '.join(CHECKERS)})"
        ) from None
