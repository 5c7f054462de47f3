"""Calendar features: where each timestamp sits in the calendar's cycles, known for any future date.

    cycles = calendar_cycles(index)                 # e.g. ("month_of_year",) for monthly data
    values, names = calendar_features(index, cycles)  # (N, 2 * len(cycles)): a sine and a cosine per cycle

A forecaster cannot know next month's sales, but it knows next month is December.  Each cycle
is given as the sine and cosine of its phase, so December sits next to January and not eleven
units away.  Which cycles are useful depends on the spacing of the data: a cycle must be longer
than one step (hour of day says nothing about daily data) and shorter than the data itself.

| spacing                    | cycles                                   |
|----------------------------|------------------------------------------|
| under a day (hourly, ...)  | hour_of_day, day_of_week                 |
| a day up to a week         | day_of_week, day_of_year                 |
| a week up to 4 weeks       | day_of_year                              |
| 4 weeks up to a year       | month_of_year                            |
| a year or more             | none: a ValueError                       |

Calendar features are future covariates (``Series.future_covariates``): the forecaster reads
their values at the steps it forecasts, computed from the timestamps those steps will have.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

CYCLES = ("hour_of_day", "day_of_week", "day_of_year", "month_of_year")
DAY_SECONDS = 86_400


def calendar_cycles(index: pd.Index) -> tuple[str, ...]:
    """The calendar cycles worth giving a series with this time index (by its median spacing).

    Raises ``ValueError`` for an index without timestamps or with a spacing of a year or more.

    Example:
        >>> import pandas as pd
        >>> calendar_cycles(pd.date_range("2020-01-01", periods=24, freq="MS"))
        ('month_of_year',)
        >>> calendar_cycles(pd.date_range("2020-01-01", periods=48, freq="h"))
        ('hour_of_day', 'day_of_week')
    """
    import pandas as pd

    if not isinstance(index, pd.DatetimeIndex):
        raise ValueError(
            "Calendar features need timestamps: load the series with its time column (time=... or --time COL)."
        )
    if len(index) < 2:
        raise ValueError(f"Calendar features need at least 2 timestamps to tell the spacing. Received {len(index)}.")
    days = float(np.median((index[1:] - index[:-1]).total_seconds())) / DAY_SECONDS
    if days < 1:
        return ("hour_of_day", "day_of_week")
    if days < 7:
        return ("day_of_week", "day_of_year")
    if days < 28:
        return ("day_of_year",)
    if days < 365:
        return ("month_of_year",)
    raise ValueError(
        f"The series is spaced {days:.0f} days apart: no calendar cycle is shorter than its step and longer "
        "than a year, so calendar features would be constant. Leave them out for yearly data."
    )


def calendar_features(stamps: pd.DatetimeIndex | list, cycles: tuple[str, ...]) -> tuple[np.ndarray, list[str]]:
    """Sine and cosine of the phase of each timestamp in each cycle -> (values (N, 2C) float32, names).

    Example:
        >>> import pandas as pd
        >>> values, names = calendar_features(pd.to_datetime(["2021-01-01", "2021-07-01"]), ("month_of_year",))
        >>> names, values.round(3).tolist()
        (['month_of_year_sin', 'month_of_year_cos'], [[0.0, 1.0], [0.0, -1.0]])
    """
    import pandas as pd

    stamps = pd.DatetimeIndex(stamps)
    columns, names = [], []
    for cycle in cycles:
        if cycle == "hour_of_day":
            phase = (stamps.hour + stamps.minute / 60 + stamps.second / 3600) / 24
        elif cycle == "day_of_week":
            phase = stamps.day_of_week / 7
        elif cycle == "day_of_year":
            phase = (stamps.day_of_year - 1) / np.where(stamps.is_leap_year, 366, 365)
        elif cycle == "month_of_year":
            phase = (stamps.month - 1) / 12
        else:
            raise ValueError(f"Unknown calendar cycle. Expected one of {list(CYCLES)}. Received: {cycle!r}")
        angle = 2 * np.pi * np.asarray(phase, dtype=np.float64)
        columns += [np.sin(angle), np.cos(angle)]
        names += [f"{cycle}_sin", f"{cycle}_cos"]
    values = np.stack(columns, axis=1) if columns else np.zeros((len(stamps), 0))
    return np.where(np.abs(values) < 1e-12, 0.0, values).astype(np.float32), names
