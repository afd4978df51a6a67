"""The texts of a cut PR: PR.md in the upstream's template, and SEND.md (how to send it).

PR.md is for the upstream's maintainers and says nothing of fp4stack: :func:`internal`
names what would give it away, and :func:`texts` refuses a PR.md that contains any of it.
"""

from __future__ import annotations

import re

from fp4stack.core.errors import PatchError
from fp4stack.stack.pins import Project
from fp4stack.stack.pr import PullRequest, reference

TEMPLATES = ("upstream", "pr-templates")
# fp4stack's own words and paths, which mean nothing upstream (and our tests/<dir>/)
_INTERNAL = r"fp4stack|\bmake (pr|prove|test|apply|lint)\b|patches/|build/"


def texts(project: Project, pr: PullRequest, suite: str | None) -> dict[str, str]:
    """``PR.md`` and ``SEND.md`` for ``pr``; ``suite`` is the last upstream suite run's counts."""
    body = pr_text(project, pr, suite)
    if found := internal(body, project):
        raise PatchError(f"{pr.line.patch_dir}/{pr.links[-1].patch.path.name}: its PR text "
                         f"would mention fp4stack internals ({', '.join(found)}); reword the "
                         "patch description")  # fmt: skip
    send = send_text(pr)
    if not suite:
        needs = (f" with {pr.line.submodule} initialized (PyPI ships no {pr.line.upstream} "
                 "tests)" if pr.line.tests.from_submodule else "")  # fmt: skip
        send += (f"\nPR.md has no counts of the upstream suite on {pr.line.id} yet: run `make "
                 f"test UPSTREAM={pr.line.id}`{needs}, then `make pr` again.\n")  # fmt: skip
    return {"PR.md": body, "SEND.md": send}


def internal(text: str, project: Project) -> list[str]:
    """The fp4stack-internal words and paths found in ``text``: our words, and the folders
    of our own tests (``tests/<dir>/`` of the checkout; upstream's tests/ are theirs)."""
    ours = sorted(p.name for p in (project.root / "tests").iterdir() if p.is_dir())
    mine = rf"|\btests/({'|'.join(map(re.escape, ours))})/" if ours else ""
    return sorted({m.group(0) for m in re.finditer(_INTERNAL + mine, text)})


def pr_text(project: Project, pr: PullRequest, suite: str | None) -> str:
    """The title line and the body, in the upstream's template."""
    template = project.root.joinpath(*TEMPLATES, f"{pr.line.upstream}.md")
    if not template.is_file():
        raise PatchError(f"no PR template {template.relative_to(project.root)} for "
                         f"{pr.line.upstream}")  # fmt: skip
    target = pr.links[-1]
    links = "\n".join(dict.fromkeys(reference(u, pr.line) for k in pr.links
                                    for u in k.patch.trailer("Bug")))  # fmt: skip
    fields = {
        "why": target.upstream_patch.description,
        "links": links + "\n",
        "series": _series(pr),
        "test_plan": _test_plan(pr),
        "test_result": _test_result(pr, suite),
        "new_dependency": "✅" if target.fix is not None else "N/A",
    }
    body = re.sub(r"\n{3,}", "\n\n", template.read_text().format_map(fields)).strip()
    return f"# {target.upstream_patch.subject}\n\n{body}\n"


def _series(pr: PullRequest) -> str:
    if len(pr.links) == 1:
        return ""
    before = "\n".join(f"- {k.upstream_patch.subject}" for k in pr.links[:-1])
    return (f"This change needs the earlier commits of this series, which touch the same "
            f"code and are proposed with it (each with its own test):\n\n{before}\n")  # fmt: skip


def _test_plan(pr: PullRequest) -> str:
    tests = " ".join(t for k in pr.links for t in k.tests)
    return f"New regression test(s), run on CPU:\n\n```\npytest {tests}\n```"


def _test_result(pr: PullRequest, suite: str | None) -> str:
    release = f"{pr.line.distribution} {pr.line.version}"
    lines = []
    if pr.proof is not None:
        lines.append(f"On {release}, the new test fails without the fix and passes with it:\n\n"
                     f"- without the fix: {pr.proof.red_counts}\n"
                     f"- with the fix: {pr.proof.green_counts}\n"
                     f"- {pr.proof.lint_with}: {pr.proof.lint}")  # fmt: skip
    if suite:
        lines.append(f"The existing test suite on {release} with this change (CPU): {suite}.")
    else:
        lines.append(f"The existing test suite on {release} with this change: not run yet "
                     "(`pytest tests`).")  # fmt: skip
    return "\n\n".join(lines)


def send_text(pr: PullRequest) -> str:
    """How to send the PR from a machine that reaches GitHub: exact commands."""
    line, slug = pr.line, pr.slug
    repo = line.git.rstrip("/").removesuffix(".git")
    owner_repo = repo.removeprefix("https://github.com/")
    title = pr.links[-1].upstream_patch.subject.replace('"', '\\"')
    branch = pr.branch or f"pr/{slug}"
    signoff = " --signoff" if line.signed_off else ""
    get = (f"cd {line.submodule}   # the branch {branch} is already there\n"
           if pr.branch else
           f"git clone {repo}.git && cd {repo.rsplit('/', 1)[-1]}\n"
           f"git switch -c {branch} {line.tag}\n"
           f"git am{signoff} <path to this folder>/{slug}.mbox\n")  # fmt: skip
    notes = "".join(f"- {n}\n" for n in pr.notes)
    return (
        f"# Sending {slug}\n\n"
        f"Cut on {line.id} ({line.tag}). {len(pr.links)} fix(es), each followed by its test.\n"
        f"{'Notes:' + chr(10) + notes if notes else ''}\n"
        "```sh\n"
        f"{get}"
        "git rebase origin/main          # then rerun the new test\n"
        "git push -u <your fork remote> HEAD\n"
        f'gh pr create --repo {owner_repo} --head <your fork owner>:{branch} \\\n'
        f'  --title "{title}" --body-file <path to this folder>/PR.md\n'
        "```\n"
        + (f"\n{line.upstream} requires signed-off, signed commits: `git rebase --exec "
           "'git commit --amend --no-edit --reset-author -s -S' " + line.tag + "`.\n"
           if line.signed_off else "")
    )  # fmt: skip
