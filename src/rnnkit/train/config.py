"""What a training run is told: one dataclass, saved as ``config.json`` in the run directory."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

OPTIMIZERS = ("adam", "adamw", "rmsprop", "sgd")
SCHEDULERS = ("plateau", "cosine", "none")
DEVICES = ("auto", "cpu", "cuda", "mps")
STRATEGIES = ("auto", "ddp")  # ddp: one process per device, started by Lightning (or by torchrun / srun)


def check_choice(name: str, value, accepted) -> None:
    """A ValueError listing the accepted values and echoing the received one, unless ``value`` is among them."""
    if value not in accepted:
        raise ValueError(f"Expected {name} to be one of {list(accepted)}. Received: {name}={value!r}")


@dataclass
class TrainConfig:
    """Settings of ``rnnkit.train.fit``.

    Clipping: ``clip_norm`` rescales the gradient when its global norm exceeds it (0 turns it
    off); ``clip_value`` clamps every gradient entry to ``[-clip_value, clip_value]`` first (0: off).
    Learning rate: ``scheduler="plateau"`` multiplies it by ``lr_factor`` when the validation
    loss has not improved for ``lr_patience`` epochs; ``"cosine"`` anneals it to ``min_lr`` over
    ``epochs``.  ``early_stopping``: stop after that many epochs without a better validation
    loss (0: never).  ``max_steps`` > 0 ends the run after that many optimizer steps.

    Example:
        >>> TrainConfig(epochs=3, optimizer="rmsprop").optimizer
        'rmsprop'
        >>> TrainConfig(optimizer="adagrad")
        Traceback (most recent call last):
        ValueError: Expected optimizer to be one of ['adam', 'adamw', 'rmsprop', 'sgd']. Received: optimizer='adagrad'
        >>> TrainConfig(devices=2, strategy="ddp_spawn")
        Traceback (most recent call last):
        ValueError: Expected strategy to be one of ['auto', 'ddp']. Received: strategy='ddp_spawn'
    """

    task: str = "run"
    epochs: int = 10
    max_steps: int = -1
    learning_rate: float = 2e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd only
    scheduler: str = "plateau"
    lr_factor: float = 0.5
    lr_patience: int = 1
    min_lr: float = 1e-6
    clip_norm: float = 5.0
    clip_value: float = 0.0
    early_stopping: int = 3
    device: str = "auto"
    devices: int = 1  # processes per node (data-parallel)
    num_nodes: int = 1
    strategy: str = "auto"
    seed: int = 0
    runs_dir: str = "runs"
    tensorboard: bool = False
    progress: bool = True

    def __post_init__(self):
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("scheduler", self.scheduler, SCHEDULERS)
        check_choice("device", self.device, DEVICES)
        check_choice("strategy", self.strategy, STRATEGIES)
        for name in ("devices", "num_nodes"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"Expected {name} to be an integer >= 1. Received: {name}={getattr(self, name)!r}")
        for name in ("epochs", "learning_rate"):
            if getattr(self, name) <= 0:
                raise ValueError(f"Expected {name} > 0. Received: {name}={getattr(self, name)}")
        for name in ("clip_norm", "clip_value", "weight_decay", "early_stopping", "lr_patience", "min_lr"):
            if getattr(self, name) < 0:
                raise ValueError(f"Expected {name} >= 0 (0 turns it off). Received: {name}={getattr(self, name)}")
        if not 0 < self.lr_factor < 1:
            raise ValueError(f"Expected lr_factor in (0, 1). Received: lr_factor={self.lr_factor}")

    @property
    def world_size(self) -> int:
        """How many training processes in all: ``devices * num_nodes``."""
        return self.devices * self.num_nodes

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """Build from a dict, ignoring keys this version does not know (older or newer runs)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})
