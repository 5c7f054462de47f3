"""The forecasting task end to end: a run's report equals what its forecasts.csv says, the baselines are the
naive forecasts and the ETS forecasts (fitted on the training rows) of exactly the test windows, nothing from
the test span reaches training, a test forecast reads only its own window, runs resume and repeat, backtests
give a row per origin, predict runs past the end, a failed or missing ETS leaves a note and no crash, and the
demo beats the naive forecast by the promised factor in the promised time."""

from __future__ import annotations

import json
import math
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch

from rnnkit.forecast.metrics import ets_forecast
from rnnkit.forecast.task import backtest, demo, load_run, predict, train

QUICK = {"epochs": 2, "hidden_sizes": (8,), "batch_size": 16, "progress": False}
SEASON = 7


def daily_frame(n: int = 150, seed: int = 0) -> pd.DataFrame:
    """A daily series with a weekly season and a trend, and a price covariate."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    sales = 20 + 0.05 * t + 4 * np.sin(2 * np.pi * t / SEASON) + rng.normal(0, 0.5, n)
    return pd.DataFrame({
        "day": pd.date_range("2023-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
        "sales": sales.round(4), "price": rng.normal(1, 0.1, n).round(4),
    })  # fmt: skip


@pytest.fixture(scope="module")
def csv_run(tmp_path_factory):
    """A direct, gaussian, horizon-3 run on a CSV with a time column and a covariate."""
    root = tmp_path_factory.mktemp("forecast")
    frame = daily_frame()
    frame.to_csv(root / "sales.csv", index=False)
    run = train(root / "sales.csv", target="sales", time="day", covariates="price", window=14, horizon=3,
                head="gaussian", run_dir=root / "run", **QUICK)  # fmt: skip
    return run, frame


def read_forecasts(run) -> pd.DataFrame:
    """forecasts.csv, its origin and timestamp columns parsed as dates when the series has a time index."""
    frame = pd.read_csv(run.run_dir / "forecasts.csv")
    if run.settings["time"] is not None:
        frame[["origin", "timestamp"]] = frame[["origin", "timestamp"]].apply(pd.to_datetime, format="ISO8601")
    return frame


def test_a_run_writes_its_report_forecasts_series_and_plots(csv_run):
    run, frame = csv_run
    names = {p.name for p in run.run_dir.iterdir()}
    assert {"config.json", "series.csv", "report.json", "forecasts.csv", "model.safetensors", "metrics.csv"} <= names
    assert {p.name for p in (run.run_dir / "plots").iterdir()} == {"forecast.png", "fan.png", "error_by_horizon.png",
                                                                   "loss.png", "grad_norms.png"}  # fmt: skip
    report = json.loads((run.run_dir / "report.json").read_text())
    assert report["season"] == SEASON  # detected from the daily index of the training part
    assert report["split"]["points"] == {"train": 105, "validation": 23, "test": 22}
    assert [row["method"] for row in report["metrics"]] == ["model", "naive", "seasonal_naive", "ets"]
    assert report["ets_spec"] == "A,Ad,A" and report["ets_seconds"] > 0 and "ets_note" not in report
    forecasts = read_forecasts(run)
    windows = report["split"]["windows"]["test"]
    assert windows == 22 - 3 + 1 and len(forecasts) == windows * 3
    assert list(forecasts.columns) == ["origin", "timestamp", "step", "target", "truth", "forecast", "lower", "upper",
                                       "naive", "seasonal_naive", "ets"]  # fmt: skip
    days = pd.to_datetime(frame["day"])
    assert forecasts["timestamp"].min() == days[128] and forecasts["timestamp"].max() == days.iloc[-1]
    assert (forecasts["lower"] < forecasts["forecast"]).all() and (forecasts["forecast"] < forecasts["upper"]).all()
    assert (forecasts["timestamp"] - forecasts["origin"]).dt.days.tolist() == forecasts["step"].tolist()


def test_report_metrics_equal_metrics_recomputed_from_forecasts_csv(csv_run):
    run, frame = csv_run
    forecasts = read_forecasts(run)
    report = {row["method"]: row for row in json.loads((run.run_dir / "report.json").read_text())["metrics"]}
    y = forecasts["truth"].to_numpy()
    train_part = frame["sales"].to_numpy(dtype=np.float32).astype(np.float64)[:105]
    scale = np.mean(np.abs(train_part[SEASON:] - train_part[:-SEASON]))
    for method, column in (("model", "forecast"), ("naive", "naive"), ("seasonal_naive", "seasonal_naive"),
                           ("ets", "ets")):  # fmt: skip
        f = forecasts[column].to_numpy()
        expected = {
            "MAE": np.mean(np.abs(y - f)),
            "RMSE": math.sqrt(np.mean((y - f) ** 2)),
            "MAPE": 100 * np.mean(np.abs(y - f) / np.abs(y)),
            "sMAPE": 200 * np.mean(np.abs(y - f) / (np.abs(y) + np.abs(f))),
            "MASE": np.mean(np.abs(y - f)) / scale,
        }
        for metric, value in expected.items():
            assert report[method][metric] == pytest.approx(value, rel=1e-9), (method, metric)


def test_baselines_are_the_naive_and_seasonal_naive_forecasts_of_each_test_window_by_a_loop(csv_run):
    run, frame = csv_run
    forecasts = read_forecasts(run)
    values = frame["sales"].to_numpy(dtype=np.float32).astype(np.float64)
    row_of = {day: i for i, day in enumerate(pd.to_datetime(frame["day"]))}
    for origin, stamp, step, naive, seasonal, truth in forecasts[
        ["origin", "timestamp", "step", "naive", "seasonal_naive", "truth"]
    ].itertuples(index=False):
        t = row_of[stamp]  # the forecast row; the window's last input row is the origin
        assert row_of[origin] == t - step
        assert truth == values[t]
        assert naive == values[t - step]  # the last value before the window's first target
        back = t - SEASON
        while back > row_of[origin]:  # the same weekday, in the latest week wholly before the targets
            back -= SEASON
        assert seasonal == values[back]


def test_the_ets_column_is_fitted_on_the_training_rows_and_forecasts_each_window_from_its_past(csv_run):
    run, frame = csv_run
    forecasts = read_forecasts(run)
    values = frame["sales"].to_numpy(dtype=np.float32).astype(np.float64)
    row_of = {day: i for i, day in enumerate(pd.to_datetime(frame["day"]))}
    starts = np.array([row_of[day] + 1 for day in forecasts["origin"][::3]])  # the first target row of each window
    assert starts.tolist() == list(range(128, 148))
    np.testing.assert_allclose(forecasts["ets"].to_numpy().reshape(-1, 3), ets_forecast(values, 105, starts, 3, SEASON),
                               rtol=1e-12)  # fmt: skip
    for i in (0, 9, 19):  # the rows from the window's first target on, cut away: the same forecast
        t = starts[i]
        alone = ets_forecast(values[:t], 105, [t], 3, SEASON)[0]
        np.testing.assert_allclose(forecasts["ets"][3 * i : 3 * i + 3], alone, rtol=1e-12)


def test_each_test_forecast_reads_only_the_rows_of_its_own_window(csv_run):
    run, frame = csv_run
    loaded = load_run(run.run_dir)
    forecasts = read_forecasts(run)
    raw = frame[["sales", "price"]].to_numpy(dtype=np.float32)
    first_target = 128
    for i in (0, 5, 19):  # windows by hand: rows t-14 .. t-1 of the raw data, scaled with the saved statistics
        t = first_target + i
        window = raw[t - 14 : t].copy()
        future = raw.copy()
        future[t:] = 1e6  # whatever comes after the window is irrelevant
        for rows in (window, future[t - 14 : t]):
            inputs = torch.from_numpy(loaded.scaler.transform(rows).astype(np.float32))[None]
            mean = loaded.scaler.inverse_transform(loaded.model.predict(inputs).mean[0].double().numpy(),
                                                   columns=slice(0, 1))[:, 0]  # fmt: skip
            expected = forecasts[forecasts["origin"] == pd.Timestamp(frame["day"][t - 1])]["forecast"].to_numpy()
            np.testing.assert_allclose(mean, expected, rtol=1e-5)


def test_the_same_seed_gives_the_same_forecasts(csv_run, tmp_path):
    run, frame = csv_run
    again = train(frame, target="sales", time="day", covariates="price", window=14, horizon=3, head="gaussian",
                  run_dir=tmp_path / "again", **QUICK)  # fmt: skip
    assert read_forecasts(again).equals(read_forecasts(run))


def test_a_huge_value_planted_in_the_test_span_never_reaches_training_validation_or_the_scaler(tmp_path):
    rng = np.random.default_rng(1)
    clean = np.sin(np.arange(120) / 4) + 0.1 * rng.normal(size=120)
    marked = clean.copy()
    marked[102] = 1e6  # the first test row: rows 0..83 train, 84..101 validation, 102.. test
    runs = [
        train(y, window=8, horizon=2, run_dir=tmp_path / name, **QUICK)
        for name, y in (("clean", clean), ("marked", marked))
    ]
    settings = [json.loads((run.run_dir / "config.json").read_text())["forecast"] for run in runs]
    assert settings[0]["split"] == [84, 102]
    assert settings[0]["scaler"] == settings[1]["scaler"]  # fit on the training rows alone
    losses = [pd.read_csv(run.run_dir / "metrics.csv")[["train_loss", "val_loss"]] for run in runs]
    assert losses[0].equals(losses[1])  # training and validation windows never saw the marker
    weights = [run.model.state_dict() for run in runs]
    assert all(torch.equal(weights[0][name], weights[1][name]) for name in weights[0])
    truth = read_forecasts(runs[1])["truth"]
    assert truth.max() == 1e6  # it is there, in the test span, to be found
    ets = [read_forecasts(run)["ets"].to_numpy().reshape(-1, 2) for run in runs]  # (windows, steps)
    np.testing.assert_array_equal(ets[0][0], ets[1][0])  # from row 102, the state after row 101: the marker unseen
    assert np.abs(ets[1][1:] - ets[0][1:]).min() > 1  # later windows have observed it


def test_resume_continues_a_two_epoch_run_to_four_epochs_as_if_never_stopped(tmp_path):
    y = np.sin(np.arange(120) / 4)
    options = {**QUICK, "early_stopping": 0}
    straight = train(y, window=8, run_dir=tmp_path / "straight", **{**options, "epochs": 4})
    first = train(y, window=8, run_dir=tmp_path / "resumed", **options)
    assert first.report["epochs"] == 2
    resumed = train(resume=tmp_path / "resumed", epochs=4, progress=False)
    assert resumed.report["epochs"] == 4
    metrics = [pd.read_csv(run.run_dir / "metrics.csv") for run in (straight, resumed)]
    assert metrics[1]["epoch"].tolist() == [1, 2, 3, 4]
    np.testing.assert_allclose(metrics[1]["train_loss"], metrics[0]["train_loss"], rtol=1e-6)
    assert read_forecasts(resumed).equals(read_forecasts(straight))


def test_predict_forecasts_horizon_rows_past_the_end_of_the_run_or_of_new_data(csv_run, tmp_path):
    run, frame = csv_run
    out = predict(run.run_dir)
    assert out["step"].tolist() == [1, 2, 3]
    assert list(out["timestamp"]) == list(pd.date_range("2023-05-31", periods=3, freq="D"))
    assert list(out.columns) == ["step", "timestamp", "target", "forecast", "lower", "upper"]
    shorter = frame.iloc[:100]
    shorter.to_csv(tmp_path / "first_100.csv", index=False)
    out = predict(run.run_dir, tmp_path / "first_100.csv")
    assert out["timestamp"].iloc[0] == pd.Timestamp(frame["day"][100])
    with pytest.raises(ValueError, match=r"only strategy='recursive' rolls out any horizon"):
        predict(run.run_dir, horizon=5)


def test_backtest_gives_a_row_per_origin_and_method_and_refits_at_each_origin(tmp_path):
    rng = np.random.default_rng(2)
    y = 10 + np.sin(np.arange(140) * 2 * np.pi / 12) + 0.1 * rng.normal(size=140)
    frame = backtest(y, origins=3, horizon=4, window=12, run_dir=tmp_path / "bt", **QUICK)
    assert len(frame) == 3 * 4 and frame.groupby("method", sort=False).size().to_dict() == {
        "model": 3, "naive": 3, "seasonal_naive": 3, "ets": 3,
    }  # fmt: skip
    assert frame["timestamp"].tolist()[::4] == ["128", "132", "136"]
    naive = frame[frame["method"] == "naive"]["MAE"].to_numpy()
    values = y.astype(np.float32).astype(np.float64)
    expected = [np.mean(np.abs(values[o : o + 4] - values[o - 1])) for o in (128, 132, 136)]
    np.testing.assert_allclose(naive, expected, rtol=1e-9)
    ets = frame[frame["method"] == "ets"]["MAE"].to_numpy()  # refit on each origin's training part, as the model
    train_end = [round(o * 0.7 / 0.85) for o in (128, 132, 136)]
    expected = [np.mean(np.abs(values[o : o + 4] - ets_forecast(values[:o], e, [o], 4, 12)[0]))
                for o, e in zip((128, 132, 136), train_end)]  # fmt: skip
    np.testing.assert_allclose(ets, expected, rtol=1e-9)
    assert len(list((tmp_path / "bt" / "fits").iterdir())) == 3
    assert pd.read_csv(tmp_path / "bt" / "backtest.csv").shape == (12, 8)
    report = json.loads((tmp_path / "bt" / "report.json").read_text())
    assert report["ets_spec"] == "A,Ad,A" and [row["method"] for row in report["mean_over_origins"]][-1] == "ets"


def test_backtest_without_refit_trains_once_before_the_first_origin(tmp_path):
    y = np.sin(np.arange(120) / 3)
    frame = backtest(y, origins=4, horizon=2, window=8, refit=False, run_dir=tmp_path / "bt", **QUICK)
    assert len(frame) == 4 * 4
    season = json.loads((tmp_path / "bt" / "report.json").read_text())["season"]
    origins = 112 + 2 * np.arange(4)  # ETS fitted once, on the model's training part, each origin from its past
    ets = ets_forecast(y.astype(np.float32).astype(np.float64), round(112 * 0.7 / 0.85), origins, 2, season)
    expected = np.abs(y.astype(np.float32)[origins[:, None] + np.arange(2)] - ets).mean(axis=1)
    np.testing.assert_allclose(frame[frame["method"] == "ets"]["MAE"], expected, rtol=1e-6)
    fits = list((tmp_path / "bt" / "fits").iterdir())
    assert len(fits) == 1
    config = json.loads((fits[0] / "config.json").read_text())
    assert config["backtest"]["origin"] == 120 - 4 * 2


def test_a_failed_ets_fit_leaves_its_row_empty_with_a_note_and_the_run_goes_on(tmp_path, monkeypatch):
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    def fail(self, *args, **kwargs):
        raise RuntimeError("the likelihood is flat")

    monkeypatch.setattr(ETSModel, "fit", fail)
    y = 5 + np.sin(np.arange(120) / 4)
    run = train(y, window=8, horizon=2, run_dir=tmp_path / "run", **QUICK)
    report = json.loads((run.run_dir / "report.json").read_text())
    assert report["metrics"][-1] == {"method": "ets", "MAE": None, "RMSE": None, "MAPE": None, "sMAPE": None,
                                     "MASE": None}  # fmt: skip
    assert report["metrics"][1]["MAE"] is not None  # the naive baseline is scored as before
    assert "ETS fit failed" in report["ets_note"] and "RuntimeError: the likelihood is flat" in report["ets_note"]
    assert read_forecasts(run)["ets"].isna().all()
    frame = backtest(y, origins=2, horizon=2, window=8, refit=False, run_dir=tmp_path / "bt", **QUICK)
    assert frame[frame["method"] == "ets"][["MAE", "MASE"]].isna().all().all()
    assert "RuntimeError: the likelihood is flat" in frame.attrs["ets_note"]


def test_without_statsmodels_the_ets_row_is_left_out_with_a_note(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "statsmodels.tsa.exponential_smoothing.ets", None)  # import raises ImportError
    run = train(np.sin(np.arange(120) / 4), window=8, horizon=2, run_dir=tmp_path / "run", **QUICK)
    assert [row["method"] for row in run.report["metrics"]] == ["model", "naive", "seasonal_naive"]
    assert "pip install 'rnnkit[forecast]'" in run.report["ets_note"] and "ets_spec" not in run.report
    assert "ets" not in read_forecasts(run).columns


def test_demo_beats_the_naive_rmse_at_least_twofold_in_under_two_minutes(tmp_path):
    start = time.perf_counter()
    run = demo(run_dir=tmp_path / "demo", progress=False)
    seconds = time.perf_counter() - start
    d = run.report["demo"]
    print(f"demo: test RMSE {d['test_rmse']:.4f}, naive {d['naive_rmse']:.4f}, factor {d['factor']:.2f}, "
          f"{seconds:.1f} s")  # fmt: skip
    assert d["naive_rmse"] / d["test_rmse"] >= 2
    assert seconds < 120
    assert (tmp_path / "demo" / "plots" / "single_step.png").is_file()
    assert (tmp_path / "demo" / "plots" / "multi_step.png").is_file()


# Future covariates and calendar features


def promo_frame(n: int = 360, seed: int = 3) -> pd.DataFrame:
    """Daily sales that jump by 3 on promotion days, announced ahead: a future covariate."""
    rng = np.random.default_rng(seed)
    promo = (rng.random(n) < 0.3).astype(float)
    sales = 10 + np.sin(np.arange(n) / 5) + 3 * promo + rng.normal(0, 0.1, n)
    return pd.DataFrame({"day": pd.date_range("2022-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
                         "sales": sales.round(4), "promo": promo})  # fmt: skip


def test_a_covariate_known_ahead_is_used_at_the_steps_it_forecasts(tmp_path):
    frame = promo_frame()
    options = {"target": "sales", "time": "day", "window": 8, "horizon": 2, "epochs": 12, "hidden_sizes": (16,),
               "batch_size": 16, "learning_rate": 3e-3, "progress": False, "early_stopping": 0}  # fmt: skip
    past = train(frame, covariates="promo", run_dir=tmp_path / "past", **options)
    known = train(frame, future_covariates="promo", run_dir=tmp_path / "future", **options)
    assert known.model.n_future == 1 and past.model.n_future == 0
    assert known.report["future_covariates"] == ["promo"] and known.settings["future_covariates"] == ["promo"]
    mae = {name: run.report["metrics"][0]["MAE"] for name, run in (("past", past), ("future", known))}
    assert mae["future"] < 0.5 * mae["past"], mae  # a promotion is only predictable when it is known ahead


def test_predict_needs_the_future_covariates_of_the_forecast_steps(tmp_path):
    frame = promo_frame(200)
    run = train(frame, target="sales", time="day", future_covariates="promo", window=8, horizon=3,
                run_dir=tmp_path / "run", **QUICK)  # fmt: skip
    with pytest.raises(ValueError, match=r"reads the future covariates \['promo'\] at each forecast step: give their "
                                         r"values for the 3 step\(s\)"):  # fmt: skip
        predict(run.run_dir)
    with pytest.raises(ValueError, match=r"Expected future covariates for 3 step\(s\).*Received 2 row\(s\)"):
        predict(run.run_dir, future=pd.DataFrame({"promo": [1.0, 0.0]}))
    pd.DataFrame({"promo": [0.0, 0.0, 0.0]}).to_csv(tmp_path / "none.csv", index=False)
    quiet = predict(run.run_dir, future=tmp_path / "none.csv")
    busy = predict(run.run_dir, future=pd.DataFrame({"promo": [1.0, 1.0, 1.0]}))
    assert list(quiet["timestamp"]) == list(pd.date_range("2022-07-20", periods=3, freq="D"))
    assert not np.allclose(quiet["forecast"], busy["forecast"])
    plain = train(frame, target="sales", time="day", window=8, horizon=3, run_dir=tmp_path / "plain", **QUICK)
    with pytest.raises(ValueError, match=r"no future covariates: leave future out"):
        predict(plain.run_dir, future=pd.DataFrame({"promo": [1.0, 1.0, 1.0]}))


def test_calendar_features_are_computed_for_training_resume_and_the_steps_after_the_data(tmp_path):
    months = pd.date_range("2000-01-01", periods=120, freq="MS")
    y = 50 + 10 * np.sin(2 * np.pi * (months.month - 1) / 12) + np.random.default_rng(0).normal(0, 1, 120)
    frame = pd.DataFrame({"month": months.strftime("%Y-%m-%d"), "y": y})
    run = train(frame, target="y", time="month", calendar=True, window=12, horizon=3, strategy="recursive",
                run_dir=tmp_path / "run", **{**QUICK, "early_stopping": 0})  # fmt: skip
    assert run.settings["calendar"] == ["month_of_year"] and run.model.n_future == 2
    assert run.report["future_covariates"] == ["month_of_year_sin", "month_of_year_cos"]
    assert list(pd.read_csv(run.run_dir / "series.csv").columns) == ["month", "y"]  # computed again on loading
    out = predict(run.run_dir, horizon=5)  # recursive: any horizon, the calendar of every step computed
    assert list(out["timestamp"]) == list(pd.date_range("2010-01-01", periods=5, freq="MS"))
    resumed = train(resume=run.run_dir, epochs=3, progress=False)
    assert resumed.report["epochs"] == 3 and resumed.model.n_future == 2
    with pytest.raises(ValueError, match=r"Calendar features need timestamps"):
        train(y, calendar=True, run_dir=tmp_path / "no-time", **QUICK)
    with pytest.raises(ValueError, match=r"spaced 36[56] days apart"):
        train(dataset="nile", calendar=True, run_dir=tmp_path / "yearly", **QUICK)


def test_backtest_reads_the_future_covariates_of_each_block(tmp_path):
    frame = promo_frame(160)
    result = backtest(frame, target="sales", time="day", future_covariates="promo", calendar=True, origins=2,
                      horizon=3, window=8, run_dir=tmp_path / "bt", **QUICK)  # fmt: skip
    assert len(result) == 2 * 4 and result["MAE"].notna().all()
    config = json.loads((tmp_path / "bt" / "fits" / "origin-01" / "config.json").read_text())
    assert config["model"]["n_future"] == 1 + 4  # promo, then day of week and day of year as sine and cosine
