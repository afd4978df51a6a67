"""``apply``, ``refresh`` and ``lint``: the maintainer's loop over a patch stack."""

from __future__ import annotations

import argparse

from fp4stack import stack
from fp4stack.commands.common import add_upstream_args, selected


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    apply = subparsers.add_parser(
        "apply",
        help="fetch, verify and patch the pristine upstream trees",
        description="Materialize build/src/<upstream>/ as a git repository: the pristine "
        "tree on branch `upstream` (from the initialized submodule, or the pinned PyPI "
        "artifact verified by sha256), then every patch of patches/<upstream>/series applied "
        "with `git am`, one commit each, on branch `patched`. Idempotent: with unchanged "
        "inputs it does nothing; a changed series rebuilds from pristine. It refuses to "
        "discard commits not yet exported with `refresh` unless --force.",
    )
    add_upstream_args(apply)
    apply.add_argument("--force", action="store_true", help="discard unexported local work")
    apply.set_defaults(func=run_apply)

    refresh = subparsers.add_parser(
        "refresh",
        help="export the commits in build/src/<upstream>/ back to patches/",
        description="Export every commit on top of `upstream` in build/src/<upstream>/ as a "
        "patch file (git format-patch with stable options: zero commit hash, full index, no "
        "signature, no stat), named after its subject, and rewrite the series in commit "
        "order. With no edits, nothing changes. --check only reports what would change and "
        "exits 1 if anything would.",
    )
    add_upstream_args(refresh)
    refresh.add_argument("--check", action="store_true", help="dry run: exit 1 if stale")
    refresh.set_defaults(func=run_refresh)


def run_apply(args: argparse.Namespace) -> int:
    project, upstreams = selected(args)
    for upstream in upstreams:
        stack.apply(project, upstream, force=args.force)
    return 0


def run_refresh(args: argparse.Namespace) -> int:
    project, upstreams = selected(args)
    stale_any = False
    for upstream in upstreams:
        if args.check:
            changed = stack.stale(project, upstream)
            verb = "would change"
        else:
            changed = stack.refresh(project, upstream)
            verb = "changed"
        for name in changed:
            print(f"patches/{upstream.id}/{name}: {verb}")
        stale_any = stale_any or bool(changed)
    if args.check and stale_any:
        print("patches need update: run `make refresh`")
        return 1
    return 0
