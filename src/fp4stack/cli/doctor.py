"""``doctor``, ``fix`` and ``install``: diagnose checkpoints and environments, repair what is
exact, and put fp4stack's patched wheels into an environment (or take them out)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fp4stack.cli.signals import sigterm_as_interrupt
from fp4stack.core.errors import UsageError

DOCTOR = """\
Diagnose a low-bit checkpoint, or a Python environment (--env).

CHECKPOINT: detect the format (compressed-tensors nvfp4-pack-quantized, mxfp4-pack-quantized,
float-quantized / FP8 block; ModelOpt NVFP4; gpt-oss MXFP4; quant_method fp8 block), then
check every quantized tensor against it: names, dtypes, shapes, block and group sizes,
global scales, NaN/Inf/zero scales, missing or orphan partners, the block-FP8 scale name
each consumer reads, the E8M0 bias of MXFP4 scales (compressed-tensors 0.13.0 wrote 125),
and bf16 NVFP4 scales (the nvfp4-fix tool's fix-model). Then, for every release line
fp4stack carries of a consumer that reads the format (upstream/pins.toml): loads as
released, needs-patch (the line's patches whose Affects: trailers name such checkpoints,
and the `fp4stack install` that brings them), or does-not-load. Reads headers and the scale
tensors only, never the weights; --headers-only reads nothing but headers (seconds for
100 GB).

--env: for compressed-tensors, vLLM, ModelOpt and transformers installed for PY (default:
this interpreter), say whether each is an fp4stack build (its line and series id), and for
every patch of its release's line whether the installed code has the defect: by running a
small probe in PY, or by the patch's code fingerprint. Prints the `fp4stack install`
command that fixes what is affected. Needs an fp4stack checkout (its patches/).

Exit codes: 0 nothing wrong; 1 something wrong (findings of severity error or warning, or
an affected package); 2 bad input (no such checkpoint, unreadable or truncated file,
unknown format).
"""

FIX = """\
Write SRC to DST with the exact repairs `fp4stack doctor` names, listing each first:
block-FP8 scale names renamed to what the checkpoint's own format reads; bf16 NVFP4 block
scales (nvfp4-fix damage) back to F8_E4M3 when every value is an exact E4M3 value (else
refused, with the numbers); bias-125 MXFP4 scales (compressed-tensors 0.13.0) shifted to
standard E8M0, which quantization_config.version then records; an index rebuilt from the
shards. Unchanged files and tensors are copied byte for byte. Lossy or format-changing
edits are refused with the reason and the better path. DST is written in a temporary
directory beside it and renamed at the end; on an error or Ctrl-C nothing is left.

Exit codes: 0 repaired, or nothing to repair (then nothing is written); 1 write failure;
2 bad input or a refused repair (nothing written).
"""

INSTALL = """\
Replace compressed-tensors, vLLM, ModelOpt or transformers (default: every one installed)
in PY's environment by fp4stack's patched wheel of exactly the installed release:
`PY -m pip install --no-deps --force-reinstall dist/<wheel>`, built first if dist/ lacks
it. No dependency changes, and `pip check` may report no conflict it did not before
(conflicts are compared by requirement, local version labels aside, so an environment
that was already broken can be swapped). --undo puts the official wheel back (from
build/cache, or the index, verified by its pinned sha256). A run that fails puts back
every wheel it replaced, by itself, and says so. Site-packages files are never edited in
place. A release we have no line for is refused, naming the lines we have.

Exit codes: 0 done (or already so); 1 pip failed or the swap made a `pip check` conflict
(what was replaced is put back); 2 bad input.
"""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    raw = argparse.RawDescriptionHelpFormatter
    doctor = subparsers.add_parser(
        "doctor",
        help="diagnose a checkpoint, or an environment",
        description=DOCTOR,
        formatter_class=raw,
    )
    doctor.add_argument(
        "checkpoint",
        nargs="?",
        type=Path,
        metavar="CHECKPOINT",
        help="a checkpoint directory (read only)",
    )
    doctor.add_argument("--env", action="store_true", help="diagnose PY's environment instead")
    doctor.add_argument(
        "--python",
        type=Path,
        metavar="PY",
        default=Path(sys.executable),
        help="the interpreter whose environment --env inspects (default: this one)",
    )
    doctor.add_argument(
        "--headers-only",
        action="store_true",
        help="read safetensors headers only (no scale values)",
    )
    doctor.add_argument("--json", action="store_true", help="one JSON object on stdout")
    doctor.set_defaults(func=run_doctor)

    fix = subparsers.add_parser(
        "fix", help="write a checkpoint with exact repairs", description=FIX, formatter_class=raw
    )
    fix.add_argument("src", type=Path, metavar="SRC", help="checkpoint directory (read only)")
    fix.add_argument("dst", type=Path, metavar="DST", help="output directory (must not exist)")
    fix.add_argument(
        "--nvfp4-scales-to-bf16",
        action="store_true",
        help="what the nvfp4-fix tool's fix-model does; refused, with why",
    )
    fix.set_defaults(func=run_fix)

    install = subparsers.add_parser(
        "install",
        help="install fp4stack's patched wheels into an environment",
        description=INSTALL,
        formatter_class=raw,
    )
    install.add_argument(
        "packages",
        nargs="*",
        metavar="PACKAGE",
        help="distribution or upstream names (default: every one installed)",
    )
    install.add_argument(
        "--python",
        type=Path,
        metavar="PY",
        default=Path(sys.executable),
        help="the interpreter whose environment to change (default: this one)",
    )
    install.add_argument("--undo", action="store_true", help="put the official wheels back")
    install.set_defaults(func=run_install)


def run_doctor(args: argparse.Namespace) -> int:
    from fp4stack.cli.doctor_report import format_checkpoint, format_env

    if args.env == (args.checkpoint is not None):
        raise UsageError(
            "give a CHECKPOINT, or --env (not both)",
            hint="fp4stack doctor CHECKPOINT | fp4stack doctor --env [--python PY]",
        )
    if args.env:
        from fp4stack.installed.defects import check_env
        from fp4stack.stack.pins import load_project

        env = check_env(load_project(), args.python)
        print(json.dumps(env.to_json(), indent=2) if args.json else format_env(env))
        return 1 if env.affected else 0
    from fp4stack.operations.diagnosis import diagnose_checkpoint
    from fp4stack.stack.pins import load_project

    try:
        project = load_project()
    except UsageError:
        project = None  # the checkpoint's own checks need no checkout
    report = diagnose_checkpoint(args.checkpoint, project, headers_only=args.headers_only)
    print(json.dumps(report.to_json(), indent=2) if args.json else format_checkpoint(report))
    return 0 if report.healthy else 1


def run_fix(args: argparse.Namespace) -> int:
    from fp4stack.checkpoint.fix import apply_fix, plan_fix, refuse_bf16_scales

    if args.nvfp4_scales_to_bf16:
        raise refuse_bf16_scales()
    plan = plan_fix(args.src)
    try:
        if not plan.steps:
            print(f"{args.src}: nothing to repair; nothing written")
            for finding in plan.left:
                print(f"  not repairable here: {finding.code} {finding.where}: {finding.fix}")
            return 0
        print(f"repairs ({len(plan.steps)}):")
        for step in plan.steps:
            print(f"  {step.line}")
        for finding in plan.left:
            print(f"  left as is: {finding.code} {finding.where}: {finding.fix}")
        with sigterm_as_interrupt():
            apply_fix(plan, args.src, args.dst)
    finally:
        plan.close()
    print(f"wrote {args.dst}")
    return 0


def run_install(args: argparse.Namespace) -> int:
    from fp4stack.installed.install import install
    from fp4stack.stack.pins import load_project

    changes = install(load_project(), args.python, args.packages, undo=args.undo)
    for change in changes:
        if change.skipped:
            print(f"{change.distribution}: left as it is: {change.skipped}")
        elif change.wheel:
            print(
                f"{change.distribution}: {change.before} -> {change.after} "
                f"({Path(change.wheel).name})"
            )
        else:
            print(f"{change.distribution}: {change.before} already installed; nothing done")
    return 0
