"""``apply``, ``refresh`` and ``lint``: the maintainer's loop over a patch stack."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from fp4stack.cli.line_args import add_upstream_args

if TYPE_CHECKING:
    from fp4stack.stack.pins import Project
    from fp4stack.stack.pr import PullRequest


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
    from fp4stack.operations.applied_trees import apply_lines
    from fp4stack.stack.pins import load_project

    apply_lines(load_project(), args.upstreams, force=args.force)
    return 0


def run_refresh(args: argparse.Namespace) -> int:
    from fp4stack.operations.applied_trees import refresh_lines
    from fp4stack.stack.pins import load_project

    exports = refresh_lines(load_project(), args.upstreams, check=args.check)
    verb = "would change" if args.check else "changed"
    for export in exports:
        for name in export.changed:
            print(f"{export.line.patch_dir}/{name}: {verb}")
    if args.check and any(e.changed for e in exports):
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
    from fp4stack.operations.patch_lint import lint_lines
    from fp4stack.stack.pins import load_project

    run = lint_lines(load_project(), args.upstreams, export_check=not args.no_export_check)
    for problem in run.problems:
        print(problem)
    if run.problems:
        print(f"{len(run.problems)} problem(s)")
        return 1
    print(f"patch lint: {len(run.lines)} stacks clean")
    return 0


def add_pr_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "pr",
        help="cut upstream PRs (fix + ported test, PR text, send commands) from the stacks",
        description="For each patch still to go upstream (Upstream-Status Pending or "
        "Submitted) of the newest line of each upstream named (or of the line named, or the "
        "patch files named with --patch): cut it on the newest line whose series carries it. "
        "The PR is the fix as one commit and its regression test, ported into the "
        "upstream's own test tree (patches/<upstream>/<version>/upstream/<patch>/), as a "
        "second; a patch that needs earlier ones is cut after them, as one series. It is "
        "made on the release's tree (the upstream submodule at the tag commit when "
        "initialized, then also left as branch pr/<patch> there; else the pinned artifact's "
        "tree) and checked with `git am` on a fresh copy. The ported test must fail without "
        "the fix and pass with it in the line's test env (build/venv/<line>), and pass the "
        "upstream's ruff settings. Writes build/pr/<line>/<patch>/: <patch>.mbox, PR.md (the "
        "upstream's template) and SEND.md (the push / gh pr create commands). Nothing is "
        "pushed. Exits 0 when every patch was cut, 1 when one could not be (it then leaves "
        "no folder and no branch for it).",
    )
    add_upstream_args(parser)
    parser.add_argument("--patch", action="append", default=[], metavar="FILE",
                        help="a patch file name from the series (repeatable)")  # fmt: skip
    parser.add_argument("--no-prove", action="store_true",
                        help="skip the red/green run in the line's test env (no venv is "
                        "built; PR.md then carries no evidence)")  # fmt: skip
    parser.set_defaults(func=run_pr)


def run_pr(args: argparse.Namespace) -> int:
    from fp4stack.operations.upstream_prs import cut_prs
    from fp4stack.stack.pins import load_project

    project = load_project()
    run = cut_prs(project, args.upstreams, patches=args.patch, prove=not args.no_prove)
    for cut in run.cuts:
        if cut.pr is None:
            print(f"{cut.line.id}: NOT CUT: {cut.error}")
        else:
            _report_cut(project, cut.pr, cut.send_commands)
    if not run.cuts:
        print("no patches to send upstream (none is Pending or Submitted)")
    else:
        print(f"{len(run.cuts) - len(run.failed)}/{len(run.cuts)} PR(s) cut")
    return 1 if run.failed else 0


def _report_cut(project: Project, made: PullRequest, send: list[str]) -> None:
    folder = made.folder.relative_to(project.root)
    stacked = (
        f" (series of {len(made.links)}, after its prerequisites)" if len(made.links) > 1 else ""
    )
    print(f"{made.line.id}: {made.slug}{stacked}")
    print(f"  {folder}/{made.slug}.mbox  {folder}/PR.md  {folder}/SEND.md")
    if made.branch:
        print(f"  branch {made.branch} in {made.line.submodule}")
    if made.proof:
        print(f"  ported test: without the fix {made.proof.red_counts}; with it "
              f"{made.proof.green_counts}; ruff {made.proof.lint}")  # fmt: skip
    for note in made.notes:
        print(f"  note: {note}")
    print("  send: " + "\n        ".join(send))
