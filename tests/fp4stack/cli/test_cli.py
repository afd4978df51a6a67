"""The command line: teaching help, one ERROR line for user mistakes, exit codes to trust."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from fp4stack.cli.main import build_parser

from ..toy_upstream import toy_line


def _fp4stack(root, *args):
    env = {**os.environ, "FP4STACK_ROOT": str(root)}
    return subprocess.run([sys.executable, "-m", "fp4stack", *args], env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip


def _verbs(parser: argparse.ArgumentParser | None = None) -> dict[str, argparse.ArgumentParser]:
    """Every verb the parser has, from the parser itself."""
    parser = parser or build_parser()
    [verbs] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(verbs.choices)


def _commands(
    parser: argparse.ArgumentParser, prefix: str = ""
) -> dict[str, argparse.ArgumentParser]:
    """Every command that runs something: verbs, and the sub-verbs of a verb that has them."""
    out = {}
    for verb, sub in _verbs(parser).items():
        nested = any(isinstance(a, argparse._SubParsersAction) for a in sub._actions)
        out |= _commands(sub, f"{prefix}{verb} ") if nested else {f"{prefix}{verb}": sub}
    return out


def test_help_lists_every_verb(toy):
    result = _fp4stack(toy.root, "--help")
    assert result.returncode == 0
    verbs = _verbs()
    assert {"apply", "wheel", "test", "prove", "doctor", "cast", "install"} <= set(verbs)
    missing = [verb for verb in verbs if f"    {verb} " not in result.stdout]
    assert not missing, f"--help does not list {missing}"


def test_every_verb_has_a_help_that_says_what_it_does():
    commands = _commands(build_parser())
    assert "cast mxfp4-to-nvfp4" in commands
    for command, parser in commands.items():
        assert parser.description and len(parser.description.split()) >= 8, command


def test_unknown_line_is_one_clear_error_naming_our_lines(toy):
    for name in ("nope", "toy@9.9"):
        result = _fp4stack(toy.root, "apply", name)
        assert result.returncode == 2
        assert result.stderr.strip() == (
            f"ERROR: unknown line {name} (lines: toy@1.0; "
            "a bare upstream name means all of its lines)"
        )


def test_apply_twice_then_lint_and_refresh_check(toy):
    assert _fp4stack(toy.root, "apply").returncode == 0
    second = _fp4stack(toy.root, "apply")
    assert second.returncode == 0 and "up to date" in second.stderr
    assert _fp4stack(toy.root, "refresh", "--check").returncode == 0
    lint = _fp4stack(toy.root, "lint")
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_lint_fails_with_the_patch_named(toy):
    (toy.patches(toy_line(toy)) / "stray.patch").write_text("x\n")
    result = _fp4stack(toy.root, "lint", "--no-export-check")
    assert result.returncode == 1
    assert "patches/toy/1.0/stray.patch: not listed in patches/toy/1.0/series" in result.stdout
