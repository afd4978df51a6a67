"""``clean``: remove what the other verbs generated."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "clean",
        help="remove dist/ and the generated trees under build/",
        description="Remove dist/, build/src/ (the applied trees: export your commits with "
        "`refresh` first), build/overlay/ and build/upstream-tests/. The download cache and "
        "the test venvs are kept unless asked for, since they take minutes to rebuild.",
    )
    parser.add_argument("--envs", action="store_true", help="also remove the test venvs")
    parser.add_argument("--cache", action="store_true", help="also remove downloaded artifacts")
    parser.set_defaults(func=run_clean)


def run_clean(args: argparse.Namespace) -> int:
    from fp4stack.operations.clean import clean
    from fp4stack.stack.pins import load_project

    project = load_project()
    for removed in clean(project, envs=args.envs, cache=args.cache):
        print(f"removed {removed.relative_to(project.root)}")
    return 0
