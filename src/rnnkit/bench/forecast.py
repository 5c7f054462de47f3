"""Forecast training throughput: ``rnnkit.train.fit`` against a plain PyTorch loop on the same windows.

Both train the same ``ForecastModel`` (same initial weights) for one epoch over the same
shuffled windows of a generated series (a noisy sine, scaled on its training part, windows cut
lazily by ``WindowDataset`` and batched by one ``DataLoader``), Adam, gradient clipping at norm
5, the loss read every step.  Throughput is windows per second over the training steps (fit's
own measurement from step to step, so Lightning's per-step work is counted); the plain loop is
timed the same way.  Set-up (Lightning's Trainer, the checkpoint at the end) is reported apart,
as the wall seconds of each call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .fit import alternate

POINTS = 6000  # generated series length; the training part (70 %) gives about 4,200 windows
WINDOW = 24
HORIZON = 6
BATCH = 64
SIZES = {  # hidden sizes of the stacked LSTM layers (direct strategy, point head)
    "small": (32,),
    "medium": (64, 64),
}


@dataclass
class ForecastBenchRow:
    size: str
    model: str
    windows: int  # training windows in the epoch
    plain_windows_per_s: float
    fit_windows_per_s: float
    ratio: float  # fit / plain throughput (1.0 = no overhead)
    fit_wall_s: float  # the whole fit() call, set-up and checkpoints included
    plain_wall_s: float


def describe() -> str:
    return f"{POINTS} points, window {WINDOW}, horizon {HORIZON}, batch {BATCH}, direct LSTM"


def _setup(size: str, seed: int = 0):
    from ..data.series import load_series, make_windows
    from ..forecast.model import ForecastConfig, ForecastModel

    rng = np.random.default_rng(seed)
    t = np.arange(POINTS)
    values = np.sin(2 * np.pi * t / 50) + 0.1 * rng.normal(size=POINTS)
    train, _, _, _ = make_windows(load_series(values), WINDOW, HORIZON)
    torch.manual_seed(seed)
    model = ForecastModel(ForecastConfig(horizon=HORIZON, hidden_sizes=SIZES[size], strategy="direct"))
    generator = torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(train, batch_size=BATCH, shuffle=True, generator=generator)
    return model, loader


def plain_loop(model, loader) -> tuple[float, float]:
    """The reference loop of ``bench.fit`` (no state carried). Returns (windows/s, wall s)."""
    from .fit import plain_loop as loop

    return loop(model, loader, learning_rate=1e-3, stateful=False)


def fit_loop(model, loader) -> tuple[float, float]:
    from .fit import fit_loop as loop

    return loop(model, loader, learning_rate=1e-3, stateful=False, unit="windows")


def run(sizes: list[str] | tuple[str, ...] = ("small", "medium"), repeats: int = 3) -> list[ForecastBenchRow]:
    """For each size, alternate fit and the plain loop ``repeats`` times; medians of each."""
    unknown = [s for s in sizes if s not in SIZES]
    if unknown or not sizes:
        raise ValueError(f"Expected sizes among {list(SIZES)}. Received: sizes={list(sizes)!r}")
    if repeats < 1:
        raise ValueError(f"Expected repeats >= 1. Received: repeats={repeats}")
    fit_loop(*_setup(sizes[0]))  # warm-up: imports, first-call allocations
    rows = []
    for size in sizes:
        p, f, plain_wall, fit_wall = alternate(lambda size=size: _setup(size), plain_loop, fit_loop, repeats)
        model, loader = _setup(size)
        label = f"LSTM {','.join(map(str, SIZES[size]))} ({sum(x.numel() for x in model.parameters()):,} params)"
        rows.append(
            ForecastBenchRow(
                size,
                label,
                len(loader.dataset),
                p,
                f,
                f / p,
                fit_wall,
                plain_wall,
            )
        )
    return rows
