"""Data-parallel training: two CPU processes (Lightning DDP, gloo) follow the curve of one process."""

from __future__ import annotations

import csv
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rnnkit.data.batches import ShardedBatchSampler, sequence_loader, shard_loader, stream_loader
from rnnkit.train import Splits, TrainConfig, fit
from rnnkit.train.fit import model_state

SCRIPT = Path(__file__).with_name("ddp_run.py")
ROOT = Path(__file__).resolve().parents[2]


def rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def relative_difference(a: list[dict], b: list[dict], columns: tuple[str, ...]) -> float:
    assert len(a) == len(b)
    return max(abs(float(x[c]) / float(y[c]) - 1) for x, y in zip(a, b, strict=True) for c in columns)


def test_two_cpu_processes_with_the_same_global_batch_follow_the_curve_of_one(tmp_path):
    # Tolerance: 1e-5 relative on every epoch's train and validation loss and every step's gradient norm,
    # 1e-5 on the final weights. Both runs do the same float32 arithmetic but for the order of the sums
    # (a batch's loss and gradient summed in two halves, then all-reduced); measured: losses agree to
    # ~5e-8 relative, gradient norms to ~1.5e-7, weights to ~4e-7 absolute (weights of size up to ~3.6).
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "two"), "--devices", "2"],
                          capture_output=True, text=True, env=env, timeout=240)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "RANK 1 stream EPOCHS 2" in done.stdout and "RANK 0 sequences EPOCHS 2" in done.stdout

    spec = importlib.util.spec_from_file_location("ddp_run", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    script.main(str(tmp_path / "one"), devices=1)  # the reference, in this process

    for kind in ("stream", "sequences"):
        one, two = tmp_path / "one" / kind, tmp_path / "two" / kind
        assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())  # rank 1 wrote nothing
        metrics_one, metrics_two = rows(one / "metrics.csv"), rows(two / "metrics.csv")
        assert [r["step"] for r in metrics_two] == [r["step"] for r in metrics_one]  # same number of global batches
        assert relative_difference(metrics_one, metrics_two, ("train_loss", "val_loss")) < 1e-5
        assert relative_difference(rows(one / "grad_norms.csv"), rows(two / "grad_norms.csv"), ("grad_norm",)) < 1e-5
        weights_one = model_state(one / "checkpoints" / "last.ckpt")
        weights_two = model_state(two / "checkpoints" / "last.ckpt")
        for name, value in weights_one.items():
            torch.testing.assert_close(weights_two[name], value, rtol=1e-5, atol=1e-5)


def test_processes_share_every_global_batch_between_them():
    streams = stream_loader(np.arange(81), batch_size=4, chunk_length=5)
    parts = [shard_loader(streams, rank, 2) for rank in (0, 1)]
    for whole, *halves in zip(streams, *parts, strict=True):
        torch.testing.assert_close(torch.cat([h[0] for h in halves]), whole[0])  # rows split, state stays per row

    sequences = [[i] * (2 + i % 5) for i in range(11)]
    loader = sequence_loader(sequences, batch_size=4, seed=5)
    loader.sampler.set_epoch(3)
    orders = [ShardedBatchSampler(loader.sampler, 4, rank, 2) for rank in (0, 1)]
    whole = list(torch.utils.data.BatchSampler(loader.sampler, 4, drop_last=False))
    assert [a + b for a, b in zip(*orders, strict=True)] == whole  # 4 + 4 + 3 items, the last split 2 + 1


def test_a_batch_the_processes_cannot_share_is_a_clear_error():
    with pytest.raises(ValueError, match="divisible by the number of processes"):
        shard_loader(stream_loader(np.arange(100), batch_size=3, chunk_length=5), 0, 2)
    with pytest.raises(ValueError, match="divisible by the number of processes"):
        fit(torch.nn.Linear(1, 1), Splits(sequence_loader([[1, 2]] * 6, batch_size=3)),
            TrainConfig(devices=2, strategy="ddp", progress=False))  # fmt: skip
    with pytest.raises(ValueError, match=r"Expected strategy to be one of \['auto', 'ddp'\]"):
        TrainConfig(strategy="fsdp")
    with pytest.raises(ValueError, match="Expected devices to be an integer >= 1"):
        TrainConfig(devices=0)
