"""The LINE arguments of the verbs that work on lines: lines, or upstreams for all theirs."""

from __future__ import annotations

import argparse


def add_upstream_args(parser: argparse.ArgumentParser) -> None:
    """Positional lines (`<upstream>@<version>`) or upstreams (all their lines); none means all."""
    parser.add_argument(
        "upstreams",
        nargs="*",
        metavar="LINE",
        help="a line, <upstream>@<version>, or an upstream for all of its lines (default: all)",
    )
