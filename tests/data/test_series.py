"""Time series for forecasting: loading and its errors, chronological splits, scalers fitted on the
training part only, and windows whose targets stay inside their split."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import rnnkit.data.series as series_module
from rnnkit.data.series import Scaler, WindowDataset, load_series, make_windows, split_points

MARKER = 1e6


def brute_force_windows(data: np.ndarray, n_targets: int, window: int, horizon: int, start: int, end: int) -> list:
    """Every (inputs, targets) pair whose targets all lie in [start, end), found by trying each step."""
    pairs = []
    for t in range(len(data)):
        if t - window >= 0 and t >= start and t + horizon <= end:
            pairs.append((data[t - window : t], data[t : t + horizon, :n_targets]))
    return pairs


# Leakage


@pytest.mark.parametrize("kind", ["standard", "minmax"])
@pytest.mark.parametrize("where", ["first validation row", "first test row", "last row"])
def test_a_marker_in_a_later_part_never_reaches_earlier_windows_or_the_scaler(kind, where):
    n, window, horizon = 200, 12, 3
    train_end, val_end = 140, 170  # 70 / 15 / 15 %
    at = {"first validation row": train_end, "first test row": val_end, "last row": n - 1}[where]
    rng = np.random.default_rng(0)
    clean = rng.normal(size=(n, 3))  # two targets and a covariate
    marked = clean.copy()
    marked[at] = MARKER
    train, val, test, scaler = make_windows(
        load_series(marked, target=[0, 1], covariates=[2]), window, horizon, scaler=kind
    )
    assert tuple(train[0][0].shape) == (window, 3) and tuple(train[0][1].shape) == (horizon, 2)

    def largest(windows) -> float:  # the largest value, in original units, of any window's inputs or targets
        return max(
            max(scaler.inverse_transform(x).abs().max(), scaler.inverse_transform(y, columns=slice(0, 2)).abs().max())
            for x, y in (windows[i] for i in range(len(windows)))
        )

    before_marker = [train] if at < val_end else [train, val]
    assert all(largest(windows) < MARKER / 2 for windows in before_marker)
    assert largest(val if at < val_end else test) > MARKER / 2  # the marker is there to be found
    # the statistics are those of the training rows alone, as if the marker had never been there
    rows = marked.astype(np.float32).astype(np.float64)[:train_end]
    if kind == "standard":
        shift, scale = rows.mean(axis=0), rows.std(axis=0)
    else:
        shift, scale = rows.min(axis=0), rows.max(axis=0) - rows.min(axis=0)
    np.testing.assert_allclose(scaler.shift, shift, rtol=1e-12)
    np.testing.assert_allclose(scaler.scale, scale, rtol=1e-12)
    *_, unmarked_scaler = make_windows(load_series(clean, target=[0, 1], covariates=[2]), window, horizon, scaler=kind)
    assert scaler.state_dict() == unmarked_scaler.state_dict()


# Windows


@settings(max_examples=80, deadline=None)
@given(n=st.integers(1, 40), window=st.integers(1, 8), horizon=st.integers(1, 5), data=st.data())
def test_windows_equal_brute_force_slices_for_any_length_window_horizon_and_span(n, window, horizon, data):
    start = data.draw(st.integers(0, n - 1), label="start")
    end = data.draw(st.integers(start + 1, n), label="end")
    array = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    expected = brute_force_windows(array, 2, window, horizon, start, end)
    if not expected:
        with pytest.raises(ValueError, match=r"horizon = "):
            WindowDataset(array, 2, window, horizon, start, end)
        return
    windows = WindowDataset(array, 2, window, horizon, start, end)
    assert len(windows) == len(expected)
    for (x, y), (want_x, want_y) in zip((windows[i] for i in range(len(windows))), expected, strict=True):
        assert x.dtype == y.dtype == torch.float32
        assert np.array_equal(x.numpy(), want_x) and np.array_equal(y.numpy(), want_y)
    with pytest.raises(IndexError):
        windows[len(windows)]


def test_validation_and_test_inputs_reach_back_but_targets_stay_inside_their_part():
    train, val, test, _ = make_windows(load_series(np.arange(100.0)), window=10, horizon=2, scaler="none")
    assert (len(train), len(val), len(test)) == (59, 14, 14)  # targets from row 10, 70, 85; last target row 69, 84, 99
    first = [(parts[0][0][:, 0].tolist(), parts[0][1][:, 0].tolist()) for parts in (train, val, test)]
    assert first == [
        (list(range(0, 10)), [10, 11]),
        (list(range(60, 70)), [70, 71]),
        (list(range(75, 85)), [85, 86]),
    ]
    assert [parts[len(parts) - 1][1][:, 0].tolist() for parts in (train, val, test)] == [[68, 69], [83, 84], [98, 99]]


def test_windows_are_read_from_one_shared_array_and_items_are_copies():
    data = torch.zeros(100_000, 2)
    windows = WindowDataset(data, 1, window=50, horizon=5)
    assert len(windows) == 100_000 - 55 + 1
    assert windows.data.data_ptr() == data.data_ptr()  # the array itself, not a stack of windows
    x, _ = windows[0]
    x += 1
    assert data.abs().sum() == 0
    parts = make_windows(load_series(np.arange(50.0)), window=5)[:3]
    assert len({part.data.data_ptr() for part in parts}) == 1


def test_too_short_series_or_part_says_how_many_points_it_needs_and_has():
    with pytest.raises(ValueError, match=r"needs at least window \+ horizon = 11 points, the train part has 7\."):
        WindowDataset(np.zeros((7, 1)), 1, part="train")
    with pytest.raises(ValueError, match=r"needs at least window \+ horizon = 11 points, the train part has 8\."):
        make_windows(load_series(np.arange(12.0)))  # 8 / 2 / 2 points
    with pytest.raises(ValueError, match=r"The validation part has 15 points, fewer than horizon = 20"):
        make_windows(load_series(np.arange(100.0)), window=5, horizon=20)
    with pytest.raises(ValueError, match=r"Expected window >= 1 and horizon >= 1. Received: window=0, horizon=1"):
        WindowDataset(np.zeros((7, 1)), 1, window=0)


# Loading


def test_csv_path_dataframe_and_array_load_the_same_series(tmp_path):
    frame = pd.DataFrame(
        {"date": ["2021-03-01", "2021-03-02", "2021-03-03"], "load": [5, 7, 6], "temp": [0.5, -1.0, 2.25]}
    )
    path = tmp_path / "load.csv"
    path.write_text(frame.to_csv(index=False), encoding="utf-8-sig")  # with a byte order mark
    loaded = [
        load_series(path, "load", time="date", covariates=["temp"]),
        load_series(str(path), ["load"], time="date", covariates="temp"),
        load_series(frame, "load", time="date", covariates=["temp"]),
        load_series(np.array([[5, 0.5], [7, -1.0], [6, 2.25]]), target=0, covariates=[1]),
    ]
    for series in loaded:
        assert series.values.dtype == series.covariates.dtype == np.float32
        assert series.values.tolist() == [[5], [7], [6]] and series.covariates.tolist() == [[0.5], [-1.0], [2.25]]
    assert loaded[0].target_names == ["load"] and loaded[0].covariate_names == ["temp"]
    assert list(loaded[0].index) == list(pd.to_datetime(frame["date"])) and loaded[0].index.name == "date"
    assert loaded[3].index.equals(pd.RangeIndex(3)) and loaded[3].target_names == ["0"]


def test_array_without_target_makes_every_column_a_target_and_has_no_covariates():
    series = load_series([1, 2, 3])
    assert series.values.shape == (3, 1) and series.covariates.shape == (3, 0) and series.gaps == []
    assert load_series(np.ones((4, 3))).values.shape == (4, 3)


def test_rows_are_sorted_by_time_and_irregular_steps_are_reported_as_gaps():
    days = ["2024-01-05", "2024-01-01", "2024-01-03", "2024-01-02", "2024-01-06"]  # the 4th is missing
    series = load_series(pd.DataFrame({"day": days, "y": [5, 1, 3, 2, 6]}), "y", time="day")
    assert series.values[:, 0].tolist() == [1, 2, 3, 5, 6]
    assert series.gaps == [(pd.Timestamp("2024-01-03"), pd.Timestamp("2024-01-05"))]
    # month ends are 28 to 31 days apart: only the missing June counts, not the months' lengths
    months = pd.date_range("2000-01-31", periods=24, freq="ME").delete(5)
    monthly = load_series(pd.DataFrame({"m": months, "y": range(23)}), "y", time="m")
    assert monthly.gaps == [(pd.Timestamp("2000-05-31"), pd.Timestamp("2000-07-31"))]
    years = load_series(
        pd.DataFrame({"year": [1871, 1872, 1873, 1875], "flow": [1120, 1160, 963, 1210]}), "flow", "year"
    )
    assert list(years.index.year) == [1871, 1872, 1873, 1875]
    assert years.gaps == [(pd.Timestamp("1873-01-01"), pd.Timestamp("1875-01-01"))]


def test_fill_options_give_the_hand_computed_values_in_time_order():
    # given newest first: in time order y is [nan, 1, nan, inf, 4, nan] and the covariate [0, nan, 2, 3, 4, 5]
    frame = pd.DataFrame(
        {
            "t": pd.date_range("2020-01-01", periods=6, freq="D")[::-1],
            "y": [np.nan, 4, np.inf, np.nan, 1, np.nan],
            "c": [5, 4, 3, 2, np.nan, 0],
        }
    )
    expected = {
        "ffill": ([1, 1, 1, 1, 4, 4], [0, 0, 2, 3, 4, 5]),
        "interpolate": ([1, 1, 2, 3, 4, 4], [0, 1, 2, 3, 4, 5]),
        "drop": ([4], [4]),
    }
    for fill, (y, c) in expected.items():
        series = load_series(frame, "y", time="t", covariates=["c"], fill=fill)
        assert series.values[:, 0].tolist() == y and series.covariates[:, 0].tolist() == c, fill
    dropped = load_series(frame, "y", time="t", covariates=["c"], fill="drop")
    assert list(dropped.index) == [pd.Timestamp("2020-01-05")]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(-1000, 1000)), min_size=1, max_size=30))
def test_ffill_and_interpolate_agree_with_loop_and_numpy_references(cells):
    assume(any(v is not None for v in cells))
    column = np.array([np.nan if v is None else v for v in cells], dtype=np.float64)
    known = np.flatnonzero(~np.isnan(column))
    forward, last = [], column[known[0]]  # a leading gap takes the first value
    for v in column:
        last = last if np.isnan(v) else v
        forward.append(last)
    interpolated = np.interp(np.arange(len(column)), known, column[known])  # edges take the nearest value
    np.testing.assert_allclose(load_series(column, fill="ffill").values[:, 0], forward)
    np.testing.assert_allclose(load_series(column, fill="interpolate").values[:, 0], interpolated, atol=1e-3)
    np.testing.assert_array_equal(load_series(column, fill="drop").values[:, 0], column[known])


def _csv(text: str | bytes):
    def write(tmp_path):
        path = tmp_path / "data.csv"
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
        return path

    return write


def _given(source):
    return lambda tmp_path: source


DAYS = pd.DataFrame({"t": ["2020-01-02", "2020-01-01", "2020-01-03"], "y": [1.0, 2.0, 3.0], "c": [0, 0, 0]})
BAD_INPUTS = [
    pytest.param(
        _given(DAYS), {"target": "sales"},
        r"Column 'sales' not found in the DataFrame. Expected one of \['t', 'y', 'c'\]. Received: target='sales'",
        id="missing target column",
    ),
    pytest.param(_given(DAYS), {"target": "y", "covariates": ["x"]}, r"Column 'x' not found.*covariates='x'",
                 id="missing covariate column"),
    pytest.param(_given(DAYS), {"target": "y", "time": "date"}, r"Column 'date' not found.*time='date'",
                 id="missing time column"),
    pytest.param(_given(DAYS), {}, r"Expected target to name one or more columns of the DataFrame.*target=None",
                 id="table without target"),
    pytest.param(_given(DAYS), {"target": "y", "covariates": ["y"]}, r"one role.*Received 'y' twice",
                 id="column in two roles"),
    pytest.param(_given(DAYS), {"target": "y", "covariates": ["c"], "future_covariates": ["c"]},
                 r"one role \(time, target, covariate or future covariate\). Received 'c' twice",
                 id="covariate both past and future"),
    pytest.param(_given(DAYS), {"target": "y", "future_covariates": ["promo"]},
                 r"Column 'promo' not found.*future_covariates='promo'", id="missing future covariate column"),
    pytest.param(_given(pd.DataFrame({"y": [1.0, 2.0, "abc"]})), {"target": "y"},
                 r"Column 'y' holds a value that is not a number at row 2: 'abc'\.", id="non-numeric value"),
    pytest.param(_csv("y,c\n1,0\n2.5,0\n3;4,0\n"), {"target": "y"},
                 r"Column 'y' holds a value that is not a number at row 2: '3;4'\.", id="non-numeric value in CSV"),
    pytest.param(_given(pd.DataFrame({"d": pd.date_range("2020", periods=2)})), {"target": "d"},
                 r"Column 'd' holds times, not numbers. Pass it as time='d'", id="dates as target"),
    pytest.param(_given(pd.DataFrame({"y": [1, np.nan, 3, np.inf]})), {"target": "y"},
                 r"2 NaN or Inf value\(s\) in the DataFrame, the first in column 'y' at row 1\. Pass fill=",
                 id="NaN and Inf"),
    pytest.param(
        _given(DAYS.assign(t=["2020-01-03", "2020-01-01", "2020-01-02"], y=[np.nan, 1, 2], c=[0, 0, -np.inf])),
        {"target": "y", "time": "t", "covariates": ["c"]},
        r"2 NaN or Inf value\(s\).*the first in column 'c' at row 2 \(2020-01-02 00:00:00\)",
        id="NaN first in time order",
    ),
    pytest.param(_given(DAYS.assign(t=["2020-01-02", "2020-01-01", "2020-01-02"])), {"target": "y", "time": "t"},
                 r"Duplicated timestamp 2020-01-02 00:00:00 in column 't' \(rows 0 and 2\)", id="duplicated timestamp"),
    pytest.param(_given(DAYS.assign(t=["2020-01-02", "soon", "2020-01-03"])), {"target": "y", "time": "t"},
                 r"Column 't' \(time\) holds a value that is not a timestamp, 'soon', at row 1", id="not a timestamp"),
    pytest.param(_given(DAYS.assign(t=["2020-01-02", None, "2020-01-03"])), {"target": "y", "time": "t"},
                 r"Column 't' \(time\) holds a missing timestamp at row 1", id="missing timestamp"),
    pytest.param(_given(DAYS.assign(t=[1.0, 2.5, 3.0])), {"target": "y", "time": "t"},
                 r"holds numbers, not timestamps .* Received 2.5 at row 1", id="numbers as timestamps"),
    pytest.param(_given(pd.DataFrame({"y": []})), {"target": "y"}, r"The DataFrame holds no data \(0 rows\)",
                 id="empty DataFrame"),
    pytest.param(_given(np.array([])), {}, r"The array holds no data \(0 rows\)", id="empty array"),
    pytest.param(_csv(""), {"target": "y"}, r"data.csv' is empty\.", id="empty file"),
    pytest.param(_csv("t,y\n"), {"target": "y"}, r"data.csv' holds no data \(0 rows\)", id="header only"),
    pytest.param(_csv(b"t,y\n1,2\n3,\xe94\n"), {"target": "y"},
                 r"data.csv' is not UTF-8 text: invalid byte at offset 10\.", id="not UTF-8"),
    pytest.param(_csv("a,b\n1,2\n3,4,5\n"), {"target": "a"},
                 r"data.csv' is not a readable CSV file: .*Expected 2 fields in line 3, saw 3", id="not CSV"),
    pytest.param(lambda tmp_path: tmp_path / "absent.csv", {"target": "y"}, r"No such file: '.*absent.csv'\.",
                 id="missing file"),
    pytest.param(_given([[1, 2], [3]]), {}, r"Expected a CSV path, a pandas DataFrame.*Received a ragged list",
                 id="ragged list"),
    pytest.param(_given(np.zeros((2, 2, 2))), {}, r"1-D or 2-D array. Received: ndarray of shape \(2, 2, 2\)",
                 id="3-D array"),
    pytest.param(_given(DAYS), {"target": "y", "fill": "bfill"},
                 r"Expected fill to be one of \['error', 'ffill', 'interpolate', 'drop'\]. Received: fill='bfill'",
                 id="unknown fill"),
    pytest.param(_given(pd.DataFrame({"y": [1, 2], "c": [np.nan, np.nan]})), {"target": "y", "covariates": "c",
                 "fill": "interpolate"}, r"Column 'c' has no finite value to fill from", id="nothing to fill from"),
    pytest.param(_given(pd.DataFrame({"y": [np.nan, np.nan]})), {"target": "y", "fill": "drop"},
                 r"No rows left in the DataFrame after dropping the 2 rows with NaN or Inf", id="everything dropped"),
]  # fmt: skip


@pytest.mark.parametrize("make_source, options, message", BAD_INPUTS)
def test_bad_input_gets_one_line_naming_what_is_wrong(tmp_path, make_source, options, message):
    with pytest.raises(ValueError, match=message) as caught:
        load_series(make_source(tmp_path), **options)
    assert "\n" not in str(caught.value)


def test_pandas_is_not_imported_by_the_module_itself():
    assert "pd" not in vars(series_module) and "pandas" not in vars(series_module)


# Splits


def test_fraction_split_points_are_rounded_row_counts():
    assert split_points(100) == (70, 85)
    assert split_points(10, (0.5, 0.3, 0.2)) == (5, 8)
    assert split_points(load_series(np.arange(20.0)), [0.6, 0.2, 0.2]) == (12, 16)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 500), a=st.floats(0.01, 0.98), b=st.floats(0.01, 0.98))
def test_fraction_splits_are_contiguous_non_empty_and_close_to_the_fractions(n, a, b):
    assume(a + b < 0.99)
    split = (a, b, 1 - a - b)
    sizes = [n * f for f in split]
    try:
        train_end, val_end = split_points(n, split)
    except ValueError as error:
        assert "part empty" in str(error) and min(sizes) < 1.5
        return
    assert 0 < train_end < val_end < n
    assert abs(train_end - sizes[0]) <= 0.5 + 1e-9 and abs(val_end - sizes[0] - sizes[1]) <= 0.5 + 1e-9


def test_date_split_points_include_the_given_last_days():
    frame = pd.DataFrame({"month": pd.date_range("1958-01-01", periods=36, freq="MS"), "passengers": range(36)})
    series = load_series(frame, "passengers", time="month")
    assert split_points(series, ("1958-12", "1959-12")) == (12, 24)  # train 1958, validate 1959, test 1960
    assert split_points(series, (pd.Timestamp("1958-12-15"), "1960-01-01")) == (12, 25)
    train, val, test, _ = make_windows(series, window=3, split=("1958-12", "1959-12"), scaler="none")
    assert [part[0][1].item() for part in (train, val, test)] == [3, 12, 24]


@pytest.mark.parametrize(
    "data, split, message",
    [
        (100, (0.7, 0.2, 0.2), r"Expected three fractions > 0 summing to 1.*Received: split=\(0.7, 0.2, 0.2\)"),
        (100, (0.7, 0.3), r"Expected three fractions.*Received: split=\(0.7, 0.3\)"),
        (100, (0.7, 0.3, 0.0), r"Expected three fractions > 0"),
        (100, 0.7, r"Received: split=0.7"),
        (2, (0.7, 0.15, 0.15), r"The split leaves the test part empty: 2 points into \[1, 1, 0\]"),
        (100, ("1958-12", "1959-12"), r"Split dates need a series with a time index"),
    ],
)
def test_bad_splits_get_clear_messages(data, split, message):
    with pytest.raises(ValueError, match=message):
        split_points(data, split)


def test_bad_date_splits_get_clear_messages():
    frame = pd.DataFrame({"day": pd.date_range("2020-01-01", periods=10), "y": range(10)})
    series = load_series(frame, "y", time="day")
    with pytest.raises(ValueError, match=r"Expected the end of training before the end of validation"):
        split_points(series, ("2020-01-08", "2020-01-05"))
    with pytest.raises(ValueError, match=r"leaves the test part empty: 10 points into \[5, 5, 0\]"):
        split_points(series, ("2020-01-05", "2020-02-01"))


# Scalers


@pytest.mark.parametrize("kind", ["standard", "minmax", "none"])
def test_scalers_match_numpy_statistics_per_column_and_invert_exactly(kind):
    rng = np.random.default_rng(1)
    train = np.column_stack([rng.normal(3, 2, 50), rng.uniform(-5, 0, 50), np.full(50, 7.0)])  # last is constant
    later = rng.normal(size=(8, 3))
    if kind == "standard":
        shift, scale = train.mean(axis=0), train.std(axis=0)
    elif kind == "minmax":
        shift, scale = train.min(axis=0), train.max(axis=0) - train.min(axis=0)
    else:
        shift, scale = np.zeros(3), np.ones(3)
    scale[2] = 1.0  # a constant training column is shifted, never divided by zero
    scaler = Scaler(kind).fit(train)
    np.testing.assert_allclose(scaler.transform(later), (later - shift) / scale, rtol=1e-12)
    np.testing.assert_allclose(scaler.inverse_transform(scaler.transform(later)), later, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(scaler.transform(train), (train - shift) / scale, rtol=1e-12, atol=1e-12)
    tensor = torch.from_numpy(later.astype(np.float32))
    scaled = scaler.transform(tensor)
    assert isinstance(scaled, torch.Tensor) and scaled.dtype == torch.float32
    np.testing.assert_allclose(scaled.numpy(), (later - shift) / scale, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        scaler.inverse_transform(later[:, 1:], columns=[1, 2]), later[:, 1:] * scale[1:] + shift[1:], rtol=1e-12
    )


def test_scaler_state_survives_json_and_transforms_the_same():
    x = np.random.default_rng(2).normal(size=(20, 2))
    scaler = Scaler("standard").fit(x[:10])
    restored = Scaler.from_state_dict(json.loads(json.dumps(scaler.state_dict())))
    assert restored.kind == "standard" and np.array_equal(restored.transform(x), scaler.transform(x))


def test_scaler_misuse_gets_clear_messages():
    with pytest.raises(ValueError, match=r"one of \['standard', 'minmax', 'none'\]. Received: kind='zscore'"):
        Scaler("zscore")
    with pytest.raises(ValueError, match=r"The scaler is not fitted: call fit\(train\) first"):
        Scaler().transform(np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"an array with 2 columns \(last dimension\)\. Received shape \(4, 3\)"):
        Scaler().fit(np.zeros((3, 2))).transform(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"Expected finite values to fit the scaler. Received 1 NaN or Inf"):
        Scaler().fit([[1.0], [np.nan]])
    with pytest.raises(ValueError, match=r"Expected shift and scale of the same length"):
        Scaler.from_state_dict({"kind": "standard", "shift": [0.0], "scale": [1.0, 2.0]})


# Future covariates


def test_future_covariates_are_the_last_columns_and_windows_serve_them_over_the_horizon():
    frame = pd.DataFrame({"y": np.arange(10.0), "price": 100 + np.arange(10.0), "holiday": 200 + np.arange(10.0)})
    series = load_series(frame, target="y", covariates="price", future_covariates=["holiday"])
    assert series.covariate_names == ["price"] and series.future_covariate_names == ["holiday"]
    assert series.table().tolist() == frame.to_numpy(dtype=np.float32).tolist()
    windows = WindowDataset(series.table(), n_targets=1, window=3, horizon=2, n_future=1)
    inputs, targets, future = windows[4]  # targets at rows 7 and 8
    assert inputs.tolist() == frame.iloc[4:7].to_numpy(dtype=np.float32).tolist()  # every column, past rows only
    assert targets[:, 0].tolist() == [7.0, 8.0]
    assert future[:, 0].tolist() == [207.0, 208.0]  # the known-ahead column at the target rows
    with pytest.raises(ValueError, match=r"Expected 0 <= n_future <= 2 \(the columns after the 1 target\(s\)\)"):
        WindowDataset(series.table(), n_targets=1, window=3, n_future=3)


def test_make_windows_scales_future_covariates_with_the_training_rows_and_keeps_them_in_their_part():
    frame = pd.DataFrame({"y": np.arange(100.0), "known": np.arange(100.0) * 2})
    series = load_series(frame, target="y", future_covariates="known")
    train, val, test, scaler = make_windows(series, window=5, horizon=3)
    assert train.n_future == val.n_future == test.n_future == 1
    np.testing.assert_allclose(scaler.shift, [34.5, 69.0])  # means of rows 0..69 only
    for windows, (start, end) in ((train, (0, 70)), (val, (70, 85)), (test, (85, 100))):
        for i in (0, len(windows) - 1):
            future = scaler.inverse_transform(windows[i][2], columns=[1])[:, 0].numpy()
            rows = future / 2
            assert start <= rows.min() and rows.max() < end  # the known-ahead values of the part's own target rows
