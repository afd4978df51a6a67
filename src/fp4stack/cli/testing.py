"""``test`` and ``prove``: everything runs against the patched builds, in venvs under build/."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from fp4stack.cli.line_args import add_upstream_args

if TYPE_CHECKING:
    from fp4stack.testing.prove import PatchProof
    from fp4stack.testing.pytest_run import PytestResult
    from fp4stack.testing.suites import Outcome


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    test = subparsers.add_parser(
        "test",
        help="run upstream suites, our tests and the proofs against the patched builds",
        description="For each upstream: apply the series, build the patched wheel, install it "
        "in build/venv/<upstream>/ (torch's CPU build first, then the pinned companions), run "
        "upstream's own tests (deselections with reasons in ci/deselect/), our tests in "
        "tests/<upstream>/, and `prove`. Then our tool tests in build/venv/tool-tests/. "
        "Lines run side by side, --jobs at a time, each line's output printed as one block "
        "when it ends. Ends with a summary (failed tests named last, time per phase) and the "
        "prove table; exits 1 if anything failed or a patch is not proven.",
    )
    add_upstream_args(test)
    test.add_argument("--no-tools", action="store_true", help="skip our tool tests")
    test.add_argument(
        "-j",
        "--jobs",
        type=int,
        metavar="N",
        help="run up to N lines at once (default: one per CPU core; 1 runs them in turn "
        "with their output live)",
    )
    test.set_defaults(func=run_test)

    prove_parser = subparsers.add_parser(
        "prove",
        help="show each patch's regression test failing on pristine and passing patched",
        description="Run the tests named by each patch's `Test:` lines twice in the "
        "upstream's test venv: with the stack's files swapped for their pristine versions, "
        "and for their patched versions. A patch is proven when its tests fail on pristine and "
        "pass patched. Exits 1 if any patch is not proven.",
    )
    add_upstream_args(prove_parser)
    prove_parser.set_defaults(func=run_prove)


def run_prove(args: argparse.Namespace) -> int:
    from fp4stack.operations.patch_proofs import prove_lines
    from fp4stack.stack.pins import load_project

    run = prove_lines(load_project(), args.upstreams)
    print(format_table(run.proofs) if run.proofs else "no patches to prove")
    return 0 if run.proven else 1


def run_test(args: argparse.Namespace) -> int:
    from fp4stack.operations import full_test
    from fp4stack.stack.pins import load_project

    run = full_test.run(load_project(), args.upstreams, tools=not args.no_tools, jobs=args.jobs)
    print(summary(run.outcomes))
    return 0 if run.green else 1


def summary(outcomes: list[Outcome]) -> str:
    """The closing report: per line, suite and our counts, then the prove table."""
    lines = ["", "=== fp4stack test summary ==="]
    for o in outcomes:
        suite = _counts(o.suite) if o.suite else f"skipped: {o.suite_note}"
        lines.append(f"{o.name}:")
        if o.has_upstream:
            lines.append(f"  upstream suite: {suite}")
        lines.append(f"  our tests:      {_counts(o.ours) if o.ours else 'none'}")
        if o.proofs:
            proven = sum(p.proven for p in o.proofs)
            lines.append(f"  prove:          {proven}/{len(o.proofs)} patches proven")
        if o.seconds:
            spent = ", ".join(f"{phase} {_duration(s)}" for phase, s in o.seconds.items())
            lines.append(f"  time:           {spent}")
    proofs = [p for o in outcomes for p in o.proofs]
    if proofs:
        lines += ["", format_table(proofs)]
    lines += _failures(outcomes)
    totals = {k: sum(_total(o, k) for o in outcomes) for k in ("passed", "failed", "skipped")}
    lines += ["", f"fp4stack: {totals['passed']} passed, {totals['failed']} failed, "
                  f"{totals['skipped']} skipped"]  # fmt: skip
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"


def _failures(outcomes: list[Outcome], limit: int = 30) -> list[str]:
    """The failed tests, named again at the end, where a CI log's tail shows them."""
    named = [f"  {o.name} ({part}): {failure}"
             for o in outcomes
             for part, result in (("upstream suite", o.suite), ("our tests", o.ours)) if result
             for failure in result.failures()]  # fmt: skip
    if not named:
        return []
    more = (
        [f"  ... and {len(named) - limit} more (see the log above)"] if len(named) > limit else []
    )
    return ["", "failed:", *named[:limit], *more]


def _counts(result: PytestResult | None) -> str:
    if result is None:
        return "none"
    parts = [f"{result.count(k)} {k}" for k in ("passed", "failed", "error", "skipped")]
    parts += [f"{result.count(k)} {k}" for k in ("xfailed", "xpassed", "deselected")
              if result.count(k)]  # fmt: skip
    status = "" if result.ok else f"  [pytest exit {result.returncode}]"
    return ", ".join(parts) + status


def _total(outcome: Outcome, key: str) -> int:
    results = [r for r in (outcome.suite, outcome.ours) if r]
    extra = sum(r.count("error") for r in results) if key == "failed" else 0
    return sum(r.count(key) for r in results) + extra


def format_table(proofs: list[PatchProof]) -> str:
    """The prove table: one line per patch."""
    rows = [("line", "patch", "tests", "pristine", "patched", "verdict")]
    for p in proofs:
        verdict = "proven" if p.proven else "NOT PROVEN"
        rows.append((p.upstream, p.patch, str(len(p.tests)), p.pristine, p.patched, verdict))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]  # fmt: skip
    for p in proofs:
        lines += [f"{p.patch}: {test} skipped on this machine (no evidence here)"
                  for test in p.skipped_here if p.proven]  # fmt: skip
        if not p.proven:
            lines.append(f"{p.patch}: not proven")
            lines += [f"  {test}: pristine {a}, patched {b}" for test, a, b in p.details]
            if not p.tests:
                lines.append("  it names no Test:")
    return "\n".join(lines)
