"""Bad input to doctor and fix: one ERROR line naming the file, exit 2, nothing written."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from . import doctor_ckpt as dc


def _truncated(root):
    data = (root / "model.safetensors").read_bytes()
    (root / "model.safetensors").write_bytes(data[:20])


def _unreadable(root):
    (root / "model.safetensors").chmod(0)


def _unknown_format(root):
    config = json.loads((root / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "gptq", "bits": 4}
    (root / "config.json").write_text(json.dumps(config))


def _no_config(root):
    (root / "config.json").unlink()


def _header_not_json(root):
    data = bytearray((root / "model.safetensors").read_bytes())
    data[8:12] = b"\xff\xfe{["
    (root / "model.safetensors").write_bytes(bytes(data))


def _replace_with_link_to_dev_zero(root, name="config.json"):
    (root / name).unlink(missing_ok=True)
    (root / name).symlink_to("/dev/zero")


def _config_fifo(root):
    (root / "config.json").unlink()
    os.mkfifo(root / "config.json")


def _config_nested_too_deep(root):
    (root / "config.json").write_text("[" * 100_000 + "]" * 100_000)


def _config_with_a_huge_integer(root):
    (root / "config.json").write_text('{"vocab_size": ' + "9" * 5000 + "}")


def _index_links_to_dev_zero(root):
    _replace_with_link_to_dev_zero(root, "model.safetensors.index.json")


def _header_nested_too_deep(root):
    header = ("[" * 100_000 + "]" * 100_000).encode()
    (root / "model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header)


def _modelopt_fp8(root):
    (root / "hf_quant_config.json").write_text(json.dumps({"quantization": {"quant_algo": "FP8"}}))


BAD = {
    "truncated-header": (_truncated, "model.safetensors: not a valid safetensors file"),
    "unreadable-file": (_unreadable, "model.safetensors: cannot open"),
    "unknown-format": (_unknown_format, "unknown checkpoint format (quant_method 'gptq')"),
    "no-config": (_no_config, "config.json: missing"),
    "header-not-json": (_header_not_json, "header: not valid JSON"),
    "header-nested-too-deep": (_header_nested_too_deep, "header: JSON nested too deep"),
    "config-links-to-dev-zero": (
        _replace_with_link_to_dev_zero,
        "config.json: a character device, not a regular file",
    ),
    "config-is-a-fifo": (_config_fifo, "config.json: a FIFO, not a regular file"),
    "config-nested-too-deep": (_config_nested_too_deep, "config.json: JSON nested too deep"),
    "config-huge-integer": (_config_with_a_huge_integer, "config.json: not valid JSON"),
    "index-links-to-dev-zero": (
        _index_links_to_dev_zero,
        "model.safetensors.index.json: a character device",
    ),
    "modelopt-not-nvfp4": (_modelopt_fp8, "quant_algo 'FP8' is not NVFP4"),
}


@pytest.mark.parametrize("verb", ["doctor", "fix"])
@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_clear_error_and_exit_2(tmp_path, run_cli, verb, case):
    import os

    if case == "unreadable-file" and os.geteuid() == 0:
        pytest.skip("root reads a file without permissions")
    breaker, message = BAD[case]
    root = dc.write(tmp_path / "ckpt", dc.ct_nvfp4())
    breaker(root)
    args = [verb, root] + ([tmp_path / "out"] if verb == "fix" else [])
    code, out, err = run_cli(*args)
    assert code == 2
    errors = [ln for ln in err.splitlines() if ln.startswith("ERROR:")]
    assert len(errors) == 1 and message in errors[0], err
    assert "Traceback" not in err and out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"], "nothing written"


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "fifo-in-a-folder"])
def test_fix_refuses_to_copy_an_extra_file_that_is_not_regular(tmp_path, run_cli, kind):
    """A tokenizer that is a FIFO or /dev/zero would be copied without end."""
    fixable = dc.ct_fp8_block()  # block scales under another name: fix renames them
    dc.rename_all("weight_scale", "weight_scale_inv")(fixable)
    root = dc.write(tmp_path / "ckpt", fixable)
    target = {"fifo": root / "vocab.txt", "dev-zero": root / "vocab.txt",
              "fifo-in-a-folder": root / "extra" / "pipe"}[kind]  # fmt: skip
    target.parent.mkdir(exist_ok=True)
    if kind == "dev-zero":
        target.symlink_to("/dev/zero")
    else:
        os.mkfifo(target)
    code, _out, err = run_cli("fix", root, tmp_path / "out")
    assert code == 2, err
    errors = [ln for ln in err.splitlines() if ln.startswith("ERROR:")]
    assert len(errors) == 1 and f"{target.name}: " in errors[0] and "refusing to copy" in errors[0]
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"], "nothing written"


def test_not_a_directory(tmp_path, run_cli):
    code, _, err = run_cli("doctor", tmp_path / "nope")
    assert code == 2 and "not a directory" in err


def test_doctor_needs_a_checkpoint_or_env(run_cli):
    code, _, err = run_cli("doctor")
    assert code == 2 and "give a CHECKPOINT, or --env" in err


def test_a_reader_that_goes_away_ends_the_report_quietly(tmp_path):
    """`fp4stack doctor CKPT | head`: a closed pipe is no traceback, and exit 141 says so."""
    root = dc.write(tmp_path / "c", dc.ct_nvfp4())
    reader, writer = os.pipe()
    os.close(reader)  # nobody reads: the report's first write gets EPIPE
    done = subprocess.run(
        [sys.executable, "-m", "fp4stack", "doctor", str(root), "--json"],
        stdout=writer,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    os.close(writer)
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr
    assert done.returncode == 141
