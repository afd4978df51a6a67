"""``apply``, ``refresh`` and ``lint``: the maintainer's loop over a patch stack."""

from __future__ import annotations

import argparse

from fp4stack.cli.common import add_upstream_args, selected


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    apply = subparsers.add_parser(
        "apply",
        help="fetch, verify and patch the pristine upstream trees",
        description="Materialize build/src/<upstream>@<version>/ as a git repository: the "
        "pristine tree on branch `upstream` (from the initialized submodule, or the pinned PyPI "
        "artifact verified by sha256), then every patch of the line's series "
        "(patches/<upstream>/<version>/series) applied "
        "with `git am`, one commit each, on branch `patched`. Idempotent: with unchanged "
        "inputs it does nothing; a changed series rebuilds from pristine. It refuses to "
        "discard commits not yet exported with `refresh` unless --force.",
    )
    add_upstream_args(apply)
    apply.add_argument("--force", action="store_true", help="discard unexported local work")
    apply.set_defaults(func=run_apply)

    refresh = subparsers.add_parser(
        "refresh",
        help="export the commits in build/src/<upstream>@<version>/ back to patches/",
        description="Export every commit on top of `upstream` in build/src/<line>/ as a "
        "patch file (git format-patch with stable options: zero commit hash, full index, no "
        "signature, no stat), named after its subject, and rewrite the series in commit "
        "order. With no edits, nothing changes. --check only reports what would change and "
        "exits 1 if anything would.",
    )
    add_upstream_args(refresh)
    refresh.add_argument("--check", action="store_true", help="dry run: exit 1 if stale")
    refresh.set_defaults(func=run_refresh)
    add_lint_parser(subparsers)
    add_pr_parser(subparsers)


def run_apply(args: argparse.Namespace) -> int:
    from fp4stack.stack.apply import apply

    project, chosen = selected(args)
    for line in chosen:
        apply(project, line, force=args.force)
    return 0


def run_refresh(args: argparse.Namespace) -> int:
    from fp4stack.stack.refresh import refresh, stale

    project, chosen = selected(args)
    stale_any = False
    for line in chosen:
        if args.check:
            changed = stale(project, line)
            verb = "would change"
        else:
            changed = refresh(project, line)
            verb = "changed"
        for name in changed:
            print(f"{line.patch_dir}/{name}: {verb}")
        stale_any = stale_any or bool(changed)
    if args.check and stale_any:
        print("patches need update: run `make refresh`")
        return 1
    return 0


def add_lint_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    lint = subparsers.add_parser(
        "lint",
        help="check patch headers, series consistency, and that a re-export changes nothing",
        description="Fail on: a series entry with no file; a patch file missing from the "
        "series; a patch without a description of why it exists, without exactly one valid "
        "`Upstream-Status:` (Backport [version] | Submitted [url] | Pending [why] | "
        "Inappropriate [why]), without a `Bug:` URL, or without a `Test:` naming an existing "
        "test; and patches that `refresh` would rewrite (re-export dry run).",
    )
    add_upstream_args(lint)
    lint.add_argument("--no-export-check", action="store_true",
                      help="skip the re-export dry run (needs no download)")  # fmt: skip
    lint.set_defaults(func=run_lint)


def run_lint(args: argparse.Namespace) -> int:
    from fp4stack.stack.apply import apply
    from fp4stack.stack.lint import lint_series
    from fp4stack.stack.refresh import stale

    project, chosen = selected(args)
    problems: list[str] = []
    for line in chosen:
        found = lint_series(project, line)
        if not found and not args.no_export_check:
            apply(project, line)
            found = [f"{line.patch_dir}/{n}: a re-export would change it; run "
                     "`make refresh`" for n in stale(project, line)]  # fmt: skip
        problems += found
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s)")
        return 1
    print(f"patch lint: {len(chosen)} stacks clean")
    return 0


def add_pr_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "pr",
        help="cut upstream PR branches and texts from a stack",
        description="For each patch still to go upstream (Upstream-Status Pending or "
        "Submitted), or the patch files named with --patch: apply it alone onto the pinned "
        "tag as branch pr/<slug> in build/src/<upstream>@<version>/, and write build/pr/<upstream>/"
        "<slug>/PR.md (title, why, Bug link, the proving tests) and the standalone patch. "
        "Nothing is pushed.",
    )
    add_upstream_args(parser)
    parser.add_argument("--patch", action="append", default=[], metavar="FILE",
                        help="a patch file name from the series (repeatable)")  # fmt: skip
    parser.set_defaults(func=run_pr)


def run_pr(args: argparse.Namespace) -> int:
    from fp4stack.core.errors import PatchError
    from fp4stack.stack import pr
    from fp4stack.stack.apply import apply

    project, chosen = selected(args)
    # A patch still needed lives on the newest line of its upstream: cut PRs from there
    # unless a line is named outright (its older copies would be the same PRs).
    named = {n for n in args.upstreams if n in project.lines}
    chosen = [ln for ln in chosen if ln.id in named or ln == project.newest(ln.upstream)]
    count, failed = 0, 0
    for line in chosen:
        apply(project, line)
        for patch in pr.candidates(project, line, args.patch):
            count += 1
            try:
                cut = pr.cut(project, line, patch)
            except PatchError as error:
                print(f"{line.id}: {error}")
                failed += 1
                continue
            print(f"{line.id}: {cut.branch}  {cut.folder.relative_to(project.root)}/PR.md")
    if not count:
        print("no patches to send upstream (none is Pending or Submitted)")
    return 1 if failed else 0
