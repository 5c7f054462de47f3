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


_PART_COLOURS = {"validation": "tab:orange", "test": "tab:red"}
_METHOD_COLOURS = {"model": "tab:blue", "naive": "tab:gray", "seasonal naive": "tab:green", "ETS": "tab:orange"}


def _as_columns(values):
    import numpy as np

    values = np.asarray(values, dtype=np.float64)
    return values[:, None] if values.ndim == 1 else values


def plot_forecast(
    index,
    values,
    names: list[str],
    train_end: int,
    val_end: int,
    rows,
    forecast,
    path: str | Path,
    spread=None,
    title: str = "forecast",
    max_targets: int = 4,
) -> Path:
    """The whole series, its validation and test spans shaded, and forecasts at some of its rows.

    ``index`` (n,) positions or timestamps, ``values`` (n,) or (n, k) in the series' units;
    ``rows`` (N,) row numbers that ``forecast`` (N,) or (N, k) forecasts; ``spread`` (N, k), if
    given, is drawn as a band ``forecast +- spread``.  One panel per target, at most ``max_targets``.

    Example:
        >>> import tempfile, numpy as np
        >>> y = np.sin(np.arange(100) / 5)
        >>> p = plot_forecast(np.arange(100), y, ["y"], 70, 85, np.arange(70, 100), y[70:] + 0.1,
        ...                   Path(tempfile.mkdtemp()) / "f.png")
        >>> p.stat().st_size > 1000
        True
    """
    import numpy as np

    plt = _pyplot()
    values, forecast = _as_columns(values), _as_columns(forecast)
    index, rows = np.asarray(index), np.asarray(rows)
    k = min(values.shape[1], max_targets)
    fig, axes = plt.subplots(k, 1, figsize=(10, 3.2 * k), dpi=100, squeeze=False, sharex=True)
    n = len(index)
    for j, ax in enumerate(axes[:, 0]):
        ax.plot(index, values[:, j], color="black", lw=0.8, label="series")
        for part, (a, b) in (("validation", (train_end, val_end)), ("test", (val_end, n))):
            if b > a:
                ax.axvspan(index[a], index[b - 1], color=_PART_COLOURS[part], alpha=0.08, label=part)
        at, drawn = _on_rows(n, rows, forecast[:, j])  # NaN between runs of rows: no line across a gap
        ax.plot(index[at], drawn, color="tab:blue", lw=0.9, label="forecast")
        if spread is not None:
            _, band = _on_rows(n, rows, _as_columns(spread)[:, j])
            ax.fill_between(index[at], drawn - band, drawn + band, color="tab:blue", alpha=0.2, lw=0,
                            label="95% interval")  # fmt: skip
        ax.set_ylabel(names[j] if j < len(names) else f"target {j}")
        ax.grid(alpha=0.3)
    axes[0, 0].set_title(title)
    axes[0, 0].legend(loc="upper left", fontsize=8, ncol=5)
    fig.tight_layout()
    return _save(fig, path)


def _on_rows(n: int, rows, values):
    """(rows first..last, values there with NaN at the rows not given): a line plot breaks at the gaps."""
    import numpy as np

    at = np.arange(rows.min(), rows.max() + 1) if len(rows) else np.arange(0)
    full = np.full(len(at), np.nan)
    full[rows - (rows.min() if len(rows) else 0)] = values
    return at, full


def plot_error_by_horizon(errors: dict, path: str | Path, title: str = "error by horizon step", ylabel: str = "MAE"):
    """One line per method: its error at each horizon step 1..H (``errors``: method -> (H,) values).

    Example:
        >>> import tempfile
        >>> plot_error_by_horizon({"model": [1, 2, 3], "naive": [2, 3, 4]},
        ...                       Path(tempfile.mkdtemp()) / "e.png").stat().st_size > 1000
        True
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for method, values in errors.items():
        steps = range(1, len(values) + 1)
        ax.plot(steps, list(values), marker="o", label=method, color=_METHOD_COLOURS.get(method))
    ax.set_xlabel("horizon step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return _save(fig, path)


def plot_fan(history_index, history, future_index, truth, mean, path: str | Path, std=None, names=None,
             title: str = "forecast", max_targets: int = 4) -> Path:  # fmt: skip
    """A multi-step forecast from one origin: the history before it, the truth after it, the
    forecast, and with ``std`` (same shape as ``mean``, (H, k) or (H,)) the 50 % and 95 % normal
    intervals as a fan.

    Example:
        >>> import tempfile, numpy as np
        >>> p = plot_fan(np.arange(20), np.ones(20), np.arange(20, 25), np.ones(5), np.ones(5),
        ...              Path(tempfile.mkdtemp()) / "fan.png", std=np.linspace(0.1, 0.5, 5))
        >>> p.stat().st_size > 1000
        True
    """
    import numpy as np

    plt = _pyplot()
    history, truth, mean = _as_columns(history), _as_columns(truth), _as_columns(mean)
    history_index, future_index = np.asarray(history_index), np.asarray(future_index)
    k = min(history.shape[1], max_targets)
    fig, axes = plt.subplots(k, 1, figsize=(8, 3.5 * k), dpi=100, squeeze=False)
    for j, ax in enumerate(axes[:, 0]):
        ax.plot(history_index, history[:, j], color="black", lw=1, label="history")
        ax.plot(future_index, truth[:, j], color="black", lw=1, ls="--", marker=".", label="truth")
        ax.plot(future_index, mean[:, j], color="tab:blue", marker="o", ms=3, label="forecast")
        if std is not None:
            s = _as_columns(std)[:, j]
            for z, alpha, label in ((1.959963984540054, 0.15, "95%"), (0.6744897501960817, 0.3, "50%")):
                ax.fill_between(future_index, mean[:, j] - z * s, mean[:, j] + z * s, color="tab:blue", alpha=alpha,
                                lw=0, label=f"{label} interval")  # fmt: skip
        ax.set_ylabel(names[j] if names and j < len(names) else f"target {j}")
        ax.grid(alpha=0.3)
    axes[0, 0].set_title(title)
    axes[0, 0].legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    return _save(fig, path)


def plot_prediction(index, truth, prediction, path: str | Path, clean=None, title: str = "prediction") -> Path:
    """Truth and prediction over one span (a single target); ``clean``, if given, the noise-free signal.

    Example:
        >>> import tempfile, numpy as np
        >>> plot_prediction(np.arange(10), np.zeros(10), np.ones(10),
        ...                 Path(tempfile.mkdtemp()) / "p.png").stat().st_size > 1000
        True
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 4), dpi=100)
    ax.plot(index, truth, color="black", lw=0.8, label="truth")
    if clean is not None:
        ax.plot(index, clean, color="tab:gray", lw=0.8, ls=":", label="noise-free")
    ax.plot(index, prediction, color="tab:blue", lw=1, label="prediction")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def plot_rollouts(index, truth, rollouts, path: str | Path, title: str = "multi-step prediction") -> Path:
    """Truth over a span and several multi-step forecasts on it.  ``index`` holds the row numbers of
    the span; ``rollouts`` is a list of ``(first_row, values)``, each drawn at rows ``first_row,
    first_row + 1, ...``.

    Example:
        >>> import tempfile, numpy as np
        >>> plot_rollouts(np.arange(10, 30), np.zeros(20), [(10, np.ones(5)), (20, np.ones(5))],
        ...               Path(tempfile.mkdtemp()) / "r.png").stat().st_size > 1000
        True
    """
    import numpy as np

    plt = _pyplot()
    index = np.asarray(index)
    fig, ax = plt.subplots(figsize=(10, 4), dpi=100)
    ax.plot(index, truth, color="black", lw=0.8, label="truth")
    for i, (first, values) in enumerate(rollouts):
        steps = np.arange(first, first + len(values))
        ax.plot(steps, values, lw=1.2, label="forecasts" if i == 0 else None, color=f"C{i % 10}")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path: str | Path) -> Path:
    """Write ``fig`` to ``path`` (its folder made if missing) and close it."""
    import warnings

    plt = _pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # CJK labels (年月日, poems) may miss a glyph in the default font
        warnings.filterwarnings("ignore", message=".*Glyph.*missing.*")
        fig.savefig(path)
    plt.close(fig)
    return path
