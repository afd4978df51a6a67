"""``wheel``: build the patched wheels into dist/."""

from __future__ import annotations

import argparse

from fp4stack.cli.line_args import add_upstream_args


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "wheel",
        help="build the patched wheels into dist/",
        description="Apply each series (see `apply`), then repack the official PyPI wheel, "
        "verified by its pinned sha256, with only the patched files changed: "
        "dist/<name>-<version>+fp4stack.<id>-<official tags>.whl, where <id> is derived from "
        "the series content. Unchanged members are copied compressed as they are, RECORD is "
        "regenerated, and two builds give the same bytes. Install with "
        "`pip install dist/*.whl` (the local label still satisfies ==<version> pins).",
    )
    add_upstream_args(parser)
    parser.set_defaults(func=run_wheel)


def run_wheel(args: argparse.Namespace) -> int:
    from fp4stack.operations.patched_wheels import build_wheels
    from fp4stack.stack.pins import load_project

    project = load_project()
    for wheel in build_wheels(project, args.upstreams):
        print(wheel.relative_to(project.root))
    return 0
