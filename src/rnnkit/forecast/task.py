"""Forecasting with a recurrent network, end to end: data -> windows -> model -> fit -> honest evaluation -> use.

    run = train("sales.csv", target="units", time="date", horizon=7)   # -> ForecastRun
    run.report["metrics"]                # model, naive, seasonal naive and ETS on the same test windows
    predict(run.run_dir)                 # the next H steps past the end of the data, a DataFrame
    backtest(dataset="airline", horizon=12, origins=4)   # rolling origin, one row per origin and method
    demo()                               # the classic noisy-sine tutorial, with its two plots

What keeps it honest:

- the series is split by time (train, validation, test); the scaler is fit on the training rows
  only, and the windows of a part never have a target outside it (``make_windows``);
- the model kept is the one with the best *validation* loss; the test windows are scored once,
  after training, and nothing is chosen by them;
- the model's score is printed beside the naive and seasonal-naive forecasts of exactly the same
  windows, in the series' own units, MASE scaled by the training part (``score_table``), and beside
  statsmodels' ETS (``ets_forecast``: fitted on the training rows only, then each window forecast
  from the state after its last input row; left out, with a note, without ``rnnkit[forecast]``);
- each test forecast reads only the inputs of its own window (rows before its first target).

A run directory (``runs/forecast-<yyyymmdd-hhmmss>/``) holds::

    config.json       training, model and data settings (with the fitted scaler): enough to rebuild
    series.csv        the series as loaded (time, targets, covariates), so a run needs no source later
    metrics.csv  checkpoints/{best,last}.ckpt  model.safetensors  plots/loss.png     (from fit)
    report.json       the metrics table, season, split sizes, paths, the ETS spec (ets_note: why it is missing)
    forecasts.csv     one row per test window, horizon step and target: truth, forecast, baselines
    plots/forecast.png  plots/fan.png  plots/error_by_horizon.png (H > 1)

pandas, Lightning and matplotlib are imported inside the functions that need them.
"""

from __future__ import annotations

import json
import math
import os
import time as clock
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..data.series import Scaler, Series, WindowDataset, load_series, make_windows, split_points
from .metrics import (
    METRICS,
    detect_season,
    ets_forecast,
    ets_spec,
    naive_forecast,
    score_table,
    seasonal_naive_forecast,
)
from .model import ForecastConfig, ForecastModel

if TYPE_CHECKING:
    import pandas as pd

    from ..train import RunResult, TrainConfig

METHODS = ("model", "naive", "seasonal_naive", "ets")  # the rows of every score table, in this order
ETS_MISSING = "statsmodels is not installed: the ETS baseline is left out (pip install 'rnnkit[forecast]')"
Z95, Z50 = 1.959963984540054, 0.6744897501960817  # two-sided 95 % and 50 % normal quantiles
PREDICT_BATCH = 1024  # windows per forward pass when scoring

# The demo: the classic tutorial's sine wave, with noise.
DEMO_POINTS = 5000
DEMO_STEP = 0.2  # radians between points: a period of about 31 points
DEMO_NOISE = 0.04  # standard deviation of the Gaussian noise on the unit sine
DEMO_EPOCHS = 30
DEMO_PATIENCE = 5  # epochs without a better validation loss before early stopping
DEMO_LEVEL = "none"  # a stationary wave: levels in, levels out (see the demo's docstring)
DEMO_ROLLOUT = 50  # steps of each multi-step (recursive) rollout in plots/multi_step.png
DEMO_SHOWN = 200  # test points drawn in plots/single_step.png


@dataclass
class ForecastRun:
    """A trained forecaster: the model (best validation weights, eval mode, CPU), the scaler fit on
    its training rows, the series it was given, the settings saved in ``config.json``, and the
    report (``report["metrics"]``: one row per method, ``METHODS`` order)."""

    run_dir: Path
    model: ForecastModel
    scaler: Scaler
    series: Series
    settings: dict
    report: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------- data


def _load(source: Any, dataset: str | None, target: Any, time: Any, covariates: Any, fill: str,
          future_covariates: Any = ()) -> tuple[Series, dict]:  # fmt: skip
    """The series and a description of where it came from (saved in config.json)."""
    if dataset is not None:
        if source is not None:
            raise ValueError("Give either data (a CSV path, DataFrame or array) or a dataset name, not both.")
        if target is not None or time is not None or covariates or future_covariates:
            raise ValueError(
                f"target, time and covariates name columns of your data; the dataset {dataset!r} has its own "
                "(one target, named like the dataset, and a time index). Leave them out with a dataset "
                "(calendar features work with a dataset)."
            )
        from .datasets import load_dataset

        return load_dataset(dataset), {"dataset": dataset}
    if source is None:
        from .datasets import DATASETS

        raise ValueError(
            f"Give data (a CSV path, a DataFrame or an array) with its target column, or a dataset name, "
            f"one of {sorted(DATASETS)}."
        )
    series = load_series(source, target=target, time=time, covariates=covariates, fill=fill,
                         future_covariates=future_covariates)  # fmt: skip
    if isinstance(source, (str, os.PathLike)):
        described: dict = {"csv": str(Path(source).resolve())}
    elif hasattr(source, "columns"):
        described = {"dataframe": [str(c) for c in source.columns]}
    else:
        described = {"array": list(np.shape(source))}
    return series, described


def _time_name(series: Series) -> str | None:
    import pandas as pd

    if not isinstance(series.index, pd.DatetimeIndex):
        return None
    return str(series.index.name) if series.index.name is not None else "time"


def _series_frame(series: Series) -> pd.DataFrame:
    """The series as a table: its time column (if any), the targets, the covariates, the future covariates."""
    import pandas as pd

    names = [*series.target_names, *series.covariate_names, *series.future_covariate_names]
    frame = pd.DataFrame(dict(zip(names, series.table().T)))
    name = _time_name(series)
    if name is not None:
        frame.insert(0, name, series.index)
    return frame


def _read_saved_series(run_dir: Path, settings: dict) -> Series:
    """The run's series.csv with the run's columns, and its calendar features added again."""
    path = run_dir / "series.csv"
    if not path.is_file():
        raise ValueError(f"{str(run_dir)!r} is not a forecast run (no series.csv).")
    series = load_series(path, target=settings["target"], time=settings["time"], covariates=settings["covariates"],
                         future_covariates=settings.get("future_covariates", ()))  # fmt: skip
    return _with_calendar(series, tuple(settings.get("calendar", ())))


def _calendar_cycles(series: Series, calendar: bool) -> tuple[str, ...]:
    if not calendar:
        return ()
    from ..data.calendar import calendar_cycles

    return calendar_cycles(series.index)


def _with_calendar(series: Series, cycles: tuple[str, ...]) -> Series:
    """The series with the calendar features of ``cycles`` appended to its future covariates."""
    if not cycles:
        return series
    from dataclasses import replace

    from ..data.calendar import calendar_features

    values, names = calendar_features(series.index, cycles)
    taken = set(series.target_names) | set(series.covariate_names) | set(series.future_covariate_names)
    if taken & set(names):
        raise ValueError(f"A column of the data is named like a calendar feature, {sorted(taken & set(names))}: "
                         "rename it or leave the calendar features out.")  # fmt: skip
    return replace(series, future_covariates=np.concatenate([series.future_covariates, values], axis=1),
                   future_covariate_names=[*series.future_covariate_names, *names])  # fmt: skip


def _parse_split(split: Any) -> tuple:
    """Fractions stay numbers; anything else (dates) is kept as given, for split_points to judge."""
    if isinstance(split, str):
        split = [part.strip() for part in split.split(",")]
    if not isinstance(split, (tuple, list)):
        return split
    parsed = []
    for value in split:
        try:
            parsed.append(float(value) if isinstance(value, str) else value)
        except ValueError:
            parsed.append(value)
    return tuple(parsed)


def _check_sizes(n: int, window: int, horizon: int) -> None:
    for name, value in (("window", window), ("horizon", horizon)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"Expected {name} a positive integer. Received: {name}={value!r}")
    if n < window + horizon:
        raise ValueError(
            f"The series has {n} points, fewer than window + horizon = {window} + {horizon} = {window + horizon}: "
            "not even one window fits. Use a shorter window or horizon, or a longer series."
        )


def _check_covariates(strategy: str, covariates: Any) -> None:
    if strategy == "recursive" and covariates not in (None, (), [], ""):
        raise ValueError(
            "The recursive strategy feeds each forecast back as the next input row, so it cannot use covariates "
            f"(their future values are unknown). Received covariates={covariates!r}. Use strategy 'direct' or "
            "'seq2seq' with covariates."
        )


def _check_season(season: Any, train_rows: int, where: str = "training part") -> None:
    if isinstance(season, bool) or not isinstance(season, int) or season < 1:
        raise ValueError(f"Expected season a whole number >= 1 (1: no season). Received: season={season!r}")
    if season >= train_rows:
        raise ValueError(
            f"season={season} needs more than {season} points in the {where} (MASE compares points a season "
            f"apart); it has {train_rows}. Give a smaller season or more data."
        )


def _model_config(series: Series, horizon: int, strategy: str, cell: str, hidden_sizes: Any, dense: int,
                  dropout: float, head: str, level: str) -> ForecastConfig:  # fmt: skip
    """The ForecastConfig for this series' columns: every column of ``series.table()`` an input."""
    return ForecastConfig(n_features=series.table().shape[1], n_targets=series.values.shape[1],
                          n_future=series.future_covariates.shape[1], horizon=horizon, strategy=strategy, cell=cell,
                          hidden_sizes=_hidden(hidden_sizes), dense=dense, dropout=dropout, head=head,
                          level=level)  # fmt: skip


def _hidden(hidden_sizes: Any) -> tuple[int, ...]:
    if isinstance(hidden_sizes, str):
        try:
            return tuple(int(part) for part in hidden_sizes.split(",") if part.strip())
        except ValueError:
            raise ValueError(
                f"Expected hidden sizes as comma-separated whole numbers, e.g. 50,100. Received: {hidden_sizes!r}"
            ) from None
    return tuple(hidden_sizes) if isinstance(hidden_sizes, (tuple, list)) else hidden_sizes


# ---------------------------------------------------------------------------------------- training


def _train_config(task: str, epochs: int, learning_rate: float, optimizer: str, early_stopping: int, device: str,
                  seed: int, progress: bool) -> TrainConfig:  # fmt: skip
    from ..train import TrainConfig

    return TrainConfig(task=task, epochs=epochs, learning_rate=learning_rate, optimizer=optimizer,
                       early_stopping=early_stopping, device=device, seed=seed, progress=progress)  # fmt: skip


def _batch_size(batch_size: Any) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"Expected batch_size a positive integer. Received: batch_size={batch_size!r}")
    return batch_size


def _fit(
    model: ForecastModel,
    train_windows: WindowDataset,
    val_windows: WindowDataset,
    config: TrainConfig,
    batch_size: int,
    run_dir: Path | None,
    resume: Path | None = None,
    meta: dict | None = None,
) -> RunResult:
    """fit() on shuffled training windows (the order drawn from torch's seeded RNG, so a resumed run
    continues it); the model comes back on the CPU with its best validation weights, in eval mode."""
    from torch.utils.data import DataLoader

    from ..train import Splits, fit, load_weights

    splits = Splits(
        DataLoader(train_windows, batch_size=batch_size, shuffle=True),
        DataLoader(val_windows, batch_size=max(batch_size, 256)),
        unit="windows",
    )
    result = fit(model, splits, config, run_dir=run_dir, resume=resume, meta=meta)
    model.cpu()
    load_weights(model, result.run_dir, "best")
    return result


def _predict_windows(model: ForecastModel, windows: WindowDataset):
    """Forecasts of every window from its own inputs -> (mean (N, H, k), std (N, H, k) or None), scaled units."""
    means, stds = [], []
    for start in range(0, len(windows), PREDICT_BATCH):
        items = [windows[i] for i in range(start, min(start + PREDICT_BATCH, len(windows)))]
        inputs = torch.stack([item[0] for item in items])
        future = torch.stack([item[2] for item in items]) if windows.n_future else None
        forecast = model.predict(inputs, future=future)
        means.append(forecast.mean)
        stds.append(forecast.std)
    mean = torch.cat(means).double().numpy()
    std = None if stds[0] is None else torch.cat(stds).double().numpy()
    return mean, std


def _unscale(scaler: Scaler, k: int, mean: np.ndarray, std: np.ndarray | None):
    """Scaled forecasts back to the series' units: mean * scale + shift, std * scale."""
    mean = scaler.inverse_transform(mean, columns=slice(0, k))
    return mean, None if std is None else std * scaler.scale[:k]


def _targets_start(windows: WindowDataset) -> np.ndarray:
    return windows.first_target + np.arange(len(windows))


def _truth(values: np.ndarray, starts: np.ndarray, horizon: int) -> np.ndarray:
    return values.astype(np.float64)[starts[:, None] + np.arange(horizon)]  # (N, H, k)


def _scores(truth: np.ndarray, forecasts: dict, y_train: np.ndarray, season: int) -> list[dict]:
    """score_table, with an undefined metric (MAPE of all-zero targets, MASE of a training part that
    repeats itself) left as None instead of failing after training."""
    try:
        return score_table(truth, forecasts, y_train, season)
    except ValueError:
        from . import metrics

        functions = {"MAE": metrics.mae, "RMSE": metrics.rmse, "MAPE": metrics.mape, "sMAPE": metrics.smape}
        rows = []
        for method, forecast in forecasts.items():
            row: dict[str, Any] = {"method": method}
            for name in METRICS:
                try:
                    row[name] = (
                        metrics.mase(truth, forecast, y_train, season)
                        if name == "MASE"
                        else functions[name](truth, forecast)
                    )
                except ValueError:
                    row[name] = None
            rows.append(row)
        return rows


def _ets(values: np.ndarray, train_end: int, starts: np.ndarray, horizon: int, season: int):
    """statsmodels' ETS forecasts of the windows from ``starts``, fitted on ``values[:train_end]``, and what the
    report says of them -> (forecasts (N, H, k) or None, notes).

    The notes hold ``ets_spec`` and ``ets_seconds`` when the model was fitted (its row is scored, or left
    None with an ``ets_note`` saying why when the fit failed), only an ``ets_note`` when statsmodels is
    missing (no row then).
    """
    start = clock.perf_counter()
    try:
        forecast = ets_forecast(values, train_end, starts, horizon, season)
    except ImportError:
        return None, {"ets_note": ETS_MISSING}
    except Exception as error:  # a failed fit costs the baseline its scores, never the run
        note = f"the ETS fit failed, its scores are left empty: {type(error).__name__}: {error}"
        return None, {"ets_spec": ets_spec(season, train_end), "ets_seconds": round(clock.perf_counter() - start, 3),
                      "ets_note": note}  # fmt: skip
    return forecast, {"ets_spec": ets_spec(season, train_end), "ets_seconds": round(clock.perf_counter() - start, 3)}


def _with_ets(rows: list[dict], forecast: np.ndarray | None, notes: dict) -> list[dict]:
    """The score rows with an empty ETS row appended when its fit failed (a scored one is already there)."""
    if forecast is None and "ets_spec" in notes:
        return [*rows, {"method": "ets", **dict.fromkeys(METRICS)}]
    return rows


def _model_label(config: dict) -> str:
    sizes = ",".join(str(s) for s in config["hidden_sizes"])
    head = "" if config["head"] == "point" else f", {config['head']}"
    return f"{config['cell']} {config['strategy']} ({sizes}{head})"


def train(
    source: Any = None,
    *,
    dataset: str | None = None,
    target: str | int | Sequence | None = None,
    time: str | int | None = None,
    covariates: str | int | Sequence = (),
    future_covariates: str | int | Sequence = (),
    calendar: bool = False,
    fill: str = "error",
    window: int = 10,
    horizon: int = 1,
    strategy: str = "direct",
    cell: str = "lstm",
    hidden_sizes: Sequence[int] | str = (64,),
    dense: int = 0,
    dropout: float = 0.0,
    head: str = "point",
    level: str = "last",
    scaler: str = "standard",
    split: Sequence | str = (0.7, 0.15, 0.15),
    epochs: int | None = None,
    learning_rate: float = 1e-3,
    optimizer: str = "adam",
    batch_size: int = 32,
    early_stopping: int = 5,
    device: str = "auto",
    seed: int = 0,
    run_dir: str | Path | None = None,
    resume: str | Path | None = None,
    progress: bool = True,
    season: int | None = None,
) -> ForecastRun:
    """Train a forecaster on a series and score it on the test span beside the naive baselines.

    Args:
        source: a CSV path, a pandas DataFrame, or a 1-D or ``(N, k)`` array (see ``load_series``);
            or leave it out and name a ``dataset`` (``rnnkit.forecast.datasets.DATASETS``).
        target, time, covariates, future_covariates, fill: the columns and NaN handling of
            ``load_series``; covariates are read from the window only, future covariates also at
            the forecast steps (so ``predict`` needs their values there).
        calendar: add calendar features of the time index as future covariates (the sine and
            cosine of month of year, day of week, ... as fits the spacing; ``rnnkit.data.calendar``).
        window: past steps a forecast reads.  horizon: steps it forecasts, ``H``.
        strategy, cell, hidden_sizes, dense, dropout, head, level: the ``ForecastConfig``.
        scaler: ``"standard"``, ``"minmax"`` or ``"none"``, fit on the training rows.
        split: three fractions (train, validation, test) or two timestamps (the last of training and
            of validation); a string "0.7,0.15,0.15" is read as such.
        epochs: at most this many (default 50; on ``resume``, the saved number, so give more to
            train longer).  learning_rate, optimizer, early_stopping (epochs without a better
            validation loss; 0: never), device, seed: as ``TrainConfig``; the learning rate halves
            when the validation loss stalls.
        run_dir: where to write (default ``runs/forecast-<timestamp>``).
        resume: a run directory to continue from its last checkpoint; the data and model come from
            the run (``series.csv``, ``config.json``), so leave source and the model options out.
        season: the season m of the seasonal-naive baseline and of MASE; default: detected on the
            training part (``detect_season``).

    Returns a :class:`ForecastRun`.  Same seed, same data, same machine: the same forecasts.

    Example:
        >>> import tempfile
        >>> y = np.sin(np.arange(300) / 3.0)
        >>> run = train(y, window=12, horizon=3, hidden_sizes=(16,), epochs=2, progress=False,
        ...             run_dir=tempfile.mkdtemp())
        >>> [row["method"] for row in run.report["metrics"]], run.report["season"]
        (['model', 'naive', 'seasonal_naive', 'ets'], 19)
        >>> sorted(p.name for p in (run.run_dir / "plots").iterdir())
        ['error_by_horizon.png', 'fan.png', 'forecast.png', 'grad_norms.png', 'loss.png']
    """
    from ..train import TrainConfig, read_run_config

    if resume is not None:
        resume = Path(resume)
        saved = read_run_config(resume)
        if "forecast" not in saved:
            raise ValueError(f"{str(resume)!r} is not a forecast run (its config.json has no forecast settings).")
        if source is not None or dataset is not None:
            raise ValueError("A resumed run reads its own data (series.csv in the run); leave the data out.")
        settings = saved["forecast"]
        series = _read_saved_series(resume, settings)
        model_config = saved["model"]
        config = TrainConfig.from_dict(saved["train"])
        config.progress = progress
        if epochs is not None:
            config.epochs = epochs
            TrainConfig.from_dict(config.to_dict())  # validates the new number
        train_end, val_end = settings["split"]
        window, horizon, batch_size = settings["window"], settings["horizon"], settings["batch_size"]
        fitted = Scaler.from_state_dict(settings["scaler"])
        scaled = torch.from_numpy(np.ascontiguousarray(fitted.transform(series.table()), dtype=np.float32))
        k, n_future = len(settings["target"]), series.future_covariates.shape[1]
        spans = (("train", 0, train_end), ("validation", train_end, val_end), ("test", val_end, len(series)))
        train_w, val_w, test_w = (WindowDataset(scaled, k, window, horizon, a, b, part=p, n_future=n_future)
                                  for p, a, b in spans)  # fmt: skip
        run_dir = resume
    else:
        _check_covariates(strategy, covariates)
        config = _train_config("forecast", 50 if epochs is None else epochs, learning_rate, optimizer, early_stopping,
                               device, seed, progress)  # fmt: skip
        batch_size = _batch_size(batch_size)
        given, described = _load(source, dataset, target, time, covariates, fill, future_covariates)
        cycles = _calendar_cycles(given, calendar)
        series = _with_calendar(given, cycles)
        _check_sizes(len(series), window, horizon)
        split = _parse_split(split)
        train_end, val_end = split_points(series, split)
        train_w, val_w, test_w, fitted = make_windows(series, window, horizon, split, scaler)
        model_config = _model_config(series, horizon, strategy, cell, hidden_sizes, dense, dropout, head, level)
        if season is None:
            season = detect_season(series.values[:train_end], series.index[:train_end])
        _check_season(season, train_end)
        settings = {
            "source": described, "target": series.target_names, "time": _time_name(series),
            "covariates": series.covariate_names, "future_covariates": given.future_covariate_names,
            "calendar": list(cycles), "fill": fill, "window": window, "horizon": horizon,
            "split": [train_end, val_end], "split_given": [str(v) for v in split] if isinstance(split, (tuple, list))
            else str(split), "points": len(series), "gaps": len(series.gaps), "scaler": fitted.state_dict(),
            "season": int(season), "batch_size": batch_size,
        }  # fmt: skip
        from ..train import new_run_dir, write_atomic

        run_dir = Path(run_dir) if run_dir is not None else new_run_dir("forecast", config.runs_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        frame = _series_frame(given)  # without the calendar features: they are computed again on loading
        write_atomic(run_dir / "series.csv", lambda tmp: frame.to_csv(tmp, index=False))

    torch.manual_seed(config.seed)
    model = ForecastModel(model_config)
    result = _fit(model, train_w, val_w, config, batch_size, run_dir, resume, meta={"forecast": settings})
    run = ForecastRun(run_dir, model.eval(), fitted, series, settings)
    run.report = evaluate(run, train_w, val_w, test_w)
    run.report.update(best_epoch=result.best_epoch, epochs=result.epochs, stop_reason=result.stop_reason)
    _write_json(run_dir / "report.json", run.report)
    return run


def _stamp(value: Any) -> str:
    """A timestamp as text, without the time of day when it is midnight; other values as str."""
    import pandas as pd

    if isinstance(value, pd.Timestamp) and value == value.normalize():
        return str(value.date())
    return str(value)


def _write_json(path: Path, value: dict) -> None:
    from ..train import write_atomic

    text = json.dumps(value, indent=2, default=str)
    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


# ---------------------------------------------------------------------------------------- evaluation


def evaluate(run: ForecastRun, train_w: WindowDataset, val_w: WindowDataset, test_w: WindowDataset) -> dict:
    """Score the test windows in the series' units (model, naive, seasonal naive, ETS); write forecasts.csv,
    the plots and return the report (written as report.json by ``train``)."""
    import pandas as pd

    from ..train import write_atomic

    series, settings, model = run.series, run.settings, run.model
    values, index, k = series.values, series.index, series.values.shape[1]
    horizon, season = settings["horizon"], settings["season"]
    train_end, val_end = settings["split"]

    starts = _targets_start(test_w)
    truth = _truth(values, starts, horizon)
    mean, std = _unscale(run.scaler, k, *_predict_windows(model, test_w))
    forecasts = {
        "model": mean,
        "naive": naive_forecast(values, starts, horizon).astype(np.float64),
        "seasonal_naive": seasonal_naive_forecast(values, starts, horizon, season).astype(np.float64),
    }
    ets, ets_notes = _ets(values, train_end, starts, horizon, season)  # fitted on the training rows only
    if ets is not None:
        forecasts["ets"] = ets
    rows = _with_ets(_scores(truth, forecasts, values[:train_end], season), ets, ets_notes)

    # forecasts.csv: one row per test window, horizon step and target
    n, steps = len(starts), np.arange(horizon)
    at = (starts[:, None, None] + steps[None, :, None]) * np.ones((1, 1, k), dtype=np.int64)  # (N, H, k) row numbers
    table = {
        "origin": np.broadcast_to(np.asarray(index)[starts - 1][:, None, None], (n, horizon, k)),  # last input row
        "timestamp": np.asarray(index)[at],
        "step": np.broadcast_to(steps[None, :, None] + 1, (n, horizon, k)),
        "target": np.broadcast_to(np.asarray(series.target_names, dtype=object)[None, None, :], (n, horizon, k)),
        "truth": truth,
        "forecast": mean,
    }
    if std is not None:
        table |= {"lower": mean - Z95 * std, "upper": mean + Z95 * std}
    table |= {"naive": forecasts["naive"], "seasonal_naive": forecasts["seasonal_naive"]}
    if "ets_spec" in ets_notes:  # fitted: its forecasts, or empty when the fit failed
        table["ets"] = ets if ets is not None else np.full((n, horizon, k), np.nan)
    frame = pd.DataFrame({name: np.asarray(v).reshape(-1) for name, v in table.items()})
    run_dir = run.run_dir
    write_atomic(run_dir / "forecasts.csv", lambda tmp: frame.to_csv(tmp, index=False))

    plots = _plot_run(run, val_w, test_w, truth, forecasts, std)
    report = {
        "run_dir": str(run_dir),
        "model": _model_label(model.config),
        "metrics": rows,
        "season": season,
        **ets_notes,
        "test_span": "the last part of the split: every window whose targets lie in it",
        "split": {
            "points": {"train": train_end, "validation": val_end - train_end, "test": len(series) - val_end},
            "windows": {"train": len(train_w), "validation": len(val_w), "test": len(test_w)},
            "first_test_timestamp": _stamp(index[val_end]),
        },
        "targets": series.target_names,
        "covariates": series.covariate_names,
        "future_covariates": series.future_covariate_names,
        "gap_count": len(series.gaps),
        "gaps": [[_stamp(a), _stamp(b)] for a, b in series.gaps[:20]],  # the first 20
        "files": {"forecasts": str(run_dir / "forecasts.csv"), "plots": [str(p) for p in plots]},
    }
    if std is not None:
        inside = (truth >= mean - Z95 * std) & (truth <= mean + Z95 * std)
        report["interval_95_coverage"] = float(inside.mean())
    return report


def _plot_run(run: ForecastRun, val_w: WindowDataset, test_w: WindowDataset, truth: np.ndarray, forecasts: dict,
              std: np.ndarray | None) -> list[Path]:  # fmt: skip
    from ..plots import plot_error_by_horizon, plot_fan, plot_forecast

    series, settings, k = run.series, run.settings, run.series.values.shape[1]
    horizon, (train_end, val_end) = settings["horizon"], settings["split"]
    plots = run.run_dir / "plots"
    plots.mkdir(exist_ok=True)
    written = []

    # one-step-ahead forecasts over validation and test: the first step of every window there
    val_mean, val_std = _unscale(run.scaler, k, *_predict_windows(run.model, val_w))
    rows = np.concatenate([_targets_start(val_w), _targets_start(test_w)])
    one_step = np.concatenate([val_mean[:, 0], forecasts["model"][:, 0]])  # (N, k)
    spread = None if std is None else Z95 * np.concatenate([val_std[:, 0], std[:, 0]])
    title = f"{_model_label(run.model.config)}: one step ahead over validation and test"
    written.append(plot_forecast(series.index, series.values, series.target_names, train_end, val_end, rows, one_step,
                                 plots / "forecast.png", spread=spread, title=title))  # fmt: skip

    if horizon > 1:
        labels = {"seasonal_naive": "seasonal naive", "ets": "ETS"}
        errors = {labels.get(name, name): np.abs(truth - f).mean(axis=(0, 2)) for name, f in forecasts.items()}
        written.append(plot_error_by_horizon(errors, plots / "error_by_horizon.png",
                                             title="Test MAE by horizon step"))  # fmt: skip

    # the first test window: its history, truth and forecast with intervals
    context = max(settings["window"], 3 * horizon, 20)
    first = int(test_w.first_target)
    history = slice(max(0, first - context), first)
    written.append(
        plot_fan(series.index[history], series.values[history], series.index[first : first + horizon], truth[0],
                 forecasts["model"][0], plots / "fan.png", std=None if std is None else std[0],
                 names=series.target_names, title=f"Forecast of {horizon} step(s) from the start of the test span")
    )  # fmt: skip
    return written


# ---------------------------------------------------------------------------------------- use


def load_run(run_dir: str | Path) -> ForecastRun:
    """A trained forecast run: its best model (CPU, eval mode), scaler, series and settings."""
    from ..train import load_weights, read_run_config

    run_dir = Path(run_dir)
    saved = read_run_config(run_dir)
    settings = saved.get("forecast")
    if settings is None or saved.get("model") is None:
        raise ValueError(f"{str(run_dir)!r} is not a forecast run (its config.json has no forecast settings).")
    model = ForecastModel(saved["model"])
    load_weights(model, run_dir, "best")
    report_path = run_dir / "report.json"
    report = json.loads(report_path.read_text(encoding="utf-8")) if report_path.is_file() else {}
    series = _read_saved_series(run_dir, settings)
    return ForecastRun(run_dir, model.eval(), Scaler.from_state_dict(settings["scaler"]), series, settings, report)


def _future_stamps(index: Any, horizon: int) -> list:
    """The timestamps of the ``horizon`` steps after the index: by its frequency, or row numbers."""
    import pandas as pd

    if isinstance(index, pd.DatetimeIndex):
        freq = index.freq
        if freq is None and len(index) >= 3:
            try:
                freq = pd.DatetimeIndex(index, freq="infer").freq
            except (ValueError, TypeError):
                freq = None
        if freq is not None:
            return list(pd.date_range(index[-1], periods=horizon + 1, freq=freq)[1:])
        return [None] * horizon
    return list(range(len(index), len(index) + horizon))


def _future_block(settings: dict, series: Series, horizon: int, future: Any) -> np.ndarray:
    """The future covariates of the ``horizon`` steps after the series, unscaled -> (horizon, C).

    The user's future covariates come from ``future`` (its first ``horizon`` rows); the calendar
    features from the timestamps those steps will have.
    """
    names, cycles = settings.get("future_covariates", []), tuple(settings.get("calendar", ()))
    parts = []
    if names:
        if future is None:
            raise ValueError(
                f"This model reads the future covariates {names} at each forecast step: give their values for the "
                f"{horizon} step(s) after the data (future=... or --future FILE: a CSV, DataFrame or array with "
                "those columns, one row per step)."
            )
        rows = load_series(future, target=names, fill="error").values  # (rows, len(names))
        if len(rows) < horizon:
            raise ValueError(
                f"Expected future covariates for {horizon} step(s) (one row per forecast step). "
                f"Received {len(rows)} row(s)."
            )
        parts.append(rows[:horizon].astype(np.float64))
    elif future is not None:
        raise ValueError("This model has no future covariates of yours (calendar features are computed): leave "
                         "future out.")  # fmt: skip
    if cycles:
        from ..data.calendar import calendar_features

        stamps = _future_stamps(series.index, horizon)
        if any(stamp is None for stamp in stamps):
            raise ValueError(
                "This model reads calendar features, but the timestamps of the forecast steps cannot be told: the "
                "time index of the data has no regular frequency."
            )
        parts.append(calendar_features(stamps, cycles)[0].astype(np.float64))
    return np.concatenate(parts, axis=1) if parts else np.zeros((horizon, 0))


def predict(run_dir: str | Path, source: Any = None, horizon: int | None = None, future: Any = None) -> pd.DataFrame:
    """Forecast the ``horizon`` steps after the end of ``source`` (default: the run's own series),
    from its last ``window`` rows.

    ``source`` is read like the training data (same target, time and covariate columns, same fill).
    A model trained with future covariates needs their values at the forecast steps: ``future``
    (a CSV path, DataFrame or array with those columns, one row per step; calendar features are
    computed).  Only a recursive model forecasts another horizon than it was trained for.  Returns
    one row per step and target: ``step, timestamp, target, forecast`` (and ``lower, upper``,
    95 %, with a gaussian head).
    """
    import pandas as pd

    run = load_run(run_dir)
    settings = run.settings
    if source is None:
        series = run.series
    else:
        series = load_series(source, target=settings["target"], time=settings["time"],
                             covariates=settings["covariates"], fill=settings.get("fill", "error"),
                             future_covariates=settings.get("future_covariates", ()))  # fmt: skip
        series = _with_calendar(series, tuple(settings.get("calendar", ())))
    window = settings["window"]
    if len(series) < window:
        raise ValueError(f"Forecasting needs the last window = {window} points; the data has {len(series)}.")
    horizon = run.model.horizon if horizon is None else horizon
    k = series.values.shape[1]
    scale = run.scaler.transform
    inputs = torch.from_numpy(np.ascontiguousarray(scale(series.table()[-window:]), dtype=np.float32))[None]
    known = None
    if run.model.n_future:
        block = _future_block(settings, series, horizon, future)
        columns = slice(inputs.shape[-1] - run.model.n_future, inputs.shape[-1])
        known = torch.from_numpy(np.ascontiguousarray(scale(block, columns=columns), dtype=np.float32))[None]
    elif future is not None:
        raise ValueError("This model has no future covariates: leave future out.")
    forecast = run.model.predict(inputs, horizon, known)
    mean, std = _unscale(run.scaler, k, forecast.mean[0].double().numpy(), None if forecast.std is None
                         else forecast.std[0].double().numpy())  # fmt: skip
    stamps = _future_stamps(series.index, horizon)
    rows = []
    for h in range(horizon):
        for j, name in enumerate(series.target_names):
            row = {"step": h + 1, "timestamp": stamps[h], "target": name, "forecast": float(mean[h, j])}
            if std is not None:
                row |= {"lower": float(mean[h, j] - Z95 * std[h, j]), "upper": float(mean[h, j] + Z95 * std[h, j])}
            rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------- backtest


def backtest(
    source: Any = None,
    *,
    dataset: str | None = None,
    target: str | int | Sequence | None = None,
    time: str | int | None = None,
    covariates: str | int | Sequence = (),
    future_covariates: str | int | Sequence = (),
    calendar: bool = False,
    fill: str = "error",
    origins: int = 5,
    refit: bool = True,
    window: int = 10,
    horizon: int = 1,
    strategy: str = "direct",
    cell: str = "lstm",
    hidden_sizes: Sequence[int] | str = (64,),
    dense: int = 0,
    dropout: float = 0.0,
    head: str = "point",
    level: str = "last",
    scaler: str = "standard",
    split: Sequence | str = (0.7, 0.15, 0.15),
    epochs: int = 50,
    learning_rate: float = 1e-3,
    optimizer: str = "adam",
    batch_size: int = 32,
    early_stopping: int = 5,
    device: str = "auto",
    seed: int = 0,
    run_dir: str | Path | None = None,
    progress: bool = True,
    season: int | None = None,
) -> pd.DataFrame:
    """Rolling-origin evaluation: the last ``origins * horizon`` points are cut into ``origins``
    blocks of ``horizon``; from each block's start (the origin) the model forecasts the block.

    With ``refit=True`` a model is trained for every origin on the data before it; with
    ``refit=False`` one model is trained on the data before the first origin and forecasts every
    origin from the observed data before it (the newest observations are inputs, never trained
    on).  Data before an origin is split into training and validation in the proportion of the
    first two fractions of ``split`` (the test part is the origins); the scaler is fit on that
    training part.  The naive and seasonal-naive forecasts of each block are scored beside the
    model, MASE scaled by the data before the origin, and statsmodels' ETS (``ets_forecast``),
    fitted on the training part the model is fitted on (refit or not, as the model) and forecasting
    from the data before the origin; without statsmodels it is left out with a note (``ets_note``).

    Returns one row per origin and method (``origin, timestamp, method, MAE, RMSE, MAPE, sMAPE,
    MASE``, timestamp = the first forecast step), also written to ``run_dir/backtest.csv``, with
    the means per method in ``run_dir/report.json`` and each fit's run in ``run_dir/fits/``.
    Other arguments as in :func:`train`.
    """
    import pandas as pd

    from ..train import new_run_dir

    _check_covariates(strategy, covariates)
    if isinstance(origins, bool) or not isinstance(origins, int) or origins < 1:
        raise ValueError(f"Expected origins a positive integer. Received: origins={origins!r}")
    config = _train_config("backtest", epochs, learning_rate, optimizer, early_stopping, device, seed, progress)
    batch_size = _batch_size(batch_size)
    given, described = _load(source, dataset, target, time, covariates, fill, future_covariates)
    series = _with_calendar(given, _calendar_cycles(given, calendar))
    n = len(series)
    _check_sizes(n, window, horizon)
    split = _parse_split(split)
    if not (isinstance(split, tuple) and len(split) == 3 and all(isinstance(v, (int, float)) for v in split)
            and min(split) > 0):  # fmt: skip
        raise ValueError(f"Expected split as three fractions > 0 in a backtest (the first two divide the data "
                         f"before each origin). Received: split={split!r}")  # fmt: skip
    first_origin = n - origins * horizon
    validation = split[1] / (split[0] + split[1])  # the share of the data before an origin used to validate
    first_train = round(first_origin * (1 - validation))
    if first_origin < 1 or first_train < window + horizon or first_origin - first_train < horizon:
        raise ValueError(
            f"{origins} origins of horizon {horizon} leave {first_origin} of the {n} points before the first origin, "
            f"too few to train and validate on with window = {window}. Use fewer origins or a shorter window."
        )
    if season is None:
        season = detect_season(series.values[:first_origin], series.index[:first_origin])
    _check_season(season, first_origin, "data before the first origin")
    k, n_future = series.values.shape[1], series.future_covariates.shape[1]
    model_config = _model_config(series, horizon, strategy, cell, hidden_sizes, dense, dropout, head, level)
    root = Path(run_dir) if run_dir is not None else new_run_dir("backtest", config.runs_dir)
    root.mkdir(parents=True, exist_ok=True)
    data = series.table()

    rows, model, fitted = [], None, None
    all_origins = first_origin + horizon * np.arange(origins)
    ets_runs = []  # (forecasts of the origins it covers or None, notes), one per ETS fit
    if not refit:  # one fit on the first origin's training part, as the model's; each origin from its own past
        ets_runs.append(_ets(series.values, round(first_origin * (1 - validation)), all_origins, horizon, season))
    for i in range(origins):
        origin = first_origin + i * horizon
        if refit:
            ets_runs.append(_ets(series.values[:origin], round(origin * (1 - validation)), np.array([origin]), horizon,
                                 season))  # fmt: skip
        ets, ets_notes = ets_runs[-1]
        if refit or model is None:
            train_end = round(origin * (1 - validation))
            fitted = Scaler(scaler).fit(data[:train_end])
            scaled = torch.from_numpy(np.ascontiguousarray(fitted.transform(data[:origin]), dtype=np.float32))
            train_w = WindowDataset(scaled, k, window, horizon, 0, train_end, part="train", n_future=n_future)
            val_w = WindowDataset(scaled, k, window, horizon, train_end, origin, part="validation", n_future=n_future)
            torch.manual_seed(config.seed)
            model = ForecastModel(model_config)
            meta = {"backtest": {"source": described, "origin": origin, "train_end": train_end, "season": season}}
            _fit(model, train_w, val_w, config, batch_size, root / "fits" / f"origin-{i + 1:02d}", meta=meta)
        scaled = np.ascontiguousarray(fitted.transform(data[origin - window : origin + horizon]), dtype=np.float32)
        inputs = torch.from_numpy(scaled[:window])[None]
        future = torch.from_numpy(scaled[window:, data.shape[1] - n_future :])[None] if n_future else None
        forecast = model.predict(inputs, future=future)  # future: the known-ahead columns of the block only
        mean, _ = _unscale(fitted, k, forecast.mean.double().numpy(), None)
        starts = np.array([origin])
        forecasts = {
            "model": mean,
            "naive": naive_forecast(series.values, starts, horizon).astype(np.float64),
            "seasonal_naive": seasonal_naive_forecast(series.values, starts, horizon, season).astype(np.float64),
        }
        if ets is not None:
            forecasts["ets"] = ets[:1] if refit else ets[i : i + 1]
        scores = _scores(_truth(series.values, starts, horizon), forecasts, series.values[:origin], season)
        scores = _with_ets(scores, ets, ets_notes)
        rows += [{"origin": i + 1, "timestamp": _stamp(series.index[origin]), **row} for row in scores]
    frame = pd.DataFrame(rows, columns=["origin", "timestamp", "method", *METRICS])
    from ..train import write_atomic

    write_atomic(root / "backtest.csv", lambda tmp: frame.to_csv(tmp, index=False))
    means = frame.groupby("method", sort=False)[list(METRICS)].mean()
    report = {
        "run_dir": str(root), "origins": origins, "horizon": horizon, "refit": refit, "season": season,
        "model": _model_label(model.config), "source": described, **_ets_summary(ets_runs, refit),
        "mean_over_origins": [{"method": m, **{c: _number(v) for c, v in r.items()}} for m, r in means.iterrows()],
    }  # fmt: skip
    _write_json(root / "report.json", report)
    frame.attrs["run_dir"] = str(root)
    frame.attrs |= {key: report[key] for key in ("ets_spec", "ets_note") if key in report}
    return frame


def _ets_summary(runs: list, refit: bool) -> dict:
    """The ETS notes of a backtest's fits in one: the spec(s), the seconds in all, and the notes, by origin
    when it was refit at each."""
    notes = [run[1] for run in runs]
    if not any("ets_spec" in n for n in notes):
        return {"ets_note": notes[0]["ets_note"]}
    summary: dict[str, Any] = {"ets_spec": " then ".join(dict.fromkeys(n["ets_spec"] for n in notes)),
                               "ets_seconds": round(sum(n["ets_seconds"] for n in notes), 3)}  # fmt: skip
    failed = [(i, n["ets_note"]) for i, n in enumerate(notes) if "ets_note" in n]
    if failed:
        summary["ets_note"] = "; ".join(f"origin {i + 1}: {note}" if refit else note for i, note in failed)
    return summary


def _number(value: Any) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


# ---------------------------------------------------------------------------------------- demo


def demo_series(seed: int = 0, points: int = DEMO_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """The demo's data: (noisy sine, clean sine), ``sin(DEMO_STEP * t)`` plus N(0, DEMO_NOISE^2) noise."""
    t = DEMO_STEP * np.arange(points)
    clean = np.sin(t)
    return clean + DEMO_NOISE * np.random.default_rng(seed).normal(size=points), clean


def demo(run_dir: str | Path | None = None, seed: int = 0, progress: bool = True) -> ForecastRun:
    """The classic LSTM tutorial on a noisy sine wave, done honestly.

    5,000 points of ``sin(0.2 t)`` with Gaussian noise (sd 0.04); windows of 10; a 2-layer LSTM
    of 50 then 100 units, one step ahead (strategy recursive), RMSprop on the mean squared error,
    early stopping, checkpoints and a learning rate halved when validation stalls.  Writes, besides
    everything ``train`` writes, ``plots/single_step.png`` (one-step forecasts over the test span)
    and ``plots/multi_step.png`` (50-step recursive rollouts from successive origins, over the
    truth).  ``report["demo"]`` holds the test RMSE of the model and of the naive forecast, their
    ratio and the wall time.
    """
    import pandas as pd

    from ..plots import plot_prediction, plot_rollouts

    start = clock.perf_counter()
    noisy, clean = demo_series(seed)
    run = train(pd.DataFrame({"sine": noisy}), target="sine", window=10, horizon=1, strategy="recursive",
                hidden_sizes=(50, 100), optimizer="rmsprop", learning_rate=1e-3, epochs=DEMO_EPOCHS,
                early_stopping=DEMO_PATIENCE, level=DEMO_LEVEL, batch_size=32, seed=seed, run_dir=run_dir,
                progress=progress)  # fmt: skip
    plots = run.run_dir / "plots"
    _, val_end = run.settings["split"]
    window = run.settings["window"]
    frame = _read_csv(run.run_dir / "forecasts.csv")
    shown = frame.iloc[:DEMO_SHOWN]  # the start of the test span, so that single points can be told apart
    rows = shown["timestamp"].to_numpy()
    plot_prediction(
        rows,
        noisy[rows],
        shown["forecast"].to_numpy(),
        plots / "single_step.png",
        clean=clean[rows],
        title=f"Single-step prediction, first {len(rows)} test points (each from the {window} true points before it)",
    )
    # multi-step: from every DEMO_ROLLOUT-th point of the test span, feed the forecasts back DEMO_ROLLOUT times
    origins = np.arange(val_end, len(noisy) - DEMO_ROLLOUT + 1, DEMO_ROLLOUT)
    scaled = run.scaler.transform(noisy[:, None]).astype(np.float32)
    inputs = torch.from_numpy(np.stack([scaled[o - window : o] for o in origins]))
    rollouts = run.scaler.inverse_transform(run.model.predict(inputs, DEMO_ROLLOUT).mean.double().numpy())[..., 0]
    span = slice(val_end, len(noisy))
    plot_rollouts(np.arange(len(noisy))[span], noisy[span], [(o, r) for o, r in zip(origins, rollouts)],
                  plots / "multi_step.png", title=f"Multi-step prediction: {DEMO_ROLLOUT} steps fed back, from "
                  f"every {DEMO_ROLLOUT}th point of the test span")  # fmt: skip
    metrics = {row["method"]: row for row in run.report["metrics"]}
    model_rmse, naive_rmse = metrics["model"]["RMSE"], metrics["naive"]["RMSE"]
    run.report["demo"] = {
        "series": f"sin({DEMO_STEP} t) + N(0, {DEMO_NOISE}^2), {DEMO_POINTS} points",
        "test_rmse": model_rmse,
        "naive_rmse": naive_rmse,
        "factor": naive_rmse / model_rmse,
        "noise_rmse_floor": DEMO_NOISE,
        "rollout_rmse": float(np.sqrt(np.mean((rollouts - noisy[origins[:, None] + np.arange(DEMO_ROLLOUT)]) ** 2))),
        "seconds": clock.perf_counter() - start,
        "plots": [str(plots / "single_step.png"), str(plots / "multi_step.png")],
    }
    _write_json(run.run_dir / "report.json", run.report)
    return run


def _read_csv(path: Path) -> pd.DataFrame:
    import pandas as pd

    return pd.read_csv(path)
