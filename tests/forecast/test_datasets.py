"""Forecasting datasets by name: each loads offline as a complete, regular one-target series that
matches the published numbers and statsmodels' raw files; statsmodels is imported only on load."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rnnkit.forecast.datasets import DATASETS, load_dataset

SPANS = {  # name: (length, first timestamp, last timestamp, frequency)
    "airline": (144, "1949-01-01", "1960-12-01", "MS"),
    "co2": (2284, "1958-03-29", "2001-12-29", "W-SAT"),
    "elnino": (732, "1950-01-01", "2010-12-01", "MS"),
    "nile": (100, "1871-01-01", "1970-01-01", "YS"),
    "sunspots": (309, "1700-01-01", "2008-01-01", "YS"),
}


@pytest.fixture
def offline(monkeypatch):
    """Any attempt to open a network connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"A dataset tried to reach the network: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def raw_csv(dataset: str) -> pd.DataFrame:
    """The CSV file that statsmodels ships for a dataset, read directly."""
    import statsmodels

    return pd.read_csv(Path(statsmodels.__file__).parent / "datasets" / dataset / f"{dataset}.csv")


@pytest.mark.parametrize("name", sorted(SPANS))
def test_each_dataset_loads_offline_as_a_complete_regular_float32_series(name, offline):
    n, first, last, freq = SPANS[name]
    series = load_dataset(name)
    assert series.values.shape == (n, 1) and series.values.dtype == np.float32
    assert np.isfinite(series.values).all()
    assert series.covariates.shape == (n, 0) and series.target_names == [name] and series.gaps == []
    index = series.index
    assert isinstance(index, pd.DatetimeIndex) and len(index) == n
    assert index[0] == pd.Timestamp(first) and index[-1] == pd.Timestamp(last)
    assert index.freq == pd.tseries.frequencies.to_offset(freq)
    assert index.equals(pd.date_range(first, last, freq=freq))  # every step between the ends, none missing


def test_known_values_of_the_published_series():
    airline = load_dataset("airline")
    assert airline.values[:3, 0].tolist() == [112, 118, 132] and airline.values[-1, 0] == 432
    assert airline.values[airline.index.get_loc(pd.Timestamp("1960-07-01")), 0] == 622  # the highest month
    assert airline.values.sum() == 40363  # mean 280.2986, as in R's AirPassengers
    sunspots = load_dataset("sunspots")
    assert sunspots.values[0, 0] == 5.0 and sunspots.values[-1, 0] == np.float32(2.9)  # 1700 and 2008
    nile = load_dataset("nile")
    assert nile.values[0, 0] == 1120 and nile.values[-1, 0] == 740
    assert load_dataset("co2").values[0, 0] == np.float32(316.1)
    assert load_dataset("elnino").values[0, 0] == np.float32(23.11)


@pytest.mark.parametrize("name, time, column", [("sunspots", "YEAR", "SUNACTIVITY"), ("nile", "year", "volume")])
def test_yearly_series_match_the_raw_file_year_by_year(name, time, column):
    raw = raw_csv(name)
    series = load_dataset(name)
    assert series.index.year.tolist() == raw[time].tolist()
    np.testing.assert_array_equal(series.values[:, 0], raw[column].to_numpy(dtype=np.float32))


def test_elnino_is_the_year_by_month_table_read_row_by_row():
    raw = raw_csv("elnino")
    expected = {}
    for _, row in raw.iterrows():
        for month, column in enumerate(raw.columns[1:], start=1):
            expected[pd.Timestamp(year=int(row["YEAR"]), month=month, day=1)] = np.float32(row[column])
    series = load_dataset("elnino")
    assert dict(zip(series.index, series.values[:, 0])) == expected
    assert list(series.index) == sorted(expected)


def test_co2_fills_missing_weeks_linearly_and_keeps_measured_weeks():
    raw = raw_csv("co2")
    series = load_dataset("co2")
    assert series.index.strftime("%Y%m%d").astype(int).tolist() == raw["date"].tolist()
    measured = raw["co2"].notna().to_numpy()
    assert (~measured).sum() == 59  # as the description says
    np.testing.assert_array_equal(series.values[measured, 0], raw["co2"][measured].to_numpy(dtype=np.float32))
    rows = np.arange(len(raw))
    between = np.interp(rows[~measured], rows[measured], raw["co2"][measured].to_numpy())
    np.testing.assert_allclose(series.values[~measured, 0], between, rtol=1e-6)


def test_each_description_is_one_line_and_states_the_length():
    assert sorted(DATASETS) == sorted(SPANS)
    for name, description in DATASETS.items():
        n, *_ = SPANS[name]
        assert "\n" not in description and f"{n:,} values" in description
    assert "interpolation" in DATASETS["co2"]


def test_unknown_name_error_lists_the_known_names():
    with pytest.raises(ValueError, match="Expected one of") as error:
        load_dataset("air passengers")
    assert all(repr(name) in str(error.value) for name in DATASETS) and "'air passengers'" in str(error.value)


@pytest.mark.parametrize("name", sorted(set(SPANS) - {"airline"}))  # airline ships with rnnkit
def test_missing_statsmodels_asks_for_the_forecast_extra(name, monkeypatch):
    monkeypatch.setitem(sys.modules, "statsmodels", None)  # import statsmodels now raises ImportError
    with pytest.raises(ValueError, match=r"pip install 'rnnkit\[forecast\]'"):
        load_dataset(name)


def test_statsmodels_is_imported_only_when_a_dataset_is_loaded():
    code = (
        "import sys, rnnkit, rnnkit.forecast.datasets as d\n"
        "assert 'statsmodels' not in sys.modules, 'imported by import'\n"
        "d.load_dataset('airline')\n"
        "assert 'statsmodels' not in sys.modules, 'airline ships with rnnkit'\n"
        "d.load_dataset('nile')\n"
        "assert 'statsmodels' in sys.modules\n"
        "assert not [m for m in sys.modules if '.tests' in m and m.startswith('statsmodels')], 'test code ran'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
