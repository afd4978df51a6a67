"""Cut upstream pull requests from the stacks: one series of commits per patch still to send.

A patch is cut on the newest line whose series carries it (same file name). A line carries
only the patches drift kept when the line was added, so that is the newest release where
the patch is still needed; a patch an older line alone carries is cut there only when that
line is named.

Each PR is made in a scratch clone of the release's tree (``build/pr/.work/``): the fix as
one commit, then its upstream-form test as a second commit. The tree is the upstream's
submodule at the line's tag commit when it is initialized, and then the result is also a
real branch ``pr/<slug>`` there; otherwise it is the pinned artifact's tree
(``build/src/<id>`` branch ``upstream``), and the result is the ``git format-patch`` series
``build/pr/<id>/<slug>/<slug>.mbox``, checked by ``git am`` on a fresh copy of that tree.

Upstream form, carried beside the series in ``patches/<u>/<v>/upstream/<stem>/``:

- every file under it but ``fix.patch`` is added to the upstream tree at the same path:
  the regression test ported into the upstream's own test tree, written in its conventions;
- ``fix.patch``, when present, is the change as upstream makes it, used in the PR instead
  of the stack's own diff (required when that diff touches generated packaging metadata:
  ``*.dist-info/`` or ``*.egg-info/``, which has no source in upstream's git).

A failed cut leaves nothing behind: no branch, no folder, no scratch clone.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from fp4stack.core import git
from fp4stack.core.errors import CommandError, PatchError, UsageError
from fp4stack.stack import sources
from fp4stack.stack.pins import Line, Project
from fp4stack.stack.series import PatchInfo, parse_patch, series_paths

UPSTREAMABLE = ("Pending", "Submitted")
# Packaging metadata that upstream generates at build time: it has no source file in git.
GENERATED_METADATA = (".dist-info", ".egg-info")
UPSTREAM_FORM = "upstream"
FIX = "fix.patch"
_DIFF_FILE = re.compile(r"^\+\+\+ b/(\S+)", re.M)
_NEW_FILE = re.compile(r"^--- /dev/null\n\+\+\+ b/(\S+)", re.M)


@dataclass(frozen=True)
class Link:
    """One patch of a PR's series, with its upstream form."""

    patch: PatchInfo
    fix: Path | None  # the upstream-form fix, when it replaces the stack's diff
    tests: tuple[str, ...]  # upstream-tree paths of its ported tests

    @property
    def stem(self) -> str:
        return self.patch.path.name.removesuffix(".patch")

    @property
    def upstream_patch(self) -> PatchInfo:
        """The header upstream reads: ``fix.patch``'s when there is one, else the patch's."""
        if self.fix is None:
            return self.patch
        info = parse_patch(self.fix)
        subject = info.subject.removeprefix("[PATCH] ")
        # its links are the stack patch's (fix.patch carries no trailers of ours)
        return PatchInfo(info.path, subject, info.description, self.patch.trailers, info.files)


@dataclass(frozen=True)
class PortedTestProof:
    """The ported tests run without and with the fix, plus the upstream's lint on them."""

    red: str  # "failed" (the evidence wanted), else what happened
    green: str  # "passed" (the evidence wanted), else what happened
    red_counts: str
    green_counts: str
    lint: str  # "clean", or ruff's complaints
    lint_with: str = "ruff"  # whose settings ruff ran with, in words for the PR text

    @property
    def proven(self) -> bool:
        return self.red == "failed" and self.green == "passed" and self.lint == "clean"


@dataclass(frozen=True)
class Work:
    """A PR being cut: its scratch repository and what the prover needs to know."""

    line: Line
    repo: Path
    base: str  # the release commit the series starts from
    fix: str  # the last fix commit (the patch itself)
    head: str  # the series' last commit (its tests)
    tests: tuple[str, ...]  # the patch's own ported tests (tree paths)
    touched: tuple[str, ...]  # tree paths the fixes change
    # overlay refs: the package without and with the fix (a fix that is not in the tree,
    # such as a packaging change, is proven through the stack's built form of it)
    red_ref: str
    green_ref: str
    # an upstream-form fix the release tree cannot take (a wheel tree has no setup.py or
    # pyproject.toml): it heads the mbox as written, unchecked here
    unchecked: str = ""


Prover = Callable[[Work], PortedTestProof]


@dataclass(frozen=True)
class PullRequest:
    """A cut PR: its folder, and its branch when the submodule was there to hold one."""

    line: Line
    slug: str
    folder: Path
    links: tuple[Link, ...]
    branch: str | None
    proof: PortedTestProof | None
    notes: tuple[str, ...] = field(default=())
    # the texts written beside the mbox (name -> text: PR.md, SEND.md), as ``describe`` gave
    texts: dict[str, str] = field(default_factory=dict)


def candidates(project: Project, line: Line, names: list[str]) -> list[PatchInfo]:
    """The named patches, or every patch still to be sent upstream (Pending or Submitted)."""
    patches = [parse_patch(p) for p in series_paths(project.patches(line))]
    if names:
        known = {p.path.name: p for p in patches}
        missing = [n for n in names if n not in known]
        if missing:
            raise UsageError(f"not in {line.patch_dir}/series: {', '.join(missing)}")
        return [known[n] for n in names]
    return [p for p in patches if upstreamable(p)]


def upstreamable(patch: PatchInfo) -> bool:
    """True for a patch whose status is Pending or Submitted."""
    status = patch.trailer("Upstream-Status")
    return bool(status) and status[0].startswith(UPSTREAMABLE)


def base_line(project: Project, line: Line, patch: PatchInfo) -> Line:
    """The newest line of the upstream whose series carries ``patch`` (by file name)."""
    for other in reversed(project.lines_of(line.upstream)):
        if other == line or patch.path.name in _series_names(project, other):
            return other
    return line


def _series_names(project: Project, line: Line) -> list[str]:
    return [p.name for p in series_paths(project.patches(line))]


def upstream_form_dir(project: Project, line: Line, patch: PatchInfo) -> Path:
    """``patches/<u>/<v>/upstream/<stem>/``: the patch's ported tests and upstream-form fix."""
    return project.patches(line) / UPSTREAM_FORM / patch.path.name.removesuffix(".patch")


def link(project: Project, line: Line, patch: PatchInfo) -> Link:
    """The patch with its upstream form, as found beside the line's series."""
    form = upstream_form_dir(project, line, patch)
    fix = form / FIX
    tests = sorted(
        str(p.relative_to(form))
        for p in form.rglob("*")
        if p.is_file() and p.name != FIX and "__pycache__" not in p.parts
    )
    return Link(patch, fix if fix.is_file() else None, tuple(tests))


def form_problems(project: Project, line: Line, patch: PatchInfo) -> list[str]:
    """What a Pending/Submitted patch lacks to become a PR (for ``lint``)."""
    if not upstreamable(patch):
        return []
    found = link(project, line, patch)
    rel = upstream_form_dir(project, line, patch).relative_to(project.root)
    problems = []
    if not found.tests:
        problems.append(f"no upstream-form test in {rel}/ (the regression test ported into "
                        "the upstream's own test tree)")  # fmt: skip
    if found.fix is None and generated_files(patch.files):
        problems.append(f"changes generated packaging metadata ({', '.join(patch.files)}): "
                        f"carry the upstream change as {rel}/{FIX}")  # fmt: skip
    if found.fix is not None:
        text = found.fix.read_text()
        if not _DIFF_FILE.search(text):
            problems.append(f"{rel}/{FIX} holds no diff")
        if generated_files(_DIFF_FILE.findall(text)):
            problems.append(f"{rel}/{FIX} changes generated packaging metadata itself")
        if len(found.upstream_patch.description.split()) < 8:
            problems.append(f"{rel}/{FIX} needs a Subject and a description of why: it is "
                            "the commit upstream reads")  # fmt: skip
    return problems


def generated_files(files: list[str] | tuple[str, ...]) -> list[str]:
    """The paths under a ``*.dist-info`` or ``*.egg-info`` directory, and an sdist's
    ``PKG-INFO``: metadata a build writes, with no source file in upstream's git."""
    return [f for f in files if f.split("/")[0].endswith(GENERATED_METADATA) or f == "PKG-INFO"]


def prerequisites(project: Project, line: Line, patch: PatchInfo) -> list[PatchInfo]:
    """Earlier patches of the series that touch the files ``patch`` touches, transitively."""
    paths = series_paths(project.patches(line))
    earlier = [parse_patch(p) for p in paths[: [p.name for p in paths].index(patch.path.name)]]
    wanted = set(patch.files)
    chosen: list[PatchInfo] = []
    for info in reversed(earlier):
        if wanted & set(info.files):
            chosen.insert(0, info)
            wanted |= set(info.files)
    return chosen


def cut(
    project: Project, line: Line, patch: PatchInfo, prover: Prover | None = None,
    describe: Callable[[PullRequest], dict[str, str]] | None = None,
) -> PullRequest:  # fmt: skip
    """Cut ``patch`` (alone, or after the earlier patches it needs) as a PR of ``line``.

    ``prover`` runs the ported tests without and with the fix; ``describe`` gives the files
    to write in the PR folder besides the mbox (name -> text). Everything is made in
    scratch space and moved into place only when the whole cut succeeded.

    :raises PatchError: the patch has no upstream-form test, does not apply to the release
        (alone or with its prerequisites), or its tests do not prove it.
    """
    chain = [link(project, line, patch)]
    if problems := form_problems(project, line, patch):
        raise PatchError(f"{line.patch_dir}/{patch.path.name}: {'; '.join(problems)}")
    slug = chain[0].stem
    scratch = project.build / "pr" / ".work" / line.id
    shutil.rmtree(scratch, ignore_errors=True)
    checkout = sources.submodule_checkout(project, line)
    try:
        try:
            work, notes = _build(project, line, chain, scratch / "repo", checkout)
        except PatchError as alone:
            before = prerequisites(project, line, patch)
            if not before:
                raise PatchError(f"{line.patch_dir}/{patch.path.name} does not apply to "
                                 f"{line.tag}: {alone}") from alone  # fmt: skip
            chain = [link(project, line, p) for p in before] + chain
            try:
                work, notes = _build(project, line, chain, scratch / "repo", checkout)
            except PatchError as stacked:
                names = ", ".join(p.path.name for p in before)
                raise PatchError(
                    f"{line.patch_dir}/{patch.path.name} does not apply to {line.tag}, "
                    f"alone or after {names}: {stacked}"
                ) from stacked
        mbox = _export(work)
        _check_applies(project, line, checkout, mbox, scratch / "check", work)
        proof = prover(work) if prover else None
        if proof is not None and not proof.proven:
            raise PatchError(
                f"{line.patch_dir}/{patch.path.name}: the ported test is not proven "
                f"(without the fix: {proof.red}, with it: {proof.green}; lint: {proof.lint})"
            )
        branch = f"pr/{slug}" if checkout else None
        folder = project.build / "pr" / line.id / slug
        result = PullRequest(line, slug, folder, tuple(chain), branch, proof, tuple(notes))
        texts = describe(result) if describe else {}
        _write_folder(folder, {f"{slug}.mbox": mbox, **texts}, scratch / "folder")
        if checkout and branch:
            git.git(checkout, "fetch", "-q", str(work.repo), f"+{work.head}:refs/heads/{branch}")
        return replace(result, texts=texts)
    except PatchError:
        # nothing of an earlier cut of this patch may outlive a failed one
        shutil.rmtree(project.build / "pr" / line.id / slug, ignore_errors=True)
        if checkout is not None:
            git.git(checkout, "branch", "-D", f"pr/{slug}", check=False)
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _build(
    project: Project, line: Line, chain: list[Link], repo: Path, checkout: Path | None
) -> tuple[Work, list[str]]:
    shutil.rmtree(repo, ignore_errors=True)
    _clone_release(project, line, checkout, repo)
    base = git.rev_parse(repo, "HEAD")
    notes: list[str] = []
    red_ref = green_ref = base
    touched: list[str] = []
    fix, unchecked = base, ""
    for item in chain:
        last = item is chain[-1]
        if last:
            red_ref = git.rev_parse(repo, "HEAD")
        diff = item.fix or item.patch.path
        missing = _missing_targets(repo, diff)
        if missing and item.fix is not None and checkout is None and len(chain) == 1:
            unchecked = diff.read_text()
            notes.append(f"{FIX} changes {', '.join(missing)}, which the {line.source} tree "
                         f"of {line.id} lacks: check it with `git am` on {line.git} at "
                         f"{line.tag} (or initialize {line.submodule} and cut again)")  # fmt: skip
        elif missing:
            raise PatchError(
                f"{_rel(project, diff)} changes {', '.join(missing)}, which the release "
                f"tree ({_tree_name(line, checkout)}) does not have"
            )
        else:
            _apply_commit(repo, diff, message(item.upstream_patch, line))
            fix = git.rev_parse(repo, "HEAD")
            touched += git.changed_files(repo, "HEAD~1", "HEAD")
        if last and item.fix is not None:
            # the upstream form changes packaging sources nothing installs: prove the fix
            # with the stack's built form of it, on a side commit
            green_ref = _side_commit(repo, red_ref, item.patch.path)
            touched += git.changed_files(repo, red_ref, green_ref)
            notes.append(f"{item.patch.path.name}: proven with the built form of the fix "
                         f"({', '.join(item.patch.files)}); the PR carries {FIX}")  # fmt: skip
        elif last:
            green_ref = fix
        _add_tests(project, line, repo, item)
    head = git.rev_parse(repo, "HEAD")
    tests = chain[-1].tests  # the prerequisites' tests are proven in their own PRs
    work = Work(line, repo, base, fix, head, tests, tuple(dict.fromkeys(touched)),
                red_ref, green_ref, unchecked)  # fmt: skip
    return work, notes


def _tree_name(line: Line, checkout: Path | None) -> str:
    return f"{line.submodule} at {line.tag}" if checkout else f"{line.source} of {line.id}"


def _rel(project: Project, path: Path) -> str:
    return str(path.relative_to(project.root)) if path.is_relative_to(project.root) else str(path)


def _clone_release(project: Project, line: Line, checkout: Path | None, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    source, ref = (
        (checkout, line.commit) if checkout else (project.src(line), sources.UPSTREAM_BRANCH)
    )
    if not (source / ".git").exists():
        raise PatchError(f"{source} is not a git repository: run `make apply UPSTREAM={line.id}`")
    git.git(project.root, "clone", "-q", "--shared", "--no-checkout", str(source), str(dest))
    git.git(dest, "checkout", "-q", "--detach", git.rev_parse(source, ref))


def _missing_targets(repo: Path, diff: Path) -> list[str]:
    text = diff.read_text(errors="replace")
    created = set(_NEW_FILE.findall(text))
    return [f for f in _DIFF_FILE.findall(text) if f not in created and not (repo / f).exists()]


def _apply_commit(repo: Path, diff: Path, text: str) -> None:
    try:
        git.git(repo, "apply", "--index", "--whitespace=nowarn", str(diff))
    except CommandError as error:
        raise PatchError(f"{diff.name} does not apply") from error
    git.git(repo, "commit", "-q", "--allow-empty", "-F", "-", input_text=text)


def _side_commit(repo: Path, parent: str, diff: Path) -> str:
    head = git.rev_parse(repo, "HEAD")
    git.git(repo, "checkout", "-q", "--detach", parent)
    try:
        _apply_commit(repo, diff, f"built form of {diff.name}\n")
        return git.rev_parse(repo, "HEAD")
    finally:
        git.git(repo, "checkout", "-q", "--detach", head)


def _add_tests(project: Project, line: Line, repo: Path, item: Link) -> None:
    if not item.tests:
        return
    form = upstream_form_dir(project, line, item.patch)
    for test in item.tests:
        target = repo / test
        if target.exists():
            raise PatchError(f"{form.relative_to(project.root)}/{test}: the release tree "
                             "already has this file; name the ported test anew")  # fmt: skip
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(form / test, target)
        git.git(repo, "add", test)
    subject = item.patch.subject
    lowered = subject[:1].lower() + subject[1:]
    git.git(repo, "commit", "-q", "-F", "-",
            input_text=f"Test: {lowered}\n\nA regression test for the previous commit: it "
            "fails without that change and passes with it.\n")  # fmt: skip


def message(patch: PatchInfo, line: Line) -> str:
    """The commit message upstream sees: subject, why, and links (no fp4stack trailers)."""
    refs = "\n".join(reference(url, line) for url in patch.trailer("Bug"))
    return f"{patch.subject}\n\n{patch.description}\n\n{refs}\n"


def reference(url: str, line: Line) -> str:
    """``Fixes #n`` for an issue of the line's own repository, ``Refs <url>`` otherwise."""
    own = line.git.rstrip("/").removesuffix(".git")
    match = re.fullmatch(re.escape(own) + r"/issues/(\d+)", url.rstrip("/"))
    return f"Fixes #{match.group(1)}" if match else f"Refs {url}"


def _export(work: Work) -> str:
    return work.unchecked + _format_patch(work)


def _format_patch(work: Work) -> str:
    return git.git(
        work.repo, "format-patch", "--stdout", "--no-signature", "--zero-commit",
        "--full-index", "--no-renames", f"{work.base}..{work.head}",
    ).stdout  # fmt: skip


def _check_applies(
    project: Project, line: Line, checkout: Path | None, mbox: str, dest: Path, work: Work
) -> None:
    """``git am`` the mbox on a fresh copy of the release tree: it must give the same tree."""
    shutil.rmtree(dest, ignore_errors=True)
    _clone_release(project, line, checkout, dest)
    try:
        git.git(dest, "am", "--keep-cr", "--quiet", input_text=mbox.removeprefix(work.unchecked))
    except CommandError as error:
        raise PatchError(
            f"the series does not `git am` onto {_tree_name(line, checkout)}"
        ) from error
    if git.query(dest, "rev-parse", "HEAD^{tree}") != git.query(
        work.repo, "rev-parse", f"{work.head}^{{tree}}"
    ):
        raise PatchError(f"the series applied onto {_tree_name(line, checkout)} gives another tree")


def _write_folder(folder: Path, files: dict[str, str], staging: Path) -> None:
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name, text in files.items():
        (staging / name).write_text(text)
    folder.parent.mkdir(parents=True, exist_ok=True)
    old = folder.with_name(f".{folder.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    staging.rename(folder)
    shutil.rmtree(old, ignore_errors=True)
