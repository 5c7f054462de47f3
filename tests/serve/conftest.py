"""Tiny runs for the service's tests, trained once per session: a forecast run and a text run."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def forecast_run(tmp_path_factory):
    """A direct LSTM-8 forecaster of a sine, window 8, horizon 3, one epoch."""
    from rnnkit.forecast.task import train

    directory = tmp_path_factory.mktemp("forecast")
    train(np.sin(np.arange(120) / 3.0), window=8, horizon=3, hidden_sizes=(8,), epochs=1, progress=False,
          run_dir=directory)  # fmt: skip
    return directory


@pytest.fixture(scope="session")
def text_run(tmp_path_factory):
    """An LSTM-16 character model of one repeated sentence, one epoch."""
    from rnnkit.tasks.text import train

    directory = tmp_path_factory.mktemp("text")
    (directory / "t.txt").write_text("the cat sat on the mat. " * 40, encoding="utf-8")
    train(directory / "t.txt", hidden_size=16, embedding_dim=8, num_layers=1, epochs=1, baselines=False,
          progress=False, run_dir=directory / "run", chunk_length=16, batch_size=4)  # fmt: skip
    return directory / "run"
