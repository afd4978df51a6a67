"""The ``fp4stack`` command line: parses arguments, prints, and exits. Nothing else does."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from fp4stack import __version__
from fp4stack.cli.output import print_error, stderr_sink
from fp4stack.core.errors import FP4StackError
from fp4stack.core.log import set_sink

# Modules that each define ``add_parser(subparsers)`` for one group of verbs. They import
# their heavy dependencies inside the verb, so one verb never slows down another.
VERB_MODULES: tuple[str, ...] = (
    "fp4stack.cli.patching",
    "fp4stack.cli.building",
    "fp4stack.cli.testing",
    "fp4stack.cli.lines",
    "fp4stack.cli.housekeeping",
    "fp4stack.cli.cast",
    "fp4stack.cli.doctor",
)

DESCRIPTION = """\
fp4stack keeps quilt-style patch stacks against pinned upstreams (compressed-tensors,
vLLM, NVIDIA ModelOpt), proves every patch with a regression test, builds patched
wheels you can pip install today, and ships checkpoint tools for NVFP4/MXFP4 models.
"""

EPILOG = """\
typical use:
  fp4stack wheel                 build every patched wheel into dist/
  fp4stack test                  run upstream suites + our tests against the patched builds
  fp4stack apply                 materialize build/src/<upstream>/ with the series applied
  fp4stack refresh               export commits made in build/src/<upstream>/ to patches/
  fp4stack cast mxfp4-to-nvfp4 SRC DST   convert a checkpoint offline, on a CPU
  fp4stack doctor CHECKPOINT     check a checkpoint; --env checks an environment
  fp4stack fix SRC DST           write a checkpoint with the doctor's exact repairs
  fp4stack install [PACKAGE…]    put the patched wheels into an environment (--undo)
"""


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with one subparser per verb."""
    parser = argparse.ArgumentParser(
        prog="fp4stack",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"fp4stack {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="show commands run")
    subparsers = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for module_name in VERB_MODULES:
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    try:
        try:
            return _run(argv)
        finally:
            sys.stdout.flush()  # here, not at exit, so a closed pipe is caught below
    except BrokenPipeError:
        # the reader went away (`fp4stack doctor … | head`): stop quietly, as cat does, and
        # keep Python from complaining again when it flushes stdout at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def _run(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    set_sink(stderr_sink(verbosity=args.verbose))
    try:
        return int(args.func(args) or 0)
    except FP4StackError as error:
        print_error(error)
        return error.exit_code
    except KeyboardInterrupt:
        print("ERROR: interrupted", file=sys.stderr)
        return 130
