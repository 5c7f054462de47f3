"""``rnnkit poetry train|generate|export``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .options import Num, RepetitionPenalty, Seed, Temperature, TopK, TopP

app = typer.Typer(help="Chinese poetry: train on Tang poems, write quatrains and acrostic poems.", no_args_is_help=True)


@app.command()
def generate(
    acrostic: Annotated[str, typer.Option(help="Head characters: line k starts with the k-th (藏头诗).")] = "",
    form: Annotated[int, typer.Option(help="Characters per line: 5 or 7.")] = 5,
    lines: Annotated[int, typer.Option(help="Lines (4 quatrain, 8 regulated verse); acrostic sets it.")] = 4,
    first_line: Annotated[str, typer.Option(help="Start the poem with this line.")] = "",
    num: Num = 1,
    temperature: Temperature = 0.8,
    top_k: TopK = 0,
    top_p: TopP = 1.0,
    repetition_penalty: RepetitionPenalty = 1.0,
    beam: Annotated[int, typer.Option(help="Beam search with this many beams (one poem; 0: sample).")] = 0,
    rhyme: Annotated[bool, typer.Option(help="Even lines rhyme (modern Mandarin rhyme groups, 中华新韵).")] = False,
    seed: Seed = None,
    model: Annotated[Path | None, typer.Option(help="Model or run directory (default: the shipped model).")] = None,
) -> None:
    """Write poems with the shipped model (or your own).

    Example: rnnkit poetry generate --acrostic 春花秋月 --form 7 --num 3 --seed 0
    """
    from ..tasks.poetry import generate as write

    poems = write(
        model, acrostic=acrostic or None, form=form, lines=lines, first_line=first_line or None, num=num,
        temperature=temperature, top_k=top_k, top_p=top_p, repetition_penalty=repetition_penalty, beam=beam,
        rhyme=rhyme, seed=seed,
    )  # fmt: skip
    typer.echo("\n\n".join(poems))


@app.command()
def train(
    preset: Annotated[str, typer.Option(help="default (the shipped model's recipe) or tiny (seconds).")] = "default",
    data: Annotated[
        Path | None, typer.Option(help="chinese-poetry JSON, text (one poem a line) or a directory; default: shipped.")
    ] = None,
    simplified: Annotated[bool, typer.Option(help="Convert --data to simplified characters (OpenCC t2s).")] = False,
    epochs: Annotated[int, typer.Option(help="Epochs (0: the preset's).")] = 0,
    max_poems: Annotated[int, typer.Option(help="Use only the first N poems (0: all).")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    resume: Annotated[Path | None, typer.Option(help="Continue this run directory from its last checkpoint.")] = None,
    export: Annotated[Path | None, typer.Option(help="Also save the best model to this directory.")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Train a poetry language model; report held-out bits per character beside n-gram baselines.

    Example: rnnkit poetry train --preset default --export src/rnnkit/data/poetry/model
    """
    from rich.console import Console
    from rich.table import Table

    from ..data.poetry import filter_form, load_poems
    from ..tasks.poetry import train as run

    poems = filter_form(load_poems(data, simplified=simplified)) if data is not None else None
    result = run(preset, poems, epochs=epochs or None, max_poems=max_poems or None, device=device, seed=seed,
                 resume=resume, export=export, progress=progress)  # fmt: skip
    report = result.report
    table = Table(title="Held-out bits per character (test split; lower is better)")
    table.add_column("model")
    table.add_column("bits/char", justify="right")
    table.add_row(f"{result.model.config['cell']} (this run)", f"{report['test_bits_per_char']:.3f}")
    table.add_row("  the same, on validation", f"{report['val_bits_per_char']:.3f}")
    for name, value in report.get("baselines_test_bits_per_char", {}).items():
        table.add_row(name.replace("_", " "), f"{value:.3f}")
    console = Console()
    console.print(table)
    console.print(f"run: {report.get('run_dir', '')}" + (f"\nmodel: {export}" if export else ""))


@app.command("export")
def export_(
    run: Annotated[Path, typer.Argument(help="A poetry run directory.")],
    to: Annotated[Path, typer.Argument(help="The model directory to write.")],
) -> None:
    """Save a run's best model as a model directory (model.safetensors, config.json, vocab.json).

    Example: rnnkit poetry export runs/poetry-20261125-101500 src/rnnkit/data/poetry/model
    """
    from ..tasks.poetry import export_run

    typer.echo(f"wrote {export_run(run, to)}")
