"""Bad input: exit code 2, a message naming the file and tensor, and nothing left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from .cast_ckpt import ct_mxfp4_config, gpt_oss_config, gpt_oss_tensors, write_checkpoint

BLOCKS = "model.layers.0.mlp.experts.down_proj_blocks"
SCALES = "model.layers.0.mlp.experts.down_proj_scales"


def make_src(root: Path, shards: int = 1, **edits: torch.Tensor | None) -> Path:
    """A small gpt-oss checkpoint; ``edits`` replace (or with None, drop) tensors."""
    tensors = gpt_oss_tensors(np.random.default_rng(0))
    for name, value in edits.items():
        name = name.replace("__", ".")
        if value is None:
            tensors.pop(name)
        else:
            tensors[name] = value
    return write_checkpoint(root, tensors, gpt_oss_config(), shards=shards)


def assert_clean_failure(result: tuple[int, str, str], dst: Path, *needles: str) -> str:
    code, _, err = result
    assert code == 2, (code, err)
    assert err.startswith("ERROR: ") and "Traceback" not in err
    for needle in needles:
        assert needle in err, (needle, err)
    assert not dst.exists()
    assert not [p for p in dst.parent.iterdir() if "fp4stack" in p.name]
    return err


def test_truncated_file(tmp_path, run_cli):
    src = make_src(tmp_path / "src")
    f = src / "model.safetensors"
    f.write_bytes(f.read_bytes()[:-100])
    assert_clean_failure(
        run_cli(src, tmp_path / "dst"), tmp_path / "dst", str(f), "past the file end"
    )


@pytest.mark.parametrize(
    "damage",
    [lambda b: b[:5], lambda b: b[:8] + b"{not json" + b[17:], lambda b: b"\xff" * 8 + b[8:]],
    ids=["shorter-than-8", "header-not-json", "header-length-huge"],
)
def test_corrupt_header(tmp_path, run_cli, damage):
    src = make_src(tmp_path / "src")
    f = src / "model.safetensors"
    f.write_bytes(damage(f.read_bytes()))
    assert_clean_failure(
        run_cli(src, tmp_path / "dst"), tmp_path / "dst", str(f), "not a valid safetensors"
    )


def test_wrong_data_size_in_header(tmp_path, run_cli):
    src = tmp_path / "src"
    make_src(src)
    f = src / "model.safetensors"
    raw = f.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    header[BLOCKS]["shape"][1] += 1  # claims more bytes than its offsets hold
    text = json.dumps(header, separators=(",", ":")).encode().ljust(n)
    assert len(text) == n
    f.write_bytes(raw[:8] + text + raw[8 + n :])
    assert_clean_failure(run_cli(src, tmp_path / "dst"), tmp_path / "dst", str(f), BLOCKS)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_e8m0_255(tmp_path, run_cli, workers):
    scales = torch.full((4, 64, 2), 120, dtype=torch.uint8)
    scales[1, 5, 1] = 255
    src = make_src(tmp_path / "src", shards=2, **{SCALES.replace(".", "__"): scales})
    err = assert_clean_failure(
        run_cli(src, tmp_path / "dst", "--workers", workers), tmp_path / "dst", BLOCKS, "255"
    )
    assert "(1, 5, 1)" in err and ".safetensors" in err


def test_blocks_last_dim_not_16(tmp_path, run_cli):
    edits = {
        BLOCKS.replace(".", "__"): torch.zeros((4, 64, 4, 8), dtype=torch.uint8),
        SCALES.replace(".", "__"): torch.zeros((4, 64, 4), dtype=torch.uint8),
    }
    src = make_src(tmp_path / "src", **edits)
    assert_clean_failure(
        run_cli(src, tmp_path / "dst"), tmp_path / "dst", BLOCKS, "16", "model.safetensors"
    )


def test_blocks_without_scales(tmp_path, run_cli):
    src = make_src(tmp_path / "src", shards=2, **{SCALES.replace(".", "__"): None})
    assert_clean_failure(
        run_cli(src, tmp_path / "dst"), tmp_path / "dst", BLOCKS, SCALES, ".safetensors"
    )


def test_scales_without_blocks(tmp_path, run_cli):
    src = make_src(tmp_path / "src", **{BLOCKS.replace(".", "__"): None})
    assert_clean_failure(
        run_cli(src, tmp_path / "dst"), tmp_path / "dst", SCALES, "model.safetensors"
    )


def test_shape_disagreement(tmp_path, run_cli):
    src = make_src(
        tmp_path / "src", **{SCALES.replace(".", "__"): torch.zeros((4, 64, 3), dtype=torch.uint8)}
    )
    assert_clean_failure(
        run_cli(src, tmp_path / "dst"), tmp_path / "dst", SCALES, BLOCKS, "disagrees"
    )


def test_wrong_dtype(tmp_path, run_cli):
    src = make_src(
        tmp_path / "src",
        **{SCALES.replace(".", "__"): torch.zeros((4, 64, 2), dtype=torch.float16)},
    )
    assert_clean_failure(run_cli(src, tmp_path / "dst"), tmp_path / "dst", SCALES, "F16")


@pytest.mark.parametrize(
    "qconfig",
    [
        None,
        {"quant_method": "fp8"},
        {"quant_method": "compressed-tensors", "format": "nvfp4-pack-quantized"},
    ],
    ids=["none", "fp8", "ct-nvfp4"],
)
def test_unsupported_source_format(tmp_path, run_cli, qconfig):
    src = make_src(tmp_path / "src")
    config = json.loads((src / "config.json").read_text())
    config.pop("quantization_config")
    if qconfig:
        config["quantization_config"] = qconfig
    (src / "config.json").write_text(json.dumps(config))
    assert_clean_failure(
        run_cli(src, tmp_path / "dst"), tmp_path / "dst", "config.json", "unsupported source format"
    )


@pytest.mark.parametrize(
    ("qconfig", "needle"),
    [
        ({"config_groups": [1]}, "config_groups"),
        ({"config_groups": {"group_0": "W4A16"}}, "config_groups"),
        (
            {"config_groups": {"group_0": {"weights": {"group_size": 16}}}},
            "group_size ['16'], not 32",
        ),
        ({"config_groups": {"group_0": {"weights": None}}}, "group_size ['None'], not 32"),
    ],
    ids=["groups-list", "group-not-object", "group-size-16", "no-weights"],
)
def test_malformed_compressed_tensors_config(tmp_path, run_cli, qconfig, needle):
    """A malformed or non-MXFP4 compressed-tensors section is refused with its reason."""
    src = make_src(tmp_path / "src")
    config = json.loads((src / "config.json").read_text())
    qconfig |= {"quant_method": "compressed-tensors", "format": "mxfp4-pack-quantized"}
    config["quantization_config"] = qconfig
    (src / "config.json").write_text(json.dumps(config))
    assert_clean_failure(
        run_cli(src, tmp_path / "dst"), tmp_path / "dst", "config.json", "unsupported", needle
    )


def test_missing_config(tmp_path, run_cli):
    src = make_src(tmp_path / "src")
    (src / "config.json").unlink()
    assert_clean_failure(run_cli(src, tmp_path / "dst"), tmp_path / "dst", "config.json")


def test_index_names_missing_shard(tmp_path, run_cli):
    src = make_src(tmp_path / "src", shards=2)
    (src / "model-00002-of-00002.safetensors").unlink()
    assert_clean_failure(run_cli(src, tmp_path / "dst"), tmp_path / "dst", "model-00002-of-00002")


def _remap(weight_map: dict, name: str) -> None:
    """Map ``name`` to the other shard of a two-shard checkpoint."""
    weight_map[name] = next(s for s in sorted(set(weight_map.values())) if s != weight_map[name])


@pytest.mark.parametrize(
    ("edit", "needles"),
    [
        (lambda m: m.pop("model.norm.weight"), ["'model.norm.weight'", "not mapped"]),
        (lambda m: _remap(m, "model.norm.weight"), ["'model.norm.weight'", "is mapped to"]),
        (lambda m: m.update({BLOCKS: "../x.safetensors"}), ["'../x.safetensors'", "file name"]),
        (lambda m: m.clear(), ["no weight_map"]),
    ],
    ids=["tensor-not-mapped", "mapped-to-the-other-shard", "shard-outside-src", "empty"],
)
def test_index_that_disagrees_with_the_shards(tmp_path, run_cli, edit, needles):
    """The cast writes a new index from the shards, so it refuses any index the doctor
    reports as wrong (one reader, one set of index rules), naming the index."""
    src = make_src(tmp_path / "src", shards=2)
    path = src / "model.safetensors.index.json"
    index = json.loads(path.read_text())
    edit(index["weight_map"])
    path.write_text(json.dumps(index))
    assert_clean_failure(run_cli(src, tmp_path / "dst"), tmp_path / "dst", str(path), *needles)


def test_dst_exists_refused_then_forced(tmp_path, run_cli):
    src, dst = make_src(tmp_path / "src"), tmp_path / "dst"
    dst.mkdir()
    (dst / "old.txt").write_text("old")
    code, _, err = run_cli(src, dst)
    assert code == 2 and str(dst) in err and "--force" in err
    assert (dst / "old.txt").exists()
    code, _, err = run_cli(src, dst, "--force")
    assert code == 0, err
    assert not (dst / "old.txt").exists() and (dst / "model.safetensors").exists()
    assert not [p for p in tmp_path.iterdir() if "fp4stack" in p.name]


@pytest.mark.parametrize("inside", ["sub/dst", ".", "dst-link"])
def test_dst_inside_src(tmp_path, run_cli, inside):
    src = make_src(tmp_path / "src")
    (tmp_path / "dst-link").symlink_to(src)
    dst = src / inside if inside != "dst-link" else tmp_path / "dst-link" / "out"
    code, _, err = run_cli(src, dst, "--force")
    assert code == 2 and "inside SRC" in err
    assert sorted(p.name for p in src.iterdir()) == sorted(
        ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json"]
    )


def test_dst_contains_src(tmp_path, run_cli):
    src = make_src(tmp_path / "a" / "src")
    code, _, err = run_cli(src, tmp_path / "a", "--force")
    assert code == 2 and "contains SRC" in err and src.exists()


@pytest.mark.parametrize("where", ["parent-is-file", "parent-missing", "proc"])
def test_unwritable_dst_location(tmp_path, run_cli, where):
    src = make_src(tmp_path / "src")
    (tmp_path / "file").write_text("x")
    dst = {
        "parent-is-file": tmp_path / "file" / "dst",
        "parent-missing": tmp_path / "no" / "such" / "dst",
        "proc": Path("/proc/fp4stack-dst"),
    }[where]
    code, _, err = run_cli(src, dst)
    assert code == 2 and str(dst) in err and "Traceback" not in err, err
    assert not dst.exists()


def test_read_only_src(tmp_path, run_cli):
    src = make_src(tmp_path / "src", shards=2)
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in src.iterdir()}
    for p in [*src.iterdir(), src]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        code, _, err = run_cli(src, tmp_path / "dst")
    finally:
        for p in [src, *src.iterdir()]:
            p.chmod(0o755 if p.is_dir() else 0o644)
    assert code == 0, err
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in src.iterdir()} == before


def _big_src(root: Path) -> Path:
    """Slow to cast: every block is out of range but one, so the plain requantize path wins
    and runs over all ~70M values (seconds), leaving time to interrupt."""
    rng = np.random.default_rng(5)
    tensors = gpt_oss_tensors(rng, layers=3, experts=8, hidden=1024, inter=1024)
    for name, t in tensors.items():
        if name.endswith("_scales"):
            t.fill_(100)
            t.view(-1)[0] = 120
    return write_checkpoint(root, tensors, gpt_oss_config(3, 8, 1024, 1024), shards=2)


CLI = "import sys; from fp4stack.cli import main; sys.exit(main(sys.argv[1:]))"
# The child handles Ctrl-C as it would started from a terminal. A job a non-interactive
# shell starts in the background (`make test &`, some CI runners) inherits SIGINT ignored,
# and Python then keeps ignoring it: the signal would never reach the cast at all.
CLI_AS_IN_A_TERMINAL = (
    "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); " + CLI
)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_leaves_nothing(tmp_path, sig):
    src, dst = _big_src(tmp_path / "src"), tmp_path / "dst"
    argv = [
        sys.executable,
        "-c",
        CLI_AS_IN_A_TERMINAL,
        "cast",
        "mxfp4-to-nvfp4",
        str(src),
        str(dst),
        "--workers",
        "2",
    ]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while not any("fp4stack-tmp" in p.name for p in tmp_path.iterdir()):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.01)
    time.sleep(0.2)
    os.killpg(proc.pid, sig)  # what a terminal's Ctrl-C does: the whole process group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert b"interrupted" in err
    assert not dst.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_duplicate_tensor_across_shards(tmp_path, run_cli):
    src = make_src(tmp_path / "src", shards=2)
    save_file({"lm_head.weight": torch.zeros(2, 2)}, str(src / "extra.safetensors"))
    index = json.loads((src / "model.safetensors.index.json").read_text())
    index["weight_map"]["lm_head.weight"] = "extra.safetensors"
    (src / "model.safetensors.index.json").write_text(json.dumps(index))
    assert_clean_failure(run_cli(src, tmp_path / "dst"), tmp_path / "dst", "lm_head.weight")


def test_output_name_collision(tmp_path, run_cli):
    """A compressed-tensors module with both ``weight_packed`` and a stray ``weight``."""
    tensors = {
        "m.weight_packed": torch.zeros((4, 16), dtype=torch.uint8),
        "m.weight_scale": torch.full((4, 1), 120, dtype=torch.uint8),
        "m.weight": torch.zeros((4, 16), dtype=torch.uint8),
    }
    src = write_checkpoint(tmp_path / "src", tensors, ct_mxfp4_config([]))
    assert_clean_failure(run_cli(src, tmp_path / "dst"), tmp_path / "dst", "'m.weight'", "twice")


def test_force_replaces_a_file_and_a_symlink(tmp_path, run_cli):
    src = make_src(tmp_path / "src")
    (tmp_path / "dst-file").write_text("not a checkpoint")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "dst-link").symlink_to(elsewhere)
    for name in ("dst-file", "dst-link"):
        code, _, err = run_cli(src, tmp_path / name)
        assert code == 2 and "already exists" in err
        code, _, err = run_cli(src, tmp_path / name, "--force")
        assert code == 0, err
        assert (tmp_path / name / "model.safetensors").is_file()
        assert not (tmp_path / name).is_symlink()
    assert elsewhere.is_dir() and not list(elsewhere.iterdir())  # the link target is untouched
    assert not [p for p in tmp_path.iterdir() if "fp4stack" in p.name]


def test_help_and_bad_workers_read_well(capsys):
    """``--help`` shows the default format and ``--workers N`` as documented; a non-numeric
    ``--workers`` is explained, without argparse's internal function name."""
    from fp4stack import cli

    with pytest.raises(SystemExit):
        cli.main(["cast", "mxfp4-to-nvfp4", "--help"])
    out = capsys.readouterr().out
    assert "(default: modelopt)" in out and "--workers N" in out
    with pytest.raises(SystemExit) as exc:
        cli.main(["cast", "mxfp4-to-nvfp4", "src", "dst", "--workers", "two"])
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert "'two' is not a whole number" in err and "_workers" not in err


def test_write_failure_is_a_convert_error(tmp_path, run_cli, monkeypatch):
    """An OSError while writing (here a full disk) ends as one ERROR line and exit code 1,
    raised as ConvertError from the OSError, and leaves nothing behind."""
    import errno

    from fp4stack.checkpoint.cast import pipeline
    from fp4stack.core.errors import ConvertError

    def full_disk(path: Path, head: bytes, size: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(pipeline, "create_output", full_disk)
    src, dst = make_src(tmp_path / "src"), tmp_path / "dst"
    code, _, err = run_cli(src, dst)
    assert code == 1 and err.startswith("ERROR: ") and "Traceback" not in err, (code, err)
    assert os.strerror(errno.ENOSPC) in err and "model.safetensors" in err
    with pytest.raises(ConvertError) as exc:
        pipeline.cast_checkpoint(src, dst, "modelopt", 1, False)
    assert isinstance(exc.value.__cause__, OSError)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_an_extra_file_that_is_not_regular_is_refused_not_copied_forever(tmp_path, run_cli, kind):
    src = make_src(tmp_path / "src")
    extra = src / "tokenizer.model"
    if kind == "fifo":
        os.mkfifo(extra)
    else:
        extra.symlink_to("/dev/zero")
    assert_clean_failure(
        run_cli(src, tmp_path / "dst"), tmp_path / "dst", "tokenizer.model", "refusing to copy"
    )
