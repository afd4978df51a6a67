"""`fp4stack doctor` on a synthetic sharded ~100 GB compressed-tensors NVFP4 checkpoint.

The shards are sparse files: real safetensors headers, data areas that are holes. A
header-only diagnosis reads none of the data, so this measures what a real 100 GB
checkpoint costs it (plus the page cache of 20 headers). Run from the repository root:
    build/venv/tool/bin/python bench/doctor_bench.py [--gb 100] [--repeat 3] [--full]
--full also times the default mode, which reads every block scale (1/8 of the packed
weights); from holes that measures decoding, not the disk.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _measure import measure, median

ROOT = Path(__file__).resolve().parent.parent
FP4STACK = str(ROOT / "build" / "venv" / "tool" / "bin" / "fp4stack")
sys.path.insert(0, str(ROOT / "src"))
from fp4stack.checkpoint.safetensors_io import OutTensor, layout  # noqa: E402

HIDDEN, INTER, KV = 8192, 28672, 1024
SHARD_BYTES = 5 << 30


def _layer(i: int) -> list[OutTensor]:
    out = []
    for name, (rows, cols) in {
        "self_attn.q_proj": (HIDDEN, HIDDEN),
        "self_attn.k_proj": (KV, HIDDEN),
        "self_attn.v_proj": (KV, HIDDEN),
        "self_attn.o_proj": (HIDDEN, HIDDEN),
        "mlp.gate_proj": (INTER, HIDDEN),
        "mlp.up_proj": (INTER, HIDDEN),
        "mlp.down_proj": (HIDDEN, INTER),
    }.items():
        m = f"model.layers.{i}.{name}"
        out += [
            OutTensor(f"{m}.weight_packed", "U8", (rows, cols // 2)),
            OutTensor(f"{m}.weight_scale", "F8_E4M3", (rows, cols // 16)),
            OutTensor(f"{m}.weight_global_scale", "F32", (1,)),
            OutTensor(f"{m}.input_global_scale", "F32", (1,)),
        ]
    out.append(OutTensor(f"model.layers.{i}.input_layernorm.weight", "BF16", (HIDDEN,)))
    return out


def make_checkpoint(root: Path, gigabytes: float) -> tuple[int, int, int]:
    """Write config, index and sparse shards; returns (shards, tensors, bytes)."""
    per_layer = sum(t.nbytes for t in _layer(0))
    layers = max(1, int(gigabytes * 1e9 // per_layer))
    shards: list[list[OutTensor]] = [[]]
    for i in range(layers):
        if sum(t.nbytes for t in shards[-1]) > SHARD_BYTES:
            shards.append([])
        shards[-1] += _layer(i)
    weight_map, total = {}, 0
    for s, tensors in enumerate(shards):
        name = f"model-{s + 1:05d}-of-{len(shards):05d}.safetensors"
        head, starts = layout(tensors, {"format": "pt"})
        with open(root / name, "wb") as f:
            f.write(head)
            f.truncate(starts[-1] + tensors[-1].nbytes)
        weight_map |= dict.fromkeys((t.name for t in tensors), name)
        total += sum(t.nbytes for t in tensors)
    args = {"num_bits": 4, "type": "float", "group_size": 16, "strategy": "tensor_group"}
    config = {
        "model_type": "llama",
        "quantization_config": {
            "quant_method": "compressed-tensors",
            "format": "nvfp4-pack-quantized",
            "version": "0.14.0",
            "config_groups": {
                "group_0": {"targets": ["Linear"], "weights": args, "input_activations": args}
            },
        },
    }
    (root / "config.json").write_text(json.dumps(config))
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (root / "model.safetensors.index.json").write_text(json.dumps(index))
    return len(shards), len(weight_map), total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--full", action="store_true", help="also time the default mode")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=ROOT / "build") as scratch:
        root = Path(scratch)
        shards, tensors, total = make_checkpoint(root, args.gb)
        print(f"checkpoint: {shards} shards, {tensors} tensors, {total / 1e9:.1f} GB (sparse)")
        argv = [FP4STACK, "doctor", "--headers-only", "--json", str(root)]
        runs = [measure(argv) for _ in range(args.repeat)]
        walls = [r[0] for r in runs]
        print(
            f"doctor --headers-only: median {median(walls):.2f} s of {args.repeat} "
            f"({', '.join(f'{w:.2f}' for w in walls)}), peak RSS "
            f"{max(r[1] for r in runs):.0f} MiB"
        )
        if args.full:
            import subprocess
            import time

            started = time.perf_counter()
            subprocess.run(
                [FP4STACK, "doctor", "--json", str(root)], capture_output=True, check=False
            )
            print(f"doctor (reads every block scale): {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
