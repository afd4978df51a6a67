"""Which low-bit format a checkpoint is in, from config.json and hf_quant_config.json.

The one detector of the cast, the doctor, fix and ``mxfp4_bias``. It never raises: a
checkpoint in no format we know gets no formats and the reason (``Detected.why``), and each
tool words its own refusal (the cast reads only the MXFP4 formats).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fp4stack.checkpoint.reader import CONFIG, HF_QUANT_CONFIG
from fp4stack.core.formats import FORMATS

# the formats' labels, as core.formats names them for the doctor's output
CT_NVFP4 = FORMATS["compressed-tensors-nvfp4"]
CT_MXFP4 = FORMATS["compressed-tensors-mxfp4"]
CT_FP8 = FORMATS["compressed-tensors-fp8"]
MODELOPT_NVFP4 = FORMATS["modelopt-nvfp4"]
GPT_OSS_MXFP4 = FORMATS["gpt-oss-mxfp4"]
FP8_BLOCK = FORMATS["fp8-block"]
CT_MXFP4_FORMAT = "mxfp4-pack-quantized"
CT_FORMATS = {
    "nvfp4-pack-quantized": CT_NVFP4,
    CT_MXFP4_FORMAT: CT_MXFP4,
    "float-quantized": CT_FP8,
}
SUPPORTED = (
    "compressed-tensors (nvfp4-pack-quantized, mxfp4-pack-quantized, float-quantized), "
    "ModelOpt NVFP4 (hf_quant_config.json or quant_method 'modelopt'), gpt-oss MXFP4 "
    "(quant_method 'mxfp4'), FP8 block (quant_method 'fp8' with weight_block_size)"
)
# Detected.family: whose quantization_config (or hf_quant_config.json) it is
MODELOPT, COMPRESSED_TENSORS, GPT_OSS, FP8 = "modelopt", "compressed-tensors", "gpt-oss", "fp8"


@dataclass(frozen=True)
class ConfigGroup:
    """One compressed-tensors config group as declared (values as written, unchecked)."""

    name: str
    format: Any  # the group's format, else the config's
    group_size: Any  # weights.group_size; None when absent


@dataclass
class Detected:
    """The formats found, and the parameters the validators check tensors against."""

    formats: list[str]
    producer: str  # what made it, as recorded (compressed-tensors 0.13.0, modelopt 0.47.0)
    nvfp4_group: int | None = None  # declared NVFP4 group size
    mxfp4_group: int | None = None
    fp8_block: tuple[int, int] | None = None  # declared [out, in] block of block FP8
    fp8_strategy: str | None = None  # compressed-tensors float-quantized weight strategy
    quant_algo: str = ""  # ModelOpt
    activations: bool = False  # activations quantized too (input scales expected)
    notes: list[str] = field(default_factory=list)  # groups in formats we do not check
    conflicts: list[str] = field(default_factory=list)  # config.json vs hf_quant_config.json
    family: str = ""  # MODELOPT, COMPRESSED_TENSORS, GPT_OSS, FP8, or "" for none we know
    version: Any = None  # compressed-tensors: quantization_config.version, as written
    groups: list[ConfigGroup] = field(default_factory=list)  # compressed-tensors, by name
    why: str = ""  # no formats: why not ("quant_method 'gptq'", "no config_groups")
    # declared fields a consumer could not read (a block size of letters, weights that are
    # a string): the checkpoint is not loadable as declared
    malformed: list[str] = field(default_factory=list)
    declared_in: str = CONFIG  # the file that says what ``why`` quotes


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _block(value: Any) -> tuple[int, int] | None:
    """A declared [rows, columns] block: two positive integers, else None."""
    if isinstance(value, list) and len(value) == 2 and all(map(_positive_int, value)):
        return (value[0], value[1])
    return None


def _method_detail(method: Any) -> str:
    return f"quant_method {method!r}" if method else "no quantization_config"


def _ct(qc: dict[str, Any], found: Detected) -> None:
    groups = qc.get("config_groups")
    if groups and (
        not isinstance(groups, dict) or not all(isinstance(g, dict) for g in groups.values())
    ):
        found.why = "config_groups is not a map of objects"
        return
    for name, group in sorted((groups or {}).items()):
        fmt = group.get("format") or qc.get("format")
        weights = group.get("weights")
        if weights is not None and not isinstance(weights, dict):
            found.malformed.append(
                f"config group {name!r}: weights is {weights!r}, not an object of quantization "
                "arguments"
            )
        weights = weights if isinstance(weights, dict) else {}
        size = weights.get("group_size")
        if size is not None and not _positive_int(size):
            found.malformed.append(
                f"config group {name!r}: group_size {size!r} is not a positive integer"
            )
        found.groups.append(ConfigGroup(name, fmt, size))
        label = CT_FORMATS.get(str(fmt))
        if label is None:
            found.notes.append(f"config group {name!r}: format {fmt!r} is not checked")
            continue
        if label not in found.formats:
            found.formats.append(label)
        if label == CT_NVFP4:
            found.nvfp4_group = size if _positive_int(size) else None
        elif label == CT_MXFP4:
            found.mxfp4_group = size if _positive_int(size) else None
        else:
            found.fp8_strategy = str(weights.get("strategy"))
            block = weights.get("block_structure")
            found.fp8_block = _block(block)
            if block is not None and found.fp8_block is None:
                found.malformed.append(
                    f"config group {name!r}: block_structure {block!r} is not two positive integers"
                )
        if group.get("input_activations"):
            found.activations = True
    if not found.formats:
        found.why = "; ".join(found.notes) or "no config_groups"


def _modelopt(qc: dict[str, Any], hf_quant: dict[str, Any] | None) -> Detected | None:
    hq = (hf_quant or {}).get("quantization")
    hq = hq if isinstance(hq, dict) else {}
    if qc.get("quant_method") != "modelopt" and not hq:
        return None
    algo = str(qc.get("quant_algo") or hq.get("quant_algo") or "")
    producer = (hf_quant or {}).get("producer") or qc.get("producer") or {}
    named = producer if isinstance(producer, dict) else {}
    found = Detected([], f"{named.get('name', '?')} {named.get('version', '?')}")
    found.family, found.quant_algo = MODELOPT, algo
    quantization = (hf_quant or {}).get("quantization")
    if quantization is not None and not isinstance(quantization, dict):
        found.malformed.append(
            f"{HF_QUANT_CONFIG}: quantization is {type(quantization).__name__}, not an object"
        )
    if "NVFP4" not in algo.upper():
        found.why = f"ModelOpt quant_algo {algo!r} is not NVFP4"
        found.declared_in = HF_QUANT_CONFIG if hq else CONFIG
        return found
    found.formats.append(MODELOPT_NVFP4)
    for key in ("quant_algo", "group_size"):
        ours, theirs = qc.get(key), hq.get(key)
        if ours is not None and theirs is not None and ours != theirs:
            found.conflicts.append(
                f"{key} is {ours!r} in config.json but {theirs!r} in {HF_QUANT_CONFIG} "
                "(vLLM reads config.json's quantization_config first)"
            )
    size = qc.get("group_size") or hq.get("group_size")
    groups = qc.get("config_groups")
    if size is None and isinstance(groups, dict):
        sizes = [((g or {}).get("weights") or {}).get("group_size") for g in groups.values()]
        size = next((s for s in sizes if s), None)
    found.nvfp4_group = size if _positive_int(size) else None
    if size is not None and found.nvfp4_group is None:
        found.malformed.append(f"group_size {size!r} is not a positive integer")
    found.activations = not algo.upper().startswith("W4A16")
    return found


def detect(config: dict[str, Any], hf_quant: dict[str, Any] | None = None) -> Detected:
    """The formats config.json (and hf_quant_config.json, which makes it ModelOpt) declare;
    none, with ``why``, when we know none of them."""
    qc = config.get("quantization_config")
    qc = qc if isinstance(qc, dict) else {}
    method = qc.get("quant_method")
    modelopt = _modelopt(qc, hf_quant)
    if modelopt is not None:
        return modelopt
    if method == "mxfp4":
        found = Detected([GPT_OSS_MXFP4], "gpt-oss (quant_method 'mxfp4')", mxfp4_group=32)
        found.family = GPT_OSS
        return found
    if method == "fp8" and "weight_block_size" in qc:
        block = qc["weight_block_size"]
        found = Detected([FP8_BLOCK], "quant_method 'fp8'", fp8_block=_block(block))
        found.family = FP8
        if found.fp8_block is None:
            found.malformed.append(f"weight_block_size {block!r} is not two positive integers")
        return found
    if method == "compressed-tensors":
        found = Detected([], f"compressed-tensors {qc.get('version', '(no version)')}")
        found.family, found.version = COMPRESSED_TENSORS, qc.get("version")
        _ct(qc, found)
        return found
    return Detected([], "", why=_method_detail(method))
