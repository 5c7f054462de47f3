"""Forecast metrics against hand-computed values and loops, naive baselines that forecast the windows a
model is scored on from the past alone, the ETS baseline against statsmodels' own smoothing of each window's
past with parameters fitted on the training rows alone, season detection, and the score table."""

from __future__ import annotations

import math
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.data.series import WindowDataset, load_series
from rnnkit.forecast.metrics import (
    detect_season,
    ets_forecast,
    ets_spec,
    mae,
    mape,
    mase,
    naive_forecast,
    rmse,
    score_table,
    seasonal_naive_forecast,
    smape,
)


def brute_force_seasonal_naive(values: np.ndarray, starts, horizon: int, season: int) -> np.ndarray:
    """For each target row t + h, the latest row one or more whole seasons back that lies before t."""
    out = []
    for t in starts:
        steps = []
        for h in range(horizon):
            back = 1
            while t + h - back * season >= t:
                back += 1
            steps.append(values[t + h - back * season])
        out.append(steps)
    return np.array(out, dtype=values.dtype).reshape(len(starts), horizon, *values.shape[1:])


def seasonal_naive_scale_by_loop(train: np.ndarray, season: int) -> float:
    total = 0.0
    for t in range(season, len(train)):
        total += abs(train[t] - train[t - season])
    return total / (len(train) - season)


def noisy_sine(n: int, period: float, noise: float, seed: int) -> np.ndarray:
    return np.sin(2 * np.pi * np.arange(n) / period) + np.random.default_rng(seed).normal(0, noise, n)


# Metrics

Y_TRUE = [2.0, 4.0, 0.0, -1.0]
Y_PRED = [1.0, 5.0, 0.0, 1.0]  # errors 1, 1, 0, 2


@pytest.mark.parametrize(
    "metric, expected",
    [
        (mae, (1 + 1 + 0 + 2) / 4),
        (rmse, math.sqrt((1 + 1 + 0 + 4) / 4)),
        (mape, 100 * (1 / 2 + 1 / 4 + 2 / 1) / 3),  # the entry with y = 0 is left out
        (smape, (200 * 1 / 3 + 200 * 1 / 9 + 0 + 200 * 2 / 2) / 4),  # 0 where y = ŷ = 0
    ],
    ids=["mae", "rmse", "mape", "smape"],
)
def test_each_metric_matches_a_hand_computed_example(metric, expected):
    assert metric(Y_TRUE, Y_PRED) == pytest.approx(expected, rel=1e-12)


def test_mase_divides_the_mae_by_the_in_sample_naive_error():
    y_train = [1.0, 3.0, 2.0, 5.0, 4.0]  # one-step errors 2, 1, 3, 1: scale 7 / 4
    assert mase([4.0, 6.0, 5.0], [5.0, 5.0, 5.0], y_train) == pytest.approx((2 / 3) / (7 / 4))
    # season 2: errors |2 - 1|, |5 - 3|, |4 - 2| = 1, 2, 2: scale 5 / 3
    assert mase([4.0, 6.0, 5.0], [5.0, 5.0, 5.0], y_train, season=2) == pytest.approx((2 / 3) / (5 / 3))


def test_smape_stays_within_0_and_200_percent():
    rng = np.random.default_rng(0)
    y, f = rng.normal(size=500), rng.normal(size=500)
    f[:50] = -y[:50]  # opposite signs: 200 % each
    assert 0 <= smape(y, f) <= 200
    assert smape(y[:50], f[:50]) == pytest.approx(200)
    assert smape(y, y) == 0


@pytest.mark.parametrize("metric", [mae, rmse, mape, smape])
def test_metrics_average_over_every_entry_whatever_the_shape(metric):
    rng = np.random.default_rng(1)
    y, f = rng.normal(size=(6, 4, 3)), rng.normal(size=(6, 4, 3))
    flat = metric(y.ravel(), f.ravel())
    assert metric(y, f) == pytest.approx(flat, rel=1e-12)
    assert metric(y.reshape(24, 3), f.reshape(24, 3)) == pytest.approx(flat, rel=1e-12)
    assert metric(y.reshape(72), f.reshape(72)) == pytest.approx(flat, rel=1e-12)


def test_mase_with_one_training_column_is_the_same_for_every_shape():
    rng = np.random.default_rng(2)
    y, f, train = rng.normal(size=(5, 4, 2)), rng.normal(size=(5, 4, 2)), rng.normal(size=30)
    flat = mase(y.ravel(), f.ravel(), train, season=3)
    assert mase(y, f, train, season=3) == pytest.approx(flat, rel=1e-12)
    assert mase(y.reshape(10, 4), f.reshape(10, 4), train[:, None], season=3) == pytest.approx(flat, rel=1e-12)


def test_metrics_accept_torch_tensors_of_any_float_dtype():
    rng = np.random.default_rng(3)
    y, f, train = rng.normal(size=(4, 3)), rng.normal(size=(4, 3)), rng.normal(size=20)
    as_tensor = torch.tensor(f, dtype=torch.float64, requires_grad=True)
    for metric in (mae, rmse, mape, smape):
        assert metric(torch.from_numpy(y), as_tensor) == pytest.approx(metric(y, f), rel=1e-12)
    assert mase(torch.from_numpy(y).float(), torch.from_numpy(f).float(), torch.from_numpy(train)) == pytest.approx(
        mase(y, f, train), rel=1e-6
    )


@pytest.mark.parametrize("season", [1, 4])
def test_mase_scale_is_the_in_sample_seasonal_naive_error_computed_by_a_loop(season):
    rng = np.random.default_rng(season)
    train = rng.normal(size=(25, 3)).cumsum(axis=0)  # three targets
    y, f = rng.normal(size=(7, 5, 3)), rng.normal(size=(7, 5, 3))
    per_column = [
        np.mean(np.abs(y[..., j] - f[..., j])) / seasonal_naive_scale_by_loop(train[:, j], season) for j in range(3)
    ]
    assert mase(y, f, train, season) == pytest.approx(np.mean(per_column), rel=1e-12)
    one = mase(y[..., 0], f[..., 0], train[:, 0], season)
    scale = seasonal_naive_scale_by_loop(train[:, 0], season)
    assert one == pytest.approx(np.mean(np.abs(y[..., 0] - f[..., 0])) / scale, rel=1e-12)


# Baselines


@settings(max_examples=80, deadline=None)
@given(
    n=st.integers(1, 40),
    columns=st.sampled_from([None, 1, 3]),
    season=st.integers(1, 8),
    horizon=st.integers(1, 20),
    data=st.data(),
)
def test_seasonal_naive_forecasts_equal_a_brute_force_loop(n, columns, season, horizon, data):
    season = min(season, n)
    starts = data.draw(st.lists(st.integers(season, n), max_size=6), label="targets_start")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    values = np.random.default_rng(seed).normal(size=(n,) if columns is None else (n, columns))
    forecast = seasonal_naive_forecast(values, np.array(starts, dtype=np.int64), horizon, season)
    expected = brute_force_seasonal_naive(values, starts, horizon, season)
    assert forecast.shape == (len(starts), horizon, *values.shape[1:])
    np.testing.assert_array_equal(forecast, expected)
    naive = naive_forecast(values, np.array(starts, dtype=np.int64), horizon)
    np.testing.assert_array_equal(naive, brute_force_seasonal_naive(values, starts, horizon, 1))


def test_naive_forecast_repeats_the_last_value_before_the_targets():
    values = np.arange(20.0).reshape(10, 2)
    forecast = naive_forecast(values, targets_start=[1, 5, 10], horizon=3)
    assert forecast.shape == (3, 3, 2)
    for i, t in enumerate([1, 5, 10]):
        for h in range(3):
            np.testing.assert_array_equal(forecast[i, h], values[t - 1])


@pytest.mark.parametrize("columns", [None, 2])
def test_baselines_never_read_a_row_at_or_after_the_first_target(columns):
    n = 24
    values = np.random.default_rng(4).normal(size=(n,) if columns is None else (n, columns)).astype(np.float32)
    for season in range(1, 8):
        for horizon in (1, season, season + 1, 3 * season + 2):
            for t in range(season, n + 1):
                planted = values.copy()
                planted[t:] = np.nan  # the future, unknown at forecast time
                forecast = seasonal_naive_forecast(planted, [t], horizon, season)
                assert np.isfinite(forecast).all(), (season, horizon, t)
                np.testing.assert_array_equal(forecast, seasonal_naive_forecast(values, [t], horizon, season))
                if season == 1:
                    assert np.isfinite(naive_forecast(planted, [t], horizon)).all()


def test_baselines_forecast_the_windows_of_a_window_dataset_from_their_inputs():
    values = np.random.default_rng(5).normal(size=(40, 2)).astype(np.float32)
    window, horizon, season = 6, 4, 3
    windows = WindowDataset(values, n_targets=2, window=window, horizon=horizon, start=20)
    starts = windows.first_target + np.arange(len(windows))
    naive = naive_forecast(values, starts, horizon)
    seasonal = seasonal_naive_forecast(values, starts, horizon, season)
    for i in range(len(windows)):
        inputs, targets = windows[i]
        assert naive[i].shape == seasonal[i].shape == tuple(targets.shape)
        np.testing.assert_array_equal(naive[i], np.repeat(inputs[-1:].numpy(), horizon, axis=0))
        # season <= window: the seasonal forecast is the inputs' last season, repeated
        np.testing.assert_array_equal(seasonal[i], inputs[window - season + np.arange(horizon) % season].numpy())


def test_baselines_keep_the_dtype_of_float_values_and_accept_no_windows():
    values = np.arange(10, dtype=np.float32)
    assert naive_forecast(values, [3], 2).dtype == np.float32
    assert naive_forecast(np.arange(10), [3], 2).dtype == np.float64
    assert seasonal_naive_forecast(values.reshape(5, 2), [], 4, season=2).shape == (0, 4, 2)


# ETS


def ets_series(n: int = 90, seed: int = 0) -> np.ndarray:
    """A trend, a season of 6 and noise."""
    t = np.arange(n)
    return 5 + 0.1 * t + 2 * np.sin(2 * np.pi * t / 6) + np.random.default_rng(seed).normal(0, 0.3, n)


def statsmodels_ets(y: np.ndarray, season: int, train_end: int):
    """statsmodels' ETSModel of y, of the ets_spec of a training part of train_end rows (its warnings silenced)."""
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    seasonal = {"seasonal": "add", "seasonal_periods": season} if ets_spec(season, train_end) == "A,Ad,A" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ETSModel(y, error="add", trend="add", damped_trend=True, **seasonal)


def fitted_ets_params(y_train: np.ndarray, season: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return statsmodels_ets(y_train, season, len(y_train)).fit(disp=False, return_params=True)


@pytest.mark.parametrize("season, spec", [(6, "A,Ad,A"), (1, "A,Ad,N"), (40, "A,Ad,N")])  # 40: under two seasons
def test_ets_forecasts_equal_statsmodels_smoothing_each_windows_past_with_the_training_fit(season, spec):
    y = ets_series()
    train_end, horizon = 60, 8
    assert ets_spec(season, train_end) == spec
    starts = [12, 30, 59, 60, 61, 75, 90]  # inside the training part, at its end, after it, past the end of y
    forecast = ets_forecast(y, train_end, starts, horizon, season)
    assert forecast.shape == (len(starts), horizon) and forecast.dtype == np.float64
    params = fitted_ets_params(y[:train_end], season)
    for i, t in enumerate(starts):  # statsmodels smoothing the past of the window alone, the parameters fixed
        expected = statsmodels_ets(y[:t], season, train_end).smooth(params).forecast(horizon)
        np.testing.assert_allclose(forecast[i], expected, rtol=1e-8, err_msg=f"t={t}")


def test_ets_forecasts_from_the_first_rows_use_the_fitted_initial_season_as_statsmodels_predicts():
    y = ets_series()
    params = fitted_ets_params(y[:60], 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        smoothed = statsmodels_ets(y, 6, 60).smooth(params)
    starts = [1, 3, 6, 7]  # t < season: the forecast reads seasonal states from before row 0
    forecast = ets_forecast(y, 60, starts, 9, 6)
    for i, t in enumerate(starts):
        np.testing.assert_allclose(forecast[i], smoothed.predict(start=t, end=t + 8, dynamic=True), rtol=1e-8)


def test_ets_fits_one_model_per_target_column():
    y = np.column_stack([ets_series(70, seed=1), 100 - 3 * ets_series(70, seed=2)])
    forecast = ets_forecast(y.astype(np.float32), 50, [50, 60], 4, 6)
    assert forecast.shape == (2, 4, 2) and forecast.dtype == np.float64
    for j in range(2):
        np.testing.assert_array_equal(forecast[..., j], ets_forecast(y[:, j].astype(np.float32), 50, [50, 60], 4, 6))


@pytest.fixture
def ets_fits(monkeypatch):
    """Every ETS fit made: (the rows it was given, the parameters it found)."""
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    fits, fit = [], ETSModel.fit

    def recorded(self, *args, **kwargs):
        params = fit(self, *args, **kwargs)
        fits.append((np.array(self.endog), np.array(params)))
        return params

    monkeypatch.setattr(ETSModel, "fit", recorded)
    return fits


def test_ets_parameters_come_from_the_training_rows_and_a_marker_changes_no_forecast_made_before_it(ets_fits):
    clean = ets_series()
    marked = clean.copy()
    marked[70] = 1e6  # in the test span: rows 0..59 train
    starts = [60, 65, 70, 71, 80]
    forecasts = [ets_forecast(y, 60, starts, 5, 6) for y in (clean, marked)]
    (rows_clean, params_clean), (rows_marked, params_marked) = ets_fits
    assert len(rows_clean) == len(rows_marked) == 60 and rows_marked.max() < 1e6
    np.testing.assert_array_equal(params_clean, params_marked)
    np.testing.assert_array_equal(forecasts[0][:3], forecasts[1][:3])  # origins up to row 70: the marker unseen
    assert np.abs(forecasts[1][3:] - forecasts[0][3:]).max() > 1e3  # once observed, it moves the level
    unknown = clean.copy()
    unknown[80:] = np.nan  # rows at or after the last window's first target are never read
    np.testing.assert_array_equal(ets_forecast(unknown, 60, starts, 5, 6), forecasts[0])


def test_ets_failures_are_errors_the_caller_can_catch(monkeypatch):
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    y = ets_series(40)
    monkeypatch.setattr(ETSModel, "fit", lambda self, *args, **kwargs: np.full(len(self.param_names), np.nan))
    with pytest.raises(ValueError, match=r"ETS fit on the training rows gave 6 non-finite forecasts \(target column 0"):
        ets_forecast(y, 30, [30, 35], 3, 1)
    monkeypatch.setitem(sys.modules, "statsmodels.tsa.exponential_smoothing.ets", None)  # not installed
    with pytest.raises(ImportError, match=r"needs statsmodels: pip install 'rnnkit\[forecast\]'"):
        ets_forecast(y, 30, [30], 3, 1)


# Season detection


@pytest.mark.parametrize(
    "freq, expected", [("MS", 12), ("ME", 12), ("QS", 4), ("W", 52), ("D", 7), ("B", 5), ("h", 24), ("2MS", 6)]
)
def test_detect_season_reads_the_frequency_of_a_time_index(freq, expected):
    index = pd.date_range("2000-01-03", periods=120, freq=freq)
    noise = np.random.default_rng(6).normal(size=120)  # the data alone would say 1
    assert detect_season(noise, index) == expected
    assert detect_season(noise, pd.DatetimeIndex(list(index))) == expected  # frequency inferred, not set


def test_detect_season_reads_a_period_index_and_a_loaded_monthly_series():
    assert detect_season(np.zeros(30), pd.period_range("2001-01", periods=30, freq="M")) == 12
    frame = pd.DataFrame({"month": pd.date_range("1990-01-01", periods=48, freq="MS").strftime("%Y-%m-%d"), "y": 1.0})
    series = load_series(frame, target="y", time="month")
    assert detect_season(series.values, series.index) == 12


def test_detect_season_falls_back_to_the_data_for_a_yearly_irregular_or_too_short_index():
    sine = noisy_sine(300, 11, 0.5, seed=7)
    assert detect_season(sine, pd.date_range("1700-01-01", periods=300, freq="YS")) == 11
    irregular = pd.date_range("2000-01-01", periods=301, freq="MS").delete(150)
    assert detect_season(sine, irregular) == 11
    weeks = pd.date_range("2000-01-02", periods=80, freq="W")  # fewer than two seasons of 52
    assert detect_season(sine[:80], weeks) == 11


@pytest.mark.parametrize("seed", range(5))
def test_detect_season_finds_the_period_of_a_noisy_sine(seed):
    assert detect_season(noisy_sine(300, 11, 0.5, seed)) == 11  # like yearly sunspot numbers


def test_detect_season_finds_the_season_of_a_trending_series_and_of_several_columns():
    t = np.arange(144)
    airline = (100 + 2 * t) * (1 + 0.2 * np.sin(2 * np.pi * t / 12)) + np.random.default_rng(8).normal(0, 5, 144)
    assert detect_season(airline) == 12
    two = np.stack([noisy_sine(300, 11, 0.5, seed=9), 3 + 2 * noisy_sine(300, 11, 0.5, seed=10)[::-1]], axis=1)
    assert detect_season(two) == 11


@pytest.mark.parametrize("n", [100, 300, 1000])
def test_detect_season_finds_none_in_white_noise_or_a_random_walk(n):
    for seed in range(5):
        noise = np.random.default_rng(seed).normal(size=n)
        assert detect_season(noise) == 1
        assert detect_season(noise.cumsum()) == 1


def test_detect_season_looks_no_further_than_max_lag_and_finds_none_in_a_constant():
    sine = noisy_sine(300, 11, 0.5, seed=11)
    assert detect_season(sine, max_lag=8) == 1
    assert detect_season(sine, max_lag=12) == 11
    assert detect_season(np.full(50, 3.0)) == 1
    assert detect_season(np.arange(50.0)) == 1  # a straight line has no season either
    assert detect_season([1.0, 2.0, 3.0]) == 1


# Score table


def test_score_table_has_one_row_of_every_metric_per_method_in_order():
    train = np.array([1.0, 3.0, 2.0, 5.0, 4.0, 6.0])
    y = np.array([[7.0, 5.0], [5.0, 8.0]])
    forecasts = {
        "seasonal naive": seasonal_naive_forecast(np.concatenate([train, [7.0]]), [6, 7], 2, season=2),
        "naive": naive_forecast(np.concatenate([train, [7.0]]), [6, 7], 2),
        "exact": y,
    }
    rows = score_table(y, forecasts, train, season=2)
    assert [row["method"] for row in rows] == ["seasonal naive", "naive", "exact"]
    assert all(list(row) == ["method", "MAE", "RMSE", "MAPE", "sMAPE", "MASE"] for row in rows)
    naive = rows[1]  # forecasts [[6, 6], [7, 7]]: errors 1, 1, 2, 1
    assert naive["MAE"] == pytest.approx(5 / 4)
    assert naive["RMSE"] == pytest.approx(math.sqrt(7 / 4))
    assert naive["MAPE"] == pytest.approx(100 * (1 / 7 + 1 / 5 + 2 / 5 + 1 / 8) / 4)
    assert naive["sMAPE"] == pytest.approx(200 * (1 / 13 + 1 / 11 + 2 / 12 + 1 / 15) / 4)
    assert naive["MASE"] == pytest.approx((5 / 4) / seasonal_naive_scale_by_loop(train, 2))
    assert rows[2] == {"method": "exact", "MAE": 0.0, "RMSE": 0.0, "MAPE": 0.0, "sMAPE": 0.0, "MASE": 0.0}
    assert all(isinstance(row[key], float) for row in rows for key in row if key != "method")


# Errors


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: mae([1.0, 2.0, 3.0], [1.0, 2.0]), r"same shape\. Received shapes \(3,\) and \(2,\)"),
        (lambda: rmse(np.zeros((2, 3)), np.zeros((3, 2))), r"Received shapes \(2, 3\) and \(3, 2\)"),
        (lambda: mae([], []), r"non-empty .* Received shape \(0,\)"),
        (lambda: mae(1.0, 1.0), r"non-empty .* Received shape \(\)"),
        (lambda: smape([1.0, 2.0], [1.0, np.nan]), r"finite values in y_pred\. Received 1 NaN or Inf"),
        (lambda: mae(["a", "b"], [1.0, 2.0]), r"y_true as an array of numbers"),
        (lambda: mape([0.0, 0.0], [1.0, 2.0]), r"MAPE is undefined when every entry of y_true is 0"),
        (lambda: mase([1.0], [2.0], [3.0, 3.0, 3.0]), r"seasonal-naive MAE of y_train \(season = 1\) is 0"),
        (lambda: mase([1.0], [2.0], [1.0, 2.0, 1.0, 2.0], season=2), r"\(season = 2\) is 0"),
        (lambda: mase(np.ones((2, 2)), np.zeros((2, 2)), [[1.0, 5.0], [2.0, 5.0]]), r"is 0 in column 1"),
        (lambda: mase([1.0], [2.0], [1.0, 2.0], season=2), r"y_train longer than season = 2"),
        (lambda: mase([1.0], [2.0], [1.0, 2.0], season=0), r"season to be a whole number >= 1\. Received: season=0"),
        (lambda: mase([1.0], [2.0], np.ones((3, 1, 1))), r"y_train of shape \(n,\) or \(n, k\)"),
        (
            lambda: mase(np.ones((2, 3)), np.zeros((2, 3)), np.arange(10.0).reshape(5, 2)),
            r"the 2 target columns of y_train\. Received y_true of shape \(2, 3\) and y_train of shape \(5, 2\)",
        ),
        (lambda: naive_forecast(np.arange(5.0), [2, 0], 1), r"at least 1 past row.*Received targets_start\[1\] = 0"),
        (lambda: seasonal_naive_forecast(np.arange(9.0), [5, 3], 2, 4), r"at least 4 past row.*targets_start\[1\] = 3"),
        (lambda: naive_forecast(np.arange(5.0), [6], 1), r"targets_start <= 5.*Received targets_start\[0\] = 6"),
        (lambda: naive_forecast(np.arange(5.0), [2.0], 1), r"whole numbers.*Received float64 of shape \(1,\)"),
        (lambda: naive_forecast(np.arange(5.0), [[2]], 1), r"1-D array of whole numbers.*shape \(1, 1\)"),
        (lambda: naive_forecast(np.arange(5.0), [2], 0), r"horizon to be a whole number >= 1\. Received: horizon=0"),
        (lambda: naive_forecast(np.zeros((5, 2, 2)), [2], 1), r"values of shape \(n,\) or \(n, k\).*\(5, 2, 2\)"),
        (lambda: seasonal_naive_forecast(np.arange(5.0), [2], 1, 1.5), r"season to be a whole number"),
        (
            lambda: ets_forecast(np.arange(5.0), 6, [2], 1, 1),
            r"train_end, the rows .* in \[1, 5\]\. Received: train_end=6",
        ),
        (lambda: ets_forecast(np.arange(5.0), 3, [0], 1, 1), r"ETS forecast needs at least 1 past row"),
        (lambda: ets_forecast(np.arange(5.0), 3, [2], 1, 0), r"season to be a whole number"),
        (lambda: detect_season(np.zeros(10), max_lag=0), r"max_lag.* in \[1, 9\]\. Received: max_lag=0"),
        (lambda: detect_season(np.zeros(10), max_lag=10), r"Received: max_lag=10"),
        (lambda: detect_season(np.zeros(10), pd.date_range("2000", periods=9)), r"one entry per row .*\(10\)"),
        (lambda: detect_season([1.0, np.inf]), r"finite values in values"),
        (lambda: detect_season(np.zeros((4, 2, 2))), r"values of shape \(n,\) or \(n, k\)"),
        (lambda: score_table([1.0], {}, [1.0, 2.0], 1), r"non-empty dict of method name -> forecast"),
        (lambda: score_table([1.0], {"lstm": [1.0, 2.0]}, [1.0, 2.0], 1), r"forecasts\['lstm'\] of the shape"),
    ],
)
def test_bad_input_is_a_value_error_that_says_what_was_expected(call, match):
    with pytest.raises(ValueError, match=match):
        call()
