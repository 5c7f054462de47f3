"""Training throughput of ``rnnkit.train.fit`` against a plain PyTorch loop doing the same work.

Both train the same language model (same initial weights) on the same generated stream, one
epoch of truncated-BPTT chunks, Adam, gradient clipping at norm 5, state carried and
detached between chunks.  Throughput is tokens per second over the training steps (fit's
own measurement, from step to step, so Lightning's per-step work is counted); the plain loop
is timed the same way.  Startup (Lightning's import and set-up, the checkpoint at the end) is
reported apart, as seconds.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass

import numpy as np
import torch

SIZES = {  # vocab, embedding, hidden, batch, chunk, chunks per epoch
    "small": (64, 32, 128, 32, 64, 40),
    "medium": (256, 128, 512, 64, 100, 20),
}


@dataclass
class FitBenchRow:
    size: str
    plain_tokens_per_s: float
    fit_tokens_per_s: float
    ratio: float  # fit / plain throughput (1.0 = no overhead)
    fit_wall_s: float  # the whole fit() call, set-up and checkpoints included
    plain_wall_s: float


def _setup(size: str, seed: int = 0):
    from ..data.batches import stream_loader
    from ..language_model import LanguageModel

    vocab, emb, hidden, batch, chunk, chunks = SIZES[size]
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, vocab, size=batch * chunk * chunks + 1)
    torch.manual_seed(seed)
    model = LanguageModel(vocab, embedding_dim=emb, hidden_size=hidden, num_layers=1)
    return model, stream_loader(tokens, batch, chunk)


def plain_loop(model, loader, learning_rate: float = 2e-3, stateful: bool = True) -> tuple[float, float]:
    """The reference: the same steps written as a bare loop. Returns (items/s, wall s), items
    being what ``LossOutput.count`` counts (tokens, windows)."""
    from ..train.loop import detach_state

    start = time.perf_counter()
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    model.train()
    state, items, seconds = None, 0, 0.0
    last = time.perf_counter()
    for batch in loader:
        out = model.loss(batch, state)
        out.loss.item()  # fit reads the loss every step too (NaN check, progress)
        optimizer.zero_grad()
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0).item()
        optimizer.step()
        state = detach_state(out.state) if stateful else None
        now = time.perf_counter()
        items += out.count
        seconds += now - last
        last = now
    return items / seconds, time.perf_counter() - start


def fit_loop(
    model, loader, learning_rate: float = 2e-3, stateful: bool = True, unit: str = "tokens"
) -> tuple[float, float]:
    """The same epoch through ``rnnkit.train.fit``. Returns (items/s from fit's metrics, wall s)."""
    from ..train import Splits, TrainConfig, fit

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as run_dir:
        config = TrainConfig(epochs=1, learning_rate=learning_rate, scheduler="none", early_stopping=0,
                             progress=False, device="cpu")  # fmt: skip
        result = fit(model, Splits(loader, None, stateful=stateful, unit=unit), config, run_dir=run_dir)
    return result.metrics[0]["throughput"], time.perf_counter() - start


def run(size: str = "small", repeats: int = 3) -> FitBenchRow:
    """Alternate fit and the plain loop ``repeats`` times; medians of each."""
    if size not in SIZES:
        raise ValueError(f"Expected size to be one of {list(SIZES)}. Received: size={size!r}")
    fit_loop(*_setup(size))  # warm-up: imports, first-call allocations
    p, f, plain_wall, fit_wall = alternate(lambda: _setup(size), plain_loop, fit_loop, repeats)
    return FitBenchRow(size, p, f, f / p, fit_wall, plain_wall)


def alternate(setup, plain, fitted, repeats: int) -> tuple[float, float, float, float]:
    """Run ``plain(*setup())`` and ``fitted(*setup())`` in turn ``repeats`` times (fresh model and
    data each time); the medians of (plain rate, fit rate, plain wall s, fit wall s)."""
    plain_runs, fit_runs = [], []
    for _ in range(repeats):
        plain_runs.append(plain(*setup()))
        fit_runs.append(fitted(*setup()))
    median = statistics.median
    return (median(r[0] for r in plain_runs), median(r[0] for r in fit_runs),
            median(r[1] for r in plain_runs), median(r[1] for r in fit_runs))  # fmt: skip
