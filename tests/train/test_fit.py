"""rnnkit.train.fit: run directory, checkpoints, resume after kill -9, clipping, NaN stop, schedules."""

from __future__ import annotations

import csv
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from rnnkit.train import CheckpointError, LossOutput, Splits, TrainConfig, fit, load_checkpoint
from rnnkit.train.loop import TrainingDiverged

SCRIPT = Path(__file__).with_name("resumable_run.py")
ROOT = Path(__file__).resolve().parents[2]


def quiet(**kwargs) -> TrainConfig:
    return TrainConfig(progress=False, **kwargs)


class Regression(nn.Module):
    """y = w x + b by MSE; optionally a NaN loss at one global step."""

    def __init__(self, nan_at_step: int | None = None):
        super().__init__()
        self.linear = nn.Linear(3, 1)
        self.nan_at_step = nan_at_step
        self.calls = 0

    def loss(self, batch, state=None):
        x, y = batch
        self.calls += 1
        loss = ((self.linear(x).squeeze(-1) - y) ** 2).mean()
        if self.training and self.calls == self.nan_at_step:
            loss = loss * float("nan")
        return LossOutput(loss, len(x))


def regression_data(n=256, batch=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5]) + 0.3 + 0.05 * torch.randn(n, generator=g)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=batch)
    return Splits(loader, loader)


def run_script(run_dir: Path, *extra: str, timeout: float = 120) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, str(SCRIPT), str(run_dir), *extra], capture_output=True, text=True,
                          env=env, timeout=timeout)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def final_val_loss(stdout: str) -> float:
    line = next(line for line in stdout.splitlines() if line.startswith("FINAL"))
    return float(line.split()[1])


@pytest.mark.parametrize("kind", ["stream", "sequences"])
def test_resume_after_kill_9_mid_epoch_reaches_the_same_final_validation_loss(tmp_path, kind):
    # Tolerance: 1e-6 relative. On one machine the resumed run replays the same float operations
    # in the same order (weights, Adam moments, plateau schedule, dropout RNG, shuffling all restored).
    reference = final_val_loss(run_script(tmp_path / "straight", "--kind", kind))

    run_dir = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    child = subprocess.Popen([sys.executable, str(SCRIPT), str(run_dir), "--step-sleep", "0.01", "--kind", kind],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    metrics = run_dir / "metrics.csv"
    deadline = time.time() + 120
    while time.time() < deadline and child.poll() is None:
        if metrics.is_file() and len(metrics.read_text().splitlines()) >= 3:  # header + 2 epochs done
            break
        time.sleep(0.02)
    time.sleep(0.3)  # well inside epoch 3 (an epoch takes about 20 steps of 10 ms and more)
    assert child.poll() is None, "the run ended before it could be killed"
    child.send_signal(signal.SIGKILL)
    child.wait()
    epochs_before = len(list(csv.DictReader(metrics.open())))
    assert 2 <= epochs_before < 6
    load_checkpoint(run_dir / "checkpoints" / "last.ckpt")  # never half-written

    stdout = run_script(run_dir, "--resume", "--kind", kind)
    assert "EPOCHS 6" in stdout
    assert final_val_loss(stdout) == pytest.approx(reference, rel=1e-6)
    rows = list(csv.DictReader(metrics.open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4, 5, 6]  # the curve continues, no gap or repeat
    steps = list(csv.DictReader((run_dir / "grad_norms.csv").open()))  # and so do the per-step gradient norms
    assert [int(r["step"]) for r in steps] == list(range(1, int(rows[-1]["step"]) + 1))
    assert [int(r["epoch"]) for r in steps] == sorted(int(r["epoch"]) for r in steps)


def test_run_directory_holds_config_metrics_checkpoints_weights_and_plot(tmp_path):
    result = fit(Regression(), regression_data(), quiet(epochs=3, learning_rate=0.05), run_dir=tmp_path, meta={"x": 1})
    names = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert {"config.json", "metrics.csv", "model.safetensors", "plots/loss.png", "checkpoints/best.ckpt",
            "checkpoints/last.ckpt"} <= names  # fmt: skip
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert float(rows[-1]["val_loss"]) < float(rows[0]["val_loss"])
    assert result.epochs == 3 and result.stop_reason == "all epochs done"
    checkpoint = load_checkpoint(tmp_path / "checkpoints" / "best.ckpt")
    assert checkpoint["rnnkit"]["version"] and checkpoint["epoch"] == result.best_epoch - 1


def test_checkpoint_saved_with_tensors_on_another_device_loads_on_cpu(tmp_path):
    """The checkpoint records cuda:0 as the tensors' device (as one saved on a GPU does); with no
    GPU here, a plain torch.load fails and load_checkpoint (map_location='cpu') succeeds."""
    fit(Regression(), regression_data(), quiet(epochs=1), run_dir=tmp_path)
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    gpu_file = tmp_path / "gpu.ckpt"
    if torch.cuda.is_available():
        torch.save({k: v.cuda() for k, v in checkpoint["state_dict"].items()} | {"epoch": 0}, gpu_file)
    else:
        registry = torch.serialization._package_registry
        tag = (99, lambda storage: "cuda:0" if storage.device.type == "cpu" else None, lambda obj, location: None)
        registry.append(tag)
        registry.sort(key=lambda entry: -entry[0])
        try:
            torch.save({"state_dict": checkpoint["state_dict"], "epoch": 0}, gpu_file)
        finally:
            registry.remove(tag)
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(gpu_file, weights_only=True)
    loaded = load_checkpoint(gpu_file)
    assert all(v.device.type == "cpu" for v in loaded["state_dict"].values())
    weight = "model.linear.weight"
    torch.testing.assert_close(loaded["state_dict"][weight], checkpoint["state_dict"][weight])


def test_nan_loss_stops_the_run_naming_the_step_and_keeps_the_best_checkpoint(tmp_path):
    data = regression_data()  # 8 batches an epoch: step 20 is in epoch 3
    model = Regression(nan_at_step=None)
    fit(model, data, quiet(epochs=2, learning_rate=0.05), run_dir=tmp_path)
    best = tmp_path / "checkpoints" / "best.ckpt"
    before = best.read_bytes()
    model.calls, model.nan_at_step = 0, 4  # the 4th training batch after resuming: epoch 3
    with pytest.raises(TrainingDiverged, match=r"loss became nan at step 20 \(epoch 3, batch 4\)"):
        fit(model, data, quiet(epochs=5), resume=tmp_path)
    assert best.read_bytes() == before
    assert load_checkpoint(best)["epoch"] == 1


def test_clipping_logs_the_pre_clip_norm_and_the_fraction_clipped(tmp_path):
    result = fit(Regression(), regression_data(), quiet(epochs=1, clip_norm=1e-3, learning_rate=1e-3), run_dir=tmp_path)
    row = result.metrics[0]
    assert row["clipped_fraction"] == 1.0 and row["grad_norm"] > 1e-3
    result = fit(Regression(), regression_data(), quiet(epochs=1, clip_norm=0), run_dir=tmp_path / "off")
    assert result.metrics[0]["clipped_fraction"] == 0.0


def test_clip_value_clamps_every_gradient_entry(tmp_path):
    seen = []

    class Spy(Regression):
        def loss(self, batch, state=None):
            if self.linear.weight.grad is not None:
                seen.append(self.linear.weight.grad.abs().max().item())
            return super().loss(batch, state)

    fit(Spy(), regression_data(), quiet(epochs=1, clip_value=0.01, clip_norm=0, optimizer="sgd"), run_dir=tmp_path)
    assert seen and max(seen) <= 0.01 + 1e-7


class StateSpy(nn.Module):
    """A one-unit recurrence over a stream, recording the state each chunk starts from."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.RNN(1, 1, batch_first=True)
        self.received = []

    def loss(self, batch, state=None):
        x, y = batch
        self.received.append(state)
        out, state = self.rnn(x.unsqueeze(-1).float(), state)
        return LossOutput(((out.squeeze(-1) - y.float()) ** 2).mean(), x.numel(), state)


def test_truncated_bptt_carries_the_detached_state_between_chunks_and_resets_each_epoch(tmp_path):
    from rnnkit.data.batches import stream_loader

    tokens = torch.arange(101).numpy() % 5
    model = StateSpy()
    fit(model, Splits(stream_loader(tokens, 2, 10), None, stateful=True), quiet(epochs=2), run_dir=tmp_path)
    chunks = 5  # 50 positions per stream, chunk length 10
    received = model.received
    assert len(received) == 2 * chunks
    assert received[0] is None and received[chunks] is None  # each epoch starts afresh
    assert all(s is not None and s.grad_fn is None and not s.requires_grad for s in received[1:chunks])


def test_early_stopping_stops_after_patience_epochs_without_improvement(tmp_path):
    class Stuck(Regression):
        def loss(self, batch, state=None):
            out = super().loss(batch, state)
            return LossOutput(out.loss * 0 + 1.0 + 0 * out.loss, out.count)  # constant: never improves

    result = fit(Stuck(), regression_data(), quiet(epochs=10, early_stopping=2), run_dir=tmp_path)
    assert result.epochs == 3 and result.best_epoch == 1 and result.stop_reason.startswith("early stopping")


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "rmsprop", "sgd"])
def test_every_optimizer_lowers_the_loss(tmp_path, optimizer):
    result = fit(Regression(), regression_data(), quiet(epochs=4, optimizer=optimizer, learning_rate=0.02),
                 run_dir=tmp_path)  # fmt: skip
    assert result.metrics[-1]["val_loss"] < result.metrics[0]["val_loss"]


def test_cosine_schedule_anneals_and_plateau_halves_the_learning_rate(tmp_path):
    result = fit(Regression(), regression_data(), quiet(epochs=4, scheduler="cosine", learning_rate=0.1, min_lr=0.0),
                 run_dir=tmp_path / "cos")  # fmt: skip
    lrs = [row["lr"] for row in result.metrics]
    assert lrs[0] == 0.1 and all(a > b for a, b in zip(lrs, lrs[1:]))
    assert lrs[2] == pytest.approx(0.1 * (1 + math.cos(math.pi * 2 / 4)) / 2)

    class Stuck(Regression):
        def loss(self, batch, state=None):
            out = super().loss(batch, state)
            return LossOutput(out.loss * 0 + 1.0, out.count)

    result = fit(Stuck(), regression_data(), quiet(epochs=4, lr_patience=0, early_stopping=0, learning_rate=0.1),
                 run_dir=tmp_path / "plateau")  # fmt: skip
    # the lr each epoch ran with: epoch 1 sets the best, every later epoch misses it and halves the lr after it
    assert [row["lr"] for row in result.metrics] == pytest.approx([0.1, 0.1, 0.05, 0.025])


def test_resume_refuses_a_truncated_checkpoint_with_a_clear_error(tmp_path):
    fit(Regression(), regression_data(), quiet(epochs=1), run_dir=tmp_path)
    last = tmp_path / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:500])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        fit(Regression(), regression_data(), quiet(epochs=2), resume=tmp_path)
    with pytest.raises(CheckpointError, match="Nothing to resume"):
        fit(Regression(), regression_data(), quiet(epochs=2), resume=tmp_path / "nope")


def test_tensorboard_option_writes_event_files(tmp_path):
    pytest.importorskip("tensorboard")
    fit(Regression(), regression_data(), quiet(epochs=1, tensorboard=True), run_dir=tmp_path)
    assert list((tmp_path / "events").rglob("events.out.tfevents.*"))


def test_bad_config_values_list_the_accepted_ones():
    with pytest.raises(ValueError, match=r"scheduler to be one of \['plateau', 'cosine', 'none'\]"):
        TrainConfig(scheduler="step")
    with pytest.raises(ValueError, match="clip_norm >= 0"):
        TrainConfig(clip_norm=-1)
