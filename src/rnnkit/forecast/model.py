"""The forecasting model: a window of the past in, the next ``H`` steps of ``k`` target series out.

    config = ForecastConfig(n_features=F, n_targets=k, horizon=H, strategy="direct")
    model = ForecastModel(config)
    forecast = model(inputs)               # inputs (B, W, F) -> Forecast(mean (B, H, k), std (B, H, k) or None)
    out = model.loss((inputs, targets))    # targets (B, H, k) -> LossOutput, for rnnkit.train.fit
    forecast = model.predict(inputs)       # the same, in eval mode without gradients

The inputs are the rows of a ``WindowDataset``: the ``k`` target columns first, then the
covariates, the last ``n_future`` of them future covariates (known ahead: calendar features, a
planned price).  A model with ``n_future > 0`` is also given ``future (B, H, n_future)``, their
values at the steps it forecasts (``model(inputs, future=future)``, ``loss((inputs, targets,
future))``).  Forecasts are in the same (scaled) units as the inputs' target columns.

Three ways to forecast more than one step (``strategy``):

- ``"recursive"``: the network forecasts one step; for ``H > 1`` that forecast is appended to
  the window (the oldest row dropped) and fed back, ``H`` times.  One model serves any horizon,
  but its errors compound (step 5 is computed from four guesses), and it cannot use past-only
  covariates: their values at the fed-back steps are unknown, so every input column must be a
  target or a future covariate (``n_features == n_targets + n_future``); the next input row is
  the forecast beside the future covariates of its step.  It is trained on one-step targets only
  (``targets[:, :1]``), the standard recursive set-up, so its training and validation losses are
  one-step losses.
- ``"direct"`` (multiple-input multiple-output): the encoder's last hidden state (beside the
  future covariates of all ``H`` steps) goes through the output layer to all ``H * k`` values at
  once.  Nothing compounds and covariates are fine, but the horizon is fixed when the model is
  built, and the steps of the horizon are predicted side by side, not one from another (the
  model does not use how step 2 depends on step 1).
- ``"seq2seq"``: an encoder reads the window; a decoder of the same cell, starting from the
  encoder's final state, runs ``H`` steps, each fed the previous step's value (the last observed
  target at the first step) and the future covariates of its own step; a linear layer maps each
  decoder output to ``k`` values.  Training feeds the true previous targets (teacher forcing);
  forecasting feeds back its own predictions.  It has a learned recurrence over the horizon and
  a fixed ``H`` like direct, at the cost of more parameters and a slower, step-by-step forecast.

``level="last"`` (the default) subtracts each window's last observed target value from the
target columns of its inputs (and from the targets it is trained on) and adds it back to the
forecast, so the network sees changes rather than levels.  A trending series then looks the same
at any height, which is what fixed the plain LSTM on airline passengers and CO2 in our
rolling-origin tests (see DESIGN.md); the forecast moves exactly with any constant added to the
series.  ``level="none"`` feeds the windows as they are, better for some stationary series.

``head="gaussian"`` forecasts a mean and a standard deviation per value and is trained by the
Gaussian negative log-likelihood, which gives prediction intervals (``mean +- 1.96 * std`` for
95% if the errors are normal).  For ``"recursive"`` the std of a later step is that step's
one-step std given the fed-back means: it leaves out the compounding and understates the spread.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..cells import CELLS
from ..layers import Recurrent
from ..train.config import check_choice
from ..train.fit import LossOutput

STRATEGIES = ("recursive", "direct", "seq2seq")
HEADS = ("point", "gaussian")
LEVELS = ("last", "none")
MIN_STD = 1e-3  # std floor of the gaussian head: var >= 1e-6, so gaussian_nll_loss never clamps it


def _positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"Expected {name} a positive integer. Received: {name}={value!r}")


@dataclass
class ForecastConfig:
    """Everything that defines a :class:`ForecastModel`; ``asdict`` of it is JSON-able and rebuilds it.

    Args:
        n_features: input columns ``F`` (the ``k`` targets first, then covariates).
        n_targets: target columns ``k`` (``1 <= k <= F``).
        n_future: how many of the last input columns are future covariates, ``C`` (``0 <= C <= F - k``).
        horizon: steps forecast ``H``.
        strategy: ``"recursive"``, ``"direct"`` or ``"seq2seq"`` (see the module docstring).
        cell: any name of ``rnnkit.CELLS``.
        hidden_sizes: one ``Recurrent`` layer per entry, so layers may differ in size, e.g. ``(50, 100)``.
        dense: width of a hidden ReLU layer before the output layer; 0 for none.
        dropout: dropout between recurrent layers and before the output layers.
        head: ``"point"`` (trained by mean squared error) or ``"gaussian"`` (mean and std,
            trained by the Gaussian negative log-likelihood).
        level: ``"last"`` (subtract each window's last target value, add it back) or ``"none"``.
    """

    n_features: int = 1
    n_targets: int = 1
    horizon: int = 1
    n_future: int = 0
    strategy: str = "direct"
    cell: str = "lstm"
    hidden_sizes: tuple[int, ...] = (64,)
    dense: int = 0
    dropout: float = 0.0
    head: str = "point"
    level: str = "last"

    def __post_init__(self):
        for name in ("n_features", "n_targets", "horizon"):
            _positive_int(name, getattr(self, name))
        if self.n_targets > self.n_features:
            raise ValueError(
                f"Expected n_targets <= n_features (the targets are among the input columns). "
                f"Received: n_targets={self.n_targets}, n_features={self.n_features}"
            )
        if (
            isinstance(self.n_future, bool)
            or not isinstance(self.n_future, int)
            or not (0 <= self.n_future <= self.n_features - self.n_targets)
        ):
            raise ValueError(
                f"Expected n_future in [0, n_features - n_targets] = [0, {self.n_features - self.n_targets}] "
                f"(future covariates are among the non-target input columns). Received: n_future={self.n_future!r}"
            )
        check_choice("strategy", self.strategy, STRATEGIES)
        check_choice("cell", self.cell, sorted(CELLS))
        check_choice("head", self.head, HEADS)
        check_choice("level", self.level, LEVELS)
        if isinstance(self.hidden_sizes, int) and not isinstance(self.hidden_sizes, bool):
            self.hidden_sizes = (self.hidden_sizes,)
        if not isinstance(self.hidden_sizes, (tuple, list)) or not self.hidden_sizes:
            raise ValueError(
                "Expected hidden_sizes a non-empty tuple of positive integers. "
                f"Received: hidden_sizes={self.hidden_sizes!r}"
            )
        for size in self.hidden_sizes:
            _positive_int("hidden_sizes", size)
        self.hidden_sizes = tuple(self.hidden_sizes)  # a list from JSON becomes a tuple again
        if isinstance(self.dense, bool) or not isinstance(self.dense, int) or self.dense < 0:
            raise ValueError(f"Expected dense a width >= 0 (0: no hidden dense layer). Received: dense={self.dense!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"Expected dropout in [0, 1). Received: dropout={self.dropout!r}")
        if self.strategy == "recursive" and self.n_features != self.n_targets + self.n_future:
            raise ValueError(
                "The recursive strategy feeds each forecast back as the next input row, so it cannot use past-only "
                "covariates (their values at the fed-back steps are unknown): it needs n_features == n_targets + "
                f"n_future. Received: n_features={self.n_features}, n_targets={self.n_targets}, "
                f"n_future={self.n_future}. Use strategy='direct' or 'seq2seq' with past covariates."
            )


class Forecast(NamedTuple):
    """A forecast in the units of the inputs' target columns."""

    mean: Tensor  # (B, H, k)
    std: Tensor | None = None  # (B, H, k), > 0, with head="gaussian"; None with head="point"


class ForecastModel(nn.Module):
    """A recurrent forecaster built from a :class:`ForecastConfig`; ``model.config`` is that config as a dict.

    Example:
        >>> model = ForecastModel(ForecastConfig(n_features=3, n_targets=2, horizon=4, head="gaussian"))
        >>> forecast = model(torch.randn(8, 12, 3))  # 8 windows of 12 steps, 2 targets + 1 covariate
        >>> tuple(forecast.mean.shape), tuple(forecast.std.shape)
        ((8, 4, 2), (8, 4, 2))
        >>> out = model.loss((torch.randn(8, 12, 3), torch.randn(8, 4, 2)))
        >>> out.count
        8
        >>> rebuilt = ForecastModel(ForecastConfig(**model.config))
    """

    def __init__(self, config: ForecastConfig | dict):
        super().__init__()
        if isinstance(config, dict):
            config = ForecastConfig(**config)
        if not isinstance(config, ForecastConfig):
            raise TypeError(f"Expected a ForecastConfig (or its dict). Received: {type(config).__name__}")
        self.config = asdict(config)
        self.n_features, self.n_targets, self.horizon = config.n_features, config.n_targets, config.horizon
        self.n_future = config.n_future
        self.strategy, self.head, self.level = config.strategy, config.head, config.level

        self.encoder = self._stack(config.cell, config.n_features, config.hidden_sizes)
        if self.strategy == "seq2seq":  # fed one step of the k targets (and the C future covariates) at a time
            self.decoder = self._stack(config.cell, config.n_targets + self.n_future, config.hidden_sizes)
        self.dropout = nn.Dropout(config.dropout)
        steps = self.horizon if self.strategy == "direct" else 1  # values per output-layer call, per target
        # the output layers read the last hidden state and, except seq2seq's (whose decoder read them),
        # the future covariates of the steps they forecast
        width = config.hidden_sizes[-1] + (0 if self.strategy == "seq2seq" else steps * self.n_future)
        self.dense = nn.Sequential(nn.Linear(width, config.dense), nn.ReLU()) if config.dense else nn.Identity()
        self.out = nn.Linear(config.dense or width, steps * self.n_targets * (2 if self.head == "gaussian" else 1))

    @staticmethod
    def _stack(cell: str, input_size: int, hidden_sizes: tuple[int, ...]) -> nn.ModuleList:
        sizes = (input_size, *hidden_sizes)
        return nn.ModuleList(Recurrent(cell, sizes[i], sizes[i + 1]) for i in range(len(hidden_sizes)))

    # ------------------------------------------------------------------ pieces
    def _run(self, stack: nn.ModuleList, x: Tensor, states: list | None = None) -> tuple[Tensor, list]:
        """x (B, T, I) through the stacked layers -> (last layer's outputs (B, T, H), final state per layer)."""
        finals = []
        for i, layer in enumerate(stack):
            x, final = layer(self.dropout(x) if i else x, None if states is None else states[i])
            finals.append(final)
        return x, finals

    def _output(self, hidden: Tensor, future: Tensor | None = None) -> Forecast:
        """hidden (B, H_last) or (B, S, H_last) -> Forecast with mean (and std) of shape (B, steps, k).

        ``future (B, steps, C)`` of a direct or recursive model joins the last hidden state, flattened.
        """
        hidden = self.dropout(hidden)
        if future is not None and self.n_future:
            hidden = torch.cat([hidden, future.flatten(1)], dim=-1)  # (B, H_last + steps * C)
        raw = self.out(self.dense(hidden))
        raw = raw.reshape(hidden.shape[0], -1, 2 if self.head == "gaussian" else 1, self.n_targets)
        if self.head == "point":
            return Forecast(raw[:, :, 0])
        return Forecast(raw[:, :, 0], F.softplus(raw[:, :, 1]) + MIN_STD)

    def _normalise(self, inputs: Tensor) -> tuple[Tensor, Tensor]:
        """-> (inputs with the level taken off their target columns, level (B, 1, k))."""
        k = self.n_targets
        if self.level == "last":
            level = inputs[:, -1:, :k]
        else:
            level = inputs.new_zeros(inputs.shape[0], 1, k)
        return torch.cat([inputs[..., :k] - level, inputs[..., k:]], dim=-1), level

    # ------------------------------------------------------------------ strategies
    def _direct(self, inputs: Tensor, future: Tensor | None = None) -> Forecast:
        """All the output layer's steps at once from the encoder's last hidden state (one step for recursive)."""
        x, level = self._normalise(inputs)
        hidden, _ = self._run(self.encoder, x)
        mean, std = self._output(hidden[:, -1], future)
        return Forecast(mean + level, std)

    def _recursive(self, inputs: Tensor, horizon: int, future: Tensor | None = None) -> Forecast:
        """The one-step network ``horizon`` times, each forecast appended to the window (oldest row dropped)."""
        window, means, stds = inputs, [], []
        for h in range(horizon):
            known = None if future is None else future[:, h : h + 1]  # (B, 1, C): the future covariates of step h
            step = self._direct(window, known)  # (B, 1, k)
            means.append(step.mean)
            stds.append(step.std)
            row = step.mean if known is None else torch.cat([step.mean, known], dim=-1)  # a whole input row: k + C == F
            window = torch.cat([window[:, 1:], row], dim=1)
        return Forecast(torch.cat(means, dim=1), None if self.head == "point" else torch.cat(stds, dim=1))

    def _seq2seq(self, inputs: Tensor, targets: Tensor | None = None, future: Tensor | None = None) -> Forecast:
        """Encoder over the window, decoder over the horizon from its final state; teacher forcing given targets."""
        x, level = self._normalise(inputs)
        _, states = self._run(self.encoder, x)
        first = x[:, -1:, : self.n_targets]  # the last observed target (0 with level="last")

        def fed(values: Tensor, steps: slice) -> Tensor:  # decoder inputs: values (B, S, k), with step's covariates
            return values if future is None else torch.cat([values, future[:, steps]], dim=-1)

        if targets is not None:  # teacher forcing: step t is fed the true target of step t-1, all steps in one call
            previous = torch.cat([first, targets[:, :-1] - level], dim=1)
            hidden, _ = self._run(self.decoder, fed(previous, slice(None)), states)
            mean, std = self._output(hidden)
            return Forecast(mean + level, std)
        value, means, stds = first, [], []
        for h in range(self.horizon):  # free running: step t is fed the forecast of step t-1
            hidden, states = self._run(self.decoder, fed(value, slice(h, h + 1)), states)
            value, std = self._output(hidden)
            means.append(value)
            stds.append(std)
        std = None if self.head == "point" else torch.cat(stds, dim=1)
        return Forecast(torch.cat(means, dim=1) + level, std)

    # ------------------------------------------------------------------ public
    def forward(self, inputs: Tensor, targets: Tensor | None = None, future: Tensor | None = None) -> Forecast:
        """inputs (B, W, F) -> Forecast over the configured horizon.

        ``targets (B, H, k)``, in training mode, make seq2seq's decoder read the true previous
        targets (teacher forcing); the other strategies and eval mode ignore them.  ``future
        (B, H, C)``: the future covariates of the forecast steps, required when ``n_future > 0``.
        """
        self._check_inputs(inputs)
        future = self._check_future(future, inputs.shape[0], self.horizon)
        if self.strategy == "direct":
            return self._direct(inputs, future)
        if self.strategy == "recursive":
            return self._recursive(inputs, self.horizon, future)
        if targets is not None:
            self._check_targets(targets, inputs.shape[0])
        return self._seq2seq(inputs, targets if self.training else None, future)

    def loss(self, batch, state=None) -> LossOutput:
        """Mean loss over ``batch = (inputs (B, W, F), targets (B, H, k)[, future (B, H, C)])``, for ``fit``.

        Mean squared error (point head) or Gaussian negative log-likelihood with its constant
        (gaussian head), averaged over every value; ``count`` is B.  Recursive models learn one
        step, so only ``targets[:, :1]`` is used.  ``state`` is ignored: windows are independent.
        """
        inputs, targets = batch[0], batch[1]
        future = batch[2] if len(batch) > 2 else None
        self._check_inputs(inputs)
        self._check_targets(targets, inputs.shape[0])
        if self.strategy == "recursive":
            steps = targets.shape[1]
            future = self._check_future(future, inputs.shape[0], steps)
            forecast, targets = self._direct(inputs, None if future is None else future[:, :1]), targets[:, :1]
        else:
            forecast = self(inputs, targets, future)
        if self.head == "point":
            loss = F.mse_loss(forecast.mean, targets)
        else:
            loss = F.gaussian_nll_loss(forecast.mean, targets, forecast.std.square(), full=True)
        return LossOutput(loss, inputs.shape[0], None)

    def predict(self, inputs: Tensor, horizon: int | None = None, future: Tensor | None = None) -> Forecast:
        """Forecast in eval mode without gradients (the training mode is restored after).

        Recursive models roll out any ``horizon``; direct and seq2seq forecast their configured H only.
        ``future (B, horizon, C)`` as in ``forward``.
        """
        horizon = self.horizon if horizon is None else horizon
        _positive_int("horizon", horizon)
        if horizon != self.horizon and self.strategy != "recursive":
            raise ValueError(
                f"A {self.strategy} model forecasts exactly its configured horizon H={self.horizon}; only "
                f"strategy='recursive' rolls out any horizon. Received: horizon={horizon}"
            )
        self._check_inputs(inputs)
        future = self._check_future(future, inputs.shape[0], horizon)
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                if self.strategy == "recursive":
                    return self._recursive(inputs, horizon, future)
                return self(inputs, future=future)
        finally:
            self.train(was_training)

    # ------------------------------------------------------------------ checks
    def _check_inputs(self, inputs) -> None:
        if not isinstance(inputs, Tensor):
            raise TypeError(f"Expected inputs a Tensor of shape (B, W, F). Received: {type(inputs).__name__}")
        if inputs.dim() != 3 or inputs.shape[-1] != self.n_features or 0 in inputs.shape:
            raise ValueError(
                f"Expected inputs of shape (B, W, F) = (*, *, {self.n_features}). Received shape {tuple(inputs.shape)}."
            )

    def _check_future(self, future, batch: int, steps: int) -> Tensor | None:
        """``future`` checked against (B, steps, C); None for a model without future covariates."""
        if not self.n_future:
            if future is not None and future.shape[-1] != 0:
                raise ValueError(
                    f"This model has no future covariates (n_future=0). Received future of shape {tuple(future.shape)}."
                )
            return None
        if not isinstance(future, Tensor):
            raise ValueError(
                f"This model reads {self.n_future} future covariate(s) at each forecast step: pass future of shape "
                f"(B, H, C) = ({batch}, {steps}, {self.n_future}). Received: {type(future).__name__}"
            )
        if future.dim() != 3 or tuple(future.shape) != (batch, steps, self.n_future):
            raise ValueError(
                f"Expected future of shape (B, H, C) = ({batch}, {steps}, {self.n_future}). "
                f"Received shape {tuple(future.shape)}."
            )
        return future

    def _check_targets(self, targets, batch: int) -> None:
        steps = "*" if self.strategy == "recursive" else self.horizon  # recursive learns from the first step
        ok = isinstance(targets, Tensor) and targets.dim() == 3 and targets.shape[0] == batch
        ok = ok and targets.shape[2] == self.n_targets and targets.shape[1] >= 1
        if not ok or (steps != "*" and targets.shape[1] != steps):
            shape = tuple(targets.shape) if isinstance(targets, Tensor) else type(targets).__name__
            raise ValueError(
                f"Expected targets of shape (B, H, k) = ({batch}, {steps}, {self.n_targets}). Received shape {shape}."
            )
