"""What the service runs: the generating model (a poetry model, or a text run) and the forecast run, loaded
once at start-up, and the forecast of one request."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from ..data.vocab import Vocabulary
from ..decoding import FreeText, PoemForm
from ..language_model import LanguageModel


@dataclass
class GenerationModel:
    """A language model, its vocabulary, and what it writes: ``poetry`` (regular poems) or ``text``."""

    kind: Literal["poetry", "text"]
    model: LanguageModel
    vocab: Vocabulary

    def form(
        self, *, acrostic: str | None, form: int, lines: int, length: int, first_line: str | None = None,
        rhyme: bool = False,
    ) -> PoemForm | FreeText:  # fmt: skip
        """The constraint of one request; a ``ValueError`` naming what the model cannot write."""
        if self.kind == "poetry":
            return PoemForm(self.vocab, chars_per_line=form, num_lines=lines, heads=acrostic, first_line=first_line,
                            rhyme=rhyme)  # fmt: skip
        if first_line is not None or rhyme:
            raise ValueError("first_line and rhyme are for poetry models; this service writes text.")
        return FreeText(self.vocab, length)

    def prefix(self, prime: str = "") -> list[int]:
        """The token ids generation starts after: the poem separator, or the prime of a text."""
        if self.kind == "poetry":
            return PoemForm.start(self.vocab)
        unknown = sorted({c for c in prime if c not in self.vocab})
        if unknown:
            raise ValueError(f"The prime has characters the model never saw: {''.join(unknown)!r}.")
        return self.vocab.encode(prime or ("\n" if "\n" in self.vocab else self.vocab.itos[1]))


def load_generation_model(run: str | Path | None = None) -> GenerationModel:
    """The shipped poetry model (``run=None``), an exported poetry model or poetry run directory, or a text run.

    Example:
        >>> load_generation_model().kind
        'poetry'
        >>> load_generation_model("no/such/dir")
        Traceback (most recent call last):
        ...
        ValueError: Expected --run to be a poetry model or a text or poetry run directory. Received: 'no/such/dir', which does not exist.
    """  # noqa: E501
    from ..export import read_language_model
    from ..tasks import poetry

    if run is None:
        shipped = poetry.load_model()
        return GenerationModel("poetry", shipped.model, shipped.vocab)
    directory = Path(run)
    if not directory.is_dir():
        raise ValueError(
            f"Expected --run to be a poetry model or a text or poetry run directory. Received: {str(run)!r}, "
            "which does not exist."
        )
    source = read_language_model(directory)  # a poetry or text run, or a model directory; clear errors otherwise
    return GenerationModel(source.task, source.model, source.vocabulary())


def load_forecast_run(run: str | Path):
    """A forecast run of one target (``rnnkit.forecast.task.load_run``), checked for what the service needs."""
    from ..forecast.task import load_run

    if not Path(run).is_dir():
        raise ValueError(f"Expected --forecast-run to be a forecast run directory. Received: {str(run)!r}, which "
                         "does not exist.")  # fmt: skip
    loaded = load_run(run)
    if loaded.series.values.shape[1] != 1:
        raise ValueError(f"rnnkit serve forecasts one target; {str(run)!r} has {loaded.series.values.shape[1]}.")
    return loaded


def forecast(run, history: list[float] | None, horizon: int) -> dict:
    """The forecast of the ``horizon`` steps after ``history`` (None: the run's own series), with the naive
    and seasonal-naive forecasts from the same history, in the series' units.

    A history of plain values works with models that read the target only; models with covariates forecast
    from their own series.  ``ValueError`` for a request the model cannot answer.
    """
    from ..forecast.metrics import naive_forecast, seasonal_naive_forecast
    from ..forecast.task import Z95, _future_block, _unscale

    settings, model = run.settings, run.model
    window, season = settings["window"], settings["season"]
    if horizon > model.horizon:
        raise ValueError(f"Expected horizon <= {model.horizon} (the run's horizon). Received: horizon={horizon}")
    if history is None:
        table, values = run.series.table(), run.series.values[:, 0].astype(np.float64)
    else:
        if run.series.table().shape[1] != 1:
            raise ValueError("This forecast model also reads covariates, which a history of values does not hold; "
                             "send history null to forecast from the run's own series.")  # fmt: skip
        values = np.asarray(history, dtype=np.float64)
        table = values[:, None]
        if len(values) < window:
            raise ValueError(f"Expected a history of at least window = {window} values. Received: {len(values)}")
    with np.errstate(over="ignore"):
        scaled = np.asarray(run.scaler.transform(table[-window:]), dtype=np.float32)
    if not np.all(np.isfinite(scaled)):
        raise ValueError("The forecast is not finite: the history's values are far outside what the model saw.")
    inputs = torch.from_numpy(np.ascontiguousarray(scaled))[None]
    steps = horizon if model.strategy == "recursive" else model.horizon  # direct and seq2seq: all H, then cut
    known = None
    if model.n_future:
        block = _future_block(settings, run.series, steps, None)
        columns = slice(inputs.shape[-1] - model.n_future, inputs.shape[-1])
        known = torch.from_numpy(np.ascontiguousarray(run.scaler.transform(block, columns=columns), np.float32))[None]
    out = model.predict(inputs, steps, known)
    std = None if out.std is None else out.std[0, :horizon].double().numpy()
    mean, std = _unscale(run.scaler, 1, out.mean[0, :horizon].double().numpy(), std)
    mean = mean[:, 0]
    if not np.all(np.isfinite(mean)) or (std is not None and not np.all(np.isfinite(std))):
        raise ValueError("The forecast is not finite: the history's values are far outside what the model saw.")
    answer: dict = {"forecast": mean.tolist()}
    if std is not None:
        answer |= {"lower": (mean - Z95 * std[:, 0]).tolist(), "upper": (mean + Z95 * std[:, 0]).tolist()}
    end = np.array([len(values)])
    baselines = {"naive": naive_forecast(values, end, horizon)[0].tolist()}
    if len(values) >= season:
        baselines["seasonal_naive"] = seasonal_naive_forecast(values, end, horizon, season)[0].tolist()
    answer["baselines"] = baselines
    return answer
