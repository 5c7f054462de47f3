"""Plots a person would rather look at than read.  PNG, drawn headless (matplotlib's Agg)."""

from __future__ import annotations

from pathlib import Path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_loss_curve(rows: list[dict], path: str | Path, title: str = "loss") -> Path:
    """Train and validation loss per epoch (rows as in metrics.csv) to a PNG; returns its path.

    Example:
        >>> import tempfile
        >>> rows = [{"epoch": 1, "train_loss": 2.0, "val_loss": 2.1}, {"epoch": 2, "train_loss": 1.5, "val_loss": ""}]
        >>> plot_loss_curve(rows, Path(tempfile.mkdtemp()) / "loss.png").stat().st_size > 1000
        True
    """
    plt = _pyplot()
    epochs = [int(r["epoch"]) for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.plot(epochs, [float(r["train_loss"]) for r in rows], marker="o", label="train")
    val = [(int(r["epoch"]), float(r["val_loss"])) for r in rows if r.get("val_loss") not in ("", None)]
    if val:
        ax.plot(*zip(*val), marker="o", label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
