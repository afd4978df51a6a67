"""Which E8M0 bias an MXFP4 checkpoint's scales were written with, and the exact correction.

The OCP MX spec, and every reader, decodes an E8M0 byte ``b`` as ``2**(b - 127)``. Some
compressed-tensors releases wrote ``127 + log2(s) - 2`` for the scale ``s`` their own
fake-quant used, i.e. E8M0 with bias 125: read as standard, every weight is 1/4 of what the
producer meant. Which releases (read in each one's ``MXFP4PackedCompressor.compress_scale``):

- up to the 0.12.3a20251203 nightly, and every 0.12.x release: no MXFP4 compressor at all;
- 0.12.3a20251212 … 0.13.1a20260108 nightlies, and the 0.13.0 release: bias 125;
- 0.13.1a20260109 nightly, 0.14.0 and later: bias 127 (upstream PRs #538, #541);
- fp4stack's patched 0.13.0 (``0.13.0+fp4stack…``): bias 127.

The producer records its version in ``quantization_config.version``. This module only
decides and corrects; the cast, the doctor and fix call it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from fp4stack.checkpoint.detect import CT_MXFP4, GPT_OSS_MXFP4, detect
from fp4stack.core.errors import UsageError

STANDARD_BIAS = 127
CT_BUG_BIAS = 125  # compressed-tensors 0.13.0's MXFP4 scales
BIASES = (CT_BUG_BIAS, STANDARD_BIAS)
E8M0_MAX = 254  # 255 is NaN
E8M0_DTYPES = ("U8", "F8_E8M0")  # E8M0 bytes, stored as uint8 or as torch's float8_e8m0fnu
FIRST_BIAS_125 = "0.12.3a20251212"  # first build with an MXFP4 compressor (and its bug)
FIRST_FIXED = "0.13.1a20260109"  # first build storing standard E8M0
FIXED_LOCAL_LABEL = "fp4stack"  # our patched 0.13.0 records 0.13.0+fp4stack.<id>

Stated = Literal["auto", "125", "127"]
STATED_CHOICES: tuple[str, ...] = ("auto", "125", "127")

# PEP 440 public versions as compressed-tensors writes them: 0.13.0, 0.13.1.a20260108,
# 0.13.1a20260108, 0.14.0.1, 0.15.0rc1, 0.14.0.dev3; any local label after "+"
_VERSION = re.compile(
    r"^v?(?P<release>\d+(?:\.\d+)*)"
    r"(?:[.\-_]?(?P<pre>a|alpha|b|beta|rc|c)[.\-_]?(?P<pre_n>\d*))?"
    r"(?:[.\-_]?post[.\-_]?(?P<post>\d*))?"
    r"(?:[.\-_]?dev[.\-_]?(?P<dev>\d*))?"
    r"(?:\+(?P<local>[a-z0-9]+(?:[.\-_][a-z0-9]+)*))?$",
    re.IGNORECASE,
)
_PRE_RANK = {"a": 0, "alpha": 0, "b": 1, "beta": 1, "rc": 2, "c": 2}


@dataclass(frozen=True)
class Version:
    """A parsed version: an ordering key for its public part, and its local label."""

    text: str
    key: tuple[Any, ...]
    local: str

    def __lt__(self, other: Version) -> bool:
        return self.key < other.key


def parse_version(text: str) -> Version | None:
    """The version, or None when ``text`` is not a PEP 440 version."""
    match = _VERSION.match(text.strip())
    if match is None:
        return None
    release = [int(p) for p in match["release"].split(".")]
    while len(release) > 1 and release[-1] == 0:
        release.pop()
    # a release sorts after its pre-releases and dev builds, before its post releases
    if match["pre"]:
        pre: tuple[int, int] = (_PRE_RANK[match["pre"].lower()], int(match["pre_n"] or 0))
    elif match["dev"] is not None and match["post"] is None:
        pre = (-1, 0)
    else:
        pre = (3, 0)
    post = -1 if match["post"] is None else int(match["post"] or 0)
    dev = 1 << 62 if match["dev"] is None else int(match["dev"] or 0)
    key = (tuple(release), pre, post, dev)
    return Version(text, key, (match["local"] or "").lower())


def _known(text: str) -> Version:
    parsed = parse_version(text)
    if parsed is None:
        raise ValueError(f"{text!r} is not a version")
    return parsed


_FIRST_BIAS_125 = _known(FIRST_BIAS_125)
_FIRST_FIXED = _known(FIRST_FIXED)


@dataclass(frozen=True)
class ScaleBias:
    """The bias of a source's E8M0 scales and why; ``shift`` is added to every exponent."""

    bias: int
    reason: str
    stated: bool = False  # given with --mxfp4-scale-bias rather than detected

    @property
    def shift(self) -> int:
        return STANDARD_BIAS - self.bias

    def describe(self) -> str:
        """One line for the cast's report."""
        if self.shift:
            return (
                f"E8M0 scale bias {self.bias} ({self.reason}): every scale exponent of a "
                f"non-zero block corrected by +{self.shift} to standard E8M0 (bias "
                f"{STANDARD_BIAS}); read as standard, the weights would be "
                f"1/{2**self.shift} of the producer's"
            )
        return f"E8M0 scale bias {self.bias} ({self.reason}): scales used as stored"


def _ct_version_bias(version: Any) -> tuple[int | None, str]:
    """Bias written by the compressed-tensors build ``version``; None with why if unknown."""
    if version is None:
        return None, "no quantization_config.version"
    parsed = parse_version(str(version)) if isinstance(version, str) else None
    if parsed is None:
        return None, f"quantization_config.version {version!r} is not a version"
    where = f"compressed-tensors {version}"
    if parsed.local.split(".")[0] == FIXED_LOCAL_LABEL:
        return STANDARD_BIAS, f"{where}: fp4stack's patched build writes standard E8M0"
    if parsed < _FIRST_BIAS_125:
        return None, f"{where} predates compressed-tensors' MXFP4 compressor ({FIRST_BIAS_125})"
    if parsed < _FIRST_FIXED:
        return CT_BUG_BIAS, f"{where} wrote MXFP4 scales with bias 125 (fixed in {FIRST_FIXED})"
    return STANDARD_BIAS, f"{where} writes standard E8M0 (since {FIRST_FIXED})"


def detect_scale_bias(config: dict[str, Any]) -> tuple[int | None, str]:
    """The bias a checkpoint's config.json implies, with the reason; None when it cannot tell.

    gpt-oss (``quant_method: mxfp4``) is standard E8M0. A compressed-tensors MXFP4
    checkpoint is judged by the producer version it records.
    """
    found = detect(config)
    if GPT_OSS_MXFP4 in found.formats:
        return STANDARD_BIAS, "gpt-oss MXFP4 (quant_method 'mxfp4') is standard E8M0"
    if CT_MXFP4 in found.formats:
        return _ct_version_bias(found.version)
    return None, f"{', '.join(found.formats) or found.why} is not MXFP4"


def resolve_scale_bias(config: dict[str, Any], stated: str, config_path: str) -> ScaleBias:
    """The bias to use: detected when ``stated`` is "auto", else the stated one.

    :raises UsageError: "auto" and config.json does not tell (the hint names the flag).
    """
    if stated not in STATED_CHOICES:
        raise UsageError(f"scale bias {stated!r} is not one of {', '.join(STATED_CHOICES)}")
    detected, why = detect_scale_bias(config)
    if stated != "auto":
        note = "stated with --mxfp4-scale-bias"
        if detected is not None and detected != int(stated):
            note += f"; config.json implies {detected}: {why}"
        return ScaleBias(int(stated), note, stated=True)
    if detected is None:
        raise UsageError(
            f"{config_path}: cannot tell the E8M0 bias of the MXFP4 scales ({why})",
            hint="compressed-tensors 0.13.0 wrote bias 125, other producers 127; "
            "state it with --mxfp4-scale-bias 125 or 127",
        )
    return ScaleBias(detected, why)


def nonzero_blocks(packed: np.ndarray) -> np.ndarray:
    """Per 32-value block (16 packed bytes): does any E2M1 nibble have a non-zero magnitude?"""
    return np.asarray((packed.reshape(-1, 16) & 0x77).any(axis=-1))


def to_standard(e8m0: np.ndarray, packed: np.ndarray, shift: int, label: str) -> np.ndarray:
    """E8M0 bytes written with bias ``127 - shift``, re-encoded as standard E8M0.

    A non-zero block's exponent moves by ``shift``; if that leaves 0..254 (255 is NaN) the
    tensor is refused. An all-zero block is 0 under any scale: its byte also moves by
    ``shift`` when that stays in range, and becomes 0 otherwise (0.13.0 stores the scale
    ``2**-127`` of an all-zero group as the wrapped byte 254, which the fixed encoding
    writes as 0).

    :param e8m0: uint8 (..., G); :param packed: the blocks' bytes (..., G*16).
    :raises UsageError: naming ``label`` and the first offending index.
    """
    if shift == 0:
        return e8m0
    moved = e8m0.astype(np.int16) + shift
    outside = (moved < 0) | (moved > E8M0_MAX)
    if outside.any():
        live = nonzero_blocks(packed).reshape(e8m0.shape)
        bad = outside & live
        if bad.any():
            where = np.unravel_index(int(np.argmax(bad)), e8m0.shape)
            raise UsageError(
                f"{label}: E8M0 scale {int(e8m0[where])} at index {tuple(map(int, where))} "
                f"of a non-zero block leaves the E8M0 range when corrected by {shift:+d} "
                f"({int(np.count_nonzero(bad))} such scales)",
                hint="the checkpoint does not look like bias-"
                f"{STANDARD_BIAS - shift} MXFP4; check --mxfp4-scale-bias",
            )
        moved[outside] = 0
    return moved.astype(np.uint8)
