"""FP8 weights: compressed-tensors float-quantized (``weight_scale``) and the block FP8 of
``quant_method: fp8`` (DeepSeek/Qwen style, ``weight_scale_inv``). The scale's name is what
each consumer keys on: compressed-tensors (and vLLM's compressed-tensors path) read
``weight_scale``, vLLM's Fp8Config reads ``weight_scale_inv``."""

from __future__ import annotations

import math
from dataclasses import dataclass

from fp4stack.checkpoint.detect import Detected
from fp4stack.checkpoint.doctor.findings import FIX, Finding, Repair, Report
from fp4stack.checkpoint.doctor.tensor_checks import scale_value_problems
from fp4stack.checkpoint.reader import Checkpoint

CT_NAME, FP8_NAME = "weight_scale", "weight_scale_inv"
SCALE_DTYPES = ("F32", "BF16", "F16")
NAME_CODE = "fp8-block-scale-name"


def _expected_shape(
    shape: tuple[int, ...], strategy: str | None, block: tuple[int, int] | None
) -> tuple[tuple[int, ...], ...]:
    """Scale shapes a (out, in) FP8 weight may have under the declared strategy."""
    if len(shape) != 2:
        return ()
    out, cols = shape
    if block is not None and strategy in (None, "block"):
        return ((math.ceil(out / block[0]), math.ceil(cols / block[1])),)
    if strategy == "channel":
        return ((out, 1), (out,))
    if strategy == "tensor":
        return ((), (1,))
    return ()  # other strategies: shape not checked


@dataclass(frozen=True)
class Fp8Checker:
    """The :class:`~fp4stack.checkpoint.doctor.checkers.FormatChecker` of block FP8
    (``quant_method: fp8``) or (``compressed_tensors``) compressed-tensors float-quantized."""

    compressed_tensors: bool

    def check(self, ckpt: Checkpoint, found: Detected, report: Report, headers_only: bool) -> int:
        """Validate every FP8 weight's scale (name, dtype, shape, values); returns the count."""
        want, other = (CT_NAME, FP8_NAME) if self.compressed_tensors else (FP8_NAME, CT_NAME)
        weights = [
            n
            for n in sorted(ckpt.where)
            if n.endswith(".weight") and ckpt.info(n).dtype in ("F8_E4M3", "F8_E5M2")
        ]
        renames = []
        for name in weights:
            base = name.removesuffix(".weight")
            right, wrong = f"{base}.{want}", f"{base}.{other}"
            if right in ckpt.where and wrong in ckpt.where:
                report.add(
                    Finding(
                        "error",
                        NAME_CODE,
                        ckpt.label(wrong),
                        f"both {want!r} and {other!r} are present",
                        "keep the one the producer wrote; the other is stale",
                    )
                )
            elif wrong in ckpt.where:
                renames.append(Repair("rename", target=wrong, new_name=right))
            elif right not in ckpt.where:
                report.add(
                    Finding(
                        "error",
                        "missing-partner",
                        ckpt.label(name),
                        f"FP8 weight without its scale {right!r}",
                        "the checkpoint is incomplete: re-export it",
                    )
                )
                continue
            _check_scale(
                ckpt,
                name,
                right if right in ckpt.where else wrong,
                found.fp8_strategy,
                found.fp8_block,
                report,
                headers_only,
            )
        if renames:
            who = (
                "compressed-tensors (its loader, and vLLM's compressed-tensors path)"
                if self.compressed_tensors
                else "vLLM's Fp8Config (quant_method 'fp8')"
            )
            report.add(
                Finding(
                    "error",
                    NAME_CODE,
                    ckpt.label(renames[0].target),
                    f"{len(renames)} FP8 scales are named {other!r}, but {who} reads {want!r}: "
                    "they would not load (missing-weight error, or left uninitialised)",
                    f"`{FIX}` renames them (the bytes are copied unchanged)",
                    repairs=tuple(renames),
                )
            )
        _orphans(ckpt, report)
        return len(weights)


def _check_scale(
    ckpt: Checkpoint,
    weight: str,
    scale: str,
    strategy: str | None,
    block: tuple[int, int] | None,
    report: Report,
    headers_only: bool,
) -> None:
    info, shape = ckpt.info(scale), ckpt.info(weight).shape
    if info.dtype not in SCALE_DTYPES:
        report.add(
            Finding(
                "error",
                "bad-dtype",
                ckpt.label(scale),
                f"FP8 scale is {info.dtype}, expected F32 (or BF16/F16)",
                "re-export the checkpoint with its producer",
            )
        )
        return
    shapes = _expected_shape(shape, strategy, block)
    if shapes and info.shape not in shapes:
        what = f"blocks {list(block)}" if block else f"strategy {strategy}"
        report.add(
            Finding(
                "error",
                "bad-shape",
                ckpt.label(scale),
                f"scale {list(info.shape)} does not fit weight {list(shape)} with "
                f"{what}: expected {list(shapes[0])}",
                "check the block size in config.json against the producer's",
            )
        )
    if not headers_only:
        problems = scale_value_problems(ckpt.values(scale), allow_zero_blocks=False)
        if problems:
            report.add(
                Finding(
                    "error",
                    "bad-scale-values",
                    ckpt.label(scale),
                    f"FP8 scales: {', '.join(problems)}",
                    "re-quantize this module",
                )
            )


def _orphans(ckpt: Checkpoint, report: Report) -> None:
    for name in sorted(ckpt.where):
        for suffix in (f".{CT_NAME}", f".{FP8_NAME}"):
            base = name.removesuffix(suffix)
            if (
                name.endswith(suffix)
                and ckpt.info(name).dtype in SCALE_DTYPES
                and f"{base}.weight" not in ckpt.where
                and f"{base}.weight_packed" not in ckpt.where
            ):
                report.add(
                    Finding(
                        "warning",
                        "orphan-scale",
                        ckpt.label(name),
                        "an FP8 scale without its weight",
                        "drop it, or restore the weight it belongs to",
                    )
                )
