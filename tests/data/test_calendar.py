"""Calendar features: the cycles chosen by the spacing of the index, their values against dates worked by
hand, and clear errors where no cycle fits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rnnkit.data.calendar import calendar_cycles, calendar_features


@pytest.mark.parametrize(
    ("freq", "cycles"),
    [
        ("h", ("hour_of_day", "day_of_week")),
        ("15min", ("hour_of_day", "day_of_week")),
        ("D", ("day_of_week", "day_of_year")),
        ("W-SAT", ("day_of_year",)),
        ("MS", ("month_of_year",)),
        ("QS", ("month_of_year",)),
    ],
)
def test_cycles_are_those_longer_than_a_step_and_at_most_a_year(freq, cycles):
    assert calendar_cycles(pd.date_range("2021-01-01", periods=30, freq=freq)) == cycles


def test_values_are_the_sine_and_cosine_of_the_phase_in_each_cycle():
    stamps = pd.to_datetime(["2021-01-01 00:00", "2021-04-01 06:00", "2021-07-01 12:00", "2021-12-31 18:00"])
    values, names = calendar_features(stamps, ("month_of_year", "hour_of_day", "day_of_week", "day_of_year"))
    assert names == ["month_of_year_sin", "month_of_year_cos", "hour_of_day_sin", "hour_of_day_cos",
                     "day_of_week_sin", "day_of_week_cos", "day_of_year_sin", "day_of_year_cos"]  # fmt: skip
    month = np.array([0, 3, 6, 11]) / 12
    hour = np.array([0, 6, 12, 18]) / 24
    weekday = np.array([4, 3, 3, 4]) / 7  # Friday, Thursday, Thursday, Friday
    day = np.array([0, 90, 181, 364]) / 365
    phases = np.stack([month, hour, weekday, day], axis=1)
    expected = np.stack([f(2 * np.pi * phases[:, i]) for i in range(4) for f in (np.sin, np.cos)], axis=1)
    np.testing.assert_allclose(values, expected, atol=1e-6)
    assert values.dtype == np.float32 and values.shape == (4, 8)


def test_december_and_january_are_neighbours_not_eleven_units_apart():
    values, _ = calendar_features(pd.to_datetime(["2020-12-01", "2021-01-01", "2021-06-01"]), ("month_of_year",))
    distance = np.linalg.norm(values[:, None] - values[None], axis=-1)
    assert distance[0, 1] < distance[1, 2] / 3


def test_a_leap_year_ends_its_day_of_year_cycle_on_the_31st_of_december():
    values, _ = calendar_features(pd.to_datetime(["2020-12-31", "2021-01-01"]), ("day_of_year",))
    np.testing.assert_allclose(values[0], [np.sin(2 * np.pi * 365 / 366), np.cos(2 * np.pi * 365 / 366)], atol=1e-6)
    np.testing.assert_allclose(values[1], [0.0, 1.0], atol=1e-7)


@pytest.mark.parametrize(
    ("index", "message"),
    [
        (pd.RangeIndex(10), r"Calendar features need timestamps: load the series with its time column"),
        (pd.date_range("1900", periods=10, freq="YS"), r"spaced 36[56] days apart: no calendar cycle"),
        (pd.DatetimeIndex(["2020-01-01"]), r"need at least 2 timestamps"),
    ],
)
def test_no_timestamps_yearly_data_or_one_row_get_a_clear_error(index, message):
    with pytest.raises(ValueError, match=message):
        calendar_cycles(index)


def test_an_unknown_cycle_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"Unknown calendar cycle. Expected one of \['hour_of_day'"):
        calendar_features(pd.to_datetime(["2020-01-01"]), ("season",))
