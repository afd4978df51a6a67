"""What the checkpoint is, in the vocabulary of :mod:`fp4stack.core.formats`, and the verdicts
that need no release line: a repair ``fp4stack fix`` makes, and the cast's own reading.

Which release of which consumer loads the checkpoint, and with which of our patches, is not
known here: it is computed from the lines and their patches' ``Affects:`` trailers
(``stack.affects``), from the :class:`~fp4stack.core.formats.Profile` this module gives.
"""

from __future__ import annotations

from typing import Any

from fp4stack.checkpoint import detect
from fp4stack.checkpoint.doctor.findings import ConsumerVerdict, Finding
from fp4stack.checkpoint.doctor.mxfp4 import BIAS_CODE
from fp4stack.checkpoint.doctor.nvfp4 import NVFP4_FIX_CODE
from fp4stack.core.formats import FORMATS, Profile

FORMAT_IDS = {label: fmt for fmt, label in FORMATS.items()}
# config.json keys that give a model's expert count, across architectures
_EXPERT_KEYS = ("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts")


def profile(
    found: detect.Detected, config: dict[str, Any], names: list[str], e8m0fnu: bool
) -> Profile:
    """The checkpoint's format ids and properties: ``arch`` (config.json's model_type),
    ``moe``, ``activations``, ``strategy`` (compressed-tensors FP8) and ``scales``."""
    props: dict[str, str] = {}
    if isinstance(config.get("model_type"), str):
        props["arch"] = config["model_type"]
    experts = any(isinstance(config.get(k), int) and config[k] > 0 for k in _EXPERT_KEYS)
    props["moe"] = "yes" if experts or any(".experts." in n for n in names) else "no"
    if detect.FP8_BLOCK in found.formats:
        props["strategy"] = "block"
    elif found.fp8_strategy:
        props["strategy"] = found.fp8_strategy
    if detect.FP8_BLOCK not in found.formats:
        props["activations"] = "quantized" if found.activations else "none"
    if e8m0fnu:
        props["scales"] = "e8m0fnu"
    return Profile(tuple(FORMAT_IDS[f] for f in found.formats), props)


def repair_and_tool_verdicts(
    found: detect.Detected, findings: list[Finding]
) -> list[ConsumerVerdict]:
    """A repair ``fp4stack fix`` can make (first), and what the cast makes of the checkpoint."""
    codes = {f.code for f in findings if f.severity == "error"}
    repairs = {
        NVFP4_FIX_CODE: ("every NVFP4 loader", "block scales are not FP8 (nvfp4-fix damage)"),
        BIAS_CODE: ("every standard MX reader", "bias-125 scales read as 1/4 of the weights"),
        "fp8-block-scale-name": ("its format's loaders", "FP8 scales under the other name"),
    }
    out = [
        ConsumerVerdict(consumer, "needs-fix", detail, command="fp4stack fix")
        for code, (consumer, detail) in repairs.items()
        if code in codes
    ]
    if detect.CT_MXFP4 in found.formats or detect.GPT_OSS_MXFP4 in found.formats:
        out.append(
            ConsumerVerdict(
                "fp4stack cast mxfp4-to-nvfp4", "loads", "to NVFP4, bit-exact where representable"
            )
        )
    return out
