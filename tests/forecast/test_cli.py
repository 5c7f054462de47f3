"""`rnnkit forecast train|backtest|predict|demo`: every strategy through the command line, the score table
and the paths, resume, export, help with examples, and one clear line (exit code 2) for each bad input."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from rnnkit.cli import app, main

QUICK = ["--hidden", "8", "--epochs", "1", "--batch-size", "16", "--no-progress"]


def rnnkit(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """The CLI's entry point in this process (errors handled as `rnnkit` does): (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["rnnkit", *args])
    monkeypatch.setenv("COLUMNS", "160")  # rich tables on one line per row
    code = 0
    try:
        main()
    except SystemExit as exit_:
        code = exit_.code or 0
    out, err = capsys.readouterr()
    return code, out, err


def write_sales(path, n: int = 150, seed: int = 0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    frame = pd.DataFrame({
        "day": pd.date_range("2023-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
        "sales": (20 + 0.05 * t + 4 * np.sin(2 * np.pi * t / 7) + rng.normal(0, 0.5, n)).round(4),
        "price": rng.normal(1, 0.1, n).round(4),
    })  # fmt: skip
    frame.to_csv(path, index=False)
    return frame


@pytest.fixture
def sales(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # runs/ lands here
    write_sales(tmp_path / "sales.csv")
    return tmp_path


@pytest.mark.parametrize("command", ["train", "backtest", "predict", "demo"])
def test_every_forecast_command_has_help_with_an_example(command):
    result = CliRunner().invoke(app, ["forecast", command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert f"Example: rnnkit forecast {command}" in result.output


@pytest.mark.parametrize("strategy", ["recursive", "direct", "seq2seq"])
def test_each_strategy_trains_through_the_cli_with_horizon_3_and_prints_the_score_table(
    sales, monkeypatch, capsys, strategy
):
    code, out, err = rnnkit(monkeypatch, capsys, "forecast", "train", "--data", "sales.csv", "--target", "sales",
                            "--time", "day", "--horizon", "3", "--window", "14", "--strategy", strategy,
                            "--run-dir", "run", *QUICK)  # fmt: skip
    assert code == 0, err
    for text in ("MAE", "RMSE", "MAPE", "sMAPE", "MASE", f"lstm {strategy} (8)", "(this run)", "naive",
                 "seasonal naive (m=7)", "ETS (statsmodels, A,Ad,A)", "run: run", "forecasts: ",
                 "forecast.png"):  # fmt: skip
        assert text in out
    forecasts = pd.read_csv(sales / "run" / "forecasts.csv")
    assert forecasts["step"].tolist()[:6] == [1, 2, 3, 1, 2, 3] and len(forecasts) == 20 * 3


def test_predict_exports_a_csv_of_horizon_rows_past_the_end(sales, monkeypatch, capsys):
    args = ["--data", "sales.csv", "--target", "sales", "--time", "day", "--horizon", "3", "--strategy", "recursive"]
    code, _, err = rnnkit(monkeypatch, capsys, "forecast", "train", *args, "--run-dir", "run", *QUICK)
    assert code == 0, err
    code, out, err = rnnkit(monkeypatch, capsys, "forecast", "predict", "--run", "run", "--out", "next.csv")
    assert code == 0, err
    exported = pd.read_csv(sales / "next.csv")
    assert exported["step"].tolist() == [1, 2, 3]
    assert exported["timestamp"].tolist() == ["2023-05-31", "2023-06-01", "2023-06-02"]
    assert "written: next.csv" in out
    code, _, err = rnnkit(monkeypatch, capsys, "forecast", "predict", "--run", "run", "--horizon", "8")
    assert code == 0, err  # a recursive model rolls out any horizon
    assert len(pd.read_csv(sales / "run" / "prediction.csv")) == 8


def test_resume_through_the_cli_trains_a_two_epoch_run_on_to_four(sales, monkeypatch, capsys):
    args = ["--data", "sales.csv", "--target", "sales", "--time", "day", "--hidden", "8", "--no-progress"]
    code, _, err = rnnkit(monkeypatch, capsys, "forecast", "train", *args, "--epochs", "2", "--early-stopping", "0",
                          "--run-dir", "run")  # fmt: skip
    assert code == 0, err
    code, out, err = rnnkit(monkeypatch, capsys, "forecast", "train", "--resume", "run", "--epochs", "4",
                            "--no-progress")  # fmt: skip
    assert code == 0, err
    assert pd.read_csv(sales / "run" / "metrics.csv")["epoch"].tolist() == [1, 2, 3, 4]
    assert "(this run)" in out


def test_backtest_through_the_cli_prints_a_row_per_origin_and_method(sales, monkeypatch, capsys):
    code, out, err = rnnkit(monkeypatch, capsys, "forecast", "backtest", "--data", "sales.csv", "--target", "sales",
                            "--time", "day", "--horizon", "2", "--origins", "3", "--no-refit", "--run-dir", "bt",
                            *QUICK)  # fmt: skip
    assert code == 0, err
    table = pd.read_csv(sales / "bt" / "backtest.csv")
    assert table["origin"].tolist() == [1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]
    assert table["timestamp"].tolist()[::4] == ["2023-05-25", "2023-05-27", "2023-05-29"]
    assert "trained once" in out and out.count("seasonal naive") >= 4 and out.count("ETS (A,Ad,A)") == 4


def test_without_statsmodels_the_cli_prints_one_line_for_the_missing_ets(sales, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "statsmodels.tsa.exponential_smoothing.ets", None)  # import raises ImportError
    args = ["--data", "sales.csv", "--target", "sales", "--time", "day", "--horizon", "2", *QUICK]
    code, out, err = rnnkit(monkeypatch, capsys, "forecast", "train", *args, "--run-dir", "run")
    assert code == 0, err
    assert out.count("ETS baseline left out: pip install 'rnnkit[forecast]'") == 1 and "ETS (" not in out
    code, out, err = rnnkit(monkeypatch, capsys, "forecast", "backtest", *args, "--origins", "2", "--no-refit",
                            "--run-dir", "bt")  # fmt: skip
    assert code == 0, err
    assert out.count("ETS baseline left out: pip install 'rnnkit[forecast]'") == 1 and out.count("ETS") == 1


def bad_csv(tmp_path, kind: str) -> str:
    frame = write_sales(tmp_path / "sales.csv")
    if kind == "nan":
        frame.loc[40, "sales"] = np.nan
    elif kind == "text":
        frame["sales"] = frame["sales"].astype(object)
        frame.loc[12, "sales"] = "n/a?"
    elif kind == "duplicate":
        frame.loc[31, "day"] = frame.loc[30, "day"]
    elif kind == "short":
        frame = frame.iloc[:15]
    frame.to_csv(tmp_path / f"{kind}.csv", index=False)
    return f"{kind}.csv"


DATA = ["--target", "sales", "--time", "day"]
BAD_INPUT = {
    "missing column": (["--data", "sales.csv", "--target", "units"],
                       "Column 'units' not found in 'sales.csv'. Expected one of ['day', 'sales', 'price']"),
    "NaN without --fill": (["--data", "nan.csv", *DATA], "1 NaN or Inf value(s) in 'nan.csv', the first in column "
                                                         "'sales' at row 40 (2023-02-10"),
    "non-numeric value": (["--data", "text.csv", *DATA], "Column 'sales' holds a value that is not a number at row 12"),
    "duplicated timestamp": (["--data", "duplicate.csv", *DATA], "Duplicated timestamp 2023-01-31"),
    "shorter than window + horizon": (["--data", "short.csv", *DATA, "--window", "10", "--horizon", "6"],
                                      "The series has 15 points, fewer than window + horizon = 10 + 6 = 16"),
    "unknown dataset": (["--dataset", "sunspot"], "Unknown dataset. Expected one of ['airline', 'co2', 'elnino', "
                                                  "'nile', 'sunspots']. Received: name='sunspot'"),
    "recursive with covariates": (["--data", "sales.csv", *DATA, "--covariates", "price", "--strategy", "recursive"],
                                  "The recursive strategy feeds each forecast back as the next input row, so it "
                                  "cannot use covariates"),
    "no data": ([], "Give --data CSV with --target COLUMN, or --dataset NAME"),
    "missing file": (["--data", "nowhere.csv", *DATA], "No such file: 'nowhere.csv'."),
    "bad hidden sizes": (["--data", "sales.csv", *DATA, "--hidden", "32,x"],
                         "Expected hidden sizes as comma-separated whole numbers, e.g. 50,100. Received: '32,x'"),
    "unknown strategy": (["--data", "sales.csv", *DATA, "--strategy", "mimo"],
                         "Expected strategy to be one of ['recursive', 'direct', 'seq2seq']. Received: "
                         "strategy='mimo'"),
    "a test part shorter than the horizon": (["--data", "sales.csv", *DATA, "--horizon", "23"],
                                             "The test part has 22 points, fewer than horizon = 23"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_one_clear_line_with_exit_code_2_and_leaves_no_run(tmp_path, monkeypatch, capsys, case):
    monkeypatch.chdir(tmp_path)
    for kind in ("nan", "text", "duplicate", "short"):
        bad_csv(tmp_path, kind)
    args, message = BAD_INPUT[case]
    code, out, err = rnnkit(monkeypatch, capsys, "forecast", "train", *args, "--no-progress")
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[0].startswith("rnnkit: error: ") and message in lines[0], err
    assert lines[1:] == ["hint: run with --verbose for the full traceback"]
    assert "Traceback" not in err + out
    assert not (tmp_path / "runs").exists()


def test_predict_and_resume_of_a_directory_that_is_no_run_are_clear_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    for args in (["predict", "--run", "empty"], ["train", "--resume", "empty", "--no-progress"]):
        code, _, err = rnnkit(monkeypatch, capsys, "forecast", *args)
        assert code == 2 and "'empty' is not a run directory (no config.json)." in err and "Traceback" not in err


def test_bench_forecast_reports_fit_and_plain_loop_windows_per_second_for_each_size(monkeypatch):
    import json

    from rnnkit.bench import forecast as bench

    monkeypatch.setattr(bench, "POINTS", 400)  # a short epoch: this checks the report, not the speed
    result = CliRunner().invoke(app, ["bench", "forecast", "--sizes", "small,medium", "--repeats", "1", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [row["size"] for row in rows] == ["small", "medium"]
    for row in rows:
        assert row["windows"] == 400 * 7 // 10 - bench.WINDOW - bench.HORIZON + 1
        assert row["fit_windows_per_s"] > 0 and row["plain_windows_per_s"] > 0
        assert row["ratio"] == row["fit_windows_per_s"] / row["plain_windows_per_s"]


def test_future_covariates_and_calendar_through_the_cli_and_predict_reads_future_from_a_csv(sales, monkeypatch,
                                                                                          capsys):  # fmt: skip
    code, out, err = rnnkit(monkeypatch, capsys, "forecast", "train", "--data", "sales.csv", "--target", "sales",
                            "--time", "day", "--future-covariates", "price", "--calendar", "--horizon", "2",
                            "--run-dir", "run", *QUICK)  # fmt: skip
    assert code == 0, err
    assert "(this run)" in out
    code, out, err = rnnkit(monkeypatch, capsys, "forecast", "predict", "--run", "run")
    assert code == 2 and "reads the future covariates ['price']" in err and "--future FILE" in err
    pd.DataFrame({"price": [1.0, 1.1]}).to_csv(sales / "prices.csv", index=False)
    code, out, err = rnnkit(monkeypatch, capsys, "forecast", "predict", "--run", "run", "--future", "prices.csv")
    assert code == 0, err
    assert pd.read_csv(sales / "run" / "prediction.csv")["timestamp"].tolist() == ["2023-05-31", "2023-06-01"]
