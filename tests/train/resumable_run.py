"""A small training run for the kill -9 resume test: python resumable_run.py RUN_DIR [--resume] [--step-sleep S].

A 1-layer LSTM language model on a generated token stream (truncated BPTT, dropout, shuffled
nothing: the state flows between chunks), so that resuming has to restore weights, optimizer,
schedule, RNG (dropout) and the carried-state bookkeeping to reach the same result.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch

from rnnkit.data.batches import sequence_loader, stream_loader
from rnnkit.language_model import LanguageModel
from rnnkit.train import Splits, TrainConfig, fit


class SlowModel(LanguageModel):
    step_sleep = 0.0

    def loss(self, batch, state=None):
        time.sleep(self.step_sleep)
        return super().loss(batch, state)


def main(run_dir: str, resume: bool, step_sleep: float, kind: str = "stream") -> None:
    rng = np.random.default_rng(0)
    tokens = (np.cumsum(rng.integers(1, 3, size=6000)) % 11).astype(np.int64)  # learnable: mostly +1, +2 steps
    torch.manual_seed(0)
    model = SlowModel(vocab_size=11, embedding_dim=8, hidden_size=16, num_layers=1, dropout=0.2)
    model.step_sleep = step_sleep
    if kind == "stream":
        data = Splits(stream_loader(tokens[:5000], 8, 25), stream_loader(tokens[5000:], 4, 25), stateful=True)
    else:  # whole sequences, shuffled each epoch
        seqs = [tokens[i : i + 20].tolist() for i in range(0, 5000, 20)]
        data = Splits(sequence_loader(seqs, 16, seed=3), sequence_loader(seqs[:40], 16, shuffle=False))
    config = TrainConfig(epochs=6, learning_rate=1e-2, scheduler="plateau", lr_patience=0, early_stopping=0,
                         progress=False, seed=1)  # fmt: skip
    result = fit(model, data, config, run_dir=None if resume else run_dir, resume=run_dir if resume else None)
    print(f"FINAL {result.metrics[-1]['val_loss']!r} EPOCHS {result.epochs}")


if __name__ == "__main__":
    args = sys.argv[1:]
    sleep = float(args[args.index("--step-sleep") + 1]) if "--step-sleep" in args else 0.0
    kind = args[args.index("--kind") + 1] if "--kind" in args else "stream"
    main(args[0], "--resume" in args, sleep, kind)
