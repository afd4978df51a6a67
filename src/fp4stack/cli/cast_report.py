"""The final per-tensor table (stdout): lossless %, OOR blocks, MSE, chosen path."""

from __future__ import annotations

from fp4stack.checkpoint.cast.convert import TensorStats


def format_report(
    stats: list[TensorStats], scale_bias: str = "", dropped: dict[str, str] | None = None
) -> str:
    """One row per cast tensor, sorted by name, a summary line, then how the source's scale
    bias was handled and which producer files were not copied."""
    rows = sorted(stats, key=lambda s: s.name)
    width = max([len("tensor"), *(len(s.name) for s in rows)])
    lines = [f"{'tensor':<{width}}  {'lossless':>9}  {'OOR blocks':>10}  {'MSE':>10}  path"]
    for s in rows:
        lines.append(
            f"{s.name:<{width}}  {s.lossless_pct:8.4f}%  {s.oor_blocks:>10}  "
            f"{s.mse:10.3e}  {s.path}"
        )
    blocks = sum(s.blocks for s in rows)
    exact = sum(s.exact_blocks for s in rows)
    oor = sum(s.oor_blocks for s in rows)
    pct = 100.0 * exact / blocks if blocks else 100.0
    lines.append(
        f"{len(rows)} tensors, {blocks} MXFP4 blocks: {pct:.4f}% lossless, {oor} out of range, "
        f"{sum(s.path == 'requantize' for s in rows)} kept the plain requantize"
    )
    if scale_bias:
        lines.append(scale_bias)
    for name, what in sorted((dropped or {}).items()):
        lines.append(f"not copied: {name} ({what})")
    return "\n".join(lines)
