"""Code fingerprints, for every patch of every line: the files a series touches, written as
they are on the applied tree's ``upstream`` (pristine) and ``patched`` branches, read as an
installed distribution. Pristine must read affected and patched fixed, patch by patch.

The trees are the ones ``make test`` (and ``make apply``) leave in build/src/<line>/; a line
without one is applied here first (its pinned sources, from build/cache or the index).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fp4stack.build.metadata import SDIST_METADATA
from fp4stack.installed.fingerprint import check_series
from fp4stack.installed.probe import Installed
from fp4stack.stack.apply import apply
from fp4stack.stack.pins import load_project
from fp4stack.stack.series import series_paths

ROOT = Path(__file__).resolve().parents[3]
PROJECT = load_project(ROOT)


def _touched(patches: list[Path]) -> set[str]:
    files = set()
    for patch in patches:
        for line in patch.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("diff --git a/"):
                files.add(line.split(" b/", 1)[1])
    return files


def _install(tree: Path, branch: str, files: set[str], root: str, site: Path) -> Installed:
    """The touched files at ``branch``, laid out as pip would install them."""
    tops, dist_info = set(), site / "none.dist-info"
    for path in sorted(files):
        rel = path.removeprefix(f"{root}/") if root else path
        if path == SDIST_METADATA:  # the sdist's core metadata is what pip installs as METADATA
            rel = "x.dist-info/METADATA"
        elif root and rel == path:
            continue
        shown = subprocess.run(
            ["git", "-C", tree, "show", f"{branch}:{path}"], capture_output=True, check=False
        )
        if shown.returncode != 0:
            continue  # created by a patch: absent on this branch
        target = site / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(shown.stdout)
        top = rel.split("/")[0]
        if top.endswith(".dist-info"):
            dist_info = site / top
        else:
            tops.add(top)
    return Installed("x", "0", site, dist_info, tuple(sorted(tops)))


@pytest.mark.parametrize("line_id", sorted(PROJECT.lines))
def test_fingerprint_tells_pristine_from_patched(tmp_path, line_id):
    line = PROJECT.line(line_id)
    apply(PROJECT, line)
    tree = PROJECT.src(line)
    patches = series_paths(PROJECT.patches(line))
    files = _touched(patches)
    pristine = _install(tree, "upstream", files, line.package_root, tmp_path / "pristine")
    patched = _install(tree, "patched", files, line.package_root, tmp_path / "patched")
    before = check_series(patches, line.package_root, pristine)
    after = check_series(patches, line.package_root, patched)
    for patch, (b, why_b), (a, why_a) in zip(patches, before, after, strict=True):
        assert (b, a) == ("affected", "fixed"), f"{patch.name}: pristine {why_b}; patched {why_a}"
