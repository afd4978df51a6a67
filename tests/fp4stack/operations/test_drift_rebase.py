"""drift and rebase on a toy upstream with four releases, served from a find-links dir.

toy 1.0 is the line, with three patches: `triple` (core.py), `clamp` (util.py) and `dims`
(shape.py), each with its own test in tests/toy/ (`clamp`'s test also calls `scale`, so it
fails wherever `triple` is missing; `dims`'s file imports toy.shape at the top). Upstream
then moves on:

- 1.1 ships `triple` as is: util.py and shape.py are unchanged;
- 1.2 ships `triple` too, and rewrites the line `dims` changes, so `dims` conflicts;
- 1.3 ships `clamp` but not `triple`: `clamp`'s test fails there for `triple`'s defect;
- 1.6 moves shape.py away: `dims`'s test file cannot even be imported there;
- 0.9 is older than the line. The index has no 1.5.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from fp4stack.core import git
from fp4stack.core.errors import PatchError, SourceError, UsageError
from fp4stack.operations import new_line
from fp4stack.operations.release_drift import compare, drift
from fp4stack.stack.apply import apply
from fp4stack.stack.drift_report import (
    DriftReport,
    render_markdown,
    verdict,
    write_json,
    write_markdown,
)
from fp4stack.stack.pins import load_project
from fp4stack.stack.rebase import rebase
from fp4stack.stack.refresh import refresh
from fp4stack.stack.series import read_series
from fp4stack.testing.drift_behaviour import TestEnv

from ..toy_upstream import (
    LINE,
    MESSAGE,
    SHARED,
    commit_edit,
    line_table,
    make_release,
    release_files,
    toy_line,
)

UTIL = "def clamp(x):\n    return x\n"
SHAPE = "def dims(t):\n    return t.shape\n"
TRIPLE = "def scale(x):\n    return x * 3\n"
CLAMPED = "def clamp(x):\n    return max(0, x)\n"
FIXED = {
    "triple": ("src/toy/core.py", TRIPLE),
    "clamp": ("src/toy/util.py", CLAMPED),
    "dims": ("src/toy/shape.py", "def dims(t):\n    return tuple(t.shape)\n"),
}
TESTS = """\
def test_triples():
    from toy.core import scale
    assert scale(2) == 6


def test_clamps():
    from toy.core import scale
    from toy.util import clamp
    assert clamp(scale(-1)) == 0 and clamp(scale(1)) == 3
"""
DIMS_TEST = """\
from toy.shape import dims


def test_dims_are_a_tuple():
    class T:
        shape = [1, 2]

    assert dims(T()) == (1, 2)
"""
RELEASES = {
    "0.9": release_files(**{"src/toy/util.py": UTIL, "src/toy/shape.py": SHAPE}),
    "1.1": release_files(TRIPLE, **{"src/toy/util.py": UTIL, "src/toy/shape.py": SHAPE}),
    "1.2": release_files(
        TRIPLE,
        **{"src/toy/util.py": UTIL, "src/toy/shape.py": "def dims(t):\n    return list(t.shape)\n"},
    ),
    "1.3": release_files(**{"src/toy/util.py": CLAMPED, "src/toy/shape.py": SHAPE}),
    "1.6": release_files(TRIPLE, **{"src/toy/util.py": UTIL, "src/toy/geometry.py": SHAPE}),
}


def _message(name: str) -> str:
    test = {"triple": "test_fixes.py::test_triples", "clamp": "test_fixes.py::test_clamps",
            "dims": "test_dims.py::test_dims_are_a_tuple"}  # fmt: skip
    message = MESSAGE.replace("Triple instead of double", f"Fix {name}").replace(
        "tests/toy/test_scale.py::test_triples", f"tests/toy/{test[name]}"
    )
    if name == "triple":  # upstream says it shipped in 1.0.5, before the 1.1 drift looks at
        message = message.replace("Pending [toy upstream has no tracker]", "Backport [1.0.5]")
    return message


@pytest.fixture
def lines(toy, tmp_path, monkeypatch):
    """toy@1.0 with its three patches; releases 0.9, 1.0, 1.1, 1.2 in a find-links dir."""
    index = tmp_path / "index"
    base = release_files(**{"src/toy/util.py": UTIL, "src/toy/shape.py": SHAPE})
    make_release(index, "1.0", base)
    for version, files in RELEASES.items():
        make_release(index, version, files)
    # The line's own artifacts gain util.py and shape.py: re-pin 1.0 from the index copy.
    for name in ("toy-1.0.tar.gz", "toy-1.0-py3-none-any.whl"):
        (toy.cache / name).write_bytes((index / name).read_bytes())
    pins = toy.root / "upstream" / "pins.toml"
    text = pins.read_text()
    old = toy_line(toy)
    for artifact in (old.sdist, old.wheel):
        new_sha = __import__("hashlib").sha256((index / artifact.filename).read_bytes())
        text = text.replace(artifact.sha256, new_sha.hexdigest())
    pins.write_text(text)
    (toy.root / "tests" / "toy" / "test_fixes.py").write_text(TESTS)
    (toy.root / "tests" / "toy" / "test_dims.py").write_text(DIMS_TEST)
    project = load_project(toy.root)
    line = toy_line(project)
    apply(project, line)
    for name, (path, content) in FIXED.items():
        commit_edit(project.src(line), path, content, _message(name))
    refresh(project, line)
    for key, value in {"PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1",
                       "PIP_FIND_LINKS": str(index), "PIP_RETRIES": "0"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    return load_project(toy.root)


def _pristine_env(project, version, tmp_path) -> TestEnv:
    """The release's pristine sources on the path: the toy's stand-in for a venv."""
    tree = tmp_path / f"pristine-{version}"
    with tarfile.open(tmp_path / "index" / f"toy-{version}.tar.gz") as sdist:
        sdist.extractall(tree, filter="data")
    src = tree / f"toy-{version}" / "src"
    return TestEnv(Path(sys.executable), (src,), site=src)


def _verdicts(report):
    return {p.patch.removeprefix("fix-").removesuffix(".patch"): (p.text, p.tested, p.verdict)
            for p in report.patches}  # fmt: skip


def test_drift_by_behaviour_already_upstream_and_still_needed(lines, tmp_path):
    line = toy_line(lines)
    report, target = drift(lines, line, "1.1", test_env=_pristine_env(lines, "1.1", tmp_path))
    assert target.id == "toy@1.1" and target.tag == "v1.1" and len(target.wheel.sha256) == 64
    assert _verdicts(report) == {
        "triple": ("reverse-applies", "pass", "already upstream"),
        "clamp": ("applies", "fail", "still needed"),
        "dims": ("applies", "fail", "still needed"),
    }
    data = json.loads(write_json(lines, report).read_text())
    assert data["target"] == "toy@1.1" and len(data["patches"]) == 3
    assert (lines.build / "drift" / "toy-1.0-to-1.1.json").is_file()


def test_drift_names_the_files_and_hunks_of_a_conflict(lines, tmp_path):
    report, _ = drift(lines, toy_line(lines), "1.2", test_env=_pristine_env(lines, "1.2", tmp_path))
    dims = next(p for p in report.patches if "dims" in p.patch)
    assert (dims.text, dims.tested, dims.verdict) == ("conflicts", "fail", "still needed")
    assert dims.conflicts == {"src/toy/shape.py": ["@@ -1,2 +1,2 @@"]}
    md = write_markdown(lines, report)
    assert md == lines.root / "docs" / "drift" / "toy-1.0-to-1.2.md"
    assert "src/toy/shape.py" in md.read_text()
    again = DriftReport.from_json(md.with_suffix(".json").read_text())
    assert again == report and render_markdown(again) == md.read_text()


def test_drift_without_tests_lets_the_text_decide(lines):
    report, _ = drift(lines, toy_line(lines), "1.2", run_tests=False)
    assert {k: v[2] for k, v in _verdicts(report).items()} == {
        "triple": "already upstream", "clamp": "applies", "dims": "conflicts"}  # fmt: skip
    assert "text decides" in report.tests_note


def test_a_status_naming_the_release_decides_where_no_test_did(lines):
    """A patch whose status says upstream fixed it its own way by the release is already
    upstream there, though its text conflicts: so `rebase` drops it as `outdated` does."""
    line = toy_line(lines)
    [dims] = [p for p in (lines.patches(line)).glob("*dims*.patch")]
    status = "Inappropriate [fixed differently upstream in v1.2: dims returns a sequence]"
    dims.write_text(dims.read_text().replace("Pending [toy upstream has no tracker]", status))

    report, _ = drift(lines, line, "1.2", run_tests=False)

    [judged] = [p for p in report.patches if "dims" in p.patch]
    assert (judged.text, judged.verdict, judged.decided_by) == (
        "conflicts", "already upstream", "status")  # fmt: skip
    assert status in judged.evidence
    report, _ = drift(lines, line, "1.1", run_tests=False)
    assert [p.verdict for p in report.patches if "dims" in p.patch] == ["applies"], "1.1 < 1.2"


@pytest.mark.parametrize(
    ("text", "tested", "with_others", "expected"),
    [
        ("reverse-applies", "fail", "not run", ("still needed", "tests")),  # behaviour wins
        ("applies", "pass", "not run", ("already upstream", "tests")),  # fixed another way
        ("applies", "fail", "pass", ("already upstream", "tests")),  # another patch's defect
        ("applies", "not runnable", "fail", ("still needed", "tests")),  # needs an earlier one
        ("applies", "fail", "fail", ("still needed", "tests")),
        ("conflicts", "not runnable", "not runnable", ("conflicts", "text")),  # no evidence
        ("reverse-applies", "not runnable", "not run", ("already upstream", "text")),
        ("conflicts", "mixed", "mixed", ("conflicts", "text")),
        ("applies-3way", "not run", "not run", ("applies", "text")),
    ],
)
def test_behaviour_decides_over_text(text, tested, with_others, expected):
    assert verdict(text, tested, with_others) == expected


def test_a_failure_caused_by_another_patch_is_not_read_as_still_needed(lines, tmp_path):
    report, _ = drift(lines, toy_line(lines), "1.3", test_env=_pristine_env(lines, "1.3", tmp_path))
    clamp = next(p for p in report.patches if "clamp" in p.patch)
    assert (clamp.text, clamp.tested, clamp.tested_with_others) == (
        "reverse-applies",
        "fail",
        "pass",
    )
    assert (clamp.verdict, clamp.decided_by) == ("already upstream", "tests")
    assert "with the other 2 patches applied its tests pass" in clamp.evidence
    triple = next(p for p in report.patches if "triple" in p.patch)
    assert (triple.tested, triple.tested_with_others, triple.verdict) == (
        "fail", "fail", "still needed")  # fmt: skip


def test_a_test_that_cannot_be_imported_is_no_evidence(lines, tmp_path):
    report, _ = drift(lines, toy_line(lines), "1.6", test_env=_pristine_env(lines, "1.6", tmp_path))
    dims = next(p for p in report.patches if "dims" in p.patch)
    assert (dims.tested, dims.tested_with_others) == ("not runnable", "not runnable")
    # git am -3 follows the move (same content), so the text says it applies
    assert (dims.text, dims.verdict, dims.decided_by) == ("applies-3way", "applies", "text")
    assert "tests/toy/test_dims.py: ModuleNotFoundError: No module named 'toy.shape'" in (
        dims.evidence)  # fmt: skip
    others = {p.patch: (p.tested, p.verdict) for p in report.patches if p is not dims}
    expected = {"fix-triple.patch": ("pass", "already upstream"),
                "fix-clamp.patch": ("fail", "still needed")}  # fmt: skip
    assert others == expected, "the rest still ran"


def test_drift_tests_in_the_target_line_env_when_the_line_exists(lines, tmp_path):
    report, target = drift(lines, toy_line(lines), "1.1", run_tests=False)
    assert report.env_note == "", "no env without tests"
    line = toy_line(lines)
    hashes = {t.filename: t.sha256 for t in (target.sdist, target.wheel)}
    pins = lines.root / "upstream" / "pins.toml"
    pins.write_text(pins.read_text() + line_table("1.1", hashes).replace(
        'torch = "2.13.0"', 'torch = "2.14.0"\nrequires = ["toy-helper==2"]'))  # fmt: skip
    project = load_project(lines.root)
    env = _pristine_env(project, "1.1", tmp_path)
    report, target = drift(project, line, "1.1", test_env=env)
    assert target.env.torch == "2.14.0" and target.env.requires == ("toy-helper==2",)
    assert report.env_note.startswith("toy@1.1's own pins (torch 2.14.0, toy-helper==2)")
    del project.lines["toy@1.1"]
    report, target = drift(project, line, "1.1", test_env=env)
    assert target.env.torch == "2.13.0"
    assert report.env_note.startswith("no toy@1.1 line yet, so toy@1.0's env pins")


def test_rebase_drops_what_shipped_and_keeps_the_rest(lines, tmp_path):
    line = toy_line(lines)
    report, target = drift(lines, line, "1.1", test_env=_pristine_env(lines, "1.1", tmp_path))
    done = rebase(lines, line, target, report)
    project = load_project(lines.root)
    new = project.lines["toy@1.1"]
    assert done.dropped == ["fix-triple.patch"]
    assert read_series(project.patches(new)) == ["fix-clamp.patch", "fix-dims.patch"]
    changelog = (project.patches(new) / "CHANGELOG.md").read_text()
    assert ("`fix-triple.patch` (Fix triple): shipped in toy 1.0.5 (its Upstream-Status; "
            "drift found it in 1.1): its tests pass on pristine 1.1") in changelog  # fmt: skip
    assert new.sdist.sha256 == target.sdist.sha256 and new.commit == ""
    assert apply(project, new) is False, "rebase leaves the new line applied and exported"
    assert (project.src(new) / "src/toy/util.py").read_text().endswith("max(0, x)\n")
    old_series = ["fix-triple.patch", "fix-clamp.patch", "fix-dims.patch"]
    assert read_series(project.patches(line)) == old_series, "the old line is untouched"


def test_rebase_keeps_every_comment_of_pins_and_series(lines, tmp_path):
    pins = lines.root / "upstream" / "pins.toml"
    text = pins.read_text().replace('[toy.lines."1.0".env]\n',
                                    '[toy.lines."1.0".env]\n# torch: the CPU build\n')  # fmt: skip
    other = (SHARED + LINE.format(version="2.0", sdist="0" * 64, wheel="1" * 64)).replace(
        "toy", "other")  # fmt: skip
    text = "# the pins\n" + text + "\n# another upstream\n" + other
    pins.write_text(text)
    series = lines.patches(toy_line(lines)) / "series"
    entries = series.read_text().splitlines()
    series.write_text("\n".join([*entries[:3], "# dims: keep last", *entries[3:]]) + "\n")
    line = toy_line(lines)
    report, target = drift(lines, line, "1.1", run_tests=False)
    rebase(lines, line, target, report)
    after = pins.read_text()
    head, _, _ = text.partition("\n# another upstream\n")
    assert after.startswith(head) and after.endswith("\n# another upstream\n" + other)
    new = after[len(head) : after.index("# another upstream")]
    assert '[toy.lines."1.1".env]\n# Copied from toy@1.0' in new and "# torch: the CPU build" in new
    assert f'sha256 = "{target.wheel.sha256}"' in new and 'tag = "v1.1"' in new
    assert load_project(lines.root).lines["toy@1.1"].wheel == target.wheel
    new_series = (lines.root / "patches" / "toy" / "1.1" / "series").read_text().splitlines()
    assert new_series[1:] == ["fix-clamp.patch", "# dims: keep last", "fix-dims.patch"]


def test_rebase_stops_on_a_conflict_and_resumes_with_am_continue_and_refresh(lines, tmp_path):
    line = toy_line(lines)
    report, target = drift(lines, line, "1.2", test_env=_pristine_env(lines, "1.2", tmp_path))
    with pytest.raises(PatchError, match=r"fix-dims\.patch conflicts .*src/toy/shape\.py") as err:
        rebase(lines, line, target, report)
    assert "am --continue" in err.value.hint and "make refresh UPSTREAM=toy@1.2" in err.value.hint
    project = load_project(lines.root)
    new = project.lines["toy@1.2"]
    repo = project.src(new)
    assert git.am_in_progress(repo)
    (repo / "src/toy/shape.py").write_text("def dims(t):\n    return tuple(t.shape)\n")
    git.git(repo, "add", "src/toy/shape.py")
    git.git(repo, "am", "--continue")
    assert refresh(project, new)
    assert apply(project, new) is False
    patch = (project.patches(new) / "fix-dims.patch").read_text()
    assert "-    return list(t.shape)" in patch, "re-exported against 1.2"


def test_compare_writes_the_report_files_it_returns(lines):
    run = compare(lines, toy_line(lines), "1.2", run_tests=False, markdown=True)
    assert run.target.id == "toy@1.2" and run.report.target == "toy@1.2"
    assert run.json_file == lines.build / "drift" / "toy-1.0-to-1.2.json"
    assert DriftReport.from_json(run.json_file.read_text()) == run.report
    assert run.markdown_file == lines.root / "docs" / "drift" / "toy-1.0-to-1.2.md"
    assert run.markdown_file.read_text() == render_markdown(run.report)
    plain = compare(lines, toy_line(lines), "1.1", run_tests=False)
    assert plain.markdown_file is None and plain.json_file.is_file()
    assert not (lines.root / "docs" / "drift" / "toy-1.0-to-1.1.md").exists()


def test_a_rebase_plan_writes_no_line_and_a_conflict_stops_its_creation(lines):
    line = toy_line(lines)
    planned = new_line.plan(lines, line, "1.2", run_tests=False)
    assert (planned.line, planned.target.id) == (line, "toy@1.2")
    assert {p.patch: p.verdict for p in planned.report.patches} == {
        "fix-triple.patch": "already upstream", "fix-clamp.patch": "applies",
        "fix-dims.patch": "conflicts"}  # fmt: skip
    assert (lines.build / "drift" / "toy-1.0-to-1.2.json").is_file()
    assert not (lines.root / "patches" / "toy" / "1.2").exists(), "a plan makes no line"
    with pytest.raises(PatchError, match=r"fix-dims\.patch conflicts"):
        new_line.create(lines, planned)
    with pytest.raises(UsageError, match=r"toy@1\.2 exists already"):
        new_line.plan(load_project(lines.root), line, "1.2", run_tests=False)
    with pytest.raises(UsageError, match="older"):
        new_line.plan(lines, line, "0.9", run_tests=False)


def _cli(root, *args):
    env = {**os.environ, "FP4STACK_ROOT": str(root)}
    return subprocess.run([sys.executable, "-m", "fp4stack", *args], env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (("drift", "toy@3.0", "1.1"), "ERROR: unknown line toy@3.0 (lines: toy@1.0)"),
        (("rebase", "toy@1.0", "0.9"), "ERROR: refusing to rebase toy@1.0 onto 0.9: it is older"),
        (("rebase", "toy@1.0", "1.5"), "ERROR: the index has no toy 1.5"),
        (("drift", "toy@1.0", "1.5"), "ERROR: the index has no toy 1.5"),
        (("rebase", "toy@1.0", "1.0"), "ERROR: toy@1.0 is already at 1.0"),
    ],
)
def test_bad_input_is_one_clear_error(lines, args, phrase):
    result = _cli(lines.root, *args, "--no-tests")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("ERROR:")]
    assert len(errors) == 1 and errors[0].startswith(phrase), result.stderr
    assert not (lines.root / "patches" / "toy" / args[2]).exists() or args[2] == "1.0"


def test_rebase_refuses_an_artifact_whose_sha256_is_not_the_listed_one(
    lines, tmp_path, monkeypatch
):
    index = tmp_path / "simple" / "toy"
    index.mkdir(parents=True)
    files = tmp_path / "index"
    links = "".join(f'<a href="{(files / n).as_uri()}#sha256={"0" * 64}">{n}</a>'
                    for n in ("toy-1.1.tar.gz", "toy-1.1-py3-none-any.whl"))  # fmt: skip
    (index / "index.html").write_text(f"<html><body>{links}</body></html>")
    monkeypatch.delenv("PIP_NO_INDEX")
    monkeypatch.delenv("PIP_FIND_LINKS")
    monkeypatch.setenv("PIP_INDEX_URL", (tmp_path / "simple").as_uri())
    result = _cli(lines.root, "rebase", "toy@1.0", "1.1", "--no-tests")
    assert result.returncode == 1, result.stderr
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("ERROR:")]
    assert len(errors) == 1 and "not the pinned" in errors[0] and "toy-1.1" in errors[0]
    assert not (lines.root / "patches" / "toy" / "1.1").exists()
    with pytest.raises(SourceError):
        drift(lines, toy_line(lines), "1.1", run_tests=False)


def test_the_cli_rebases_and_prints_the_table(lines):
    result = _cli(lines.root, "rebase", "toy@1.0", "1.1", "--no-tests")
    assert result.returncode == 0, result.stderr
    assert ("fix-triple.patch  reverse-applies  not run  not run      already upstream  text"
            in result.stdout)  # fmt: skip
    assert "toy@1.1: 2 patches applied, 1 dropped" in result.stdout
    again = _cli(lines.root, "rebase", "toy@1.0", "1.1", "--no-tests")
    assert again.returncode == 2 and "toy@1.1 exists already" in again.stderr
    assert UsageError.exit_code == 2
