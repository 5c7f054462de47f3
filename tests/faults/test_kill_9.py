"""kill -9 at random points of training and of checkpoint writing, then resume.

One subprocess (tests/train/resumable_run.py --kill-plan) imports everything once, runs the
uninterrupted reference, then forks one run per kill point and SIGKILLs it there.  The kill
points are drawn from seeded RNGs: a training step, a point inside an atomic write (the
temporary file holding a random fraction of its bytes), and a random time (the run slowed so
that it is still going).  Each test then checks what the kill left and resumes it here.
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from rnnkit.train import CheckpointError, LossOutput, Splits, TrainConfig, fit, load_checkpoint
from rnnkit.train.loop import read_metrics

RUNNER = Path(__file__).resolve().parents[1] / "train" / "resumable_run.py"
SEEDS = (0, 1, 2)
RUN = {"epochs": 4, "train_tokens": 1600}  # 8 steps an epoch, 32 in all
STEPS_PER_EPOCH = 8


def kill_points(seed: int) -> list[dict]:
    """Three kill points: a training step after the first epoch, inside an atomic write, a random time."""
    rng = random.Random(seed)
    file = ("last.ckpt", "best.ckpt", "metrics.csv")[seed % 3]  # a checkpoint, its copy to best, the metrics
    count = {"last.ckpt": rng.randint(2, RUN["epochs"]), "best.ckpt": 1, "metrics.csv": rng.randint(1, RUN["epochs"])}
    count = count[file]  # last.ckpt: when there is a previous one to keep; best.ckpt: written for sure at epoch 1 only
    return [
        {"at": "step", "step": rng.randint(STEPS_PER_EPOCH + 1, RUN["epochs"] * STEPS_PER_EPOCH)},
        {"at": "write", "file": file, "count": count, "fraction": round(rng.random(), 3)},
        # 72 calls of loss() (32 training, 40 validation) sleep 30 ms each: the run lasts more than 2.16 s
        {"at": "time", "seconds": round(rng.uniform(0.5, 2.0), 3), "step_sleep": 0.03},
    ]


PLAN = [point for seed in SEEDS for point in kill_points(seed)]
IDS = [f"seed{i // 3}-" + "-".join(str(v) for v in point.values()) for i, point in enumerate(PLAN)]


@pytest.fixture(scope="module")
def killed(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("killed")
    plan = base / "plan.json"
    plan.write_text(json.dumps(PLAN))
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}
    args = ["--epochs", str(RUN["epochs"]), "--train-tokens", str(RUN["train_tokens"])]
    done = subprocess.run([sys.executable, str(RUNNER), str(base), "--kill-plan", str(plan), *args],
                          capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    kills = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("KILLS "))[6:])
    return {"straight": read_metrics(base / "straight" / "metrics.csv"), "kills": kills}


def epochs_done(checkpoint_path: Path) -> int:
    return load_checkpoint(checkpoint_path)["callbacks"]["RunKeeper"]["epochs_done"]


@pytest.mark.parametrize("index", range(len(PLAN)), ids=IDS)
def test_a_run_killed_anywhere_keeps_its_checkpoints_and_resumes_to_the_uninterrupted_result(killed, index, runner):
    kill, straight = killed["kills"][index], killed["straight"]
    assert kill["killed"], f"the run ended before its kill point {PLAN[index]}"
    run_dir = Path(kill["run_dir"])
    checkpoints = run_dir / "checkpoints"

    # what the kill left: a temporary file if it landed inside a write, and every checkpoint loads
    leftovers = sorted(p.name for p in run_dir.rglob("*.tmp-*"))
    if kill["at"] == "write":
        assert leftovers == [f".{kill['file']}.tmp-{kill['pid']}"]  # the kill did land mid-write
    files = sorted(checkpoints.glob("*.ckpt")) if checkpoints.is_dir() else []
    for file in files:
        load_checkpoint(file)  # never half-written
    done = epochs_done(checkpoints / "last.ckpt") if files else 0
    if (checkpoints / "best.ckpt").is_file():
        assert epochs_done(checkpoints / "best.ckpt") <= done

    # no completed epoch lost: metrics.csv holds every epoch the checkpoint has, with the reference values
    # (and at most the next one, when the kill came between writing metrics.csv and last.ckpt)
    rows = read_metrics(run_dir / "metrics.csv")
    assert [int(r["epoch"]) for r in rows[:done]] == list(range(1, done + 1)) and len(rows) - done in (0, 1)
    for row, reference in zip(rows, straight):
        assert float(row["val_loss"]) == pytest.approx(float(reference["val_loss"]), rel=1e-6)

    if done:
        result = runner.main(run_dir, resume=True, **RUN)
    else:  # killed before the first checkpoint: nothing to resume, a clear error; start again in the same directory
        with pytest.raises(CheckpointError, match="Nothing to resume"):
            runner.main(run_dir, resume=True, **RUN)
        result = runner.main(run_dir, **RUN)

    # the resumed run ends where the uninterrupted one did, with one curve and no stray temporary file
    assert result.epochs == RUN["epochs"]
    rows = read_metrics(run_dir / "metrics.csv")
    assert [int(r["epoch"]) for r in rows] == list(range(1, RUN["epochs"] + 1))
    assert [float(r["val_loss"]) for r in rows] == pytest.approx([float(r["val_loss"]) for r in straight], rel=1e-6)
    steps = read_metrics(run_dir / "grad_norms.csv")
    assert [int(r["step"]) for r in steps] == list(range(1, RUN["epochs"] * STEPS_PER_EPOCH + 1))
    assert epochs_done(checkpoints / "last.ckpt") == RUN["epochs"]
    assert not sorted(p.name for p in run_dir.rglob("*.tmp-*"))
    assert math.isfinite(result.best_loss)


class Scripted(nn.Module):
    """Learns a mean; its validation loss follows a script (one validation batch an epoch, counted in a buffer
    so that the count survives a resume)."""

    def __init__(self, script: list[float]):
        super().__init__()
        self.mu = nn.Parameter(torch.zeros(1))
        self.register_buffer("validations", torch.zeros((), dtype=torch.long))
        self.script = script

    def loss(self, batch, state=None):
        (x,) = batch
        loss = ((x - self.mu) ** 2).mean()
        if not self.training:
            self.validations += 1
            loss = loss * 0 + self.script[int(self.validations) - 1]
        return LossOutput(loss, len(x))


class Killed(BaseException):
    """Raised where the kill lands: on disk the same as SIGKILL there (write_atomic removes its temporary file)."""


def test_a_kill_between_last_and_best_checkpoint_still_leaves_the_best_weights_in_best_ckpt(tmp_path, monkeypatch):
    """Epoch 2 is the best; the run dies after writing last.ckpt and before copying it to best.ckpt.
    The resumed run's best.ckpt must be epoch 2's (it was epoch 1's: the later epochs never improve)."""
    from rnnkit.train import checkpoints

    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.full((8,), 3.0)), batch_size=8)
    data, config = Splits(loader, loader), TrainConfig(epochs=4, progress=False, early_stopping=0)
    script = [3.0, 2.0, 2.5, 2.6]
    real_write_atomic, best_writes = checkpoints.write_atomic, []

    def dies_at_the_second_best(path, write):
        if Path(path).name == "best.ckpt":
            best_writes.append(path)
            if len(best_writes) == 2:
                raise Killed
        return real_write_atomic(path, write)

    with monkeypatch.context() as patch:
        patch.setattr(checkpoints, "write_atomic", dies_at_the_second_best)
        with pytest.raises(Killed):
            fit(Scripted(script), data, config, run_dir=tmp_path)
    assert epochs_done(tmp_path / "checkpoints" / "last.ckpt") == 2
    assert epochs_done(tmp_path / "checkpoints" / "best.ckpt") == 1

    result = fit(Scripted(script), data, config, resume=tmp_path)
    assert (result.best_epoch, result.best_loss) == (2, 2.0)
    assert epochs_done(tmp_path / "checkpoints" / "best.ckpt") == 2


def test_write_atomic_removes_the_temporary_files_of_killed_writers_and_keeps_a_live_ones(tmp_path):
    from rnnkit.train import write_atomic

    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead, alive = int(finished.stdout), os.getppid()  # a process that has exited; the one that started pytest
    path = tmp_path / "last.ckpt"
    for pid in (dead, alive):
        (tmp_path / f".last.ckpt.tmp-{pid}").write_bytes(b"half a checkpoint")
    (tmp_path / f".best.ckpt.tmp-{dead}").write_bytes(b"another file's: left to its own next write")
    write_atomic(path, lambda tmp: tmp.write_bytes(b"whole"))
    assert path.read_bytes() == b"whole"
    assert sorted(p.name for p in tmp_path.glob(".*")) == [f".best.ckpt.tmp-{dead}", f".last.ckpt.tmp-{alive}"]
