"""A small training run for the kill -9 tests: python resumable_run.py RUN_DIR [--resume] [--step-sleep S] [--kind K].

A 1-layer LSTM language model on a generated token stream (truncated BPTT, dropout, shuffled
nothing: the state flows between chunks), so that resuming has to restore weights, optimizer,
schedule, RNG (dropout) and the carried-state bookkeeping to reach the same result.

``--epochs`` and ``--train-tokens`` make it smaller.  ``--kill-plan PLAN.json`` (tests/faults)
runs one uninterrupted run into ``RUN_DIR/straight`` (importing everything once), then forks one
run per kill point into ``RUN_DIR/kill-<i>`` and kills it with SIGKILL there:

    {"at": "step", "step": 7}                                     at the start of training step 7
    {"at": "write", "file": "last.ckpt", "count": 2, "fraction": 0.4}
        inside the 2nd atomic write of checkpoints/last.ckpt, its temporary file holding 40% of its bytes
    {"at": "time", "seconds": 0.8, "step_sleep": 0.04}            0.8 s after the start (from outside)

and prints ``KILLS <json>``: for each kill point, the run directory, the pid and whether SIGKILL ended it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import torch

from rnnkit.data.batches import sequence_loader, stream_loader
from rnnkit.language_model import LanguageModel
from rnnkit.train import RunResult, Splits, TrainConfig, fit


class SlowModel(LanguageModel):
    step_sleep = 0.0
    kill_at_step = 0  # SIGKILL this process at the start of this training step (0: never)

    def loss(self, batch, state=None):
        if self.training:
            self.steps = getattr(self, "steps", 0) + 1
            if self.steps == self.kill_at_step:
                os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(self.step_sleep)
        return super().loss(batch, state)


def main(run_dir: str | Path, resume: bool = False, step_sleep: float = 0.0, kind: str = "stream", epochs: int = 6,
         train_tokens: int = 5000, kill_at_step: int = 0) -> RunResult:  # fmt: skip
    rng = np.random.default_rng(0)
    tokens = (np.cumsum(rng.integers(1, 3, size=6000)) % 11).astype(np.int64)  # learnable: mostly +1, +2 steps
    torch.manual_seed(0)
    model = SlowModel(vocab_size=11, embedding_dim=8, hidden_size=16, num_layers=1, dropout=0.2)
    model.step_sleep, model.kill_at_step = step_sleep, kill_at_step
    if kind == "stream":
        data = Splits(stream_loader(tokens[:train_tokens], 8, 25), stream_loader(tokens[5000:], 4, 25), stateful=True)
    else:  # whole sequences, shuffled each epoch
        seqs = [tokens[i : i + 20].tolist() for i in range(0, train_tokens, 20)]
        data = Splits(sequence_loader(seqs, 16, seed=3), sequence_loader(seqs[:40], 16, shuffle=False))
    config = TrainConfig(epochs=epochs, learning_rate=1e-2, scheduler="plateau", lr_patience=0, early_stopping=0,
                         progress=False, seed=1)  # fmt: skip
    result = fit(model, data, config, run_dir=None if resume else run_dir, resume=run_dir if resume else None)
    print(f"FINAL {result.metrics[-1]['val_loss']!r} EPOCHS {result.epochs}", flush=True)
    return result


def kill_inside_writes(name: str, count: int, fraction: float) -> None:
    """SIGKILL this process inside the ``count``-th atomic write of a file called ``name``, once its
    temporary file holds the first ``fraction`` of its bytes (as a kill during a slow write leaves it)."""
    from rnnkit.train import checkpoints, loop

    original = checkpoints.write_atomic
    seen = 0

    def write_atomic(path, write):
        nonlocal seen
        if Path(path).name != name:
            return original(path, write)
        seen += 1
        if seen != count:
            return original(path, write)

        def write_part_then_die(tmp: Path) -> None:
            write(tmp)
            data = tmp.read_bytes()
            tmp.write_bytes(data[: int(len(data) * fraction)])
            os.kill(os.getpid(), signal.SIGKILL)

        return original(path, write_part_then_die)

    checkpoints.write_atomic = loop.write_atomic = write_atomic  # copy_atomic (best.ckpt) calls it through checkpoints


def skip_plots() -> None:
    """No loss or gradient-norm PNGs at the end of a run (two thirds of a tiny run's time; tested elsewhere)."""
    import rnnkit.diagnostics.training
    import rnnkit.plots

    rnnkit.plots.plot_loss_curve = rnnkit.diagnostics.training.plot_grad_norms = lambda *args, **kwargs: None


def kill_runs(base: Path, plan: list[dict], **run) -> list[dict]:
    """One uninterrupted run into ``base/straight``, then one forked run per kill point, killed there.

    The uninterrupted run, here, also imports all that ``fit`` imports on its first call, so that
    the forked runs start training at once.  No plots.
    """
    skip_plots()
    torch.set_num_threads(1)  # no thread pool for the forked children to inherit
    main(base / "straight", **run)

    def start(run_dir: Path, kill: dict) -> int:
        options = {**run, "step_sleep": kill.get("step_sleep", run["step_sleep"])}
        pid = os.fork()
        if pid == 0:  # the child: train until killed; never return into the parent's code
            code = 1
            try:
                if kill["at"] == "write":
                    kill_inside_writes(kill["file"], kill["count"], kill["fraction"])
                main(run_dir, kill_at_step=kill["step"] if kill["at"] == "step" else 0, **options)
                code = 0
            finally:
                sys.stdout.flush()
                os._exit(code)
        return pid

    outcomes = []
    for i, kill in enumerate(plan):
        pid = start(base / f"kill-{i}", kill)
        if kill["at"] == "time":
            time.sleep(kill["seconds"])
            os.kill(pid, signal.SIGKILL)  # a child that has already exited is a zombie until waited for: no harm
        _, status = os.waitpid(pid, 0)
        killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        outcomes.append({**kill, "run_dir": str(base / f"kill-{i}"), "pid": pid, "killed": killed})
    print("KILLS " + json.dumps(outcomes), flush=True)
    return outcomes


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--step-sleep", type=float, default=0.0)
    parser.add_argument("--kind", default="stream", choices=["stream", "sequences"])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--train-tokens", type=int, default=5000)
    parser.add_argument("--kill-plan", type=Path, help="a JSON list of kill points (see the module docstring)")
    args = parser.parse_args()
    run = {"kind": args.kind, "epochs": args.epochs, "train_tokens": args.train_tokens, "step_sleep": args.step_sleep}
    if args.kill_plan:
        kill_runs(args.run_dir, json.loads(args.kill_plan.read_text()), **run)
    else:
        main(args.run_dir, args.resume, **run)
