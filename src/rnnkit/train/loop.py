"""The Lightning pieces of ``fit``: the module that wraps a model, and the callback that keeps the run.

Imported only inside ``fit`` (Lightning takes a second to import).  Everything here is
bookkeeping around ``model.loss(batch, state)``: the model owns its loss, Lightning owns the
loop, and ``RunKeeper`` owns the run directory (metrics.csv, grad_norms.csv, checkpoints, early
stopping).

Data-parallel (``devices`` > 1): each process trains on its shard of every global batch
(``shard_loader``); its loss is weighted by its share of the batch's items, so that the averaged
gradient is that of the global batch mean; losses and counts are summed over the processes, so
the metrics are those of the global batches; only the first process writes the run directory.
"""

from __future__ import annotations

import csv
import math
import random
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch

from .checkpoints import copy_atomic, write_atomic
from .config import TrainConfig

METRIC_COLUMNS = (
    "epoch", "step", "train_loss", "val_loss", "lr", "grad_norm", "clipped_fraction", "throughput", "unit", "seconds",
)  # fmt: skip
GRAD_NORM_COLUMNS = ("step", "epoch", "grad_norm", "grad_norm_clipped", "clipped")  # grad_norms.csv, one row per step


class TrainingDiverged(RuntimeError):
    """The loss or the gradient became NaN or infinite; the run stopped and kept its checkpoints."""


def detach_state(state):
    """Cut the graph behind a recurrent state (a tensor, or a tuple/list of them) for truncated BPTT."""
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.detach()
    return type(state)(detach_state(s) for s in state)


def make_optimizer(parameters, config: TrainConfig) -> torch.optim.Optimizer:
    lr, wd = config.learning_rate, config.weight_decay
    if config.optimizer == "adam":
        return torch.optim.Adam(parameters, lr=lr, weight_decay=wd)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(parameters, lr=lr, weight_decay=wd)
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(parameters, lr=lr, weight_decay=wd)
    return torch.optim.SGD(parameters, lr=lr, weight_decay=wd, momentum=config.momentum)


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig):
    if config.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=config.lr_factor, patience=config.lr_patience, min_lr=config.min_lr
        )
    if config.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs, eta_min=config.min_lr)
    return None


class EpochStats:
    """Sums over one epoch, turned into the metrics.csv row at its end."""

    def __init__(self):
        self.train_loss = self.train_count = self.val_loss = self.val_count = 0.0
        self.steps = self.clipped = 0
        self.grad_norm = 0.0
        self.norms: list[tuple[int, float, float, int]] = []  # per optimizer step: (step, before, after, clipped)
        self.start = time.perf_counter()
        self.train_seconds = 0.0


class TrainingModule(L.LightningModule):
    """Wraps any ``nn.Module`` that has ``loss(batch, state) -> LossOutput`` for Lightning."""

    def __init__(self, model: torch.nn.Module, config: TrainConfig, stateful: bool, unit: str, train_data=None,
                 val_data=None):  # fmt: skip
        super().__init__()
        self.model = model
        self.train_data, self.val_data = train_data, val_data
        self.train_config = config
        self.stateful = stateful
        self.unit = unit
        self.scheduler = None
        self._scheduler_state = None
        self._state = None  # carried across batches of a stream (truncated BPTT), detached
        self.stats = EpochStats()
        self._last_time = None

    # -- optimizer and learning rate -------------------------------------------------------
    def configure_optimizers(self):
        optimizer = make_optimizer(self.model.parameters(), self.train_config)
        self.scheduler = make_scheduler(optimizer, self.train_config)
        if self.scheduler is not None and self._scheduler_state is not None:
            self.scheduler.load_state_dict(self._scheduler_state)
        return optimizer

    def step_scheduler(self, monitored: float) -> None:
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(monitored)
        elif self.scheduler is not None:
            self.scheduler.step()

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        from .. import __version__

        checkpoint["rnnkit"] = {
            "version": __version__,
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self._scheduler_state = checkpoint.get("rnnkit", {}).get("scheduler")

    # -- data: each process's shard of the global batches ---------------------------------------
    def train_dataloader(self):
        from ..data.batches import shard_loader

        return shard_loader(self.train_data, self.global_rank, self.trainer.world_size)

    def val_dataloader(self):
        from ..data.batches import shard_loader

        if self.val_data is None:
            return []
        return shard_loader(self.val_data, self.global_rank, self.trainer.world_size, indivisible="replicate")

    def sum_over_processes(self, *values: float) -> list[float]:
        """Each value summed over all processes (unchanged in a single process)."""
        if self.trainer.world_size == 1:
            return list(values)
        total = torch.tensor(values, dtype=torch.float64, device=self.device)
        return self.trainer.strategy.reduce(total, reduce_op="sum").tolist()

    # -- training ----------------------------------------------------------------------------
    def on_train_epoch_start(self) -> None:
        self.stats = EpochStats()
        self._state = None
        self._last_time = time.perf_counter()

    def training_step(self, batch, batch_idx: int):
        out = self.model.loss(batch, self._state if self.stateful else None)
        count = float(out.count)
        loss = out.loss
        value = loss.item()
        if self.trainer.world_size > 1:
            # the global batch's mean loss; backward sees this process's share of it, so that the gradient
            # DDP averages over the processes is the gradient of the global mean (shards may differ in count)
            total, total_count = self.sum_over_processes(value * count, count)
            loss = loss * (count * self.trainer.world_size / total_count)
            value, count = total / total_count, total_count
        if not math.isfinite(value):
            raise TrainingDiverged(
                f"The training loss became {value} at step {self.global_step + 1} "
                f"(epoch {self.current_epoch + 1}, batch {batch_idx + 1}); stopped. "
                "Lower the learning rate or clip gradients harder (--clip-norm)."
            )
        if self.stateful:
            self._state = detach_state(out.state)
        self.stats.train_loss += value * count
        self.stats.train_count += count
        self.stats.steps += 1
        now = time.perf_counter()
        self.stats.train_seconds += now - self._last_time
        self._last_time = now
        self.log("loss", value, prog_bar=True, on_step=True, on_epoch=False, batch_size=int(count))
        rate = self.stats.train_count / max(self.stats.train_seconds, 1e-9)
        self.log(f"{self.unit}/s", round(rate), prog_bar=True, on_step=True, on_epoch=False, logger=False)
        return loss

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        config = self.train_config
        params = [p for p in self.model.parameters() if p.grad is not None]
        if config.clip_value:
            torch.nn.utils.clip_grad_value_(params, config.clip_value)
        norm = torch.nn.utils.clip_grad_norm_(params, config.clip_norm or math.inf).item()
        if not math.isfinite(norm):
            raise TrainingDiverged(
                f"The gradient norm became {norm} at step {self.global_step + 1} "
                f"(epoch {self.current_epoch + 1}); stopped. Lower the learning rate."
            )
        clipped = bool(config.clip_norm and norm > config.clip_norm)
        # the norm after clipping, by clip_grad_norm_'s own rule: scaled by max_norm / (norm + 1e-6) when below 1
        after = norm * min(1.0, (config.clip_norm or math.inf) / (norm + 1e-6))
        self.stats.grad_norm += norm
        self.stats.clipped += clipped
        self.stats.norms.append((self.global_step + 1, norm, after, int(clipped)))

    # -- validation --------------------------------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        self._val_state = None
        self.stats.val_loss = self.stats.val_count = 0.0

    def validation_step(self, batch, batch_idx: int):
        out = self.model.loss(batch, self._val_state if self.stateful else None)
        if self.stateful:
            self._val_state = out.state
        count = float(out.count)
        self.stats.val_loss += out.loss.item() * count
        self.stats.val_count += count

    def on_validation_epoch_end(self) -> None:
        self.stats.val_loss, self.stats.val_count = self.sum_over_processes(self.stats.val_loss, self.stats.val_count)
        if self.stats.val_count:
            self.log("val_loss", self.stats.val_loss / self.stats.val_count, prog_bar=True, on_epoch=True)


def _rng_state() -> dict:
    numpy_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": [numpy_state[0], torch.from_numpy(numpy_state[1].astype(np.int64)), *numpy_state[2:]],
    }


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    version, key, *rest = state["python"]
    random.setstate((version, tuple(key), *rest))
    name, array, *rest = state["numpy"]
    np.random.set_state((name, array.numpy().astype(np.uint32), *rest))


class RunKeeper(L.Callback):
    """At each epoch end: step the learning rate, append to metrics.csv (and that epoch's
    per-step gradient norms to grad_norms.csv), save last.ckpt (and best.ckpt when the
    validation loss improved), stop early when it has not for a while.

    Its state (best loss, patience count, RNG states) goes into every checkpoint, so a resumed
    run continues the same curve.
    """

    def __init__(self, run_dir: Path, config: TrainConfig, samples=None):
        self.run_dir = run_dir
        self.config = config
        self.samples = samples
        self.best = math.inf
        self.best_epoch = 0
        self.wait = 0
        self.epochs_done = 0
        self.stop_reason = ""
        self.rows: list[dict] = []
        self.grad_rows: list[tuple] = []  # grad_norms.csv: (step, epoch, grad_norm, grad_norm_clipped, clipped)
        self.writes = True  # only the first of several processes writes the run directory

    def setup(self, trainer: L.Trainer, module: TrainingModule, stage: str) -> None:
        self.writes = trainer.is_global_zero

    @property
    def checkpoints(self) -> Path:
        return self.run_dir / "checkpoints"

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait,
                "epochs_done": self.epochs_done, "rng": _rng_state()}  # fmt: skip

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]
        self.epochs_done = state["epochs_done"]
        _set_rng_state(state["rng"])
        # rows written after the checkpoint (the run died between the two) are dropped
        self.rows = [row for row in read_metrics(self.run_dir / "metrics.csv") if int(row["epoch"]) <= self.epochs_done]
        if self.writes:
            write_atomic(self.run_dir / "metrics.csv", lambda tmp: _write_rows(tmp, self.rows))
        self.grad_rows = [
            (int(r["step"]), int(r["epoch"]), float(r["grad_norm"]), float(r["grad_norm_clipped"]), int(r["clipped"]))
            for r in read_metrics(self.run_dir / "grad_norms.csv")
            if int(r["epoch"]) <= self.epochs_done
        ]
        if self.writes:
            write_atomic(self.run_dir / "grad_norms.csv", lambda tmp: _write_tuples(tmp, self.grad_rows))
        if self.writes and self.best_epoch == self.epochs_done:  # the run may have died before copying it to best
            copy_atomic(self.checkpoints / "last.ckpt", self.checkpoints / "best.ckpt")

    def on_train_epoch_end(self, trainer: L.Trainer, module: TrainingModule) -> None:
        if trainer.sanity_checking:
            return
        stats = module.stats
        train_loss = stats.train_loss / max(stats.train_count, 1)
        val_loss = stats.val_loss / stats.val_count if stats.val_count else None
        monitored = val_loss if val_loss is not None else train_loss
        lr = trainer.optimizers[0].param_groups[0]["lr"]
        module.step_scheduler(monitored)
        self.epochs_done += 1
        improved = monitored < self.best
        if improved:
            self.best, self.best_epoch, self.wait = monitored, self.epochs_done, 0
        else:
            self.wait += 1
        row = {
            "epoch": self.epochs_done, "step": trainer.global_step, "train_loss": train_loss,
            "val_loss": "" if val_loss is None else val_loss, "lr": lr,
            "grad_norm": stats.grad_norm / max(stats.steps, 1), "clipped_fraction": stats.clipped / max(stats.steps, 1),
            "throughput": stats.train_count / max(stats.train_seconds, 1e-9), "unit": module.unit,
            "seconds": time.perf_counter() - stats.start,
        }  # fmt: skip
        self.rows.append(row)
        self.grad_rows.extend((step, self.epochs_done, *rest) for step, *rest in stats.norms)
        if self.writes:
            write_atomic(self.run_dir / "metrics.csv", lambda tmp: _write_rows(tmp, self.rows))
            write_atomic(self.run_dir / "grad_norms.csv", lambda tmp: _write_tuples(tmp, self.grad_rows))
            if self.samples is not None:
                _append_sample(self.run_dir / "samples.txt", self.epochs_done, module.model, self.samples)
            self.checkpoints.mkdir(exist_ok=True)
            write_atomic(self.checkpoints / "last.ckpt", trainer.save_checkpoint)
            if improved:
                copy_atomic(self.checkpoints / "last.ckpt", self.checkpoints / "best.ckpt")
        else:
            trainer.save_checkpoint(self.checkpoints / "last.ckpt")  # writes nothing here; waits for the first process
        if self.config.early_stopping and self.wait >= self.config.early_stopping:
            self.stop_reason = f"early stopping: no better loss for {self.wait} epochs"
            trainer.should_stop = True


def _write_rows(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=METRIC_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def _write_tuples(path: Path, rows: list[tuple]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(GRAD_NORM_COLUMNS)
        writer.writerows(rows)


def read_metrics(path: Path) -> list[dict]:
    """The rows of a run's metrics.csv (or grad_norms.csv; empty if there is none yet)."""
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _append_sample(path: Path, epoch: int, model: torch.nn.Module, samples) -> None:
    was_training = model.training
    model.eval()
    with torch.no_grad():
        text = samples(model)
    model.train(was_training)
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"== epoch {epoch} ==\n{text}\n\n")
