"""Training runs for the data-parallel test: python ddp_run.py RUN_DIR --devices N.

Trains the same small LSTM language model twice, each in RUN_DIR/<kind>: on a token stream
(truncated BPTT, 8 parallel streams, a one-stream validation loader that every process reads
whole) and on shuffled sequences of random lengths 5..20 (batch 8, a last batch of 5 that splits
3 + 2).  No dropout, so one process and several processes do the same arithmetic up to the
order of floating-point sums.  With ``--devices 2`` Lightning starts a second process that runs
this script again (strategy "ddp", gloo on CPU).
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from rnnkit.data.batches import sequence_loader, stream_loader
from rnnkit.language_model import LanguageModel
from rnnkit.train import Splits, TrainConfig, fit


def main(run_dir: str, devices: int) -> None:
    rng = np.random.default_rng(0)
    tokens = (np.cumsum(rng.integers(1, 3, size=3600)) % 11).astype(np.int64)  # mostly +1, +2 steps
    lengths = rng.integers(5, 21, size=101)
    starts = np.cumsum(np.concatenate([[0], lengths[:-1]]))
    sequences = [tokens[s : s + n].tolist() for s, n in zip(starts, lengths, strict=True)]
    kinds = {
        "stream": Splits(stream_loader(tokens[:3000], 8, 25), stream_loader(tokens[3000:], 1, 50), stateful=True),
        "sequences": Splits(
            sequence_loader(sequences[:85], 8, seed=3), sequence_loader(sequences[85:], 8, shuffle=False)
        ),
    }
    for kind, data in kinds.items():
        torch.manual_seed(0)
        model = LanguageModel(vocab_size=11, embedding_dim=8, hidden_size=16, num_layers=1, dropout=0.0)
        config = TrainConfig(epochs=2, learning_rate=1e-2, lr_patience=0, early_stopping=0, progress=False, seed=1,
                             devices=devices, strategy="ddp" if devices > 1 else "auto")  # fmt: skip
        result = fit(model, data, config, run_dir=f"{run_dir}/{kind}")
        print(f"RANK {result.global_rank} {kind} EPOCHS {result.epochs}")


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[0], int(args[args.index("--devices") + 1]) if "--devices" in args else 1)
