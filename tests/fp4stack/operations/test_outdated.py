"""`fp4stack outdated`: a newer release on the index that still needs our patches is named,
with drift's verdict per patch, and the exit code says so; pre-releases and yanked files are
not releases; the answer is kept until the series or the release changes."""

from __future__ import annotations

import json

import pytest

from fp4stack.operations.outdated import outdated
from fp4stack.stack.apply import apply
from fp4stack.stack.refresh import refresh

from ..core.loopback_index import Index
from ..toy_upstream import commit_edit, make_release, toy_line

PATCH = "triple-instead-of-double.patch"


@pytest.fixture
def index(toy, tmp_path, pip_env):
    """The toy's pinned 1.0 and a made-up 1.1 (the same tree under a newer version) on a
    loopback index, with a yanked 1.2 and a pre-release 2.0rc1 beside them; the toy line
    carries one patch."""
    line = toy_line(toy)
    apply(toy, line)
    commit_edit(toy.src(line), "src/toy/core.py", "def scale(x):\n    return x * 3\n")
    refresh(toy, line)
    files = {p.name: p.read_bytes() for p in toy.cache.iterdir() if p.is_file()}
    for version in ("1.1", "1.2", "2.0rc1"):
        made = make_release(tmp_path / "made", version)
        files |= {name: (tmp_path / "made" / name).read_bytes() for name in made}
    served = Index(files)
    served.yanked = {"toy-1.2.tar.gz", "toy-1.2-py3-none-any.whl"}
    pip_env.setenv("PIP_INDEX_URL", served.url())
    yield served
    served.close()


def test_a_newer_release_that_needs_our_patch_is_named(toy, index):
    [status] = outdated(toy, [], run_tests=False)
    assert (status.newest_line, status.newest_release) == ("toy@1.0", "1.1")
    assert [(p.patch, p.verdict) for p in status.patches] == [(PATCH, "applies")]
    assert status.newer and status.outdated and not status.cached
    [again] = outdated(toy, ["toy"], run_tests=False)
    assert again.cached and again.patches == status.patches
    kept = toy.build / "outdated" / "toy.json"
    kept.write_text(
        '{"key": ' + json.dumps(json.loads(kept.read_text())["key"]) + ', "patches": [1]}'
    )
    [redone] = outdated(toy, ["toy"], run_tests=False)
    assert not redone.cached and redone.patches == status.patches, "a bad kept answer is redone"


def test_the_cli_exits_1_with_json_naming_the_release(toy, index, run_cli, monkeypatch):
    monkeypatch.setenv("FP4STACK_ROOT", str(toy.root))
    code, out, _ = run_cli("outdated", "--json", "--no-tests")
    [status] = json.loads(out)
    assert code == 1
    assert status["upstream"] == "toy" and status["newest_release"] == "1.1"
    assert status["outdated"] is True and status["newest_line"] == "toy@1.0"
    code, out, _ = run_cli("outdated", "--no-tests")
    assert code == 1 and "run: fp4stack rebase toy@1.0 1.1" in out


def test_no_newer_release_is_up_to_date(toy, index, run_cli, monkeypatch):
    for version in ("1.1", "2.0rc1"):
        for name in [n for n in index.files if n.startswith(f"toy-{version}")]:
            del index.files[name]
    [status] = outdated(toy, [], run_tests=False)
    assert (status.newest_release, status.newer, status.outdated) == ("1.0", False, False)
    monkeypatch.setenv("FP4STACK_ROOT", str(toy.root))
    code, out, _ = run_cli("outdated", "--no-tests")
    assert code == 0 and "toy: up to date: newest release 1.0, line toy@1.0" in out


def test_a_newer_release_our_patch_is_already_in_is_not_outdated(toy, index, tmp_path):
    """1.1 ships the fix (its core triples): the patch reverse-applies there."""
    from ..toy_upstream import release_files

    fixed = make_release(
        tmp_path / "fixed", "1.1", release_files("def scale(x):\n    return x * 3\n")
    )
    for name in fixed:
        index.files[name] = index.served[name] = (tmp_path / "fixed" / name).read_bytes()
    [status] = outdated(toy, [], run_tests=False)
    assert [(p.patch, p.verdict) for p in status.patches] == [(PATCH, "already upstream")]
    assert status.newer and not status.outdated


def test_an_unknown_upstream_is_a_usage_error(toy, run_cli, monkeypatch):
    monkeypatch.setenv("FP4STACK_ROOT", str(toy.root))
    code, _, err = run_cli("outdated", "nope")
    assert code == 2 and "ERROR: unknown upstream nope (upstreams: toy)" in err


@pytest.mark.parametrize(
    ("status", "release", "verdict"),
    [
        (
            "Inappropriate [fixed differently upstream in v5.x: a rewritten loader]",
            "5.25.0",
            "already upstream",
        ),
        (
            "Inappropriate [fixed differently upstream in owner/repo#537 (0.14.0); ours]",
            "0.20.1",
            "already upstream",
        ),
        (
            "Inappropriate [fixed differently upstream in v5.x: a rewritten loader]",
            "4.58.0",
            "conflicts",
        ),
        ("Pending [still broken in 0.20.1]", "0.21.0", "conflicts"),
    ],
)
def test_where_no_test_ran_a_status_naming_the_fixed_release_decides(status, release, verdict):
    """The rule lives with drift's verdicts, so `drift`, `rebase` and `outdated` agree."""
    from fp4stack.stack.drift_report import PatchDrift, status_decides

    drifted = PatchDrift(PATCH, "Triple", "conflicts", verdict="conflicts", decided_by="text")
    judged = status_decides(drifted, status, release)
    assert judged.verdict == verdict
    assert bool(judged.evidence) == (verdict == "already upstream")
    assert judged.decided_by == ("status" if verdict == "already upstream" else "text")
    tested = PatchDrift(PATCH, "Triple", "conflicts", verdict="still needed", decided_by="tests")
    assert status_decides(tested, status, release).verdict == "still needed", "tests decide first"
