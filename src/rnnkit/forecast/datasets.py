"""Real forecasting series by name, read from files installed with statsmodels (nothing is downloaded).

    DATASETS                 ->  {name: one line on source, frequency, length and licence}
    load_dataset("airline")  ->  Series: values (144, 1) float32, monthly DatetimeIndex from 1949-01

Each series has one target named like the dataset, no covariates, no NaN, and a regular
``DatetimeIndex`` with its frequency set (``YS-JAN``, ``MS`` or ``W-SAT``), so ``gaps`` is empty.
statsmodels (the ``rnnkit[forecast]`` extra) is imported only when a dataset is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rnnkit.data.series import Series

if TYPE_CHECKING:
    import pandas as pd

DATASETS = {
    "airline": "Box-Jenkins international airline passengers (thousands), monthly 1949-01..1960-12, 144 values; "
    "Box, Jenkins & Reinsel, Time Series Analysis, series G (public data), shipped with rnnkit "
    "(src/rnnkit/forecast/data/airline.csv, see NOTICE.md there).",
    "co2": "Atmospheric CO2 at Mauna Loa (ppmv), weekly (Saturdays) 1958-03-29..2001-12-29, 2,284 values, "
    "the 59 missing weeks filled by linear interpolation; Keeling & Whorf, Scripps / CDIAC "
    "(public domain), from statsmodels.datasets.co2.",
    "elnino": "Sea surface temperature of the Nino 1+2 region (deg C), monthly 1950-01..2010-12, 732 values; "
    "NOAA ERSST.V3B (public domain), from statsmodels.datasets.elnino.",
    "nile": "Annual flow of the Nile at Aswan (10^8 m^3), yearly 1871..1970, 100 values; Cobb (1978), "
    "public domain, from statsmodels.datasets.nile.",
    "sunspots": "Yearly sunspot numbers, 1700..2008, 309 values; NOAA National Geophysical Data Center "
    "(public domain), from statsmodels.datasets.sunspots.",
}

AIRLINE_CSV = Path(__file__).resolve().parent / "data" / "airline.csv"
MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]


def load_dataset(name: str) -> Series:
    """The dataset ``name`` (a key of ``DATASETS``) as a one-target ``Series`` with a regular time index.

    Raises ``ValueError`` for an unknown name, or when statsmodels is not installed.

    Example:
        >>> nile = load_dataset("nile")
        >>> nile.values.shape, nile.values.dtype, nile.target_names, float(nile.values[0, 0])
        ((100, 1), dtype('float32'), ['nile'], 1120.0)
        >>> str(nile.index[0].date()), str(nile.index[-1].date()), nile.gaps
        ('1871-01-01', '1970-01-01', [])
    """
    if name not in LOADERS:
        raise ValueError(f"Unknown dataset. Expected one of {sorted(LOADERS)}. Received: name={name!r}")
    values, index = LOADERS[name]()
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (len(index),) or not np.isfinite(values).all():
        raise ValueError(f"Dataset {name!r} read from statsmodels is not a complete series: has its data changed?")
    return Series(
        values=values.astype(np.float32)[:, None],
        covariates=np.zeros((len(values), 0), dtype=np.float32),
        index=index,
        target_names=[name],
    )


def _statsmodels() -> Any:
    try:
        import statsmodels
    except ImportError:
        raise ValueError(
            "The forecasting datasets are read from statsmodels, which is not installed. "
            "Install it with: pip install 'rnnkit[forecast]'"
        ) from None
    return statsmodels


def _regular(stamps: Any, freq: str, name: str) -> pd.DatetimeIndex:
    """``stamps`` as a DatetimeIndex with ``freq`` set, after checking they are exactly that regular."""
    import pandas as pd

    stamps = pd.DatetimeIndex(stamps)
    index = pd.date_range(stamps[0], periods=len(stamps), freq=freq, name="date")
    if not index.equals(stamps):
        raise ValueError(f"Dataset {name!r}: its timestamps are not regular at frequency {freq!r}.")
    return index


def _years(years: Any) -> Any:
    import pandas as pd

    return pd.to_datetime(pd.DataFrame({"year": np.asarray(years, dtype=int), "month": 1, "day": 1}))


def _sunspots() -> tuple[np.ndarray, pd.DatetimeIndex]:
    _statsmodels()
    from statsmodels.datasets import sunspots

    frame = sunspots.load_pandas().data
    return frame["SUNACTIVITY"].to_numpy(), _regular(_years(frame["YEAR"]), "YS", "sunspots")


def _nile() -> tuple[np.ndarray, pd.DatetimeIndex]:
    _statsmodels()
    from statsmodels.datasets import nile

    frame = nile.load_pandas().data
    return frame["volume"].to_numpy(), _regular(_years(frame["year"]), "YS", "nile")


def _co2() -> tuple[np.ndarray, pd.DatetimeIndex]:
    _statsmodels()
    from statsmodels.datasets import co2

    weekly = co2.load_pandas().data["co2"]  # one row per week, NaN where the week has no measurement
    filled = weekly.interpolate("linear", limit_direction="both")
    return filled.to_numpy(), _regular(weekly.index, "W-SAT", "co2")


def _elnino() -> tuple[np.ndarray, pd.DatetimeIndex]:
    import pandas as pd

    _statsmodels()
    from statsmodels.datasets import elnino

    frame = elnino.load_pandas().data  # one row per year, one column per month
    years = frame["YEAR"].to_numpy(dtype=int)
    stamps = pd.to_datetime(
        pd.DataFrame({"year": np.repeat(years, 12), "month": np.tile(np.arange(1, 13), len(years)), "day": 1})
    )
    return frame[MONTHS].to_numpy().ravel(), _regular(stamps, "MS", "elnino")


def _airline() -> tuple[np.ndarray, pd.DatetimeIndex]:
    """Series G, from the CSV that ships with rnnkit (no statsmodels needed)."""
    import pandas as pd

    table = np.loadtxt(AIRLINE_CSV, delimiter=",", skiprows=1, dtype=str)
    return table[:, 1].astype(np.float64), _regular(pd.to_datetime(table[:, 0]), "MS", "airline")


LOADERS = {"airline": _airline, "co2": _co2, "elnino": _elnino, "nile": _nile, "sunspots": _sunspots}
