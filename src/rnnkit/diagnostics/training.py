"""What happened to the gradient during training: its global norm per step, before and after clipping.

``fit`` writes one row per optimizer step to ``grad_norms.csv`` in the run directory:
``step, epoch, grad_norm, grad_norm_clipped, clipped``, where ``grad_norm`` is the L2 norm of
all parameter gradients together (after ``clip_value``, if any), ``grad_norm_clipped`` the
norm after ``clip_grad_norm_`` rescaled it, and ``clipped`` 1 when it did (``grad_norm >
clip_norm``).  Here they are read back, summed up per epoch and plotted: a norm that climbs
to the threshold and stays clipped says the learning rate is too high (or the threshold too
low); spikes that clipping cuts are the exploding gradients of Pascanu et al. (2013).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path


def read_grad_norms(run_dir: str | Path) -> list[dict]:
    """The rows of a run's ``grad_norms.csv``, typed: step and epoch int, the norms float, clipped bool.

    Example:
        >>> import tempfile
        >>> run = Path(tempfile.mkdtemp())
        >>> _ = (run / "grad_norms.csv").write_text("step,epoch,grad_norm,grad_norm_clipped,clipped\\n1,1,7.5,5.0,1\\n")
        >>> read_grad_norms(run)
        [{'step': 1, 'epoch': 1, 'grad_norm': 7.5, 'grad_norm_clipped': 5.0, 'clipped': True}]
    """
    path = Path(run_dir) / "grad_norms.csv"
    if not path.is_file():
        raise ValueError(
            f"Expected a run directory of `fit` with grad_norms.csv (one row per optimizer step). "
            f"Received: {str(run_dir)!r}, which has none."
        )
    with open(path, newline="", encoding="utf-8") as f:
        return [_typed(row) for row in csv.DictReader(f)]


def _typed(row: dict) -> dict:
    return {"step": int(row["step"]), "epoch": int(row["epoch"]), "grad_norm": float(row["grad_norm"]),
            "grad_norm_clipped": float(row["grad_norm_clipped"]), "clipped": bool(int(row["clipped"]))}  # fmt: skip


def grad_norm_summary(rows: list[dict]) -> list[dict]:
    """Per epoch: steps, mean and max gradient norm before clipping, and the fraction of steps clipped.

    ``rows`` as read by :func:`read_grad_norms` (or straight from csv: strings are converted).

    Example:
        >>> rows = [{"step": 1, "epoch": 1, "grad_norm": 2.0, "grad_norm_clipped": 1.0, "clipped": 1},
        ...         {"step": 2, "epoch": 1, "grad_norm": 0.5, "grad_norm_clipped": 0.5, "clipped": 0}]
        >>> grad_norm_summary(rows)
        [{'epoch': 1, 'steps': 2, 'mean_norm': 1.25, 'max_norm': 2.0, 'clipped_fraction': 0.5}]
    """
    epochs: dict[int, list[dict]] = {}
    for row in rows:
        row = _typed(row)
        epochs.setdefault(row["epoch"], []).append(row)
    summary = []
    for epoch, part in sorted(epochs.items()):
        norms = [r["grad_norm"] for r in part]
        clipped = sum(r["clipped"] for r in part) / len(part)
        summary.append({"epoch": epoch, "steps": len(part), "mean_norm": sum(norms) / len(norms),
                        "max_norm": max(norms), "clipped_fraction": clipped})  # fmt: skip
    return summary


def plot_grad_norms(rows: list[dict], path: str | Path, clip_norm: float = 0.0) -> Path:
    """Global gradient norm per step before and after clipping (log y) with the threshold, over the
    fraction of steps clipped per epoch; returns the PNG path.

    ``rows``: one dict per optimizer step with ``step, epoch, grad_norm, grad_norm_clipped, clipped``
    (as in grad_norms.csv); ``clip_norm``: the threshold drawn (0: clipping was off, no line).

    Example:
        >>> import tempfile
        >>> rows = [{"step": s, "epoch": 1 + s // 10, "grad_norm": 10 / s, "grad_norm_clipped": min(10 / s, 2.0),
        ...          "clipped": 10 / s > 2} for s in range(1, 30)]
        >>> plot_grad_norms(rows, Path(tempfile.mkdtemp()) / "g.png", clip_norm=2.0).stat().st_size > 1000
        True
    """
    from ..plots import _pyplot, _save

    if not rows:
        raise ValueError("Expected at least one row of gradient norms (one per optimizer step). Received none.")
    rows = [_typed(row) for row in rows]
    steps = [r["step"] for r in rows]
    tiny = 1e-30  # a zero gradient still shows on a log axis
    plt = _pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), dpi=100, height_ratios=(3, 1), layout="constrained")
    top.semilogy(steps, [max(r["grad_norm"], tiny) for r in rows], linewidth=0.9, label="before clipping")
    top.semilogy(steps, [max(r["grad_norm_clipped"], tiny) for r in rows], linewidth=0.9, label="after clipping")
    if clip_norm and math.isfinite(clip_norm):
        top.axhline(clip_norm, color="grey", linestyle="--", linewidth=1, label=f"clip norm {clip_norm:g}")
    last_steps = {}
    for r in rows:
        last_steps[r["epoch"]] = r["step"]
    for step in list(last_steps.values())[:-1]:
        top.axvline(step + 0.5, color="grey", alpha=0.2, linewidth=0.8)
    top.set_xlabel("optimizer step (faint lines: epoch ends)")
    top.set_ylabel("global gradient norm")
    top.set_title("gradient norm per step")
    top.grid(alpha=0.3, which="both")
    top.legend(fontsize=9)
    summary = grad_norm_summary(rows)
    bottom.bar([s["epoch"] for s in summary], [s["clipped_fraction"] for s in summary], color="tab:red", alpha=0.7)
    bottom.set_ylim(0, 1)
    bottom.set_xlabel("epoch")
    bottom.set_ylabel("fraction clipped")
    bottom.grid(alpha=0.3, axis="y")
    return _save(fig, path)
