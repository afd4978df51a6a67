"""Benchmark ``fp4stack cast mxfp4-to-nvfp4`` against ``cp -r`` of the same checkpoint.

Builds a synthetic gpt-oss-20b-shaped MXFP4 checkpoint (real expert/attention shapes, fewer
layers, vocabulary scaled so experts are ~74% of the bytes as in gpt-oss-20b), sharded, then
alternates ``cp -r`` and the cast on the same disk, timing each under /usr/bin/time (wall
seconds, peak RSS of the process tree). Prints a markdown report.

    python bench/cast_bench.py --dir /tmp/cast-bench --repeat 3 [--cold] [--scenario tail]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HIDDEN, INTER, EXPERTS, HEADS, KV_HEADS, HEAD_DIM = 2880, 2880, 32, 64, 8, 64
CLI = "import sys; from fp4stack.cli import main; sys.exit(main(sys.argv[1:]))"


def tensor_specs(layers: int, vocab: int) -> list[tuple[str, str, tuple[int, ...]]]:
    """(name, dtype, shape) of every tensor, gpt-oss naming."""
    specs = [("model.embed_tokens.weight", "BF16", (vocab, HIDDEN))]
    for i in range(layers):
        p = f"model.layers.{i}"
        q, kv = HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM
        for proj, shape in (("q_proj", (q, HIDDEN)), ("k_proj", (kv, HIDDEN)),
                            ("v_proj", (kv, HIDDEN)), ("o_proj", (HIDDEN, q))):  # fmt: skip
            specs += [(f"{p}.self_attn.{proj}.weight", "BF16", shape),
                      (f"{p}.self_attn.{proj}.bias", "BF16", shape[:1])]  # fmt: skip
        specs += [(f"{p}.self_attn.sinks", "BF16", (HEADS,)),
                  (f"{p}.input_layernorm.weight", "BF16", (HIDDEN,)),
                  (f"{p}.post_attention_layernorm.weight", "BF16", (HIDDEN,)),
                  (f"{p}.mlp.router.weight", "BF16", (EXPERTS, HIDDEN)),
                  (f"{p}.mlp.router.bias", "BF16", (EXPERTS,))]  # fmt: skip
        for name, rows, cols in (("gate_up_proj", 2 * INTER, HIDDEN), ("down_proj", HIDDEN, INTER)):
            e = f"{p}.mlp.experts.{name}"
            specs += [(f"{e}_blocks", "U8", (EXPERTS, rows, cols // 32, 16)),
                      (f"{e}_scales", "U8", (EXPERTS, rows, cols // 32)),
                      (f"{e}_bias", "BF16", (EXPERTS, rows))]  # fmt: skip
    specs += [("model.norm.weight", "BF16", (HIDDEN,)), ("lm_head.weight", "BF16", (vocab, HIDDEN))]
    return specs


def nbytes(dtype: str, shape: tuple[int, ...]) -> int:
    return int(np.prod(shape)) * (2 if dtype == "BF16" else 1)


def fill(rng: np.random.Generator, name: str, shape: tuple[int, ...], scenario: str) -> bytes:
    """Random bytes; E8M0 scales 2**-17..2**-5 (all in range), plus a 0.1% tail 20-30 lower."""
    if not name.endswith("_scales"):
        return rng.bytes(int(np.prod(shape)) * (1 if name.endswith("_blocks") else 2))
    s = rng.integers(110, 123, size=shape, dtype=np.uint8)
    if scenario == "tail":
        tail = rng.random(shape) < 1e-3
        s[tail] = rng.integers(92, 103, size=int(tail.sum()), dtype=np.uint8)
    return s.tobytes()


def write_shard(path: Path, specs: list, rng: np.random.Generator, scenario: str) -> None:
    header, off = {"__metadata__": {"format": "pt"}}, 0
    for name, dtype, shape in specs:
        n = nbytes(dtype, shape)
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + n]}
        off += n
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for name, _, shape in specs:
            f.write(fill(rng, name, shape, scenario))


def build(root: Path, layers: int, vocab: int, shards: int, scenario: str) -> int:
    specs = tensor_specs(layers, vocab)
    total = sum(nbytes(d, s) for _, d, s in specs)
    root.mkdir(parents=True)
    groups: list[list] = [[] for _ in range(shards)]
    size, target = 0, total / shards
    for spec in specs:  # contiguous runs of about total/shards bytes, like HF sharding
        groups[min(int(size // target), shards - 1)].append(spec)
        size += nbytes(spec[1], spec[2])
    rng = np.random.default_rng(0)
    weight_map = {}
    for i, group in enumerate(groups):
        fname = f"model-{i:05d}-of-{shards - 1:05d}.safetensors"
        write_shard(root / fname, group, rng, scenario)
        weight_map |= {name: fname for name, _, _ in group}
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (root / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    config = {"architectures": ["GptOssForCausalLM"], "model_type": "gpt_oss",
              "hidden_size": HIDDEN, "intermediate_size": INTER, "num_hidden_layers": layers,
              "num_local_experts": EXPERTS, "vocab_size": vocab,
              "quantization_config": {"quant_method": "mxfp4"}}  # fmt: skip
    (root / "config.json").write_text(json.dumps(config, indent=2))
    (root / "tokenizer.json").write_bytes(rng.bytes(4 << 20))
    return sum(p.stat().st_size for p in root.iterdir())


def timed(argv: list[str], label: str, sync: bool) -> tuple[float, float, int, float]:
    """(wall s, wall s including a final sync, peak RSS MiB, user+sys CPU s) of one command
    and the processes it waited for."""
    cmd = ["/usr/bin/time", "-f", "%e %M %U %S", "-o", "/dev/stderr", *argv]
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    if proc.returncode:
        sys.exit(f"{label} failed:\n{proc.stderr}")
    if sync:
        os.sync()
    with_sync = time.perf_counter() - start
    fields = proc.stderr.strip().splitlines()[-1].split()
    return wall, with_sync, int(fields[1]) // 1024, float(fields[2]) + float(fields[3])


def drop_caches() -> bool:
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--dir", type=Path, default=Path("/tmp/cast-bench"))
    ap.add_argument("--layers", type=int, default=5)
    ap.add_argument("--vocab", type=int, default=40960)
    ap.add_argument("--shards", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--format", default="modelopt")
    ap.add_argument("--scenario", choices=["in-range", "tail"], default="in-range")
    ap.add_argument("--cold", action="store_true", help="drop the page cache before every run")
    args = ap.parse_args()
    args.load = " ".join(Path("/proc/loadavg").read_text().split()[:3])

    shutil.rmtree(args.dir, ignore_errors=True)
    src, cp_dst, cast_dst = args.dir / "src", args.dir / "cp", args.dir / "cast"
    t0 = time.perf_counter()
    size = build(src, args.layers, args.vocab, args.shards, args.scenario)
    print(f"built {size / 1e9:.2f} GB in {time.perf_counter() - t0:.1f} s: {src}", file=sys.stderr)
    cast = [sys.executable, "-c", CLI, "cast", "mxfp4-to-nvfp4", str(src), str(cast_dst),
            "--workers", str(args.workers), "--format", args.format]  # fmt: skip
    runs: dict[str, list[tuple[float, float, int, float]]] = {"cp": [], "cast": []}
    timed(["cp", "-r", str(src), str(cp_dst)], "warm-up cp", sync=True)  # page cache warm
    shutil.rmtree(cp_dst)
    cold_ok = True
    for _ in range(args.repeat):
        for label, argv, out in (
            ("cp", ["cp", "-r", str(src), str(cp_dst)], cp_dst),
            ("cast", cast, cast_dst),
        ):
            if args.cold:
                cold_ok &= drop_caches()
            else:
                os.sync()
            runs[label].append(timed(argv, label, sync=True))
            shutil.rmtree(out)
            os.sync()
    report(args, size, runs, cold_ok)
    shutil.rmtree(args.dir, ignore_errors=True)


def report(args: argparse.Namespace, size: int, runs: dict, cold_ok: bool) -> None:
    med = {k: [statistics.median(r[i] for r in v) for i in range(4)] for k, v in runs.items()}
    cache = (
        "cold (dropped before each run)" if args.cold and cold_ok else "warm (source in page cache)"
    )
    print(f"checkpoint: {size / 1e9:.2f} GB, {args.shards} shards, {args.layers} layers, "
          f"scenario {args.scenario}, --format {args.format} --workers {args.workers}; "
          f"page cache: {cache}; {os.cpu_count()} CPUs\n")  # fmt: skip
    print(f"load average before: {args.load}\n")
    print(
        "| run | wall s (each) | median wall s | median wall+sync s | median CPU s | peak RSS MiB |"
    )
    print("|---|---|---|---|---|---|")
    for k, v in runs.items():
        each = ", ".join(f"{r[0]:.2f}" for r in v)
        print(f"| {k} | {each} | {med[k][0]:.2f} | {med[k][1]:.2f} | {med[k][3]:.2f} "
              f"| {max(r[2] for r in v)} |")  # fmt: skip
    ratios = [c[0] / p[0] for c, p in zip(runs["cast"], runs["cp"], strict=True)]
    print(f"\nratio cast/cp: median wall {med['cast'][0] / med['cp'][0]:.2f} "
          f"(per pair: {', '.join(f'{r:.2f}' for r in ratios)}); "
          f"wall+sync {med['cast'][1] / med['cp'][1]:.2f}; "
          f"CPU {med['cast'][3] / med['cp'][3]:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
