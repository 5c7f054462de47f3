"""``rnnkit tasks adding|copy|digits``: long-range memory tasks (adding problem, copy task,
sequential and permuted digits)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Long-range memory tasks: the adding problem, the copy task, sequential digits.", no_args_is_help=True
)

Cell = Annotated[str, typer.Option(help="Any cell of `rnnkit cells`.")]
Compare = Annotated[str, typer.Option(help="Comma-separated cells to train and plot together, e.g. rnn_tanh,lstm.")]
Steps = Annotated[int, typer.Option(help="Training steps (a fresh batch each step).")]
Hidden = Annotated[int, typer.Option(help="Hidden units.")]
Lr = Annotated[float, typer.Option(help="Learning rate (Adam).")]
BatchSize = Annotated[int, typer.Option(help="Sequences per batch.")]
EvalEvery = Annotated[int, typer.Option(help="Evaluate on the held-out batch every k steps.")]
TestSize = Annotated[int, typer.Option(help="Held-out sequences (generated with another seed).")]
Backend = Annotated[str, typer.Option(help="auto, native, compiled, fused or reference.")]
Seed = Annotated[int, typer.Option(help="Random seed (same seed, same result).")]
Out = Annotated[Path, typer.Option(help="Directory for the learning-curve PNG and CSV.")]
Progress = Annotated[bool, typer.Option(help="Show a progress bar.")]
Chrono = Annotated[
    bool,
    typer.Option(help="Chrono initialisation of the forget gates (Tallec & Ollivier 2018), for forget-gate cells."),
]


def _run(task: str, cell: str, compare: str, T: int, out: Path, **kwargs) -> None:
    from rich.console import Console
    from rich.table import Table

    from ..tasks.memory import train_adding, train_copy, trained_gradient_flows, write_curves

    cells = [c.strip() for c in compare.split(",") if c.strip()] if compare else [cell]
    train = train_adding if task == "adding" else train_copy
    results = [train(c, T=T, **kwargs) for c in cells]
    table = Table(title=f"{task} problem, T={T}: held-out batch (lower is better)")
    table.add_column("model")
    if task == "adding":
        table.add_column("test MSE", justify="right")
    else:
        table.add_column("nats/step", justify="right")
        table.add_column("recall accuracy", justify="right")
    table.add_column("seconds", justify="right")
    for r in results:
        label = f"{r['cell']} ({r['backend']}{', chrono init' if r['chrono'] else ''})"
        if task == "adding":
            table.add_row(label, f"{r['test_mse']:.4f}", f"{r['seconds']:.0f}")
        else:
            table.add_row(label, f"{r['test_nats']:.4f}", f"{r['recall_accuracy']:.3f}",
                          f"{r['seconds']:.0f}")  # fmt: skip
    baseline = results[0]["baseline"]
    if task == "adding":
        table.add_row("baseline: predict 1.0", f"{baseline:.4f}", "")
    else:
        table.add_row("baseline: memoryless (blanks, then uniform)", f"{baseline:.4f}", "0.125", "")
    console = Console()
    console.print(table)
    name = f"{task}_T{T}" + ("_compare" if compare else f"_{cell}")
    png, csv = write_curves(results, out, name)
    console.print(f"curves: {png}\ntable: {csv}")
    if task == "adding":
        from ..diagnostics import plot_gradient_flow

        flows = trained_gradient_flows(results, seed=kwargs.get("seed", 0))
        title = f"trained on the adding problem, T={T}: gradient of the squared error"
        flow_png = plot_gradient_flow(flows, out / f"{name}_gradient_flow.png", title)
        console.print(f"gradient flow of the trained models: {flow_png}")


@app.command()
def adding(
    cell: Cell = "lstm",
    compare: Compare = "",
    T: Annotated[int, typer.Option("--T", help="Sequence length (one marker in each half).")] = 200,
    steps: Steps = 3000,
    hidden: Hidden = 128,
    lr: Lr = 1e-3,
    batch_size: BatchSize = 64,
    eval_every: EvalEvery = 100,
    test_size: TestSize = 1000,
    backend: Backend = "auto",
    seed: Seed = 0,
    out: Out = Path("runs/memory"),
    progress: Progress = True,
    chrono: Chrono = False,
) -> None:
    """The adding problem: test MSE beside the predict-1 baseline (1/6); the learning curves and
    the gradient flow of the trained models (<out>/adding_T<T>_*_gradient_flow.png).

    Example: rnnkit tasks adding --compare rnn_tanh,lstm --T 200 --steps 3000
    """
    _run("adding", cell, compare, T, out, steps=steps, hidden_size=hidden, learning_rate=lr, batch_size=batch_size,
         seed=seed, eval_every=eval_every, test_size=test_size, backend=backend, progress=progress,
         chrono=chrono)  # fmt: skip


@app.command()
def copy(
    cell: Cell = "lstm",
    compare: Compare = "",
    T: Annotated[int, typer.Option("--T", help="Blanks between the symbols and the delimiter.")] = 50,
    steps: Steps = 3000,
    hidden: Hidden = 128,
    lr: Lr = 1e-3,
    batch_size: BatchSize = 64,
    eval_every: EvalEvery = 100,
    test_size: TestSize = 1000,
    backend: Backend = "auto",
    seed: Seed = 0,
    out: Out = Path("runs/memory"),
    progress: Progress = True,
    chrono: Chrono = False,
) -> None:
    """The copy task: nats per step beside the memoryless baseline, and recall accuracy.

    Example: rnnkit tasks copy --cell lstm --T 50 --steps 3000
    """
    _run("copy", cell, compare, T, out, steps=steps, hidden_size=hidden, learning_rate=lr, batch_size=batch_size,
         seed=seed, eval_every=eval_every, test_size=test_size, backend=backend, progress=progress,
         chrono=chrono)  # fmt: skip


@app.command()
def digits(
    cell: Cell = "lstm",
    compare: Compare = "",
    permuted: Annotated[bool, typer.Option(help="Read the 64 pixels in one fixed random order (seeded).")] = False,
    steps: Annotated[int, typer.Option(help="Training steps (minibatches of the training images).")] = 2000,
    hidden: Hidden = 64,
    lr: Lr = 5e-3,
    batch_size: Annotated[int, typer.Option(help="Images per batch.")] = 64,
    eval_every: Annotated[int, typer.Option(help="Score the test images every k steps.")] = 100,
    backend: Backend = "auto",
    seed: Annotated[int, typer.Option(help="Random seed of the split, the permutation and training.")] = 0,
    out: Out = Path("runs/memory"),
    progress: Progress = True,
) -> None:
    """Sequential digits: scikit-learn's 8x8 digits read one pixel per step (T=64), optionally permuted;
    test accuracy beside the majority class and logistic regression on the flattened image.

    Example: rnnkit tasks digits --permuted --compare rnn_tanh,lstm --steps 2000
    """
    from rich.console import Console
    from rich.table import Table

    from ..tasks.classify import baselines
    from ..tasks.memory import write_curves
    from ..tasks.pixels import pixel_digits, train_digits

    data = pixel_digits(permuted, seed)
    cells = [c.strip() for c in compare.split(",") if c.strip()] if compare else [cell]
    results = [train_digits(c, permuted=permuted, steps=steps, hidden_size=hidden, learning_rate=lr,
                            batch_size=batch_size, seed=seed, eval_every=eval_every, backend=backend,
                            progress=progress, data=data) for c in cells]  # fmt: skip
    table = Table(title=f"{data.name}, T=64 steps of 1 pixel: {len(data.test)} test images",
                  caption="baseline nats: the cross-entropy of predicting the training class frequencies")  # fmt: skip
    for column in ("model", "test accuracy", "test nats", "seconds"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for r in results:
        table.add_row(f"{r['cell']}-{hidden} ({r['backend']}), {steps} steps", f"{r['test_accuracy']:.3f}",
                      f"{r['test_nats']:.3f}", f"{r['seconds']:.0f}")  # fmt: skip
    for name, score in baselines(data).items():
        nats = f"{results[0]['baseline']:.3f}" if name == "majority class" else ""
        table.add_row(f"baseline: {name}", f"{score['accuracy']:.3f}", nats, "")
    console = Console()
    console.print(table)
    name = ("permuted_digits" if permuted else "digits") + ("_compare" if compare else f"_{cell}")
    png, csv = write_curves(results, out, name)
    console.print(f"curves: {png}\ntable: {csv}")
