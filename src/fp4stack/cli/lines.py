"""``outdated``, ``drift`` and ``rebase``: see a release coming, and move a line's patches to
another release of its upstream."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    drift = subparsers.add_parser(
        "drift",
        help="classify a line's patches against another release",
        description="Compare each patch of LINE (<upstream>@<version>) with release VERSION "
        "of the same upstream, whose files and sha256 are resolved from the index pip is "
        "configured with (or pinned, when <upstream>@<VERSION> is a line). Text: "
        "reverse-applies, applies (git apply --check), applies-3way (git am -3) or conflicts "
        "(files and hunks named). Behaviour decides: each patch's Test:s run on VERSION's "
        "pristine code in build/venv/<upstream>@<VERSION>.pristine (the env pins of that "
        "line if it exists, else LINE's); passing there means already upstream. Tests that "
        "fail there, or cannot be collected, run again with every other patch applied: pass "
        "means already upstream, fail still needed. Tests that cannot run at all are no "
        "evidence: the text decides, and the table says why. Prints a table, writes "
        "build/drift/<upstream>-<from>-to-<to>.json and, with --report, "
        "docs/drift/<upstream>-<from>-to-<to>.md (and the .json beside it). Exit 0; 2 for "
        "a bad line or a version the index does not have.",
    )
    drift.add_argument(
        "line", metavar="LINE", help="<upstream>@<version>, a line of upstream/pins.toml"
    )
    drift.add_argument("version", metavar="VERSION", help="the other release of its upstream")
    drift.add_argument(
        "--report", action="store_true", help="also write docs/drift/<…>.md and .json"
    )
    drift.add_argument("--no-tests", action="store_true", help="text only: make no test venv")
    drift.set_defaults(func=run_drift)

    rebase = subparsers.add_parser(
        "rebase",
        help="create a new line at a newer release from an existing line",
        description="Pin VERSION as a new line (tag, artifacts and sha256 from the index), "
        "copy LINE's series to patches/<upstream>/<VERSION>/ without the patches `drift` "
        "finds already upstream (recorded in its CHANGELOG.md), copy the ci/ lists, and "
        "apply the rest with `git am -3` in build/src/<upstream>@<VERSION>/, re-exporting "
        "them on success. A conflict stops there: resolve it, `git am --continue`, then "
        "`make refresh UPSTREAM=<upstream>@<VERSION>`. Refuses an older release, an "
        "existing line, a version the index lacks and a sha256 mismatch. Exit 0 when every "
        "patch applied, 1 on a conflict, 2 on bad input.",
    )
    rebase.add_argument("line", metavar="LINE", help="the line to start from: <upstream>@<version>")
    rebase.add_argument("version", metavar="VERSION", help="the newer release of its upstream")
    rebase.add_argument("--no-tests", action="store_true", help="let drift's text decide")
    rebase.set_defaults(func=run_rebase)

    outdated = subparsers.add_parser(
        "outdated",
        help="is there a release newer than our newest line that still needs our patches",
        description="For each UPSTREAM (default: all), read the index pip is configured with "
        "(one page per upstream): its newest final release (pre-releases and yanked files "
        "skipped) against our newest line. For a newer release, run `drift` of that line "
        "against it (its pristine sdist/wheel, and a test venv unless --no-tests) and give "
        "each patch's verdict: already upstream, still needed, applies, conflicts. The "
        "answer is kept in build/outdated/<upstream>.json against the line's series and the "
        "release, so a run that finds nothing new downloads nothing more. Exit 0 when no "
        "newer release needs one of our patches, 1 when one does (add a line with `fp4stack "
        "rebase <newest line> <release>`), 2 on bad input.",
    )
    outdated.add_argument("upstreams", nargs="*", metavar="UPSTREAM",
                          help="an upstream of upstream/pins.toml (default: all)")  # fmt: skip
    outdated.add_argument("--json", action="store_true", help="print JSON for scripts")
    outdated.add_argument("--no-tests", action="store_true", help="let drift's text decide")
    outdated.set_defaults(func=run_outdated)


def run_drift(args: argparse.Namespace) -> int:
    from fp4stack.operations.release_drift import compare
    from fp4stack.stack.drift_report import render_table
    from fp4stack.stack.pins import load_project

    project = load_project()
    run = compare(project, project.line(args.line), args.version,
                  run_tests=not args.no_tests, markdown=args.report)  # fmt: skip
    print(render_table(run.report))
    print(f"wrote {run.json_file.relative_to(project.root)}")
    if run.markdown_file is not None:
        print(f"wrote {run.markdown_file.relative_to(project.root)}")
    return 0


def run_rebase(args: argparse.Namespace) -> int:
    from fp4stack.operations import new_line
    from fp4stack.stack.drift_report import render_table
    from fp4stack.stack.pins import load_project

    project = load_project()
    planned = new_line.plan(project, project.line(args.line), args.version,
                            run_tests=not args.no_tests)  # fmt: skip
    print(render_table(planned.report))
    done = new_line.create(project, planned)
    print(f"{done.line.id}: {len(done.kept)} patches applied, {len(done.dropped)} dropped "
          f"(see {done.line.patch_dir}/CHANGELOG.md)")  # fmt: skip
    return 0


def run_outdated(args: argparse.Namespace) -> int:
    import json

    from fp4stack.operations.outdated import outdated
    from fp4stack.stack.pins import load_project

    statuses = outdated(load_project(), args.upstreams, run_tests=not args.no_tests)
    if args.json:
        print(json.dumps([s.to_json() for s in statuses], indent=2))
    for status in [] if args.json else statuses:
        release = status.newest_release or "(no release listed)"
        if not status.newer:
            print(f"{status.upstream}: up to date: newest release {release}, line "
                  f"{status.newest_line}")  # fmt: skip
            continue
        word = "OUTDATED" if status.outdated else "newer release, every fix already upstream"
        cached = " (cached)" if status.cached else ""
        print(f"{status.upstream}: {word}: {release} > line {status.newest_line}{cached}")
        for p in status.patches:
            print(f"  {p.verdict:<17} {p.patch}")
            if p.evidence:
                print(f"  {'':<17} ({p.evidence})")
        if status.decided_by != "tests":
            print(f"  decided by: {status.decided_by}")
        if status.outdated:
            print(f"  run: fp4stack rebase {status.newest_line} {release}")
    return 1 if any(s.outdated for s in statuses) else 0
