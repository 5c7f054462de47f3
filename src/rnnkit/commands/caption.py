"""``rnnkit caption demo|train|describe``: one input, a sentence out (Show and Tell)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Captioning (one-to-many): a CNN or your features, then a recurrent decoder writes a sentence.",
    no_args_is_help=True,
)

Cell = Annotated[str, typer.Option(help="Any cell of `rnnkit cells`.")]
Hidden = Annotated[int, typer.Option(help="Decoder hidden units.")]
Epochs = Annotated[int, typer.Option(help="Epochs (early stopping on the validation loss).")]
Lr = Annotated[float, typer.Option(help="Learning rate (Adam).")]
SeedOption = Annotated[int, typer.Option(help="Random seed: data, split and initialisation.")]
Images = Annotated[int, typer.Option(help="Generated shape images (all splits together).")]
Beam = Annotated[int, typer.Option(help="Beam size for the second test score (1: greedy only).")]
Device = Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")]
Progress = Annotated[bool, typer.Option(help="Show a progress bar.")]


def _print_report(run) -> None:
    from rich.console import Console
    from rich.table import Table

    report = run.report
    test, baseline = report["test"], report["baseline"]
    shapes = "content_match_greedy" in test
    items = report["items"]
    table = Table(title=f"Test captions ({items['test']} items, split {report['split'].split(':')[0]}; "
                        "corpus BLEU against all references, higher is better)")  # fmt: skip
    table.add_column("model")
    table.add_column("BLEU", justify="right")
    if shapes:
        table.add_column("content exact", justify="right")
        table.add_column("content slots", justify="right")
    cell = run.model.config["cell"]
    rows = [
        (
            f"{cell} captioner, greedy (this run)",
            test["bleu_greedy"],
            test.get("content_match_greedy"),
            test.get("content_slots_greedy"),
        )
    ]
    beams = [k for k in test if k.startswith("bleu_beam")]
    for key in beams:
        size = key.removeprefix("bleu_beam")
        rows.append((f"  the same, beam {size}", test[key], test.get(f"content_match_beam{size}"), None))
    val = report["val"]
    rows.append(("  the same, greedy, on validation", val["bleu_greedy"], val.get("content_match_greedy"),
                 val.get("content_slots_greedy")))  # fmt: skip
    rows.append((f"most frequent training caption: {baseline['most_frequent_caption']!r}", baseline["bleu"],
                 baseline.get("content_match"), baseline.get("content_slots")))  # fmt: skip
    for name, bleu, match, slots in rows:
        shares = [match, slots] if shapes else []
        table.add_row(name, f"{bleu:.1f}", *("" if v is None else f"{100 * v:.1f}%" for v in shares))
    console = Console()
    console.print(table)
    console.print(f"trained {report['epochs']} epochs in {report['train_seconds']:.0f} s "
                  f"(best epoch {report['best_epoch']}, {report['stop_reason']})")  # fmt: skip
    console.print(f"run: {run.run_dir}")
    for name, path in report["plots"].items():
        console.print(f"{name}: {path}")
    console.print(f"report: {run.run_dir / 'report.json'}\ncaptions: {run.run_dir / 'test_captions.tsv'}")


@app.command()
def demo(
    seed: SeedOption = 0,
    cell: Cell = "lstm",
    progress: Progress = True,
) -> None:
    """Generated shapes (4000 images, 32x32, 20 epochs): train the CNN and the decoder, print BLEU beside the
    most-frequent-caption baseline, draw test images with their captions.  A few minutes on 2 CPU cores.

    Example: rnnkit caption demo --seed 0
    """
    from ..tasks.caption import train as run

    _print_report(run(images=4000, epochs=20, cell=cell, seed=seed, progress=progress))


@app.command()
def train(
    features: Annotated[
        Path | None, typer.Option(help="Your features: a .npy of shape (N, F), one row per image.")
    ] = None,
    captions: Annotated[
        Path | None, typer.Option(help="UTF-8 text: line i = the captions of row i, tab-separated.")
    ] = None,
    images: Images = 3000,
    cell: Cell = "lstm",
    hidden: Hidden = 128,
    embedding: Annotated[int, typer.Option(help="Word embedding size (and projected image feature size).")] = 64,
    layers: Annotated[int, typer.Option(help="Stacked decoder layers.")] = 1,
    batch_size: Annotated[int, typer.Option(help="Images per batch (each with all its captions).")] = 32,
    epochs: Epochs = 15,
    lr: Lr = 3e-3,
    beam: Beam = 3,
    device: Device = "auto",
    seed: SeedOption = 0,
    progress: Progress = True,
) -> None:
    """Train a captioner on generated shapes, or on your features and captions; report BLEU beside the baseline.

    Example: rnnkit caption train --features feats.npy --captions captions.txt --cell gru --epochs 20
    """
    from ..tasks.caption import train as run

    result = run(features, captions, images=images, cell=cell, hidden_size=hidden, embedding_dim=embedding,
                 num_layers=layers, batch_size=batch_size, epochs=epochs, learning_rate=lr, beam_size=beam,
                 device=device, seed=seed, progress=progress)  # fmt: skip
    _print_report(result)


@app.command()
def describe(
    run: Annotated[Path, typer.Option(help="A caption run directory.")],
    index: Annotated[int | None, typer.Option(help="Caption test item K of the run's own data.")] = None,
    features: Annotated[Path | None, typer.Option(help="A .npy (N, F) to caption a row of (runs on features).")] = None,
    row: Annotated[int, typer.Option(help="The row of --features.")] = 0,
    beam: Annotated[int, typer.Option(help="Beam size (1: greedy).")] = 1,
) -> None:
    """Caption one item with a trained run.

    Example: rnnkit caption describe --run runs/caption-20261125-101500 --index 3
    """
    from ..tasks.caption import describe as write

    result = write(run, index=index, features=features, row=row, beam_size=beam)
    typer.echo(result["caption"])
    for reference in result.get("references", []):
        typer.echo(f"  reference: {reference}")
