"""``pip check`` compared by conflict: local version labels do not make a conflict new."""

from __future__ import annotations

from fp4stack.core.pipcheck import (
    NOT_INSTALLED,
    UNSUPPORTED,
    Conflict,
    new_conflicts,
    parse,
    parse_line,
)

# What pip check printed in a user's llm-compressor 0.9.0.5 environment, before and after
# `fp4stack install` swapped in our compressed-tensors and transformers builds.
TORCH = "llmcompressor 0.9.0.5 has requirement torch<=2.9.1,>=2.7.0, but you have torch 2.13.0+cpu."
PIN = "llmcompressor 0.9.0.5 has requirement transformers<=4.57.3,>=4.54.0, but you have"
BEFORE = f"{TORCH}\n{PIN} transformers 4.57.6.\n"
AFTER = f"{TORCH}\n{PIN} transformers 4.57.6+fp4stack.102c773b21.\n"


def test_a_conflicting_requirement_is_parsed_without_local_labels():
    line = (
        "compressed-tensors 0.13.0+fp4stack.46607abb81 has requirement "
        "transformers<4.58, but you have transformers 4.58.0+fp4stack.0123456789."
    )
    assert parse_line(line) == Conflict(
        "compressed-tensors 0.13.0", "transformers<4.58", "transformers 4.58.0"
    )
    assert str(parse_line(line)) == line


def test_a_missing_requirement_and_an_unsupported_platform_are_parsed():
    missing = parse_line(
        "compressed-tensors 0.13.0+fp4stack.46607abb81 requires torch, which is not installed."
    )
    assert missing == Conflict("compressed-tensors 0.13.0", "torch", NOT_INSTALLED)
    unsupported = parse_line("vllm 0.28.0+fp4stack.f811d2658d is not supported on this platform")
    assert unsupported == Conflict("vllm 0.28.0", "", UNSUPPORTED)


def test_the_pre_existing_conflict_is_not_new_when_only_local_labels_differ():
    assert BEFORE != AFTER  # the text comparison that called this a failure
    assert new_conflicts(parse(BEFORE), parse(AFTER)) == []
    assert new_conflicts(parse(AFTER), parse(BEFORE)) == []  # and --undo's direction


def test_a_conflict_the_swap_created_is_new():
    created = (
        "nvidia-modelopt 0.44.0+fp4stack.5c616bb4e8 requires requests, which is not installed."
    )
    new = new_conflicts(parse(BEFORE), parse(AFTER + created + "\n"))
    assert new == [Conflict("nvidia-modelopt 0.44.0", "requests", NOT_INSTALLED)]
    assert str(new[0]) == created


def test_another_installed_release_is_a_new_conflict():
    after = f"{TORCH}\n{PIN} transformers 4.57.7.\n"
    new = new_conflicts(parse(BEFORE), parse(after))
    assert [c.installed for c in new] == ["transformers 4.57.7"]


def test_a_conflict_that_went_away_is_not_a_failure():
    assert new_conflicts(parse(BEFORE), parse("No broken requirements found.\n")) == []
    assert parse("No broken requirements found.\n") == frozenset()


def test_a_line_of_an_unknown_form_is_compared_as_text_without_local_labels():
    before = parse("something odd about transformers 4.57.6 here\n")
    after = parse("something odd about transformers 4.57.6+fp4stack.102c773b21 here\n")
    assert new_conflicts(before, after) == []
    assert new_conflicts(before, parse("something else entirely\n")) != []
