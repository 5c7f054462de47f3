"""``fit(model, data, config)``: train any rnnkit model with a run directory, on Lightning.

The model brings its own loss: ``model.loss(batch, state) -> LossOutput``.  ``fit`` brings
the rest: optimizer, clipping (with the pre-clip norm logged), learning-rate schedule, early
stopping, truncated BPTT for streams, progress, ``metrics.csv``, checkpoints written
atomically, ``resume``, the loss-curve PNG, and a clear stop on NaN.

    runs/<task>-<yyyymmdd-hhmmss>/
        config.json  metrics.csv  grad_norms.csv  samples.txt  model.safetensors
        checkpoints/best.ckpt  checkpoints/last.ckpt  plots/loss.png  plots/grad_norms.png  events/ (TensorBoard)

``grad_norms.csv`` holds one row per optimizer step: the global gradient norm before and
after clipping and whether it was clipped (``rnnkit diagnose training --run RUN_DIR``).

Data-parallel training (``TrainConfig(devices=2, strategy="ddp")``, on several nodes with
``num_nodes``): Lightning's DDP, gloo on CPU and nccl on CUDA.  The data's batch size is the
global one; each process trains on its share of every batch (``shard_loader``), the metrics
are those of the global batches, and only the first process writes the run directory.
"""

from __future__ import annotations

import json
import logging
import os
import random
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from .checkpoints import CheckpointError, load_checkpoint, new_run_dir, write_atomic
from .config import TrainConfig


class LossOutput(NamedTuple):
    """What ``model.loss(batch, state)`` returns."""

    loss: Tensor  # () the mean loss over `count` items; what backward sees
    count: int  # how many tokens (or samples) it averages over; weights the epoch mean
    state: Any = None  # the final recurrent state, carried to the next chunk of a stream


@dataclass
class Splits:
    """The data of a run: re-iterable train and validation batches.

    ``stateful=True`` says consecutive training batches continue the same streams (a long text
    cut into chunks): ``fit`` then carries the recurrent state from one batch to the next,
    detached (truncated backpropagation through time), and starts afresh each epoch.
    ``unit`` names what ``LossOutput.count`` counts, for the throughput shown ("tokens").
    """

    train: Iterable
    val: Iterable | None = None
    stateful: bool = False
    unit: str = "samples"


@dataclass
class RunResult:
    run_dir: Path
    best_loss: float  # validation loss (train loss without validation data) at the best epoch
    best_epoch: int
    epochs: int  # epochs completed, over all sessions of the run
    stop_reason: str
    metrics: list[dict] = field(default_factory=list)
    global_rank: int = 0  # this process's rank in a data-parallel run; only rank 0 wrote the run directory


def pick_device(device: str = "auto") -> str:
    """``"auto"``: cuda if there is one, else mps, else cpu.  A device that is not there is an error.

    Example:
        >>> pick_device("cpu")
        'cpu'
    """
    available = {
        "cuda": torch.cuda.is_available(),
        "mps": getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available(),
        "cpu": True,
    }
    if device == "auto":
        return next(name for name, ok in available.items() if ok)
    if device not in available:
        raise ValueError(f"Expected device to be one of ['auto', 'cpu', 'cuda', 'mps']. Received: device={device!r}")
    if not available[device]:
        raise ValueError(f"device={device!r} was asked for, but this machine has none (torch {torch.__version__}).")
    return device


def process_rank() -> int:
    """This process's global rank in a data-parallel run, from the launcher's environment (0 when alone).

    Read before Lightning starts the other processes: ``RANK`` (torchrun), ``LOCAL_RANK`` (the
    processes Lightning starts on one machine), ``SLURM_PROCID`` (srun), as Lightning reads them.

    Example:
        >>> process_rank() >= 0  # 0 in a single-process run
        True
    """
    for key in ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK"):
        if os.environ.get(key) is not None:
            return int(os.environ[key])
    return 0


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def read_run_config(run_dir: str | Path) -> dict:
    """The ``config.json`` of a run directory, with a clear error if it is not one."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise ValueError(f"{str(run_dir)!r} is not a run directory (no config.json).")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise ValueError(f"{str(path)!r} is not valid JSON ({error}).") from None


def load_weights(model: nn.Module, run_dir: str | Path, which: str = "best") -> nn.Module:
    """Load a run's ``best`` (or ``last``) checkpoint weights into ``model``, on the model's device."""
    model.load_state_dict(model_state(Path(run_dir) / "checkpoints" / f"{which}.ckpt"))
    return model


def model_state(checkpoint_path: str | Path) -> dict:
    """The model's own state dict in a checkpoint (the trainer's ``model.`` prefix removed)."""
    return {k.removeprefix("model."): v for k, v in load_checkpoint(checkpoint_path)["state_dict"].items()}


def fit(
    model: nn.Module,
    data: Splits,
    config: TrainConfig | None = None,
    *,
    run_dir: str | Path | None = None,
    resume: str | Path | None = None,
    meta: dict | None = None,
    samples: Callable[[nn.Module], str] | None = None,
) -> RunResult:
    """Train ``model`` on ``data`` and keep everything in a run directory.

    Args:
        model: an ``nn.Module`` with ``loss(batch, state) -> LossOutput``.
        data: ``Splits(train, val)``; batches are moved to the device for you.
        config: ``TrainConfig`` (defaults: Adam 2e-3, clip norm 5, plateau schedule, 10 epochs).
        run_dir: where to write; default ``config.runs_dir/<task>-<timestamp>``.
        resume: a run directory to continue from its ``checkpoints/last.ckpt`` (same model and
            data): weights, optimizer, schedule, epoch, RNG state and metrics carry on.
            With several processes (``config.devices`` or ``config.num_nodes`` > 1) ``run_dir`` is
            used by the first only; the others write nothing (and ``run_dir`` may be left out there).
        meta: extra task settings saved in ``config.json`` (vocabulary path, data, ...).
        samples: called with the model after each epoch; its text goes to ``samples.txt``.

    Raises ``TrainingDiverged`` (with the step) if the loss or gradient becomes NaN/Inf; the
    checkpoints of the last good epochs stay as they were.

    Example:
        >>> import tempfile
        >>> class Mean(nn.Module):  # learns the mean of its data
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.mu = nn.Parameter(torch.zeros(1))
        ...     def loss(self, batch, state=None):
        ...         (x,) = batch
        ...         return LossOutput(((x - self.mu) ** 2).mean(), len(x))
        >>> data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.full((64,), 3.0)), batch_size=16)
        >>> result = fit(Mean(), Splits(data, data), TrainConfig(epochs=30, learning_rate=0.3, progress=False),
        ...              run_dir=tempfile.mkdtemp())
        >>> result.best_loss < 0.1, sorted(p.name for p in (result.run_dir / "checkpoints").iterdir())
        (True, ['best.ckpt', 'last.ckpt'])
    """
    import lightning as L

    from ..data.batches import shard_loader
    from .loop import RunKeeper, TrainingModule

    config = config or TrainConfig()
    shard_loader(data.train, 0, config.world_size)  # a batch size the processes cannot share is an error now
    writes = process_rank() == 0
    ckpt_path = None
    if resume is not None:
        run_dir = Path(resume)
        ckpt_path = run_dir / "checkpoints" / "last.ckpt"
        if not ckpt_path.is_file():
            raise CheckpointError(
                f"Nothing to resume in {str(run_dir)!r}: no checkpoints/last.ckpt (the run stopped before its first "
                "epoch ended, or this is not a run directory)."
            )
        load_checkpoint(ckpt_path)  # a clear error now for a corrupt file, rather than deep inside Lightning
    elif not writes:
        run_dir = Path(run_dir) if run_dir is not None else Path(config.runs_dir)  # never written by this process
    else:
        run_dir = Path(run_dir) if run_dir is not None else new_run_dir(config.task, config.runs_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        from .. import __version__

        settings = {"rnnkit": __version__, "train": config.to_dict(), "model": getattr(model, "config", None),
                    **(meta or {})}  # fmt: skip
        text = json.dumps(settings, indent=2, ensure_ascii=False)
        write_atomic(run_dir / "config.json", lambda tmp: tmp.write_text(text, encoding="utf-8"))

    device = pick_device(config.device)
    seed_everything(config.seed)
    module = TrainingModule(model, config, stateful=data.stateful, unit=data.unit, train_data=data.train,
                            val_data=data.val)  # fmt: skip
    keeper = RunKeeper(run_dir, config, samples=samples)
    callbacks: list = [keeper]
    if config.progress:
        from lightning.pytorch.callbacks import RichProgressBar

        callbacks.append(RichProgressBar(leave=True))
    logger = False
    if config.tensorboard:
        from lightning.pytorch.loggers import TensorBoardLogger

        logger = TensorBoardLogger(save_dir=str(run_dir), name="events", version="")
    with _quiet_lightning():
        trainer = L.Trainer(
            accelerator={"cuda": "gpu"}.get(device, device),
            devices=config.devices,
            num_nodes=config.num_nodes,
            strategy=config.strategy,
            use_distributed_sampler=False,  # shard_loader splits each global batch (TrainingModule.train_dataloader)
            limit_val_batches=None if data.val is not None else 0,
            max_epochs=config.epochs,
            max_steps=config.max_steps,
            callbacks=callbacks,
            logger=logger,
            enable_checkpointing=False,
            enable_progress_bar=config.progress,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            log_every_n_steps=10,
            default_root_dir=str(run_dir),
        )
        trainer.fit(
            module,
            ckpt_path=None if ckpt_path is None else str(ckpt_path),
            weights_only=True if ckpt_path is not None else None,
        )
    if trainer.interrupted:
        keeper.stop_reason = keeper.stop_reason or "interrupted"
    elif not keeper.stop_reason:
        keeper.stop_reason = "max steps" if 0 < config.max_steps <= trainer.global_step else "all epochs done"
    if trainer.is_global_zero:
        _finish(run_dir, model, config.clip_norm)
    return RunResult(run_dir, keeper.best, keeper.best_epoch, keeper.epochs_done, keeper.stop_reason, keeper.rows,
                     trainer.global_rank)  # fmt: skip


def _finish(run_dir: Path, model: nn.Module, clip_norm: float) -> None:
    """Write the best weights as model.safetensors, the loss curve as plots/loss.png and the
    gradient norms per step as plots/grad_norms.png."""
    best = run_dir / "checkpoints" / "best.ckpt"
    if best.is_file():
        from safetensors.torch import save_file

        state = {k: v.contiguous() for k, v in model_state(best).items()}
        write_atomic(run_dir / "model.safetensors", lambda tmp: save_file(state, str(tmp)))
    from ..plots import plot_loss_curve
    from .loop import read_metrics

    rows = read_metrics(run_dir / "metrics.csv")
    if rows:
        (run_dir / "plots").mkdir(exist_ok=True)
        plot_loss_curve(rows, run_dir / "plots" / "loss.png")
    grad_rows = read_metrics(run_dir / "grad_norms.csv")
    if grad_rows:
        from ..diagnostics.training import plot_grad_norms

        plot_grad_norms(grad_rows, run_dir / "plots" / "grad_norms.png", clip_norm)


class _quiet_lightning:
    """Hide Lightning's banner lines and hints (GPU available..., num_workers tips) unless asked."""

    def __enter__(self):
        self.levels = {}
        for name in ("lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning_fabric"):
            log = logging.getLogger(name)
            self.levels[name] = log.level
            log.setLevel(logging.WARNING)
        self.warnings = warnings.catch_warnings()
        self.warnings.__enter__()
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*number of training batches.*")
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")
        warnings.filterwarnings("ignore", message=".*but have no `val_dataloader`.*")
        warnings.filterwarnings("ignore", message=".*sync_dist=True.*")  # rnnkit sums over the processes itself
        return self

    def __exit__(self, *exc):
        self.warnings.__exit__(*exc)
        for name, level in self.levels.items():
            logging.getLogger(name).setLevel(level)
        return False
