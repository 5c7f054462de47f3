"""``rnnkit forecast train|backtest|predict|demo``: recurrent forecasters scored beside the naive baselines."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Time-series forecasting: train on a CSV or a shipped dataset, score beside naive baselines, backtest, "
    "predict.",
    no_args_is_help=True,
)

# Data
Data = Annotated[Path | None, typer.Option(help="A UTF-8 CSV file with a header row.")]
Target = Annotated[str | None, typer.Option(help="Target column(s) of --data, comma-separated.")]
Time = Annotated[str | None, typer.Option(help="Time column of --data (parsed, sorted; gaps reported).")]
Covariates = Annotated[str, typer.Option(help="Further input columns of --data known in the past only, "
                                                "comma-separated (not with recursive).")]  # fmt: skip
FutureCovariates = Annotated[str, typer.Option(help="Columns of --data known ahead (a holiday flag, a planned price), "
                                                      "comma-separated: read at the forecast steps too.")]  # fmt: skip
Calendar = Annotated[bool, typer.Option(help="Add calendar features of the time index (month of year, day of week, "
                                             "... as the spacing fits) as future covariates.")]  # fmt: skip
Fill = Annotated[str, typer.Option(help="NaN/Inf in --data: error, ffill, interpolate or drop.")]
Dataset = Annotated[str | None, typer.Option(help="A shipped series instead of --data: sunspots, co2, airline, nile, "
                                                  "elnino.")]  # fmt: skip
Split = Annotated[str, typer.Option(help="Train,validation,test fractions, or two dates: the last of training and of "
                                         "validation, e.g. 1957-12,1958-12.")]  # fmt: skip
# Model
Window = Annotated[int, typer.Option(help="Past steps each forecast reads.")]
Horizon = Annotated[int, typer.Option(help="Steps forecast, H.")]
Strategy = Annotated[str, typer.Option(help="Multi-step strategy: direct (all H at once), recursive (one step fed "
                                            "back H times) or seq2seq (encoder-decoder).")]  # fmt: skip
Cell = Annotated[str, typer.Option(help="Any cell of `rnnkit cells`.")]
Hidden = Annotated[str, typer.Option(help="Hidden units per stacked layer, comma-separated, e.g. 50,100.")]
Dense = Annotated[int, typer.Option(help="Width of a ReLU layer before the output (0: none).")]
Dropout = Annotated[float, typer.Option(help="Dropout between layers and before the output.")]
Head = Annotated[str, typer.Option(help="point (MSE) or gaussian (mean and std: prediction intervals).")]
Level = Annotated[str, typer.Option(help="last: subtract each window's last value (trending series); none: as is.")]
ScalerKind = Annotated[str, typer.Option("--scaler", help="standard, minmax or none; fit on the training part only.")]
# Training
Epochs = Annotated[int | None, typer.Option(help="At most this many epochs (default 50; on --resume: as saved).")]
Lr = Annotated[float, typer.Option(help="Learning rate (halved when the validation loss stalls).")]
Optimizer = Annotated[str, typer.Option(help="adam, adamw, rmsprop or sgd.")]
BatchSize = Annotated[int, typer.Option(help="Windows per batch.")]
EarlyStopping = Annotated[int, typer.Option(help="Stop after this many epochs without a better validation loss "
                                                 "(0: never).")]  # fmt: skip
Device = Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")]
Seed = Annotated[int, typer.Option(help="Random seed (same seed, same result).")]
Season = Annotated[int | None, typer.Option(help="Season m of the seasonal-naive baseline and MASE (default: detected "
                                                 "on the training part).")]  # fmt: skip
RunDir = Annotated[Path | None, typer.Option(help="Where to write (default: runs/<task>-<timestamp>).")]
Progress = Annotated[bool, typer.Option(help="Show a progress bar.")]


def _names(text: str | None) -> str | list[str] | None:
    """'a' -> 'a', 'a,b' -> ['a', 'b'], '' or None -> None."""
    if text is None:
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        return None
    return names[0] if len(names) == 1 else names


def _data_options(data, target, time, covariates, future_covariates, calendar, fill, dataset) -> dict:
    if data is None and dataset is None:
        raise ValueError("Give --data CSV with --target COLUMN, or --dataset NAME (sunspots, co2, airline, nile, "
                         "elnino).")  # fmt: skip
    return {"source": data, "dataset": dataset, "target": _names(target), "time": time,
            "covariates": _names(covariates) or (), "future_covariates": _names(future_covariates) or (),
            "calendar": calendar, "fill": fill}  # fmt: skip


def _number(value, digits: int = 4) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}g}" if abs(value) < 10**digits else f"{value:,.0f}"


ETS_LEFT_OUT = "ETS baseline left out: pip install 'rnnkit[forecast]'"


def _ets_lines(report: dict, rows_have_ets: bool) -> list[str]:
    """What to say of the ETS baseline under a table: left out (no statsmodels), or why its scores are empty."""
    note = report.get("ets_note")
    if note is None:
        return []
    return [f"note: {note}"] if rows_have_ets else [ETS_LEFT_OUT]


def _score_table(rows: list[dict], title: str, model_name: str, season: int, ets_spec: str | None = None):
    from rich.table import Table

    table = Table(title=title)
    for column in ("method", "MAE", "RMSE", "MAPE %", "sMAPE %", "MASE"):
        table.add_column(column, justify="left" if column == "method" else "right")
    names = {"model": f"{model_name} (this run)", "naive": "naive", "seasonal_naive": f"seasonal naive (m={season})",
             "ets": f"ETS (statsmodels, {ets_spec})" if ets_spec else "ETS (statsmodels)"}  # fmt: skip
    best = min((r["MASE"] for r in rows if r["MASE"] is not None), default=None)
    for r in rows:
        mase = "-" if r["MASE"] is None else f"{r['MASE']:.3f}"
        style = "bold" if best is not None and r["MASE"] == best else None
        percent = ["-" if r[m] is None else f"{r[m]:.2f}" for m in ("MAPE", "sMAPE")]
        table.add_row(names.get(r["method"], r["method"]), _number(r["MAE"]), _number(r["RMSE"]), *percent, mase,
                      style=style)  # fmt: skip
    return table


def _print_run(report: dict, console) -> None:
    split = report["split"]
    test = split["windows"]["test"]
    title = (f"Test span: {test} window(s) from {split['first_test_timestamp']} "
             f"({split['points']['test']} points, never trained or tuned on)")  # fmt: skip
    console.print(_score_table(report["metrics"], title, report["model"], report["season"], report.get("ets_spec")))
    for line in _ets_lines(report, any(row["method"] == "ets" for row in report["metrics"])):
        console.print(line, markup=False, highlight=False)  # [forecast] is no style
    if "interval_95_coverage" in report:
        console.print(f"95% intervals held {report['interval_95_coverage']:.1%} of the test values.")
    if report.get("gaps"):
        first = report["gaps"][0]
        console.print(f"note: the time index has {report.get('gap_count', len(report['gaps']))} gap(s) (listed in "
                      f"report.json), the first between {first[0]} and {first[1]}.")  # fmt: skip
    run = Path(report["run_dir"])
    console.print(f"run: {run}\nreport: {run / 'report.json'}\nforecasts: {report['files']['forecasts']}")
    console.print("plots: " + ", ".join(report["files"]["plots"]))


@app.command()
def train(
    data: Data = None,
    target: Target = None,
    time: Time = None,
    covariates: Covariates = "",
    future_covariates: FutureCovariates = "",
    calendar: Calendar = False,
    fill: Fill = "error",
    dataset: Dataset = None,
    window: Window = 10,
    horizon: Horizon = 1,
    strategy: Strategy = "direct",
    cell: Cell = "lstm",
    hidden: Hidden = "64",
    dense: Dense = 0,
    dropout: Dropout = 0.0,
    head: Head = "point",
    level: Level = "last",
    scaler: ScalerKind = "standard",
    split: Split = "0.7,0.15,0.15",
    epochs: Epochs = None,
    lr: Lr = 1e-3,
    optimizer: Optimizer = "adam",
    batch_size: BatchSize = 32,
    early_stopping: EarlyStopping = 5,
    device: Device = "auto",
    seed: Seed = 0,
    season: Season = None,
    run_dir: RunDir = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            help="Continue this run directory from its last checkpoint "
            "(its data and model; give --epochs to train longer)."
        ),
    ] = None,
    progress: Progress = True,
) -> None:
    """Train a forecaster and print its test scores beside the naive, seasonal-naive and ETS forecasts.

    Example: rnnkit forecast train --data sales.csv --target units --time date --horizon 7 --season 7

    Example: rnnkit forecast train --dataset airline --horizon 12 --epochs 100 --calendar
    """
    from rich.console import Console

    from ..forecast.task import train as run

    if resume is not None:
        result = run(resume=resume, epochs=epochs, progress=progress)
    else:
        options = _data_options(data, target, time, covariates, future_covariates, calendar, fill, dataset)
        result = run(**options, window=window, horizon=horizon, strategy=strategy, cell=cell, hidden_sizes=hidden,
                     dense=dense, dropout=dropout, head=head, level=level, scaler=scaler, split=split, epochs=epochs,
                     learning_rate=lr, optimizer=optimizer, batch_size=batch_size, early_stopping=early_stopping,
                     device=device, seed=seed, run_dir=run_dir, progress=progress, season=season)  # fmt: skip
    _print_run(result.report, Console())


@app.command()
def backtest(
    data: Data = None,
    target: Target = None,
    time: Time = None,
    covariates: Covariates = "",
    future_covariates: FutureCovariates = "",
    calendar: Calendar = False,
    fill: Fill = "error",
    dataset: Dataset = None,
    origins: Annotated[int, typer.Option(help="Forecast origins: the last origins x horizon points are forecast.")] = 5,
    refit: Annotated[
        bool, typer.Option(help="Train a model for every origin (--no-refit: once, before the first).")
    ] = True,  # fmt: skip
    window: Window = 10,
    horizon: Horizon = 1,
    strategy: Strategy = "direct",
    cell: Cell = "lstm",
    hidden: Hidden = "64",
    dense: Dense = 0,
    dropout: Dropout = 0.0,
    head: Head = "point",
    level: Level = "last",
    scaler: ScalerKind = "standard",
    split: Annotated[
        str, typer.Option(help="Train,validation,test fractions; the first two divide the data before each origin.")
    ] = "0.7,0.15,0.15",  # fmt: skip
    epochs: Annotated[int, typer.Option(help="At most this many epochs per fit.")] = 50,
    lr: Lr = 1e-3,
    optimizer: Optimizer = "adam",
    batch_size: BatchSize = 32,
    early_stopping: EarlyStopping = 5,
    device: Device = "auto",
    seed: Seed = 0,
    season: Season = None,
    run_dir: RunDir = None,
    progress: Progress = True,
) -> None:
    """Rolling-origin evaluation: one row per origin and method, beside the naive baselines and ETS.

    The last ORIGINS x HORIZON points are cut into ORIGINS blocks; each is forecast from the data before
    it (the model refit on that data, or trained once before the first block with --no-refit).

    Example: rnnkit forecast backtest --dataset airline --horizon 12 --origins 4 --epochs 100
    """
    from rich.console import Console
    from rich.table import Table

    from ..forecast.metrics import METRICS
    from ..forecast.task import backtest as run

    options = _data_options(data, target, time, covariates, future_covariates, calendar, fill, dataset)
    frame = run(**options, origins=origins, refit=refit, window=window, horizon=horizon, strategy=strategy, cell=cell,
                hidden_sizes=hidden, dense=dense, dropout=dropout, head=head, level=level, scaler=scaler, split=split,
                epochs=epochs, learning_rate=lr, optimizer=optimizer, batch_size=batch_size,
                early_stopping=early_stopping, device=device, seed=seed, run_dir=run_dir, progress=progress,
                season=season)  # fmt: skip
    console = Console()
    how = "refit at each origin" if refit else "trained once, before the first origin"
    table = Table(title=f"Rolling origin: {origins} origin(s) x {horizon} step(s), model {how}")
    for column in ("origin", "first step", "method", *METRICS):
        header = f"{column} %" if column in ("MAPE", "sMAPE") else column
        table.add_column(header, justify="right" if column in METRICS else "left")
    spec = frame.attrs.get("ets_spec")
    names = {"seasonal_naive": "seasonal naive", "ets": f"ETS ({spec})" if spec else "ETS"}
    for _, row in frame.iterrows():
        table.add_row(str(row["origin"]), str(row["timestamp"]), names.get(row["method"], row["method"]),
                      *(_number(None if row[m] != row[m] else row[m]) for m in METRICS))  # fmt: skip
    means = frame.groupby("method", sort=False)[list(METRICS)].mean()
    for method, values in means.iterrows():
        table.add_row("mean", "", names.get(method, method), *(_number(values[m]) for m in METRICS), style="bold")
    console.print(table)
    for line in _ets_lines(frame.attrs, (frame["method"] == "ets").any()):
        console.print(line, markup=False, highlight=False)  # [forecast] is no style
    root = Path(frame.attrs["run_dir"])
    console.print(f"run: {root}\nper origin: {root / 'backtest.csv'}\nreport: {root / 'report.json'}")


@app.command()
def predict(
    run: Annotated[Path, typer.Option(help="A forecast run directory (from `rnnkit forecast train`).")],
    data: Annotated[
        Path | None,
        typer.Option(
            help="Forecast past the end of this CSV (same columns as the training data; default: the run's own series)."
        ),
    ] = None,
    horizon: Annotated[
        int | None,
        typer.Option(help="Steps to forecast (default: the model's H; only recursive models forecast others)."),
    ] = None,  # fmt: skip
    out: Annotated[Path | None, typer.Option(help="CSV file to write (default: RUN/prediction.csv).")] = None,
    future: Annotated[
        Path | None,
        typer.Option(
            help="CSV with the future covariates of the forecast steps, one row per step (models trained "
            "with --future-covariates; calendar features are computed)."
        ),
    ] = None,  # fmt: skip
) -> None:
    """Forecast the steps after the end of the data with a trained run, and export them as CSV.

    Example: rnnkit forecast predict --run runs/forecast-20261125-101500 --data latest.csv --out forecast.csv
    """
    from rich.console import Console
    from rich.table import Table

    from ..forecast.task import predict as forecast
    from ..train import write_atomic

    frame = forecast(run, data, horizon, future)
    out = out if out is not None else run / "prediction.csv"
    write_atomic(out, lambda tmp: frame.to_csv(tmp, index=False))
    table = Table(title=f"Forecast past the end of {'the run series' if data is None else data}")
    for column in frame.columns:
        table.add_column(column, justify="right" if column not in ("timestamp", "target") else "left")
    for _, row in frame.iterrows():
        table.add_row(*(_number(v) if isinstance(v, float) else str(v) for v in row))
    console = Console()
    console.print(table)
    console.print(f"written: {out}")


@app.command()
def demo(
    seed: Seed = 0,
    run_dir: RunDir = None,
    progress: Progress = True,
) -> None:
    """The classic tutorial on a noisy sine wave: test RMSE beside the naive forecast's, and plots.

    5,000 points of a sine with noise, windows of 10, a 2-layer LSTM (50, 100) trained one step ahead
    with RMSprop and MSE (early stopping, checkpoints, learning-rate decay); writes the single-step
    and the multi-step (recursive) prediction plots.  About 20-45 s on one CPU core.

    Example: rnnkit forecast demo --seed 0
    """
    from rich.console import Console

    from ..forecast.task import demo as run_demo

    result = run_demo(run_dir=run_dir, seed=seed, progress=progress)
    console = Console()
    _print_run(result.report, console)
    d = result.report["demo"]
    console.print(f"\n{d['series']}: test RMSE {d['test_rmse']:.4f} (noise alone: {d['noise_rmse_floor']}), naive "
                  f"{d['naive_rmse']:.4f}: {d['factor']:.2f}x lower than naive; {d['seconds']:.0f} s")  # fmt: skip
    console.print("plots: " + ", ".join(d["plots"]))
