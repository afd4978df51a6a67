"""``fp4stack cast mxfp4-to-nvfp4 SRC DST``: argument parsing and printing only."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from fp4stack.checkpoint.cast import formats
from fp4stack.cli.signals import sigterm_as_interrupt

# mirrors checkpoint.mxfp4_bias.STATED_CHOICES, which imports numpy (kept out of --help)
SCALE_BIAS_CHOICES = ("auto", "125", "127")

DESCRIPTION = """\
Convert an MXFP4 checkpoint (gpt-oss layout or compressed-tensors mxfp4-pack-quantized)
to NVFP4 offline, tensor by tensor, on a CPU. Blocks that NVFP4 can represent are copied
bit-exactly; the rest are requantized, keeping the better of two methods per tensor.
The output is written to a temporary directory beside DST and renamed at the end.

MXFP4 scales are E8M0 with bias 127, except in checkpoints written by compressed-tensors
0.13.0 (and its nightlies 0.12.3a20251212 to 0.13.1a20260108), which used bias 125: read
as standard, their weights are 1/4 of the producer's. The cast detects this from
quantization_config.version and corrects every exponent by +2 (exactly); for a source
without a version, state the bias with --mxfp4-scale-bias. The report says which was used.
Producer files that describe the source's quantization (llm-compressor's recipe.yaml)
are not copied.

Exit codes: 0 done; 2 bad input (named file and tensor), nothing written; 1 write failure.
"""


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``cast`` and its ``mxfp4-to-nvfp4`` subcommand."""
    cast = subparsers.add_parser("cast", help="convert checkpoints between low-bit formats")
    kinds = cast.add_subparsers(dest="cast_kind", metavar="KIND", required=True)
    p = kinds.add_parser(
        "mxfp4-to-nvfp4",
        help="MXFP4 → NVFP4, bit-exact where representable",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("src", type=Path, metavar="SRC", help="MXFP4 checkpoint directory (read only)")
    p.add_argument("dst", type=Path, metavar="DST", help="output directory (must not exist)")
    p.add_argument(
        "--format",
        choices=formats.NAMES,
        default=formats.DEFAULT,
        help="output format (default: %(default)s)",
    )
    p.add_argument(
        "--workers",
        type=_workers,
        metavar="N",
        default=min(2, os.cpu_count() or 1),
        help="processes working on tensors in parallel (default: %(default)s)",
    )
    p.add_argument(
        "--mxfp4-scale-bias",
        choices=SCALE_BIAS_CHOICES,
        default="auto",
        help="E8M0 bias of the source scales: auto (from config.json; refused when it "
        "cannot tell), 125 (compressed-tensors 0.13.0: corrected by +2) or 127 "
        "(standard) (default: %(default)s)",
    )
    p.add_argument("--force", action="store_true", help="replace DST if it exists")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the cast with a progress bar on stderr; print the per-tensor report on stdout."""
    from fp4stack.checkpoint.cast.pipeline import cast_checkpoint
    from fp4stack.cli.cast_report import format_report
    from fp4stack.cli.progress import Progress

    with sigterm_as_interrupt():
        outcome = cast_checkpoint(
            args.src,
            args.dst,
            args.format,
            args.workers,
            args.force,
            progress=Progress(),
            scale_bias=args.mxfp4_scale_bias,
        )
    print(format_report(outcome.stats, outcome.scale_bias.describe(), outcome.dropped))
    return 0
