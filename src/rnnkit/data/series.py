"""Time series for forecasting: load a table, split it by time, scale it with statistics of the
training part only, and serve sliding windows.

    load_series("sales.csv", target="units", time="date")  ->  Series: values (N, n_targets), covariates (N, n_cov)
    split_points(series, (0.7, 0.15, 0.15))                ->  (train_end, val_end): rows [0, train_end) train ...
    Scaler("standard").fit(data[:train_end])               ->  per-column (x - shift) / scale
    WindowDataset(scaled, n_targets, window, horizon, start, end)

Nothing from the future leaks into the past: the scaler sees only the training rows, and every
target step of a split's windows lies inside that split.  A window's inputs may reach back into
earlier rows (the past is known at forecast time) but never past the split's end.
``make_windows`` does the four steps in that order.

Rows in error messages are counted from 0 over the data rows in input order (a CSV's header is
not a row), like ``DataFrame.iloc``.  pandas is imported only by the functions that need it.
"""

from __future__ import annotations

import io
import numbers
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import Dataset

if TYPE_CHECKING:
    import pandas as pd

FILLS = ("error", "ffill", "interpolate", "drop")
SCALERS = ("standard", "minmax", "none")
PARTS = ("train", "validation", "test")


@dataclass
class Series:
    """Targets and covariates of a time series as float32 arrays on one time axis.

    ``values`` is ``(N, n_targets)``; ``covariates`` ``(N, n_cov)`` are known in the past only
    (read from the window); ``future_covariates`` ``(N, n_future)`` are known ahead too (a
    calendar, a planned price), so a forecast may also read their values at the steps it
    forecasts.  Either may have 0 columns.  ``index`` is a ``DatetimeIndex`` (when loaded with
    ``time``) or a ``RangeIndex``.  ``gaps`` lists the pairs of neighbouring timestamps spaced
    differently from the usual step (calendar months for monthly, quarterly and yearly data),
    empty without a time index.
    """

    values: np.ndarray
    covariates: np.ndarray
    index: pd.Index
    target_names: list[str]
    covariate_names: list[str] = field(default_factory=list)
    gaps: list[tuple[pd.Timestamp, pd.Timestamp]] = field(default_factory=list)
    future_covariates: np.ndarray | None = None  # None: no column, (N, 0)
    future_covariate_names: list[str] = field(default_factory=list)

    def __post_init__(self):
        if self.future_covariates is None:
            self.future_covariates = np.zeros((len(self.values), 0), dtype=np.float32)

    def __len__(self) -> int:
        return len(self.values)

    def table(self) -> np.ndarray:
        """Every column as one ``(N, F)`` array, in input order: targets, covariates, future covariates."""
        return np.concatenate([self.values, self.covariates, self.future_covariates], axis=1)


def load_series(
    source: str | os.PathLike | pd.DataFrame | np.ndarray | Sequence,
    target: str | int | Sequence[str | int] | None = None,
    time: str | int | None = None,
    covariates: str | int | Sequence[str | int] = (),
    fill: str = "error",
    future_covariates: str | int | Sequence[str | int] = (),
) -> Series:
    """Read a series from a UTF-8 CSV file, a DataFrame, or a 1-D or ``(N, k)`` array.

    ``target`` names one column or a list of them; it may be None for an array (whose columns
    are numbered 0..k-1), then every column that is not a covariate is a target.  ``time`` names
    a column of timestamps (a column of whole numbers is read as years): rows are sorted by it,
    duplicates are an error, irregular spacing is reported in ``Series.gaps``.  ``covariates``
    are further input columns, known in the past; ``future_covariates`` are columns whose values
    are known ahead of time (a holiday flag, a planned price; calendar features come from
    ``rnnkit.data.calendar``).

    NaN and Inf in targets or covariates are an error unless ``fill`` is ``"ffill"`` (forward,
    then backward for a leading gap), ``"interpolate"`` (linear in the row position, edges take
    the nearest value) or ``"drop"`` (drop those rows; a time index then shows them as gaps).

    Example:
        >>> import pandas as pd
        >>> frame = pd.DataFrame({"day": ["2024-01-03", "2024-01-01", "2024-01-02", "2024-01-05"],
        ...                       "sales": [3, 1, 2, 5], "price": [1.0, 1.0, 1.5, 1.5]})
        >>> s = load_series(frame, target="sales", time="day", covariates=["price"])
        >>> s.values.shape, s.covariates.shape, s.values[:, 0].tolist()
        ((4, 1), (4, 1), [1.0, 2.0, 3.0, 5.0])
        >>> [(str(a.date()), str(b.date())) for a, b in s.gaps]  # 2024-01-04 is missing
        [('2024-01-03', '2024-01-05')]
    """
    if fill not in FILLS:
        raise ValueError(f"Expected fill to be one of {list(FILLS)}. Received: fill={fill!r}")
    frame, what = _read_table(source)
    try:
        return _from_frame(frame, what, target, time, covariates, fill, future_covariates)
    except ValueError as error:
        if what.startswith("the ") or what in str(error):
            raise
        raise ValueError(f"{what}: {error}") from None  # name the file


def _from_frame(frame: pd.DataFrame, what: str, target: Any, time: Any, covariates: Any, fill: str,
                future_covariates: Any) -> Series:  # fmt: skip
    """``load_series`` once the table is read; ``what`` names it in messages."""
    import pandas as pd

    if frame.empty:
        size = "no columns" if frame.shape[1] == 0 else "0 rows"
        raise ValueError(f"{what[:1].upper()}{what[1:]} holds no data ({size}).")
    frame = frame.reset_index(drop=True)  # labels are now row numbers in input order
    if target is None and not isinstance(frame.columns, pd.RangeIndex):
        raise ValueError(
            f"Expected target to name one or more columns of {what}, of {list(frame.columns)}. Received: target=None"
        )
    covariates, future = _as_list(covariates), _as_list(future_covariates)
    others = [*covariates, *future]
    targets = [c for c in frame.columns if c not in others] if target is None else _as_list(target)
    if not targets:
        raise ValueError(f"Expected at least one target column. Received: target={target!r}")
    roles = {"time": [] if time is None else [time], "target": targets, "covariates": covariates,
             "future_covariates": future}  # fmt: skip
    for role, names in roles.items():
        for name in names:
            if name not in frame.columns:
                raise ValueError(
                    f"Column {name!r} not found in {what}. Expected one of {list(frame.columns)}. "
                    f"Received: {role}={name!r}"
                )
    names = [*targets, *covariates, *future]
    every = [*roles["time"], *names]
    if len(set(every)) < len(every):
        twice = next(name for name in every if every.count(name) > 1)
        raise ValueError(
            f"Expected each column in one role (time, target, covariate or future covariate). Received {twice!r} twice."
        )

    table = np.column_stack([_numbers(frame[name], name) for name in names])  # (N, n_targets + n_cov) float64
    too_large = np.isfinite(table) & (np.abs(table) > np.finfo(np.float32).max)
    if too_large.any():
        r, c = np.argwhere(too_large)[0]
        raise ValueError(
            f"Column {names[c]!r} holds {table[r, c]:g} at row {r}, beyond float32 (about 3.4e38). "
            "Expected values a float32 holds; rescale the column."
        )
    rows = frame.index.to_numpy()
    stamps = None
    if time is not None:
        stamps = _timestamps(frame[time], time)
        order = np.argsort(stamps.asi8, kind="stable")
        table, rows, stamps = table[order], rows[order], stamps[order]
        repeated = stamps.duplicated()
        if repeated.any():
            i = int(repeated.argmax())
            raise ValueError(
                f"Duplicated timestamp {stamps[i]} in column {time!r} (rows {rows[i - 1]} and {rows[i]}). "
                "Expected one row per timestamp."
            )

    missing = ~np.isfinite(table)
    if missing.any():
        if fill == "error":
            r, c = np.argwhere(missing)[0]
            at = f"row {rows[r]}" + ("" if stamps is None else f" ({stamps[r]})")
            raise ValueError(
                f"{int(missing.sum())} NaN or Inf value(s) in {what}, the first in column {names[c]!r} at {at}. "
                "Pass fill='ffill', 'interpolate' or 'drop' to handle them."
            )
        if fill == "drop":
            keep = ~missing.any(axis=1)
            if not keep.any():
                raise ValueError(f"No rows left in {what} after dropping the {len(keep)} rows with NaN or Inf.")
            table, rows = table[keep], rows[keep]
            stamps = None if stamps is None else stamps[keep]
        else:
            holes = pd.DataFrame(np.where(missing, np.nan, table))
            filled = holes.ffill().bfill() if fill == "ffill" else holes.interpolate("linear", limit_direction="both")
            table = filled.to_numpy(dtype=np.float64)
            empty = np.isnan(table).all(axis=0)
            if empty.any():
                raise ValueError(f"Column {names[int(empty.argmax())]!r} has no finite value to fill from.")

    k, past = len(targets), len(targets) + len(covariates)
    return Series(
        values=table[:, :k].astype(np.float32),
        covariates=table[:, k:past].astype(np.float32),
        index=pd.RangeIndex(len(table)) if stamps is None else stamps,
        target_names=[str(name) for name in targets],
        covariate_names=[str(name) for name in covariates],
        gaps=[] if stamps is None else _gaps(stamps),
        future_covariates=table[:, past:].astype(np.float32),
        future_covariate_names=[str(name) for name in future],
    )


def _as_list(names: Any) -> list:
    return list(names) if isinstance(names, (list, tuple)) else [names]


def _read_table(source: Any) -> tuple[pd.DataFrame, str]:
    """The source as a DataFrame, and how to name it in messages."""
    import pandas as pd

    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"No such file: {str(path)!r}.")
        try:
            text = path.read_bytes().decode("utf-8").removeprefix("\ufeff")
        except UnicodeDecodeError as error:
            raise ValueError(f"{str(path)!r} is not UTF-8 text: invalid byte at offset {error.start}.") from None
        if not text.strip():
            raise ValueError(f"{str(path)!r} is empty.")
        try:
            return pd.read_csv(io.StringIO(text)), repr(str(path))
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
            reason = str(error).strip().splitlines()[0]
            raise ValueError(f"{str(path)!r} is not a readable CSV file: {reason}") from None
    if isinstance(source, pd.DataFrame):
        return source, "the DataFrame"
    expected = "Expected a CSV path, a pandas DataFrame, or a 1-D or 2-D array."
    try:
        array = np.asarray(source)
    except (ValueError, TypeError):
        raise ValueError(f"{expected} Received a ragged {type(source).__name__}.") from None
    if array.ndim not in (1, 2):
        raise ValueError(f"{expected} Received: {type(source).__name__} of shape {array.shape}")
    return pd.DataFrame(array[:, None] if array.ndim == 1 else array), "the array"


def _numbers(column: pd.Series, name: Any) -> np.ndarray:
    """A column as float64 (missing values as NaN); a ValueError at its first value that is not a number."""
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(column) or pd.api.types.is_timedelta64_dtype(column):
        raise ValueError(f"Column {name!r} holds times, not numbers. Pass it as time={name!r}.")
    if not pd.api.types.is_numeric_dtype(column):
        converted = pd.to_numeric(column, errors="coerce")
        bad = converted.isna() & column.notna()
        if bad.any():
            row = bad.idxmax()
            raise ValueError(f"Column {name!r} holds a value that is not a number at row {row}: {_short(column[row])}.")
        column = converted
    return column.to_numpy(dtype=np.float64, na_value=np.nan)


def _short(value: Any, limit: int = 80) -> str:
    """``repr(value)``, its middle cut for a long one (a cell may be a megabyte)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit // 2]}...{text[-limit // 2 :]} ({len(text)} characters)"


def _timestamps(column: pd.Series, name: Any) -> pd.DatetimeIndex:
    """A column as timestamps (whole numbers as years); a ValueError at its first value that is not one."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        years = column.to_numpy(dtype=np.float64, na_value=np.nan)
        not_year = ~((years == np.round(years)) & (years >= 1) & (years <= 9999))
        if not_year.any():
            row = int(not_year.argmax())
            raise ValueError(
                f"Column {name!r} (time) holds numbers, not timestamps (whole numbers 1..9999 are read as years). "
                f"Received {years[row]:g} at row {row}."
            )
        parsed = pd.to_datetime(pd.DataFrame({"year": years.astype(int), "month": 1, "day": 1}), errors="coerce")
    else:
        try:
            parsed = pd.to_datetime(column, errors="coerce")
        except (ValueError, TypeError) as error:
            raise ValueError(f"Column {name!r} (time) cannot be read as timestamps: {error}") from None
    bad = parsed.isna()
    if bad.any():
        row = int(bad.to_numpy().argmax())
        value = column[row]
        problem = "a missing timestamp" if pd.isna(value) else f"a value that is not a timestamp, {_short(value)},"
        raise ValueError(f"Column {name!r} (time) holds {problem} at row {row}.")
    return pd.DatetimeIndex(parsed, name=name)


def _gaps(stamps: pd.DatetimeIndex) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Neighbouring (sorted) timestamps spaced unlike the most common step, counted in time or,
    when that finds fewer irregular steps (monthly or longer data), in calendar months."""
    if len(stamps) < 3:
        return []

    def unusual(steps: np.ndarray) -> np.ndarray:
        values, counts = np.unique(steps, return_counts=True)
        return steps != values[counts.argmax()]

    irregular = unusual(np.diff(stamps.asi8))
    months = np.diff(stamps.year.to_numpy() * 12 + stamps.month.to_numpy())
    if np.median(months) >= 1 and unusual(months).sum() < irregular.sum():
        irregular = unusual(months)
    return [(stamps[i], stamps[i + 1]) for i in np.flatnonzero(irregular)]


def split_points(data: int | Series, split: Sequence = (0.7, 0.15, 0.15)) -> tuple[int, int]:
    """Chronological split: rows ``[0, train_end)`` train, ``[train_end, val_end)`` validate, the rest test.

    ``split`` is three fractions > 0 summing to 1 (rounded to whole rows), or, for a series with
    a time index, two timestamps: the last of training and the last of validation (inclusive).

    Example:
        >>> split_points(100)
        (70, 85)
        >>> import pandas as pd
        >>> frame = pd.DataFrame({"month": pd.date_range("2020-01-01", periods=12, freq="MS"), "y": range(12)})
        >>> split_points(load_series(frame, "y", time="month"), ("2020-08", "2020-10"))  # train Jan..Aug
        (8, 10)
    """
    n = int(data) if isinstance(data, numbers.Integral) else len(data)
    expected = "Expected three fractions > 0 summing to 1, or two timestamps (the last of training and of validation)."
    if not isinstance(split, (tuple, list)):
        raise ValueError(f"{expected} Received: split={split!r}")
    is_number = [isinstance(v, numbers.Real) for v in split]
    if len(split) == 2 and not any(is_number):
        import pandas as pd

        index = getattr(data, "index", None)
        if not isinstance(index, pd.DatetimeIndex):
            raise ValueError(
                f"Split dates need a series with a time index (load_series(..., time=...)). Received: split={split!r}"
            )
        try:
            ends = [pd.Timestamp(v) for v in split]
        except (ValueError, TypeError):
            raise ValueError(f"{expected} Received: split={split!r}") from None
        if index.tz is not None:
            ends = [t.tz_localize(index.tz) if t.tz is None else t for t in ends]
        if ends[0] >= ends[1]:
            raise ValueError(f"Expected the end of training before the end of validation. Received: split={split!r}")
        train_end, val_end = (int(index.searchsorted(t, side="right")) for t in ends)
    elif len(split) == 3 and all(is_number) and min(split) > 0 and abs(sum(split) - 1) <= 1e-6:
        train_end, val_end = round(n * split[0]), round(n * (split[0] + split[1]))
    else:
        raise ValueError(f"{expected} Received: split={split!r}")
    sizes = [train_end, val_end - train_end, n - val_end]
    if min(sizes) < 1:
        raise ValueError(
            f"The split leaves the {PARTS[int(np.argmin(sizes))]} part empty: {n} points into {sizes}. "
            f"Received: split={split!r}"
        )
    return train_end, val_end


class Scaler:
    """Per-column affine scaling ``(x - shift) / scale``, fitted on the training rows only.

    ``"standard"``: shift = mean, scale = standard deviation; ``"minmax"``: shift = min, scale =
    max - min (to [0, 1]); ``"none"``: shift 0, scale 1.  A constant column gets scale 1 (no
    division by zero).  Arrays (NumPy or torch) are ``(..., F)``: statistics are over every axis
    but the last.  ``columns`` picks the fitted columns an array holds, e.g. ``slice(0,
    n_targets)`` to map a model's predictions of the targets back to their units.

    Example:
        >>> scaler = Scaler("minmax").fit(np.array([[0.0, 5.0], [10.0, 5.0]]))
        >>> scaler.transform(np.array([[5.0, 5.0]])).tolist(), scaler.state_dict()
        ([[0.5, 0.0]], {'kind': 'minmax', 'shift': [0.0, 5.0], 'scale': [10.0, 1.0]})
        >>> scaler.inverse_transform(np.array([[1.0]]), columns=slice(0, 1)).tolist()
        [[10.0]]
    """

    def __init__(self, kind: str = "standard"):
        if kind not in SCALERS:
            raise ValueError(f"Expected a scaler kind, one of {list(SCALERS)}. Received: kind={kind!r}")
        self.kind = kind
        self.shift: np.ndarray | None = None  # (F,) float64
        self.scale: np.ndarray | None = None

    def fit(self, x: Any) -> Scaler:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 0 or x.size == 0:
            raise ValueError(f"Expected a non-empty array of shape (..., F) to fit. Received shape {x.shape}")
        x = x.reshape(-1, x.shape[-1])
        if not np.isfinite(x).all():
            raise ValueError(
                f"Expected finite values to fit the scaler. Received {int((~np.isfinite(x)).sum())} NaN or Inf."
            )
        low, high = x.min(axis=0), x.max(axis=0)
        if self.kind == "standard":
            shift, scale = x.mean(axis=0), x.std(axis=0)
        elif self.kind == "minmax":
            shift, scale = low, high - low
        else:
            shift, scale = np.zeros(x.shape[1]), np.ones(x.shape[1])
        self.shift, self.scale = shift, np.where(high > low, scale, 1.0)
        return self

    def transform(self, x: Any, columns: slice | Sequence[int] | None = None) -> Any:
        x, shift, scale = self._prepare(x, columns)
        return (x - shift) / scale

    def inverse_transform(self, x: Any, columns: slice | Sequence[int] | None = None) -> Any:
        x, shift, scale = self._prepare(x, columns)
        return x * scale + shift

    def _prepare(self, x: Any, columns: Any) -> tuple[Any, Any, Any]:
        """x as a float array or tensor, with shift and scale of its columns in its dtype (and device)."""
        if self.shift is None or self.scale is None:
            raise ValueError("The scaler is not fitted: call fit(train) first.")
        shift, scale = (self.shift, self.scale) if columns is None else (self.shift[columns], self.scale[columns])
        if isinstance(x, torch.Tensor):
            x = x if x.is_floating_point() else x.float()
            shift, scale = (torch.as_tensor(v, dtype=x.dtype, device=x.device) for v in (shift, scale))
        else:
            x = np.asarray(x)
            x = x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)
            shift, scale = shift.astype(x.dtype), scale.astype(x.dtype)
        if x.ndim == 0 or x.shape[-1] != len(shift):
            raise ValueError(
                f"Expected an array with {len(shift)} columns (last dimension). Received shape {tuple(x.shape)}"
            )
        return x, shift, scale

    def state_dict(self) -> dict:
        """Kind and statistics as plain floats (JSON-able)."""
        if self.shift is None or self.scale is None:
            return {"kind": self.kind, "shift": None, "scale": None}
        return {"kind": self.kind, "shift": self.shift.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_state_dict(cls, state: dict) -> Scaler:
        scaler = cls(state.get("kind"))
        shift, scale = state.get("shift"), state.get("scale")
        if (shift is None) != (scale is None) or (shift is not None and len(shift) != len(scale)):
            raise ValueError(f"Expected shift and scale of the same length. Received: {state!r}")
        if shift is not None:
            scaler.shift, scaler.scale = np.asarray(shift, dtype=np.float64), np.asarray(scale, dtype=np.float64)
        return scaler


class WindowDataset(Dataset):
    """Sliding windows over one ``(N, F)`` array, cut by index arithmetic (no window is stored).

    Item i is ``(inputs (window, F), targets (horizon, n_targets))``, float32: rows ``t - window
    .. t - 1`` of ``data``, and the first ``n_targets`` columns of rows ``t .. t + horizon - 1``,
    for ``t = first_target + i``.  Every target row lies in ``[start, end)``; the inputs may
    begin before ``start`` (the past is known when forecasting) but end where the targets begin.
    With ``n_future > 0`` the last ``n_future`` columns are future covariates (known ahead) and
    the item has a third part, ``future (horizon, n_future)``: those columns of the target rows.
    ``part`` names the span in error messages.

    Example:
        >>> data = np.arange(12, dtype=np.float32).reshape(6, 2)  # 6 steps of (target, covariate)
        >>> windows = WindowDataset(data, n_targets=1, window=3, horizon=2)
        >>> len(windows), tuple(windows[0][0].shape), tuple(windows[0][1].shape)
        (2, (3, 2), (2, 1))
        >>> windows[1][0][:, 0].tolist(), windows[1][1][:, 0].tolist()
        ([2.0, 4.0, 6.0], [8.0, 10.0])
        >>> len(WindowDataset(data, 1, window=3, horizon=1, start=4))  # targets at rows 4 and 5
        2
        >>> WindowDataset(data, 1, window=3, horizon=2, n_future=1)[1][2][:, 0].tolist()  # column 1 is known ahead
        [9.0, 11.0]
    """

    def __init__(
        self,
        data: np.ndarray | torch.Tensor,
        n_targets: int,
        window: int = 10,
        horizon: int = 1,
        start: int = 0,
        end: int | None = None,
        part: str = "series",
        n_future: int = 0,
    ):
        self.data = torch.as_tensor(data, dtype=torch.float32)  # no copy for a float32 array
        if self.data.ndim != 2:
            raise ValueError(f"Expected data of shape (N, F). Received shape {tuple(self.data.shape)}")
        n, features = self.data.shape
        end = n if end is None else end
        if not 1 <= n_targets <= features:
            raise ValueError(
                f"Expected 1 <= n_targets <= {features} (the columns of data). Received: n_targets={n_targets}"
            )
        if not 0 <= n_future <= features - n_targets:
            raise ValueError(
                f"Expected 0 <= n_future <= {features - n_targets} (the columns after the {n_targets} target(s)). "
                f"Received: n_future={n_future}"
            )
        if window < 1 or horizon < 1:
            raise ValueError(f"Expected window >= 1 and horizon >= 1. Received: window={window}, horizon={horizon}")
        if not 0 <= start < end <= n:
            raise ValueError(f"Expected 0 <= start < end <= {n} (the rows of data). Received: start={start}, end={end}")
        if end - start < horizon:
            raise ValueError(
                f"The {part} part has {end - start} points, fewer than horizon = {horizon}: "
                "no window has all its targets inside it."
            )
        if end < window + horizon:
            before = "" if start == 0 else f" and {start} before it"
            raise ValueError(
                f"Too short for one window: it needs at least window + horizon = {window + horizon} points, "
                f"the {part} part has {end - start}{before}."
            )
        self.n_targets, self.window, self.horizon, self.n_future = n_targets, window, horizon, n_future
        self.first_target, self.end = max(start, window), end

    def __len__(self) -> int:
        return self.end - self.horizon - self.first_target + 1

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        t = self.first_target + i
        inputs = self.data[t - self.window : t]
        targets = self.data[t : t + self.horizon, : self.n_targets]
        if self.n_future:  # copies of a few rows, so in-place edits spare the series
            future = self.data[t : t + self.horizon, self.data.shape[1] - self.n_future :]
            return inputs.clone(), targets.clone(), future.clone()
        return inputs.clone(), targets.clone()


def make_windows(
    series: Series,
    window: int = 10,
    horizon: int = 1,
    split: Sequence = (0.7, 0.15, 0.15),
    scaler: str = "standard",
) -> tuple[WindowDataset, WindowDataset, WindowDataset, Scaler]:
    """Split by time, fit the scaler on the training rows only, scale every row with it, and cut windows.

    Inputs are the scaled columns of ``series.table()`` (targets, covariates, future
    covariates); the scaler covers them in that order (``columns=slice(0, n_targets)`` for
    predictions).  With future covariates each window also serves their values over its horizon.

    Example:
        >>> train, val, test, scaler = make_windows(load_series(np.arange(100.0)), window=10, horizon=2)
        >>> len(train), len(val), len(test), tuple(train[0][0].shape), tuple(train[0][1].shape)
        (59, 14, 14, (10, 1), (2, 1))
        >>> scaler.inverse_transform(test[0][1]).flatten().tolist()  # the first test targets
        [85.0, 86.0]
    """
    train_end, val_end = split_points(series, split)
    data = series.table()
    fitted = Scaler(scaler).fit(data[:train_end])
    scaled = torch.from_numpy(np.ascontiguousarray(fitted.transform(data), dtype=np.float32))
    spans = zip(PARTS, [(0, train_end), (train_end, val_end), (val_end, len(series))])
    k, n_future = series.values.shape[1], series.future_covariates.shape[1]
    train, val, test = (
        WindowDataset(scaled, k, window, horizon, a, b, part=part, n_future=n_future) for part, (a, b) in spans
    )
    return train, val, test, fitted
