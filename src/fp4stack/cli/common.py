"""Arguments and loops shared by the verbs that work on upstreams."""

from __future__ import annotations

import argparse

from fp4stack.stack.pins import Line, Project, load_project


def add_upstream_args(parser: argparse.ArgumentParser) -> None:
    """Positional lines (`vllm@0.28.0`) or upstreams (all their lines); none means all."""
    parser.add_argument(
        "upstreams",
        nargs="*",
        metavar="LINE",
        help="a line, <upstream>@<version>, or an upstream for all of its lines (default: all)",
    )


def selected(args: argparse.Namespace) -> tuple[Project, list[Line]]:
    """The project and the upstreams named on the command line."""
    project = load_project()
    return project, project.select(args.upstreams)
