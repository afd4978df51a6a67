"""Overlays shadow the installed package with pristine or patched files, nothing else."""

from __future__ import annotations

import subprocess
import sys

from fp4stack.stack.apply import apply
from fp4stack.testing import overlay

from ..toy_upstream import commit_edit, toy_line


def _install_fake(site, files):
    for name, text in files.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_text(text)


def test_overlay_swaps_only_touched_files(toy, tmp_path):
    upstream = toy_line(toy)
    apply(toy, upstream)
    repo = toy.src(upstream)
    commit_edit(repo, "src/toy/core.py", "def scale(x):\n    return x * 3\n")
    site = tmp_path / "site"
    _install_fake(
        site,
        {
            "toy/__init__.py": "from toy.core import scale\n",
            "toy/core.py": "INSTALLED = True\n",
            "toy/extra.py": "X = 1\n",
        },
    )
    touched = ["src/toy/core.py", "tests/test_core.py"]
    for ref, expected in (("upstream", 4), ("HEAD", 6)):
        dest = overlay.build(repo, ref, touched, "src", site, tmp_path / ref)
        assert (dest / "toy/extra.py").is_symlink() and not (dest / "toy/core.py").is_symlink()
        assert not (dest / "tests").exists()
        code = "import toy; print(toy.scale(2), toy.__file__)"
        out = subprocess.run(
            [sys.executable, "-c", code],
            env={"PYTHONPATH": str(dest)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert out == [str(expected), str(dest / "toy/__init__.py")]


def test_overlay_carries_a_touched_dist_info_whole(toy, tmp_path):
    upstream = toy_line(toy)
    apply(toy, upstream)
    repo = toy.src(upstream)
    (repo / "toy-1.0.dist-info").mkdir()
    commit_edit(repo, "toy-1.0.dist-info/METADATA", "Name: toy\nVersion: 1.0\n")
    dest = overlay.build(repo, "HEAD", ["toy-1.0.dist-info/METADATA"], "", tmp_path, tmp_path / "o")
    assert (dest / "toy-1.0.dist-info/METADATA").read_text() == "Name: toy\nVersion: 1.0\n"
