"""``rnnkit classify demo|train|predict``: one label per sequence, scored beside the majority class and
logistic regression on the same test split."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Sequence classification (many-to-one): digits, MNIST-1D, MNIST row by row, movie-review sentiment or any "
    "CSV; scored beside baselines.",
    no_args_is_help=True,
)

Dataset = Annotated[str, typer.Option(help="digits, mnist1d, mnist (with --mnist-dir), sentiment or csv (with --csv).")]
Csv = Annotated[Path | None, typer.Option(help="A CSV: a label column and a text column (--text-column), or "
                                                "the steps' values in the other columns.")]  # fmt: skip
TestCsv = Annotated[Path | None, typer.Option(help="A second CSV laid out like --csv to test on (the first is then "
                                                    "split 90/10 into train and validation).")]  # fmt: skip
TextColumn = Annotated[str | None, typer.Option(help="The text column of --csv (leave out for numeric sequences).")]
LabelColumn = Annotated[str, typer.Option(help="The label column of --csv.")]
FeaturesPerStep = Annotated[int, typer.Option(help="Numeric --csv: values per step (the columns are step 0's values, "
                                                   "then step 1's, ...).")]  # fmt: skip
MnistDir = Annotated[Path | None, typer.Option(help="A directory with MNIST's four idx files "
                                                     "(train-images-idx3-ubyte[.gz], ...).")]  # fmt: skip
Limit = Annotated[int | None, typer.Option(help="Use only this many examples (a quick try).")]
Cell = Annotated[str, typer.Option(help="Any cell of `rnnkit cells`.")]
Hidden = Annotated[int | None, typer.Option(help="Hidden units per direction (default: the dataset's).")]
Layers = Annotated[int, typer.Option(help="Stacked layers.")]
Bidirectional = Annotated[bool | None, typer.Option(help="Read each sequence both ways (default: the dataset's: "
                                                          "on for text).")]  # fmt: skip
Pooling = Annotated[str | None, typer.Option(help="last, mean, max or attention (default: the dataset's).")]
Embedding = Annotated[int, typer.Option(help="Word embedding size (text).")]
Dropout = Annotated[float | None, typer.Option(help="Dropout on embeddings, between layers and before the output.")]
BatchSize = Annotated[int | None, typer.Option(help="Sequences per batch (default: the dataset's).")]
Epochs = Annotated[int | None, typer.Option(help="At most this many epochs (default: the dataset's).")]
Lr = Annotated[float | None, typer.Option(help="Learning rate, Adam (halved when the validation loss stalls).")]
EarlyStopping = Annotated[int, typer.Option(help="Stop after this many epochs without a better validation loss "
                                                 "(0: never).")]  # fmt: skip
MinCount = Annotated[int, typer.Option(help="Text: words seen fewer times in training are <unk>.")]
MaxLength = Annotated[int, typer.Option(help="Text: at most this many words a text (the rest is cut).")]
Device = Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")]
Seed = Annotated[int, typer.Option(help="Random seed (same seed, same result).")]
RunsDir = Annotated[Path, typer.Option(help="Where new run directories go.")]
Progress = Annotated[bool, typer.Option(help="Show a progress bar.")]


def _print_report(report: dict, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in ("model", "accuracy", "macro F1"):
        table.add_column(column, justify="left" if column == "model" else "right")
    table.add_row(f"{report['model']} (this run)", f"{report['test']['accuracy']:.4f}",
                  f"{report['test']['macro_f1']:.4f}")  # fmt: skip
    table.add_row("  the same, on validation", f"{report['val']['accuracy']:.4f}", f"{report['val']['macro_f1']:.4f}")
    for name, row in report["baselines"].items():
        label = f"{name} ({row['class']!r})" if "class" in row else f"{name}, C={row['C']:g} on validation"
        table.add_row(label, f"{row['accuracy']:.4f}", f"{row['macro_f1']:.4f}")
    console = Console()
    console.print(table)
    console.print(f"epochs: {report['epochs']} (best validation loss at {report['best_epoch']}; "
                  f"{report['stop_reason']}), {report['seconds']:.0f} s with {report['torch_threads']} torch "
                  "thread(s)")  # fmt: skip
    paths = report.get("paths", {})
    console.print("\n".join(f"{name.replace('_', ' ')}: {path}" for name, path in paths.items()))


def _title(report: dict) -> str:
    sizes = report["sizes"]
    return (f"{report['dataset']}: test split ({sizes['test']} sequences; trained on {sizes['train']}, "
            f"{len(report['classes'])} classes)")  # fmt: skip


@app.command()
def demo(
    seed: Seed = 0,
    device: Device = "auto",
    runs_dir: RunsDir = Path("runs"),
    progress: Progress = True,
) -> None:
    """8x8 handwritten digits read row by row (8 steps of 8 pixels) by an LSTM; test accuracy beside the majority
    class and logistic regression on the same 359 test images.

    Example: rnnkit classify demo --seed 0
    """
    from ..tasks.classify import demo as run

    result = run(seed=seed, device=device, runs_dir=runs_dir, progress=progress)
    _print_report(result.report, _title(result.report))


@app.command()
def train(
    dataset: Dataset = "digits",
    csv: Csv = None,
    test_csv: TestCsv = None,
    text_column: TextColumn = None,
    label_column: LabelColumn = "label",
    features_per_step: FeaturesPerStep = 1,
    mnist_dir: MnistDir = None,
    limit: Limit = None,
    cell: Cell = "lstm",
    hidden: Hidden = None,
    layers: Layers = 1,
    bidirectional: Bidirectional = None,
    pooling: Pooling = None,
    embedding: Embedding = 100,
    dropout: Dropout = None,
    batch_size: BatchSize = None,
    epochs: Epochs = None,
    lr: Lr = None,
    early_stopping: EarlyStopping = 5,
    min_count: MinCount = 2,
    max_length: MaxLength = 200,
    device: Device = "auto",
    seed: Seed = 0,
    runs_dir: RunsDir = Path("runs"),
    progress: Progress = True,
) -> None:
    """Train a sequence classifier; print test accuracy and macro F1 beside the baselines, and the paths written.

    Examples:
      rnnkit classify train --dataset sentiment --pooling attention
      rnnkit classify train --dataset mnist --mnist-dir ~/data/mnist --hidden 128 --epochs 10
      rnnkit classify train --dataset csv --csv reviews.csv --text-column review --label-column stars
    """
    from ..tasks.classify import train as run

    result = run(dataset, csv=csv, test_csv=test_csv, text_column=text_column, label_column=label_column,
                 features_per_step=features_per_step, mnist_dir=mnist_dir, limit=limit, cell=cell, hidden_size=hidden,
                 num_layers=layers, bidirectional=bidirectional, pooling=pooling, embedding_dim=embedding,
                 dropout=dropout, batch_size=batch_size, epochs=epochs, learning_rate=lr,
                 early_stopping=early_stopping, min_count=min_count, max_length=max_length, device=device, seed=seed,
                 runs_dir=runs_dir, progress=progress)  # fmt: skip
    _print_report(result.report, _title(result.report))


@app.command()
def predict(
    run: Annotated[Path, typer.Option(help="A classify run directory (from `rnnkit classify train`).")],
    text: Annotated[list[str] | None, typer.Option(help="A text to classify (text runs); repeat for more.")] = None,
    csv: Annotated[
        Path | None,
        typer.Option(help="A CSV laid out like the training data; with the label column, its accuracy is printed too."),
    ] = None,  # fmt: skip
    top: Annotated[int, typer.Option(help="Show the k most likely classes.")] = 1,
    limit: Annotated[int, typer.Option(help="Print at most this many rows.")] = 20,
) -> None:
    """Classify texts or the rows of a CSV with a trained run.

    Examples:
      rnnkit classify predict --run runs/classify-20261125-101500 --text "a moving, funny film" --top 2
      rnnkit classify predict --run runs/classify-20261125-101500 --csv new_rows.csv
    """
    from rich.console import Console
    from rich.table import Table

    from ..tasks.classify import predict as classify

    if not text and csv is None:
        raise ValueError("Give --text TEXT (text runs; repeat for more) or --csv FILE.")
    if text and csv is not None:
        raise ValueError("Give either --text or --csv, not both.")
    out = classify(run, texts=text or None, csv=csv, top=top)
    table = Table(title=f"Predictions of {run}")
    table.add_column("#", justify="right")
    if text:
        table.add_column("text")
    table.add_column("label")
    table.add_column("probability", justify="right")
    if top > 1:
        table.add_column(f"top {top}")
    for i, p in enumerate(out["predictions"][:limit]):
        row = [str(i + 1)] + ([text[i] if len(text[i]) <= 60 else text[i][:59] + "…"] if text else [])
        row += [p["label"], f"{p['probability']:.3f}"]
        if top > 1:
            row.append(", ".join(f"{label} {q:.3f}" for label, q in p["top"]))
        table.add_row(*row)
    console = Console()
    console.print(table)
    if len(out["predictions"]) > limit:
        console.print(f"... {len(out['predictions']) - limit} more rows (--limit)")
    if "scores" in out:
        s = out["scores"]
        console.print(f"accuracy {s['accuracy']:.4f}, macro F1 {s['macro_f1']:.4f} on {len(out['predictions'])} "
                      "labelled rows")  # fmt: skip
