"""Pinned artifacts are verified before use; a tampered one is refused and never used."""

from __future__ import annotations

import pytest

from fp4stack.core.errors import SourceError
from fp4stack.stack.apply import apply

from ..toy_upstream import toy_line


def test_tampered_sdist_is_refused_and_nothing_is_created(toy):
    upstream = toy_line(toy)
    sdist = toy.cache / "toy-1.0.tar.gz"
    data = bytearray(sdist.read_bytes())
    data[-10] ^= 0xFF
    sdist.write_bytes(bytes(data))
    with pytest.raises(SourceError) as caught:
        apply(toy, upstream)
    message = str(caught.value)
    assert "toy-1.0.tar.gz" in message and "does not match the pin" in message
    assert not toy.src(upstream).exists()


def test_pristine_tree_has_an_upstream_branch(toy):
    from fp4stack.core import git

    upstream = toy_line(toy)
    apply(toy, upstream)
    repo = toy.src(upstream)
    assert git.rev_parse(repo, "upstream") == git.rev_parse(repo, "HEAD")
    assert (repo / "src/toy/core.py").is_file() and (repo / "tests/test_core.py").is_file()
