"""Who loads a checkpoint of each format, and which of fp4stack's patches they need.

One table of knowledge keyed to our lines and patch files (a tool test checks that every
patch named here exists). Facts come from our regression tests and docs/<upstream>.md; a
consumer we have not examined for a format is not listed rather than guessed.
"""

from __future__ import annotations

from fp4stack.checkpoint import detect
from fp4stack.checkpoint.doctor.findings import ConsumerVerdict, Finding
from fp4stack.checkpoint.doctor.mxfp4 import BIAS_CODE
from fp4stack.checkpoint.doctor.nvfp4 import NVFP4_FIX_CODE

CT13 = "patches/compressed-tensors/0.13.0"
CT20 = "patches/compressed-tensors/0.20.1"
VLLM28 = "patches/vllm/0.28.0"
TF4576 = "patches/transformers/4.57.6"
PATCHES = {
    "ct13-dtype": f"{CT13}/decompress-weights-into-the-dtype-the-model-was-loaded-in.patch",
    "ct20-dtype": f"{CT20}/decompress-weights-into-the-dtype-the-model-was-loaded-in.patch",
    "ct20-e8m0": f"{CT20}/read-and-write-float8-e8m0fnu-mx-scales-as-exponent-bits.patch",
    "tf-f16": f"{TF4576}/keep-the-float32-compressed-tensors-registers-when-loading-i.patch",
    "vllm-marlin": f"{VLLM28}/accept-weight-scale-in-the-fp8-block-quant-marlin-kernel.patch",
    "vllm-gptoss": f"{VLLM28}/load-and-run-modelopt-nvfp4-gpt-oss-checkpoints.patch",
}


def _v(
    consumer: str, verdict: str, detail: str, patch: str = "", command: str = ""
) -> ConsumerVerdict:
    return ConsumerVerdict(consumer, verdict, detail, PATCHES.get(patch, ""), command)  # type: ignore[arg-type]


def _ct_nvfp4(gpt_oss: bool) -> list[ConsumerVerdict]:
    out = [
        _v(
            "compressed-tensors 0.13.0 (transformers 4.54-4.57)",
            "needs-patch",
            "pristine 0.13.0 fails to decompress NVFP4 in a dtype other than the saved one "
            "(dtype mismatch), loses scales of modules without a dense weight, and more; the "
            "0.13.0 series fixes them all",
            "ct13-dtype",
            "fp4stack install compressed-tensors",
        ),
        _v(
            "transformers 4.57.6 float16 load",
            "needs-patch",
            "stock 4.57.6 casts the float32 global scales to float16: one above 65504 (weight "
            "amax below ~0.041) becomes inf",
            "tf-f16",
            "fp4stack install transformers",
        ),
        _v(
            "compressed-tensors 0.20.1 (transformers 5.x)",
            "needs-patch",
            "loads in bfloat16; a float32 load decompresses into bfloat16 and fails",
            "ct20-dtype",
            "fp4stack install compressed-tensors",
        ),
    ]
    if gpt_oss:
        out.append(
            _v(
                "vLLM 0.28.0 and 0.33.0",
                "does-not-load",
                "gpt-oss has no compressed-tensors NVFP4 expert path (names skipped "
                "silently); ModelOpt's format does, with our vLLM wheel",
                "vllm-gptoss",
            )
        )
    else:
        out.append(_v("vLLM 0.28.0", "loads", "compressed-tensors NVFP4 linear layers"))
    return out


def _ct_mxfp4(e8m0fnu: bool) -> list[ConsumerVerdict]:
    v20 = _v("compressed-tensors 0.20.1 (transformers 5.x)", "loads", "uint8 E8M0 scales")
    if e8m0fnu:
        v20 = _v(
            "compressed-tensors 0.20.1 (transformers 5.x)",
            "needs-patch",
            "scales saved as float8_e8m0fnu decode to ~1e-38 instead of their values",
            "ct20-e8m0",
            "fp4stack install compressed-tensors",
        )
    return [
        _v(
            "compressed-tensors 0.13.0",
            "does-not-load",
            "MXFP4 decompression is not implemented in 0.13.0 (NotImplementedError)",
        ),
        v20,
        _v("fp4stack cast mxfp4-to-nvfp4", "loads", "bit-exact NVFP4 where representable"),
    ]


def _ct_fp8(block: bool) -> list[ConsumerVerdict]:
    if not block:
        return [_v("vLLM 0.28.0", "loads", "compressed-tensors FP8 (per-tensor or channel)")]
    return [
        _v(
            "vLLM 0.28.0, CUTLASS/DeepGEMM block FP8 (GPUs with FP8)",
            "loads",
            "reads weight_scale through the compressed-tensors scheme",
        ),
        _v(
            "vLLM 0.28.0, Marlin block FP8 (GPUs without FP8, or weight-only)",
            "needs-patch",
            "MarlinFP8ScaledMMLinearKernel reads weight_scale_inv: AttributeError on a "
            "compressed-tensors layer",
            "vllm-marlin",
            "fp4stack install vllm",
        ),
    ]


def _modelopt(gpt_oss: bool) -> list[ConsumerVerdict]:
    if not gpt_oss:
        return [_v("vLLM 0.28.0", "loads", "ModelOpt NVFP4 linear layers")]
    return [
        _v(
            "vLLM 0.28.0",
            "needs-patch",
            "stock gpt-oss loading skips the expert scales (NaN output) and has no expert "
            "biases (KeyError w13_bias)",
            "vllm-gptoss",
            "fp4stack install vllm",
        ),
        _v(
            "vLLM 0.33.0",
            "does-not-load",
            "the same loader gaps (upstream vllm#46641); no fp4stack line for 0.33.0 yet",
        ),
    ]


def consumer_verdicts(
    found: detect.Detected, config: dict[str, object], findings: list[Finding], e8m0fnu: bool
) -> list[ConsumerVerdict]:
    """Verdicts for the detected formats; a repair `fp4stack fix` can make comes first."""
    gpt_oss = config.get("model_type") == "gpt_oss"
    codes = {f.code for f in findings if f.severity == "error"}
    out: list[ConsumerVerdict] = []
    if NVFP4_FIX_CODE in codes:
        out.append(
            _v(
                "every NVFP4 loader",
                "needs-fix",
                "block scales are not FP8 (nvfp4-fix damage)",
                command="fp4stack fix",
            )
        )
    if BIAS_CODE in codes:
        out.append(
            _v(
                "every standard MX reader",
                "needs-fix",
                "bias-125 scales read as 1/4 of the weights",
                command="fp4stack fix",
            )
        )
    if "fp8-block-scale-name" in codes:
        out.append(
            _v(
                "its format's loaders",
                "needs-fix",
                "FP8 scales under the other name",
                command="fp4stack fix",
            )
        )
    for fmt in found.formats:
        if fmt == detect.CT_NVFP4:
            out += _ct_nvfp4(gpt_oss)
        elif fmt == detect.CT_MXFP4:
            out += _ct_mxfp4(e8m0fnu)
        elif fmt == detect.CT_FP8:
            out += _ct_fp8(found.fp8_block is not None and found.fp8_strategy == "block")
        elif fmt == detect.FP8_BLOCK:
            out.append(_v("vLLM 0.28.0 (Fp8Config)", "loads", "block FP8 with weight_scale_inv"))
        elif fmt == detect.MODELOPT_NVFP4:
            out += _modelopt(gpt_oss)
        elif fmt == detect.GPT_OSS_MXFP4:
            out.append(_v("vLLM 0.28.0", "loads", "gpt-oss MXFP4"))
            out.append(
                _v(
                    "fp4stack cast mxfp4-to-nvfp4",
                    "loads",
                    "to NVFP4, bit-exact where representable",
                )
            )
    return out
