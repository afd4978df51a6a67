"""`Affects:` trailers: the vocabulary lint enforces, and the verdicts the lines give."""

from __future__ import annotations

import pytest

from fp4stack.core.formats import ClaimError, Profile, parse_claim
from fp4stack.stack.affects import line_verdicts
from fp4stack.stack.apply import apply
from fp4stack.stack.lint import lint_series
from fp4stack.stack.pins import load_project
from fp4stack.stack.refresh import refresh

from ..toy_upstream import MESSAGE, commit_edit, toy_line

GPT_OSS = Profile(("modelopt-nvfp4",), {"arch": "gpt_oss", "moe": "yes"})
LLAMA = Profile(("modelopt-nvfp4",), {"arch": "llama", "moe": "no"})


def test_a_claim_is_a_format_with_qualifiers():
    claim = parse_claim("compressed-tensors-fp8 strategy=block kernel=marlin,cutlass")
    assert claim.format == "compressed-tensors-fp8"
    assert claim.properties == {"strategy": frozenset({"block"})}
    assert claim.when() == "on Cutlass or Marlin"
    assert str(claim) == "compressed-tensors-fp8 strategy=block kernel=cutlass,marlin"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nvfp4", "unknown format 'nvfp4'"),
        ("modelopt-nvfp4 arch", "'arch' is not key=value"),
        ("modelopt-nvfp4 model=gpt_oss", "unknown qualifier 'model'"),
        ("compressed-tensors-nvfp4 dtype=float64", "dtype=float64: not one of"),
        ("modelopt-nvfp4 arch=a arch=b", "arch given twice"),
        ("", "empty"),
    ],
)
def test_a_claim_outside_the_vocabulary_is_refused(text, message):
    with pytest.raises(ClaimError, match=message):
        parse_claim(text)


def test_a_property_narrows_and_a_load_condition_does_not():
    claim = parse_claim("modelopt-nvfp4 arch=gpt_oss dtype=float32")
    assert claim.matches(GPT_OSS) and not claim.matches(LLAMA)
    assert not claim.matches(Profile(("compressed-tensors-nvfp4",), {"arch": "gpt_oss"}))


def _toy_patch(toy, affects: str) -> None:
    line = toy_line(toy)
    apply(toy, line)
    message = MESSAGE.replace("Affects: none [the toy reads no checkpoint]\n", affects)
    commit_edit(toy.src(line), "src/toy/core.py", "def scale(x):\n    return x * 3\n", message)
    refresh(toy, line)


@pytest.mark.parametrize(
    ("affects", "problem"),
    [
        ("", "no `Affects:` trailer"),
        ("Affects: none\n", "stands alone and says why"),
        ("Affects: none [why]\nAffects: modelopt-nvfp4\n", "stands alone"),
        ("Affects: modelopt-nvfp4 arch=gpt_oss moe=maybe\n", "moe=maybe: not one of no, yes"),
    ],
)
def test_lint_wants_an_affects_in_the_vocabulary(toy, affects, problem):
    _toy_patch(toy, affects)
    problems = "\n".join(lint_series(toy, toy_line(toy)))
    assert problem in problems and "docs/stack.md#what-a-patch-affects" in problems


def _as_consumer(toy, reads: str, unsupported: str = "") -> None:
    pins = toy.root / "upstream" / "pins.toml"
    text = pins.read_text().replace("[toy]\n", f"[toy]\nreads = [{reads}]\n", 1)
    pins.write_text(text + unsupported)


def test_each_line_of_a_consumer_gets_a_verdict_from_its_patches(toy):
    _toy_patch(toy, "Affects: modelopt-nvfp4 arch=gpt_oss dtype=float32\n")
    _as_consumer(toy, '"modelopt-nvfp4"')
    project = load_project(toy.root)
    [needs] = line_verdicts(project, GPT_OSS)
    assert (needs.line, needs.verdict, needs.command) == ("toy@1.0", "needs-patch",
                                                          "fp4stack install toy")  # fmt: skip
    assert needs.patches == ("patches/toy/1.0/triple-instead-of-double.patch",)
    assert needs.detail == "Triple instead of double (float32 loads)"
    [loads] = line_verdicts(project, LLAMA)
    assert loads.verdict == "loads" and loads.patches == ()
    assert line_verdicts(project, Profile(("fp8-block",))) == [], "toy does not read fp8-block"


@pytest.mark.parametrize(
    ("affects", "detail"),
    [
        (
            "Affects: modelopt-nvfp4 dtype=float32\n"
            "Affects: modelopt-nvfp4 arch=gpt_oss dtype=float16\n",
            "Triple instead of double (float32 loads, float16 loads)",
        ),
        (
            "Affects: modelopt-nvfp4 dtype=float32\nAffects: modelopt-nvfp4 arch=gpt_oss\n",
            "Triple instead of double",
        ),
    ],
)
def test_a_patch_with_several_matching_claims_is_named_once(toy, affects, detail):
    """Its load conditions are listed together; one claim without any makes it unconditional."""
    _toy_patch(toy, affects)
    _as_consumer(toy, '"modelopt-nvfp4"')
    [needs] = line_verdicts(load_project(toy.root), GPT_OSS)
    assert needs.detail == detail


def test_an_unsupported_checkpoint_does_not_load_whatever_the_patches(toy):
    _toy_patch(toy, "Affects: modelopt-nvfp4\n")
    why = "no expert path"
    _as_consumer(
        toy,
        '"modelopt-nvfp4"',
        f'[toy.lines."1.0".unsupported]\n"modelopt-nvfp4 moe=yes" = "{why}"\n',
    )
    [verdict] = line_verdicts(load_project(toy.root), GPT_OSS)
    assert (verdict.verdict, verdict.detail) == ("does-not-load", why)


def test_pins_refuse_reads_outside_the_vocabulary(toy):
    from fp4stack.core.errors import UsageError

    _as_consumer(toy, '"nvfp4"')
    with pytest.raises(UsageError, match="reads: 'nvfp4': unknown format"):
        load_project(toy.root)


def test_every_patch_we_carry_has_a_claim_the_doctor_understands():
    from pathlib import Path

    from fp4stack.stack.affects import claims
    from fp4stack.stack.series import parse_patch, series_paths

    project = load_project(Path(__file__).resolve().parents[3])
    for line in project.lines.values():
        for path in series_paths(project.patches(line)):
            claims(parse_patch(path))  # raises on a missing or bad trailer
