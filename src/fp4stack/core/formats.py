"""The vocabulary of checkpoint formats and their properties, shared by every layer.

The doctor detects a checkpoint's formats and properties in these words; a patch's
``Affects:`` trailers say in the same words which checkpoints it makes loadable or correct;
``upstream/pins.toml`` says in them which formats each upstream reads. docs/stack.md
explains each word.

A *claim* is a format id followed by ``key=value`` qualifiers, ``compressed-tensors-nvfp4
dtype=float32`` or ``modelopt-nvfp4 arch=gpt_oss``. A qualifier is either a property of the
checkpoint (it narrows which checkpoints the claim is about) or a condition of the load (it
says when the defect shows: in which dtype, on which kernel); several values are separated
by commas and mean any of them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

# format id -> how the doctor shows it
FORMATS: dict[str, str] = {
    "compressed-tensors-nvfp4": "compressed-tensors nvfp4-pack-quantized",
    "compressed-tensors-mxfp4": "compressed-tensors mxfp4-pack-quantized",
    "compressed-tensors-fp8": "compressed-tensors float-quantized",
    "modelopt-nvfp4": "modelopt nvfp4",
    "gpt-oss-mxfp4": "gpt-oss mxfp4",
    "fp8-block": "fp8 block (quant_method fp8)",
}

# Properties of a checkpoint, read from its files: key -> allowed values (None: any word).
PROPERTIES: dict[str, frozenset[str] | None] = {
    "arch": None,  # config.json's model_type: gpt_oss, llama, qwen3_moe
    "moe": frozenset({"yes", "no"}),  # the model has experts
    "strategy": frozenset({"tensor", "channel", "group", "block", "tensor_group"}),
    "activations": frozenset({"quantized", "none"}),  # W4A4/W8A8, or weight-only
    "scales": frozenset({"e8m0fnu", "uint8", "float8_e4m3fn", "bfloat16", "float32"}),
}

# Conditions of a load, which no checkpoint file records: key -> allowed values.
CONDITIONS: dict[str, frozenset[str]] = {
    "dtype": frozenset({"float32", "float16", "bfloat16"}),  # the dtype the model loads in
    "kernel": frozenset({"marlin", "cutlass", "flashinfer", "triton"}),  # the kernel chosen
}

NONE = "none"  # ``Affects: none [why]``: the patch changes what no consumer loads
_WORD = re.compile(r"^[a-z0-9_.-]+$")


class ClaimError(ValueError):
    """A claim that does not use the vocabulary; the message says which word is wrong."""


@dataclass(frozen=True)
class Claim:
    """One format with the properties and load conditions it is narrowed to."""

    format: str
    properties: Mapping[str, frozenset[str]] = field(default_factory=dict)
    conditions: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def matches(self, profile: Profile) -> bool:
        """True when ``profile`` has this format and every property this claim names."""
        if self.format not in profile.formats:
            return False
        return all(profile.properties.get(k) in values for k, values in self.properties.items())

    def when(self) -> str:
        """The load conditions in words: ``float32 loads``, ``on Marlin``; '' for any load."""
        parts = []
        if dtypes := self.conditions.get("dtype"):
            parts.append(f"{' or '.join(sorted(dtypes))} loads")
        if kernels := self.conditions.get("kernel"):
            parts.append(f"on {' or '.join(k.capitalize() for k in sorted(kernels))}")
        return ", ".join(parts)

    def __str__(self) -> str:
        quals = {**self.properties, **self.conditions}
        return " ".join([self.format, *(f"{k}={','.join(sorted(v))}" for k, v in quals.items())])


@dataclass(frozen=True)
class Profile:
    """What a checkpoint is, in the vocabulary: its format ids and properties."""

    formats: tuple[str, ...]
    properties: Mapping[str, str] = field(default_factory=dict)


def parse_claim(text: str) -> Claim:
    """``<format> [key=value[,value…]]…`` -> :class:`Claim`. :raises ClaimError:"""
    words = text.split()
    if not words:
        raise ClaimError("empty: expected `<format> [key=value]…` or `none [why]`")
    fmt, *quals = words
    if fmt not in FORMATS:
        raise ClaimError(f"unknown format {fmt!r} (formats: {', '.join(FORMATS)})")
    properties: dict[str, frozenset[str]] = {}
    conditions: dict[str, frozenset[str]] = {}
    for qual in quals:
        key, sep, value = qual.partition("=")
        values = frozenset(value.split(","))
        if not sep or not value or not all(_WORD.match(v) for v in values):
            raise ClaimError(f"{qual!r} is not key=value[,value…]")
        if key in PROPERTIES:
            allowed, target = PROPERTIES[key], properties
        elif key in CONDITIONS:
            allowed, target = CONDITIONS[key], conditions
        else:
            known = ", ".join([*PROPERTIES, *CONDITIONS])
            raise ClaimError(f"unknown qualifier {key!r} (qualifiers: {known})")
        if allowed is not None and not values <= allowed:
            bad = ", ".join(sorted(values - allowed))
            raise ClaimError(f"{key}={bad}: not one of {', '.join(sorted(allowed))}")
        if key in target:
            raise ClaimError(f"{key} given twice")
        target[key] = values
    return Claim(fmt, properties, conditions)
