"""Forecast accuracy metrics, and the naive baselines every model's score is printed beside.

    mae, rmse, mape, smape(y_true, y_pred)          ->  float, averaged over every entry
    mase(y_true, y_pred, y_train, season)           ->  MAE / in-sample MAE of the seasonal-naive forecast
    naive_forecast(values, targets_start, H)        ->  (N, H, k): the last value before each window's targets
    seasonal_naive_forecast(values, starts, H, m)   ->  (N, H, k): the last value of the same season before them
    ets_forecast(values, train_end, starts, H, m)   ->  (N, H, k): statsmodels' ETS, fitted on values[:train_end]
    detect_season(values, index)                    ->  m, from the time index's frequency or the autocorrelation
    score_table(y_true, {"naive": ..., "lstm": ...}, y_train, season)  ->  one row of metrics per method

Forecasts and targets are ``(N, H, k)`` (windows, horizon, targets), ``(N, H)`` or ``(N,)``, in
the series' original units.  A score alone says little: MASE divides by the error of the
one-step seasonal-naive forecast on the training series (Hyndman & Koehler, 2006), so below 1
beats it, and the baselines here forecast exactly the windows a model is scored on.  That is
the convention of ``WindowDataset``: a window whose first target row is ``t`` forecasts rows
``t .. t + H - 1`` from rows before ``t``, so for its windows

    targets_start = windows.first_target + np.arange(len(windows))

and ``values`` is ``Series.values`` (unscaled).  No baseline reads a row ``>= t``.
pandas is imported only by ``detect_season``, when it is given a time index, statsmodels only by
``ets_forecast``.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Mapping
from statistics import NormalDist
from typing import Any

import numpy as np
import torch

METRICS = ("MAE", "RMSE", "MAPE", "sMAPE", "MASE")
SIGNIFICANCE = 0.05  # of detect_season's autocorrelation test, over all the lags it tries


def _array(x: Any, name: str) -> np.ndarray:
    """x (a NumPy array, torch tensor or nested sequence) as a float64 array."""
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float64).numpy()
    try:
        return np.asarray(x, dtype=np.float64)
    except (ValueError, TypeError):
        raise ValueError(f"Expected {name} as an array of numbers. Received a {type(x).__name__}") from None


def _finite(x: np.ndarray, name: str) -> None:
    bad = ~np.isfinite(x)
    if bad.any():
        raise ValueError(f"Expected finite values in {name}. Received {int(bad.sum())} NaN or Inf.")


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    """Targets and forecasts as float64 arrays of one non-empty shape, finite."""
    y, f = _array(y_true, "y_true"), _array(y_pred, "y_pred")
    if y.shape != f.shape:
        raise ValueError(f"Expected y_true and y_pred of the same shape. Received shapes {y.shape} and {f.shape}")
    if y.ndim == 0 or y.size == 0:
        raise ValueError(f"Expected non-empty arrays of shape (N,), (N, H) or (N, H, k). Received shape {y.shape}")
    _finite(y, "y_true")
    _finite(f, "y_pred")
    return y, f


def _count(value: Any, name: str) -> int:
    """value as an int >= 1 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"Expected {name} to be a whole number >= 1. Received: {name}={value!r}")
    return int(value)


def mae(y_true: Any, y_pred: Any) -> float:
    """Mean absolute error over every entry, in the units of the series.

    Example:
        >>> mae([1.0, 2.0, 3.0], [2.0, 2.0, 1.0])
        1.0
    """
    y, f = _pair(y_true, y_pred)
    return float(np.mean(np.abs(y - f)))


def rmse(y_true: Any, y_pred: Any) -> float:
    """Root mean squared error over every entry, in the units of the series.

    Example:
        >>> rmse([[0.0, 0.0]], [[3.0, -4.0]])  # sqrt((9 + 16) / 2)
        3.5355339059327378
    """
    y, f = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((y - f) ** 2)))


def mape(y_true: Any, y_pred: Any) -> float:
    """Mean absolute percentage error, ``100 * mean(|y - ŷ| / |y|)``, over the entries where ``y != 0``.

    Entries with ``y == 0`` are left out (their percentage error is unbounded); when every entry
    is 0 there is nothing to average and it is a ValueError.

    Example:
        >>> mape([2.0, 0.0, 4.0], [1.0, 5.0, 5.0])  # (50 % + 25 %) / 2, the 0 left out
        37.5
    """
    y, f = _pair(y_true, y_pred)
    kept = y != 0
    if not kept.any():
        raise ValueError(
            f"MAPE is undefined when every entry of y_true is 0 (it divides by |y_true|). "
            f"Received y_true of shape {y.shape} holding only zeros."
        )
    return float(100 * np.mean(np.abs(y[kept] - f[kept]) / np.abs(y[kept])))


def smape(y_true: Any, y_pred: Any) -> float:
    """Symmetric MAPE on 0..200 %: the mean of ``200 * |y - ŷ| / (|y| + |ŷ|)``, 0 where ``y = ŷ = 0``.

    Example:
        >>> smape([1.0, 0.0, 0.0], [3.0, 0.0, 2.0])  # (100 + 0 + 200) / 3
        100.0
    """
    y, f = _pair(y_true, y_pred)
    total = np.abs(y) + np.abs(f)
    ratio = np.divide(np.abs(y - f), total, out=np.zeros_like(total), where=total > 0)
    return float(200 * np.mean(ratio))


def mase(y_true: Any, y_pred: Any, y_train: Any, season: int = 1) -> float:
    """Mean absolute scaled error: the MAE divided by the MAE of the seasonal-naive one-step
    forecast on the training series, ``mean_t |y_train[t] - y_train[t - season]|`` over
    ``t = season .. n - 1``.  Below 1 beats that forecast, whatever the units.

    ``y_train`` is ``(n,)``, one scale for every entry, or ``(n, k)``, a scale per target column:
    then the last dimension of ``y_true`` holds those k targets and the scaled errors are
    averaged over them (k = 1 gives one scale, for any shape of ``y_true``).  A training series
    that repeats itself exactly every ``season`` steps has scale 0: a ValueError.

    Example:
        >>> y_train = [1.0, 3.0, 2.0, 5.0]  # one-step naive errors 2, 1, 3: scale 2
        >>> mase([4.0, 6.0], [5.0, 5.0], y_train)  # MAE 1
        0.5
    """
    y, f = _pair(y_true, y_pred)
    season = _count(season, "season")
    train = _array(y_train, "y_train")
    if train.ndim not in (1, 2):
        raise ValueError(f"Expected y_train of shape (n,) or (n, k). Received shape {train.shape}")
    if len(train) <= season:
        raise ValueError(
            f"Expected y_train longer than season = {season} (the scale compares rows season apart). "
            f"Received shape {train.shape}"
        )
    _finite(train, "y_train")
    scale = np.mean(np.abs(train[season:] - train[:-season]), axis=0)  # () or (k,)
    if scale.ndim == 1 and len(scale) > 1 and y.shape[-1] != len(scale):
        raise ValueError(
            f"Expected the last dimension of y_true to hold the {len(scale)} target columns of y_train. "
            f"Received y_true of shape {y.shape} and y_train of shape {train.shape}"
        )
    if (scale == 0).any():
        column = "" if scale.ndim == 0 else f" in column {int(np.argmax(scale == 0))}"
        raise ValueError(
            f"MASE is undefined: the in-sample seasonal-naive MAE of y_train (season = {season}) is 0{column}, "
            f"so there is no error scale. Received y_train of shape {train.shape} repeating itself every {season} "
            "step(s)."
        )
    return float(np.mean(np.abs(y - f) / scale))


def _windows(values: Any, targets_start: Any, horizon: int, season: int, method: str) -> tuple[np.ndarray, np.ndarray]:
    """The series (floats as given, integers as float64) and the first target rows, checked: horizon >= 1 and
    ``season <= t <= n`` for each t."""
    v = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    if v.ndim not in (1, 2) or len(v) == 0:
        raise ValueError(f"Expected values of shape (n,) or (n, k), the whole series. Received shape {v.shape}")
    if not (np.issubdtype(v.dtype, np.floating) or np.issubdtype(v.dtype, np.integer)):
        raise ValueError(f"Expected values to be numbers. Received dtype {v.dtype}")
    v = v if np.issubdtype(v.dtype, np.floating) else v.astype(np.float64)
    horizon = _count(horizon, "horizon")
    t = np.asarray(targets_start)
    if t.size == 0:
        t = t.astype(np.int64)
    if t.ndim != 1 or not np.issubdtype(t.dtype, np.integer):
        raise ValueError(
            f"Expected targets_start as a 1-D array of whole numbers, the first target row of each window. "
            f"Received {t.dtype} of shape {t.shape}"
        )
    early, late = np.flatnonzero(t < season), np.flatnonzero(t > len(v))
    if early.size:
        i = int(early[0])
        raise ValueError(
            f"The {method} forecast needs at least {season} past row(s) before each window's targets. "
            f"Received targets_start[{i}] = {int(t[i])}"
        )
    if late.size:
        i = int(late[0])
        raise ValueError(
            f"Expected targets_start <= {len(v)}, the rows of values (t = {len(v)} forecasts past the end). "
            f"Received targets_start[{i}] = {int(t[i])}"
        )
    return v, t


def _seasonal(values: Any, targets_start: Any, horizon: int, season: int, method: str) -> np.ndarray:
    """Row ``t - season + h % season`` of values for each first target row t and step h."""
    v, t = _windows(values, targets_start, horizon, season, method)
    rows = t[:, None] - season + np.arange(horizon) % season  # (N, H), every row in [t - season, t - 1]
    return v[rows]


def naive_forecast(values: Any, targets_start: Any, horizon: int) -> np.ndarray:
    """The last value before each window's targets, repeated over the horizon.

    ``values`` is the whole series ``(n, k)`` or ``(n,)`` in its original units, ``targets_start``
    the first target row t of each of N windows (each ``1 <= t <= n``; ``t = n`` forecasts past
    the end).  Returns ``(N, horizon, k)`` (or ``(N, horizon)``) holding ``values[t - 1]``.

    Example:
        >>> values = np.array([10.0, 11.0, 12.0, 13.0, 14.0])
        >>> naive_forecast(values, targets_start=[2, 4], horizon=3).tolist()
        [[11.0, 11.0, 11.0], [13.0, 13.0, 13.0]]
    """
    return _seasonal(values, targets_start, horizon, 1, "naive")


def seasonal_naive_forecast(values: Any, targets_start: Any, horizon: int, season: int) -> np.ndarray:
    """The last value of the same season before each window's targets: row ``t + h`` is forecast by
    ``values[t + h - season * ceil((h + 1) / season)]``, one or more seasons back and always before t.

    Shapes as in ``naive_forecast`` (which is this with ``season = 1``); each window needs
    ``season <= t <= n`` (a full season of past rows).

    Example:
        >>> values = np.array([1.0, 2.0, 3.0, 4.0, 10.0, 20.0, 30.0, 40.0])  # season 4
        >>> seasonal_naive_forecast(values, targets_start=[8], horizon=6, season=4).tolist()
        [[10.0, 20.0, 30.0, 40.0, 10.0, 20.0]]
    """
    return _seasonal(values, targets_start, horizon, _count(season, "season"), "seasonal naive")


def ets_spec(season: int, train_rows: int) -> str:
    """The ETS model ``ets_forecast`` fits, as error,trend,season in the usual letters: ``"A,Ad,A"``
    (additive error, additive damped trend, additive season of ``season`` rows) when ``season > 1``
    and the ``train_rows`` it is fitted on hold at least two full seasons, else ``"A,Ad,N"`` (no season).

    Example:
        >>> ets_spec(12, 101), ets_spec(52, 80), ets_spec(1, 70)
        ('A,Ad,A', 'A,Ad,N', 'A,Ad,N')
    """
    season, train_rows = _count(season, "season"), _count(train_rows, "train_rows")
    return "A,Ad,A" if season > 1 and train_rows >= 2 * season else "A,Ad,N"


def ets_forecast(values: Any, train_end: int, targets_start: Any, horizon: int, season: int) -> np.ndarray:
    """Forecasts of an exponential smoothing state-space model (statsmodels' ``ETSModel``, the
    ``ets_spec``: additive error, additive damped trend and, with two full seasons of training
    rows, additive season ``season``), one model per target column.

    Its parameters (smoothing weights, damping, initial states) are fitted by maximum likelihood
    on ``values[:train_end]`` alone.  With them fixed, the series up to the last window's targets
    is filtered once, and the window whose first target row is t is forecast from the state after
    row ``t - 1`` (level l, trend b, season s), which depends on ``values[:t]`` only::

        ŷ[t - 1 + h] = l[t - 1] + (φ + φ² + ... + φ^h) b[t - 1] + s[t - 1 + h - m ceil(h / m)]

    the same as ``ETSModel(values[:t], ...).smooth(params).forecast(horizon)`` (which statsmodels
    builds for t >= 2m only; from t < m, s[-m] .. s[-1] are the fitted initial season, as in its
    dynamic ``predict``).  No row at or after ``max(train_end, largest t)`` is read; origins t
    inside the training part are forecast with parameters fitted on rows after them too.

    Shapes as in ``naive_forecast``: ``values`` ``(n, k)`` or ``(n,)`` in the series' units,
    finite, each ``1 <= t <= n`` and ``1 <= train_end <= n``; returns float64 ``(N, horizon, k)``
    (or ``(N, horizon)``).  Needs statsmodels (``pip install 'rnnkit[forecast]'``): an ImportError
    without it.  A fit that fails raises statsmodels' error, forecasts that are not finite a
    ValueError; statsmodels' warnings (ConvergenceWarning, ...) are silenced.

    Example:
        >>> t = np.arange(48)
        >>> y = 10 + 0.5 * t + np.tile([2.0, -1.0, 0.0, -1.0], 12) + 0.1 * np.sin(1.7 * t)  # season 4
        >>> forecast = ets_forecast(y, train_end=40, targets_start=[40, 44], horizon=3, season=4)
        >>> forecast.shape, bool(np.abs(forecast - [y[40:43], y[44:47]]).max() < 0.2)  # naive: off by 3.5
        ((2, 3), True)
    """
    v, t = _windows(values, targets_start, horizon, 1, "ETS")
    if isinstance(train_end, bool) or not isinstance(train_end, numbers.Integral) or not 1 <= train_end <= len(v):
        raise ValueError(f"Expected train_end, the rows the ETS model is fitted on, in [1, {len(v)}]. "
                         f"Received: train_end={train_end!r}")  # fmt: skip
    train_end = int(train_end)
    m = season if ets_spec(season, train_end) == "A,Ad,A" else 0
    read = max(train_end, int(t.max(initial=0)))  # the state after row t - 1 is all a forecast from t needs
    y = v[:read].astype(np.float64).reshape(read, -1)
    _finite(y, "values")
    try:
        from statsmodels.tsa.exponential_smoothing.ets import ETSModel
    except ImportError:
        raise ImportError("The ETS baseline needs statsmodels: pip install 'rnnkit[forecast]'") from None
    options: dict[str, Any] = {"error": "add", "trend": "add", "damped_trend": True}
    if m:
        options |= {"seasonal": "add", "seasonal_periods": m}
    steps = np.arange(1, int(horizon) + 1)
    out = np.empty((len(t), len(steps), y.shape[1]))
    for j in range(y.shape[1]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = ETSModel(y[:train_end, j], **options)
            params = model.fit(disp=False, return_params=True)
            _, states = ETSModel(y[:, j], **options).smooth(params, return_raw=True)  # states[i]: after row i
        fitted = dict(zip(model.param_names, np.asarray(params, dtype=np.float64)))
        damping = np.cumsum(fitted["damping_trend"] ** steps)  # φ + ... + φ^h
        forecast = states[t - 1, 0][:, None] + damping * states[t - 1, 1][:, None]
        if m:
            initial = [fitted[f"initial_seasonal.{i}"] for i in reversed(range(m))]  # s[-m] .. s[-1]
            seasonal = np.concatenate([initial, states[:, 2]])  # seasonal[m + i] = s[i]
            forecast += seasonal[m + t[:, None] - 1 + steps - m * -(-steps // m)]
        out[:, :, j] = forecast
    bad = ~np.isfinite(out)
    if bad.any():
        column = int(np.argwhere(bad)[0, 2])
        raise ValueError(f"The ETS fit on the training rows gave {int(bad.sum())} non-finite forecasts (target column "
                         f"{column}): it diverged.")  # fmt: skip
    return out if v.ndim == 2 else out[..., 0]


def detect_season(values: Any, index: Any = None, max_lag: int | None = None) -> int:
    """The season length m of a series (``(n,)`` or ``(n, k)``), or 1 when it has none.

    From the time index when it has a known frequency (set, or inferred from regular
    timestamps): monthly 12, quarterly 4, weekly 52, daily 7, business-daily 5, hourly 24, and a
    multiple of these divides them (every 2 months: 6).  It is used when the series holds at
    least two such seasons.  Otherwise (no index, yearly or other frequencies, irregular
    timestamps, a short series) the season is read from the data:

    1. remove a least-squares line from each column (a trend would swamp the autocorrelation),
       and average the columns' autocorrelation functions r(l);
    2. candidates are the peaks ``r(l-1) < r(l) >= r(l+1)`` at lags ``2 <= l <= max_lag``
       (default n // 2: at least two seasons seen);
    3. a peak is significant when r(l) exceeds z standard errors by Bartlett's formula,
       ``sqrt((1 + 2 * sum_j r(j)^2) / n)`` summed over the lags ``j < l`` before r first drops
       to 0 (the short-range dependence: a season's own peaks would inflate it).  For white
       noise that is 1/sqrt(n), the usual band of 2/sqrt(n) at z = 2; here z is the one-sided
       5 % level corrected for the number of lags tried (z = 3.4 for 150 lags), so that noise
       rarely shows a season, and a persistent series (random walk, AR(0.9)) gets an error wide
       enough that the slow wander of its autocorrelation does not pass for one either;
    4. the season is the lag of the highest significant peak, or 1 if there is none.  Its
       multiples peak nearly as high and noise may put one on top, so the smallest significant
       peak that it repeats (within one lag) and that is below it by less than its own
       threshold is taken instead: 11, not 22 or 55.

    ``max_lag`` bounds this data rule only.  A sine of period 11 plus noise gives 11; the yearly
    sunspot numbers of 1700-2008 give 10 (their autocorrelation peaks there; the cycle averages
    about 11 years); monthly airline passengers give 12 with or without their index.

    Example:
        >>> import pandas as pd
        >>> detect_season(np.zeros(36), pd.date_range("2020-01-01", periods=36, freq="MS"))
        12
        >>> detect_season(np.sin(2 * np.pi * np.arange(100) / 7))
        7
        >>> detect_season(np.random.default_rng(0).normal(size=200))
        1
    """
    x = _array(values, "values")
    if x.ndim not in (1, 2) or len(x) == 0:
        raise ValueError(f"Expected values of shape (n,) or (n, k). Received shape {x.shape}")
    _finite(x, "values")
    n = len(x)
    if max_lag is None:
        max_lag = n // 2
    elif isinstance(max_lag, bool) or not isinstance(max_lag, numbers.Integral) or not 1 <= max_lag < n:
        raise ValueError(f"Expected max_lag, the longest season to look for, in [1, {n - 1}]. Received: {max_lag=}")
    if index is not None:
        season = _season_of_index(index, n)
        if season is not None and n >= 2 * season:
            return season
    return _season_of_autocorrelation(x.reshape(n, -1), int(max_lag))


def _season_of_index(index: Any, n: int) -> int | None:
    """The season implied by the frequency of a DatetimeIndex or PeriodIndex; None if it implies none."""
    import pandas as pd

    index = index if isinstance(index, pd.Index) else pd.Index(index)
    if len(index) != n:
        raise ValueError(f"Expected an index with one entry per row of values ({n}). Received {len(index)} entries")
    if isinstance(index, pd.PeriodIndex):
        offset = index.freq
    elif isinstance(index, pd.DatetimeIndex):
        try:
            offset = index.freq or pd.DatetimeIndex(index, freq="infer").freq
        except (ValueError, TypeError):
            offset = None
    else:
        return None
    o = pd.offsets
    per_unit = [
        ((o.MonthBegin, o.MonthEnd, o.BusinessMonthBegin, o.BusinessMonthEnd), 12),
        ((o.QuarterBegin, o.QuarterEnd, o.BQuarterBegin, o.BQuarterEnd), 4),
        ((o.Week,), 52),
        ((o.BusinessDay,), 5),
        ((o.Day,), 7),
        ((o.Hour,), 24),
    ]
    for kinds, season in per_unit:
        if isinstance(offset, kinds):
            step = abs(int(offset.n))
            if step >= 1 and season % step == 0 and season // step >= 2:
                return season // step
            return None
    return None


def _season_of_autocorrelation(x: np.ndarray, max_lag: int) -> int:
    """detect_season's data rule on x (n, k)."""
    n = len(x)
    if max_lag < 2 or n < 4:
        return 1
    steps = np.arange(n, dtype=np.float64) - (n - 1) / 2
    design = np.column_stack([np.ones(n), steps])
    residual = x - design @ np.linalg.lstsq(design, x, rcond=None)[0]
    energy = (residual**2).sum(axis=0)
    varying = energy > 1e-12 * max(1.0, float((x**2).sum(axis=0).max()))
    if not varying.any():
        return 1
    residual, energy = residual[:, varying], energy[varying]
    spectrum = np.fft.rfft(residual, n=2 * n, axis=0)  # zero-padded: a linear, not circular, correlation
    r = (np.fft.irfft(np.abs(spectrum) ** 2, n=2 * n, axis=0)[:n] / energy).mean(axis=1)  # r[0] = 1
    last = min(max_lag, n - 2)  # a peak needs its right neighbour
    lags = np.arange(2, last + 1)
    peaks = lags[(r[lags] > r[lags - 1]) & (r[lags] >= r[lags + 1])]
    positive = np.flatnonzero(r[1:] <= 0)
    memory = int(positive[0]) if positive.size else n - 1  # r[1..memory] > 0: the short-range dependence
    squares = np.concatenate([[0.0], np.cumsum(r[1 : memory + 1] ** 2)])  # squares[l - 1] = sum_{j < l} r[j]^2
    z = NormalDist().inv_cdf(1 - SIGNIFICANCE / max(1, last - 1))
    threshold = z * np.sqrt((1 + 2 * squares[np.minimum(peaks - 1, memory)]) / n)
    significant, threshold = peaks[r[peaks] > threshold], threshold[r[peaks] > threshold]
    if not significant.size:
        return 1
    best = int(significant[np.argmax(r[significant])])
    for lag, bar in zip(significant, threshold):  # the smallest season the best peak repeats, as high within noise
        if abs(best - round(best / lag) * lag) <= 1 and r[lag] >= r[best] - bar:
            return int(lag)
    return best


def score_table(y_true: Any, forecasts: Mapping[str, Any], y_train: Any, season: int) -> list[dict]:
    """One row per method, in the order of ``forecasts``: ``{"method", "MAE", "RMSE", "MAPE", "sMAPE", "MASE"}``.

    Each forecast has the shape of ``y_true``; MASE is scaled by ``y_train`` with ``season`` as in
    ``mase``.  A metric that is undefined for these targets (MAPE of all-zero targets, MASE of a
    training series without error) is a ValueError, as in the metric functions.

    Example:
        >>> y_train = np.array([1.0, 2.0, 3.0, 4.0])
        >>> y_true = np.array([[5.0, 6.0]])
        >>> rows = score_table(y_true, {"naive": naive_forecast(y_train, [4], 2), "exact": y_true}, y_train, 1)
        >>> [(row["method"], row["MAE"], row["MASE"]) for row in rows]
        [('naive', 1.5, 1.5), ('exact', 0.0, 0.0)]
    """
    if not isinstance(forecasts, Mapping) or not forecasts:
        raise ValueError(f"Expected forecasts as a non-empty dict of method name -> forecast. Received: {forecasts!r}")
    y = _array(y_true, "y_true")
    rows = []
    for method, forecast in forecasts.items():
        f = _array(forecast, f"forecasts[{method!r}]")
        if f.shape != y.shape:
            raise ValueError(
                f"Expected forecasts[{method!r}] of the shape of y_true, {y.shape}. Received shape {f.shape}"
            )
        scores = (mae(y, f), rmse(y, f), mape(y, f), smape(y, f), mase(y, f, y_train, season))
        rows.append({"method": method, **dict(zip(METRICS, scores))})
    return rows
