"""Hostile and malformed checkpoints, through every verb that reads one.

Property-based (hypothesis): a checkpoint of every format the tools accept, mutated one way
(a JSON field given a value of another type, a tensor given another dtype or shape or
dropped, a file replaced by a FIFO, a link to /dev/zero, a directory or nothing), then read
by `doctor`, `doctor --headers-only --json`, `fix` and (for MXFP4 sources) `cast`. Every run
ends in exit 0, 1 (a finding) or 2 (bad input, with exactly one `ERROR:` line), never in a
traceback; the input is byte-identical afterwards; a run that fails leaves nothing beside
DST. `FP4STACK_HOSTILE_EXAMPLES` sets how many mutations to try (default 60, in
`make test`); `bench/hostile_checkpoints.py` runs a long budget in subprocesses with a
memory cap and a timeout. The mutations that once broke a verb are kept below as
regression cases.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .doctor import doctor_ckpt as dc

BUILDERS: dict[str, Callable[[], dc.Ckpt]] = {
    "ct-nvfp4": dc.ct_nvfp4,
    "ct-mxfp4": dc.ct_mxfp4,
    "ct-fp8-block": dc.ct_fp8_block,
    "fp8-block": dc.fp8_block,
    "modelopt-nvfp4": dc.modelopt_nvfp4,
    "modelopt-gpt-oss": lambda: dc.modelopt_nvfp4(gpt_oss=True),
    "gpt-oss-mxfp4": dc.gpt_oss_mxfp4,
}
MXFP4_SOURCES = ("ct-mxfp4", "gpt-oss-mxfp4")
EXAMPLES = int(os.environ.get("FP4STACK_HOSTILE_EXAMPLES", "60"))
# values of the wrong type (or the right type, out of range) for any JSON field
ODD_VALUES = st.one_of(
    st.sampled_from(["", "x", "letters", "9" * 30, "-1"]),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.none(),
    st.booleans(),
    st.lists(st.one_of(st.integers(-3, 300), st.text(max_size=3)), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
NP_DTYPES = {
    "F64": np.float64,
    "I16": np.int16,
    "I64": np.int64,
    "U8": np.uint8,
    "BF16": np.uint16,
    "F32": np.float32,
    "F8_E4M3": np.uint8,
    "BOOL": np.bool_,
}


def _json_paths(value: object, path: tuple = ()) -> list[tuple]:
    """Every field and list item of a JSON document, as key paths."""
    items: object = []
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    out = []
    for key, child in items:
        out.append((*path, key))
        out += _json_paths(child, (*path, key))
    return out


def _set(document: dict, path: tuple, value: object) -> None:
    for key in path[:-1]:
        document = document[key]
    document[path[-1]] = value


def _reshaped(dtype: str, array: np.ndarray, how: str) -> dc.Tensor | None:
    shape = list(array.shape)
    if how == "drop":
        return None
    if how == "wider" and shape:
        shape[-1] += 1
    elif how == "shorter" and shape:
        shape[0] = max(0, shape[0] - 1)
    elif how == "scalar":
        shape = []
    elif how == "3-d":
        shape = [1, *shape]
    return dtype, np.zeros(shape, array.dtype)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, dc.Ckpt, str, Callable[[Path], None] | None]:
    """A checkpoint kind, the checkpoint with one mutation, its description, and a
    mutation of the written files (or None)."""
    kind = draw(st.sampled_from(sorted(BUILDERS)))
    ckpt = BUILDERS[kind]()
    what = draw(st.sampled_from(["config", "extra-json", "tensor-dtype", "tensor-shape", "file"]))
    if what == "config" or (what == "extra-json" and not ckpt.files):
        path = draw(st.sampled_from(_json_paths(ckpt.config)))
        value = draw(ODD_VALUES)
        _set(ckpt.config, path, value)
        return kind, ckpt, f"config.json {path} = {value!r}", None
    if what == "extra-json":
        name = draw(st.sampled_from(sorted(ckpt.files)))
        path = draw(st.sampled_from(_json_paths(ckpt.files[name])))
        value = draw(ODD_VALUES)
        _set(ckpt.files[name], path, value)
        return kind, ckpt, f"{name} {path} = {value!r}", None
    if what in ("tensor-dtype", "tensor-shape"):
        name = draw(st.sampled_from(sorted(ckpt.tensors)))
        dtype, array = ckpt.tensors[name]
        if what == "tensor-dtype":
            new = draw(st.sampled_from(sorted(d for d in NP_DTYPES if d != dtype)))
            ckpt.tensors[name] = (new, np.zeros(array.shape, NP_DTYPES[new]))
            return kind, ckpt, f"{name} as {new}", None
        how = draw(st.sampled_from(["wider", "shorter", "scalar", "3-d", "drop"]))
        reshaped = _reshaped(dtype, array, how)
        if reshaped is None:
            del ckpt.tensors[name]
        else:
            ckpt.tensors[name] = reshaped
        return kind, ckpt, f"{name} {how}", None
    target = draw(st.sampled_from(["config.json", "model.safetensors", "tokenizer.json"]))
    how = draw(st.sampled_from(["fifo", "dev-zero", "directory", "missing", "empty"]))
    return kind, ckpt, f"{target} {how}", lambda root: _replace_file(root / target, how)


def _replace_file(path: Path, how: str) -> None:
    path.unlink()
    if how == "fifo":
        os.mkfifo(path)
    elif how == "dev-zero":
        path.symlink_to("/dev/zero")
    elif how == "directory":
        path.mkdir()
    elif how == "empty":
        path.write_bytes(b"")


def _snapshot(root: Path) -> dict[str, str]:
    """What each entry of the input is: a regular file's sha256, else its kind."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            out[str(path)] = f"link {os.readlink(path)}"
        elif path.is_file():
            out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            out[str(path)] = "directory" if path.is_dir() else "special"
    return out


def _verbs(kind: str, root: Path, dst: Path) -> list[list[object]]:
    verbs: list[list[object]] = [["doctor", root], ["doctor", "--headers-only", "--json", root]]
    verbs.append(["fix", root, dst])
    if kind in MXFP4_SOURCES:
        verbs.append(["cast", "mxfp4-to-nvfp4", root, dst])
    return verbs


def assert_survives(run_cli, workdir: Path, kind: str, ckpt: dc.Ckpt, edit) -> None:
    root = dc.write(workdir / "src", ckpt)
    if edit is not None:
        edit(root)
    before = _snapshot(root)
    for verb in _verbs(kind, root, workdir / "dst"):
        code, _out, err = run_cli(*verb)
        assert "Traceback" not in err, (verb[0], err)
        assert code in (0, 1, 2), (verb[0], code, err)
        if code == 2:
            assert len([ln for ln in err.splitlines() if ln.startswith("ERROR:")]) == 1, err
        assert _snapshot(root) == before, f"{verb[0]} changed its input"
        left = sorted(p.name for p in workdir.iterdir())
        # a success may write DST (fix with nothing to repair writes nothing); a failure never
        wrote = code == 0 and verb[0] in ("fix", "cast")
        assert left in ([["src"], ["dst", "src"]] if wrote else [["src"]]), (verb[0], code, left)
        shutil.rmtree(workdir / "dst", ignore_errors=True)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=mutated())
def test_every_verb_survives_a_mutated_checkpoint(tmp_path_factory, run_cli, case):
    kind, ckpt, _what, edit = case
    assert_survives(run_cli, tmp_path_factory.mktemp("hostile"), kind, ckpt, edit)


# Mutations that once ended in a traceback (or in "no problems found"), kept as they were
# found: (checkpoint kind, the mutation, the verb's expected exit code, a phrase of its output)
FOUND: dict[str, tuple[str, Callable[[dc.Ckpt], None], int, str]] = {
    "ct-block-structure-of-lists": (
        "ct-fp8-block",
        lambda c: _set(
            c.config,
            ("quantization_config", "config_groups", "group_0", "weights", "block_structure"),
            [[1], [2]],
        ),
        1,
        "block_structure [[1], [2]] is not two positive integers",
    ),
    "fp8-weight-block-size-of-strings": (
        "fp8-block",
        lambda c: _set(c.config, ("quantization_config", "weight_block_size"), ["128", "x"]),
        1,
        "weight_block_size ['128', 'x'] is not two positive integers",
    ),
    "fp8-weight-block-size-empty": (
        "fp8-block",
        lambda c: _set(c.config, ("quantization_config", "weight_block_size"), []),
        1,
        "weight_block_size [] is not two positive integers",
    ),
    "modelopt-producer-a-number": (
        "modelopt-nvfp4",
        lambda c: _set(c.files["hf_quant_config.json"], ("producer",), 1.5),
        0,
        "",
    ),
    "ct-weights-a-string": (
        "ct-nvfp4",
        lambda c: _set(
            c.config, ("quantization_config", "config_groups", "group_0", "weights"), "nvfp4"
        ),
        1,
        "weights is 'nvfp4', not an object",
    ),
    "nvfp4-scale-as-int16": (
        "ct-nvfp4",
        lambda c: c.tensors.update(
            {"model.layers.0.self_attn.o_proj.weight_scale": ("I16", np.zeros((64, 4), np.int16))}
        ),
        1,
        "",
    ),
    "modelopt-fused-expert-lost-its-block-scale": (
        "modelopt-gpt-oss",
        lambda c: c.tensors.pop("model.layers.0.mlp.experts.gate_up_proj_weight_scale"),
        1,
        "gate_up_proj_weight_scale",
    ),
}


@pytest.mark.parametrize("case", sorted(FOUND))
def test_a_mutation_that_once_broke_the_doctor(tmp_path, run_cli, case):
    kind, edit, expected, phrase = FOUND[case]
    ckpt = copy.deepcopy(BUILDERS[kind]())
    edit(ckpt)
    assert_survives(run_cli, tmp_path, kind, ckpt, None)
    code, out, err = run_cli("doctor", tmp_path / "src")
    assert code == expected, out + err
    assert phrase in out + err


def test_an_index_whose_metadata_is_not_an_object_is_bad_input(tmp_path, run_cli):
    root = dc.write(tmp_path / "src", dc.ct_nvfp4(), shards=2)
    index = json.loads((root / "model.safetensors.index.json").read_text())
    index["metadata"] = 1.5
    (root / "model.safetensors.index.json").write_text(json.dumps(index))
    code, _out, err = run_cli("doctor", root)
    assert code == 2 and "metadata is float, not an object" in err
