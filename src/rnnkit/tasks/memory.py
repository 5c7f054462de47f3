"""Long-range memory tasks: the adding problem and the copy (memory) task.

The adding problem (Hochreiter & Schmidhuber 1997; fixed-length form of Le et al. 2015): each
step carries a random number in [0, 1) and a marker; two steps are marked, one in each half,
and the target is the sum of their two numbers.  Predicting the mean, 1.0, scores MSE 1/6.

The copy task (Arjovsky et al. 2016): 10 symbols from an alphabet of 8, then T blanks, a
delimiter, then 10 more blanks during which the model must write the 10 symbols back.  A
memoryless model that writes blanks until the delimiter and then guesses uniformly scores
``10 ln(8) / (T + 20)`` nats per step.

Example:
    >>> from rnnkit.tasks.memory import train_adding
    >>> result = train_adding("lstm", T=20, steps=50, progress=False)
    >>> result["baseline"] == 1 / 6, {"test_mse", "curve", "seconds"} <= set(result)
    (True, True)
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch
from torch import nn

from ..cells import CELLS
from ..layers import Recurrent

BASELINE_MSE = 1 / 6  # predict 1.0: the variance of a sum of two U(0, 1)
COPY_SYMBOLS = 8  # alphabet a_1..a_8 (ids 1..8)
COPY_LENGTH = 10  # symbols to remember
BLANK, DELIMITER = 0, COPY_SYMBOLS + 1  # ids 0 and 9; 10 classes in all
COPY_CLASSES = COPY_SYMBOLS + 2


def _check_T(T: int, minimum: int = 2) -> None:
    if not isinstance(T, int) or T < minimum:
        raise ValueError(f"Expected T to be an integer of at least {minimum}. Received: T={T!r}")


def adding_batch(batch: int, max_steps: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """The variable-length adding problem: lengths drawn in [max_steps // 2, max_steps].

    Returns x (B, T, 2) = (value, marker), lengths (B,), target (B,): two marked numbers in each
    sequence's valid part, one in each half of it.

    Example:
        >>> x, lengths, y = adding_batch(4, 20, torch.Generator().manual_seed(0))
        >>> x.shape, lengths.shape, y.shape
        (torch.Size([4, 20, 2]), torch.Size([4]), torch.Size([4]))
    """
    lengths = torch.randint(max_steps // 2, max_steps + 1, (batch,), generator=generator)
    values = torch.rand(batch, max_steps, generator=generator)
    markers = torch.zeros(batch, max_steps)
    first = (torch.rand(batch, generator=generator) * (lengths // 2)).long()
    second = lengths // 2 + (torch.rand(batch, generator=generator) * (lengths - lengths // 2)).long()
    rows = torch.arange(batch)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    target = values[rows, first] + values[rows, second]
    return torch.stack((values, markers), -1), lengths, target


def adding_fixed_batch(batch: int, T: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed-length adding problem (Le et al. 2015): T steps, one marker in each half.

    Returns x (B, T, 2) = (value in [0, 1), marker in {0, 1}) and target (B,) = the sum of the
    two marked values.

    Example:
        >>> x, y = adding_fixed_batch(8, 200, torch.Generator().manual_seed(0))
        >>> x.shape, y.shape
        (torch.Size([8, 200, 2]), torch.Size([8]))
    """
    _check_T(T)
    values = torch.rand(batch, T, generator=generator)  # (B, T)
    half = T // 2
    first = torch.randint(0, half, (batch,), generator=generator)  # (B,)
    second = torch.randint(half, T, (batch,), generator=generator)  # (B,)
    rows = torch.arange(batch)
    markers = torch.zeros(batch, T)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    target = values[rows, first] + values[rows, second]
    return torch.stack((values, markers), -1), target


def copy_batch(batch: int, T: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The copy task (Arjovsky et al. 2016): inputs and targets of T + 20 steps.

    Input:  10 symbols (ids 1..8), T - 1 blanks (0), the delimiter (9), 10 blanks.
    Target: T + 10 blanks, then the 10 symbols.
    The delimiter sits at step 10 + T - 1, i.e. T blanks-or-delimiter steps follow the symbols.
    Returns ids x (B, T + 20) and y (B, T + 20).

    Example:
        >>> x, y = copy_batch(2, 5, torch.Generator().manual_seed(0))
        >>> x.shape, bool((y[:, -10:] == x[:, :10]).all())
        (torch.Size([2, 25]), True)
    """
    _check_T(T, 1)
    symbols = torch.randint(1, COPY_SYMBOLS + 1, (batch, COPY_LENGTH), generator=generator)  # (B, 10)
    x = torch.full((batch, T + 2 * COPY_LENGTH), BLANK, dtype=torch.long)
    y = torch.full_like(x, BLANK)
    x[:, :COPY_LENGTH] = symbols
    x[:, COPY_LENGTH + T - 1] = DELIMITER
    y[:, -COPY_LENGTH:] = symbols
    return x, y


def copy_baseline(T: int) -> float:
    """Nats per step of the memoryless predictor: blanks, then uniform over 8 symbols at recall."""
    return COPY_LENGTH * math.log(COPY_SYMBOLS) / (T + 2 * COPY_LENGTH)


class LastStepRegressor(nn.Module):
    """Many-to-one: the recurrent layer's final hidden state through a linear head.

    forward(x (B, T, 2), lengths (B,) or None) -> prediction (B,).  ``cell_options`` go to the cell.
    """

    def __init__(self, cell: str, hidden_size: int, backend: str = "auto", **cell_options):
        super().__init__()
        self.rnn = Recurrent(cell, 2, hidden_size, backend=backend, **cell_options)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        _, state = self.rnn(x, lengths=lengths)
        h = state[0] if isinstance(state, tuple) else state  # (L*D, B, H)
        return self.head(h[-1]).squeeze(-1)  # (B,)


class PerStepClassifier(nn.Module):
    """Many-to-many: one-hot input symbols, a recurrent layer, a linear head at every step.

    forward(x ids (B, T)) -> logits (B, T, C).  ``cell_options`` go to the cell.
    """

    def __init__(
        self, cell: str, hidden_size: int, num_classes: int = COPY_CLASSES, backend: str = "auto", **cell_options
    ):
        super().__init__()
        self.num_classes = num_classes
        self.rnn = Recurrent(cell, num_classes, hidden_size, backend=backend, **cell_options)
        self.head = nn.Linear(hidden_size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        one_hot = nn.functional.one_hot(x, self.num_classes).float()  # (B, T, C)
        h, _ = self.rnn(one_hot)  # (B, T, H)
        return self.head(h)  # (B, T, C)


def _progress(enabled: bool, description: str, total: int):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
               TextColumn("{task.fields[score]}"))  # fmt: skip
    progress = Progress(*columns, disable=not enabled, transient=False)
    task = progress.add_task(description, total=total, score="")
    return progress, task


def _train(task: str, cell: str, T: int, steps: int, hidden_size: int, learning_rate: float, batch_size: int,
           seed: int, eval_every: int, test_size: int, clip: float, backend: str, progress: bool,
           chrono: bool) -> dict:  # fmt: skip
    _check_T(T)
    if steps < 1 or hidden_size < 1 or batch_size < 1:
        raise ValueError(f"Expected steps, hidden and batch size >= 1. Received: {steps}, {hidden_size}, {batch_size}")
    torch.manual_seed(seed)
    data = torch.Generator().manual_seed(seed)
    held_out = torch.Generator().manual_seed(seed + 10_000)  # another seed: never seen in training
    # chrono: forget biases for dependencies as long as the sequence (Tallec & Ollivier 2018);
    # cells without a forget gate train as usual
    chrono = chrono and cell in CELLS and "forget_gate" in CELLS[cell].gates
    options = {"chrono_init": T if task == "adding" else T + 2 * COPY_LENGTH} if chrono else {}
    if task == "adding":
        model: nn.Module = LastStepRegressor(cell, hidden_size, backend=backend, **options)
        test_x, test_y = adding_fixed_batch(test_size, T, held_out)
        baseline = BASELINE_MSE
    else:
        model = PerStepClassifier(cell, hidden_size, backend=backend, **options)
        test_x, test_y = copy_batch(test_size, T, held_out)
        baseline = copy_baseline(T)

    def loss_of(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if task == "adding":
            return nn.functional.mse_loss(model(x), y)
        return nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten())

    def evaluate() -> dict[str, float]:
        model.eval()
        with torch.no_grad():
            if task == "adding":
                out = {"test_mse": nn.functional.mse_loss(model(test_x), test_y).item()}
            else:
                logits = model(test_x)  # (B, T + 20, C)
                out = {
                    "test_nats": nn.functional.cross_entropy(logits.flatten(0, 1), test_y.flatten()).item(),
                    "recall_accuracy": (logits[:, -COPY_LENGTH:].argmax(-1) == test_y[:, -COPY_LENGTH:])
                    .float()
                    .mean()
                    .item(),
                }
        model.train()
        return out

    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    metric = "test_mse" if task == "adding" else "test_nats"
    curve: list[dict[str, float]] = [{"step": 0, **evaluate()}]
    bar, bar_task = _progress(progress, f"{task} T={T} {cell}", steps)
    start = time.perf_counter()
    with bar:
        for step in range(1, steps + 1):
            x, y = adding_fixed_batch(batch_size, T, data) if task == "adding" else copy_batch(batch_size, T, data)
            loss = loss_of(x, y)
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
            if step % eval_every == 0 or step == steps:
                curve.append({"step": step, **evaluate()})
                bar.update(bar_task, score=f"{metric} {curve[-1][metric]:.4f} (baseline {baseline:.4f})")
            bar.advance(bar_task)
    seconds = time.perf_counter() - start
    return {"task": task, "cell": cell, "chrono": chrono, "backend": model.rnn.backend, "T": T, "steps": steps,
            "seconds": seconds,
            "baseline": baseline, **curve[-1], "curve": curve, "model": model}  # fmt: skip


def train_adding(
    cell: str = "lstm",
    T: int = 200,
    steps: int = 3000,
    hidden_size: int = 128,
    learning_rate: float = 1e-3,
    batch_size: int = 64,
    seed: int = 0,
    eval_every: int = 100,
    test_size: int = 1000,
    clip: float = 1.0,
    backend: str = "auto",
    progress: bool = True,
    chrono: bool = False,
) -> dict:
    """Train a many-to-one regressor on the fixed-length adding problem (fresh batches each step).

    ``chrono=True`` starts the forget gates with chrono initialisation for dependencies of up to
    T steps (``chrono_init=T``; cells without a forget gate ignore it: ``result["chrono"]`` says).

    Returns a dict with test_mse (on a held-out batch of another seed), baseline (1/6),
    curve (a list of {step, test_mse}), seconds, backend and the trained model.

    Example:
        >>> r = train_adding("lstm", T=10, steps=20, hidden_size=8, progress=False)
        >>> r["test_mse"] > 0
        True
    """
    return _train("adding", cell, T, steps, hidden_size, learning_rate, batch_size, seed, eval_every, test_size,
                  clip, backend, progress, chrono)  # fmt: skip


def train_copy(
    cell: str = "lstm",
    T: int = 50,
    steps: int = 3000,
    hidden_size: int = 128,
    learning_rate: float = 1e-3,
    batch_size: int = 64,
    seed: int = 0,
    eval_every: int = 100,
    test_size: int = 1000,
    clip: float = 1.0,
    backend: str = "auto",
    progress: bool = True,
    chrono: bool = False,
) -> dict:
    """Train a many-to-many classifier on the copy task (fresh batches each step).

    ``chrono=True``: chrono initialisation of the forget gates with ``chrono_init=T + 20``.

    Returns a dict with test_nats (cross-entropy per step), recall_accuracy (on the 10 recalled
    symbols), baseline (10 ln 8 / (T + 20)), curve, seconds, backend and the trained model.

    Example:
        >>> r = train_copy("gru", T=5, steps=20, hidden_size=8, progress=False)
        >>> 0 <= r["recall_accuracy"] <= 1
        True
    """
    return _train("copy", cell, T, steps, hidden_size, learning_rate, batch_size, seed, eval_every, test_size,
                  clip, backend, progress, chrono)  # fmt: skip


def _label(result: dict) -> str:
    """The cell's name, with " (chrono init)" when its forget gates started so."""
    return result["cell"] + (" (chrono init)" if result.get("chrono") else "")


def write_curves(results: list[dict], out_dir: str | Path, name: str) -> tuple[Path, Path]:
    """Write each result's learning curve to ``name.csv`` (long form) and ``name.png`` (log y):
    test MSE for the adding problem, test nats (cross-entropy) for the others, with the baseline.

    Example:
        >>> write_curves([train_adding("lstm", T=10, steps=10, progress=False)], "runs", "adding")  # doctest: +SKIP
    """
    import pandas as pd

    from ..plots import _pyplot, _save

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [{"cell": r["cell"], **point} for r in results for point in r["curve"]]
    csv_path = out_dir / f"{name}.csv"
    pd.DataFrame(rows).to_csv(csv_path, index=False)
    metric = "test_mse" if results[0]["task"] == "adding" else "test_nats"
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    for r in results:
        ax.plot([p["step"] for p in r["curve"]], [p[metric] for p in r["curve"]], label=_label(r))
    ax.axhline(results[0]["baseline"], color="grey", linestyle="--", label="baseline")
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    task = results[0]["task"]
    ax.set_ylabel({"adding": "test MSE", "copy": "test nats per step"}.get(task, "test nats per sequence"))
    ax.set_title(
        f"{task} problem, T={results[0]['T']}" if task in ("adding", "copy") else f"{task}, T={results[0]['T']}"
    )
    ax.legend()
    return _save(fig, out_dir / f"{name}.png"), csv_path


def trained_gradient_flows(results: list[dict], batch_size: int = 64, seed: int = 0) -> dict:
    """Gradient flow of each trained adding-problem model on a fresh batch, with its own loss.

    The loss is the model's squared error at the last step (its head on h_T against the target),
    so ``norms[t]`` is how much the error reaching each step t tells the weights: an LSTM that
    solved the task keeps it up to the marked steps, a tanh RNN does not.  Returns
    ``{label: GradientFlow}`` (label: the cell, with " (chrono init)" when so) for
    :func:`rnnkit.diagnostics.plot_gradient_flow`.

    Example:
        >>> flows = trained_gradient_flows([train_adding("lstm", T=10, steps=2, hidden_size=4, progress=False)])
        >>> tuple(flows["lstm"].norms.shape)
        (1, 10)
    """
    from ..diagnostics import gradient_flow

    flows = {}
    for r in results:
        if r["task"] != "adding":
            raise ValueError(f"Expected results of train_adding. Received a result of task {r['task']!r}")
        x, y = adding_fixed_batch(batch_size, r["T"], torch.Generator().manual_seed(seed + 20_000))
        model = r["model"]

        def squared_error(h: torch.Tensor, model=model, y=y) -> torch.Tensor:
            return (model.head(h).squeeze(-1) - y) ** 2  # (B,)

        flows[_label(r)] = gradient_flow(model.rnn, x, head=squared_error)
    return flows
