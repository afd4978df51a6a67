"""Arguments and loops shared by the verbs that work on upstreams."""

from __future__ import annotations

import argparse

from fp4stack.stack.pins import Project, Upstream, load_project


def add_upstream_args(parser: argparse.ArgumentParser) -> None:
    """Positional upstream ids; none means every pinned upstream."""
    parser.add_argument(
        "upstreams",
        nargs="*",
        metavar="UPSTREAM",
        help="upstream ids from upstream/pins.toml (default: all)",
    )


def selected(args: argparse.Namespace) -> tuple[Project, list[Upstream]]:
    """The project and the upstreams named on the command line."""
    project = load_project()
    return project, project.select(args.upstreams)
