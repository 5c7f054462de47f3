"""Training: ``fit()`` on Lightning, run directories, atomic checkpoints.

from rnnkit.train import fit, Splits, TrainConfig
result = fit(model, Splits(train_batches, val_batches), TrainConfig(epochs=20))
result.run_dir  # runs/<task>-<timestamp>/ with metrics.csv, checkpoints/, plots/loss.png
"""

from .checkpoints import CheckpointError, load_checkpoint, new_run_dir, save_checkpoint, write_atomic
from .config import TrainConfig
from .fit import LossOutput, RunResult, Splits, fit, load_weights, pick_device, read_run_config

__all__ = [
    "CheckpointError", "LossOutput", "RunResult", "Splits", "TrainConfig", "fit", "load_checkpoint", "load_weights",
    "new_run_dir", "pick_device", "read_run_config", "save_checkpoint", "write_atomic",
]  # fmt: skip
