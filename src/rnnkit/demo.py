"""The quick demo: every cell learns the adding problem on variable-length sequences.

The adding problem (Hochreiter & Schmidhuber 1997): each step carries a random number and
a marker; two steps are marked, and the target is the sum of their numbers.  Predicting the
mean (1.0) scores MSE 1/6 ≈ 0.167, the baseline printed beside every cell.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from .tasks.memory import BASELINE_MSE, LastStepRegressor, adding_batch  # noqa: F401  (BASELINE_MSE: the CLI reads it here)


def quick_adding(
    cell: str, steps: int = 300, max_steps: int = 20, hidden_size: int = 32, seed: int = 0
) -> dict[str, float | str]:
    """Train one cell on the variable-length adding problem (short: T <= max_steps, a few hundred
    steps); returns its test MSE and the time taken.  The full task is ``rnnkit.tasks.memory``."""
    torch.manual_seed(seed)
    data = torch.Generator().manual_seed(seed)
    model = LastStepRegressor(cell, hidden_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    start = time.perf_counter()
    for _ in range(steps):
        x, lengths, target = adding_batch(64, max_steps, data)
        loss = nn.functional.mse_loss(model(x, lengths), target)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
    seconds = time.perf_counter() - start
    x, lengths, target = adding_batch(1000, max_steps, torch.Generator().manual_seed(seed + 1))
    with torch.no_grad():
        test_mse = nn.functional.mse_loss(model.eval()(x, lengths), target).item()
    return {"cell": cell, "backend": model.rnn.backend, "test_mse": test_mse, "seconds": seconds}
