"""``pr``: cut upstream pull requests from the stacks, each proven in its line's test env.

Which patches: those still to go upstream (Pending or Submitted), or the ones named, of the
newest line of each upstream named (a line named outright stands for itself). Each is cut
on the newest line whose series carries it (``stack.pr.base_line``), once even when two
named lines lead to it. The proof is ``testing.pr_proof``'s, in that line's test env
(built as for ``make test``); the texts are ``stack.pr_text``'s, with the counts of the last
upstream suite run on that line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fp4stack.core.errors import PatchError
from fp4stack.core.log import log
from fp4stack.stack import pr, pr_text
from fp4stack.stack.apply import apply
from fp4stack.stack.pins import Line, Project
from fp4stack.stack.series import PatchInfo, parse_patch
from fp4stack.testing import suites
from fp4stack.testing.pr_proof import prove_pr

SEND = "SEND.md"


@dataclass(frozen=True)
class Cut:
    """One patch's cut on ``line``: the PR, or why it could not be made (then nothing of it
    is left behind)."""

    line: Line
    patch: str  # the patch file's name
    pr: pr.PullRequest | None
    error: str = ""

    @property
    def send_commands(self) -> list[str]:
        """The shell commands SEND.md gives for sending the PR (none for a failed cut)."""
        if self.pr is None or SEND not in self.pr.texts:
            return []
        block = self.pr.texts[SEND].split("```sh\n", 1)[-1].split("```", 1)[0]
        return block.strip().splitlines()


@dataclass(frozen=True)
class PrRun:
    """Every cut tried, in order."""

    cuts: list[Cut]

    @property
    def failed(self) -> list[Cut]:
        return [c for c in self.cuts if c.pr is None]


def cut_prs(
    project: Project, names: Sequence[str], *, patches: Sequence[str] = (), prove: bool = True
) -> PrRun:
    """Cut a PR for each patch to send (see the module), under ``build/pr/<line>/<patch>/``.

    :param names: lines or upstreams (none: every upstream).
    :param patches: patch file names to cut instead of every Pending or Submitted patch.
    :param prove: False: no red/green run (no venv is built; PR.md carries no evidence).
    :raises UsageError: an unknown line, or a patch name not in a chosen line's series
        (before anything is cut).
    """
    chosen = [ln for ln in project.select(list(names))
              if ln.id in names or ln == project.newest(ln.upstream)]  # fmt: skip
    todo = [(line, p) for line in chosen for p in pr.candidates(project, line, list(patches))]
    records = suites.read_records(project)

    def describe(cut: pr.PullRequest) -> dict[str, str]:
        return pr_text.texts(project, cut, records.get(cut.line.id))

    done: set[tuple[str, str]] = set()
    cuts: list[Cut] = []
    for line, patch in todo:
        base = pr.base_line(project, line, patch)
        if (base.id, patch.path.name) in done:
            continue
        done.add((base.id, patch.path.name))
        cuts.append(_cut(project, base, patch, describe, prove))
    return PrRun(cuts)


def _cut(
    project: Project,
    base: Line,
    patch: PatchInfo,
    describe: Callable[[pr.PullRequest], dict[str, str]],
    prove: bool,
) -> Cut:
    log(f"{base.id}: cutting {patch.path.name}")
    apply(project, base)
    target = parse_patch(project.patches(base) / patch.path.name)
    try:
        made = pr.cut(project, base, target, _prover(project, base) if prove else None, describe)
    except PatchError as error:
        return Cut(base, patch.path.name, None, str(error))
    return Cut(base, patch.path.name, made)


def _prover(project: Project, base: Line) -> pr.Prover:
    def prover(work: pr.Work) -> pr.PortedTestProof:
        return prove_pr(project, work, suites.upstream_env(project, base))

    return prover
