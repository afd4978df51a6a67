"""``apply``, ``refresh`` and ``lint``: the maintainer's loop over a patch stack."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from fp4stack.cli.common import add_upstream_args, selected

if TYPE_CHECKING:
    from fp4stack.stack import pr
    from fp4stack.stack.pins import Line, Project


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
    from fp4stack.core.errors import PatchError
    from fp4stack.stack import pr, pr_text
    from fp4stack.stack.apply import apply
    from fp4stack.stack.series import parse_patch
    from fp4stack.testing import suites
    from fp4stack.testing.pr_proof import prove_pr

    project, chosen = selected(args)
    # A patch still needed is carried by the newest line of its upstream: cut PRs from
    # there unless a line is named outright.
    named = {n for n in args.upstreams if n in project.lines}
    chosen = [ln for ln in chosen if ln.id in named or ln == project.newest(ln.upstream)]
    records = suites.read_records(project)
    done: set[tuple[str, str]] = set()
    count, failed = 0, 0
    for line in chosen:
        for patch in pr.candidates(project, line, args.patch):
            base = pr.base_line(project, line, patch)
            if (base.id, patch.path.name) in done:
                continue
            done.add((base.id, patch.path.name))
            count += 1
            apply(project, base)

            def prover(work: pr.Work, base: Line = base) -> pr.PortedTestProof:
                return prove_pr(project, work, suites.upstream_env(project, base))

            def describe(cut: pr.PullRequest) -> dict[str, str]:
                return pr_text.texts(project, cut, records.get(cut.line.id))

            target = parse_patch(project.patches(base) / patch.path.name)
            try:
                cut = pr.cut(project, base, target, None if args.no_prove else prover, describe)
            except PatchError as error:
                print(f"{base.id}: NOT CUT: {error}")
                failed += 1
                continue
            _report_cut(project, cut)
    if not count:
        print("no patches to send upstream (none is Pending or Submitted)")
    else:
        print(f"{count - failed}/{count} PR(s) cut")
    return 1 if failed else 0


def _report_cut(project: Project, cut: pr.PullRequest) -> None:
    folder = cut.folder.relative_to(project.root)
    stacked = (
        f" (series of {len(cut.links)}, after its prerequisites)" if len(cut.links) > 1 else ""
    )
    print(f"{cut.line.id}: {cut.slug}{stacked}")
    print(f"  {folder}/{cut.slug}.mbox  {folder}/PR.md  {folder}/SEND.md")
    if cut.branch:
        print(f"  branch {cut.branch} in {cut.line.submodule}")
    if cut.proof:
        print(f"  ported test: without the fix {cut.proof.red_counts}; with it "
              f"{cut.proof.green_counts}; ruff {cut.proof.lint}")  # fmt: skip
    for note in cut.notes:
        print(f"  note: {note}")
    send = (cut.folder / "SEND.md").read_text()
    print(
        "  send: "
        + send.split("```sh\n", 1)[-1].split("```", 1)[0].strip().replace("\n", "\n        ")
    )
