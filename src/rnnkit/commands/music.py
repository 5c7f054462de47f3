"""``rnnkit music demo|train|sample``: a recurrent model of Bach chorales (piano-rolls), sampled to MIDI."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .options import Seed, Temperature

app = typer.Typer(
    help="Music generation: an RNN over 88-key piano-rolls of Bach chorales (music21's corpus), sampled to MIDI.",
    no_args_is_help=True,
)

DEMO = dict(cell="lstm", hidden_size=128, num_layers=1, dropout=0.2, batch_size=4, learning_rate=5e-3)
# picked by validation NLL among (batch 16, lr 3e-3, dropout 0.3), (4, 5e-3, 0.2), (8, 5e-3, 0.5)


def _print_result(run, console) -> None:
    from rich.table import Table

    report = run.report
    split = report["split"]["test"]
    title = f"Test NLL per time step, {split['pieces']} held-out pieces ({split['steps']} steps; nats, lower is better)"
    table = Table(title=title)
    table.add_column("model")
    table.add_column("NLL / step", justify="right")
    config = run.model.config
    table.add_row(f"{config['cell']} {config['num_layers']}x{config['hidden_size']} (this run)",
                  f"{report['test_nll_per_step']:.3f}")  # fmt: skip
    table.add_row("  the same, on validation", f"{report['val_nll_per_step']:.3f}")
    for name, value in report["baselines_test_nll_per_step"].items():
        table.add_row(name.replace("_", " ") + " baseline", f"{value:.3f}")
    console.print(table)
    data = report["data"]
    how = "read from cache" if data["read_from_cache"] else "parsed now"
    console.print(
        f"data: {data['source']}, {data['pieces']} pieces ({data['duplicates_removed']} duplicates removed), "
        f"{data['steps_per_quarter']} step(s) per quarter note, {how} (parsing took {data['parse_seconds']:.1f} s "
        f"when the cache was built)"
    )
    console.print(f"run: {run.run_dir}")
    for name, path in run.written.items():
        console.print(f"{name}: {path}")


def _train(console, **options):
    from ..tasks.music import train as run

    return run(log=lambda line: console.log(line), **options)


@app.command()
def demo(
    epochs: Annotated[int, typer.Option(help="Epochs (early stopping may end sooner).")] = 20,
    seed: Annotated[int, typer.Option(help="Random seed (split, initialisation, batches, samples).")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Train an LSTM on the Bach chorales; print its test NLL per step beside the baselines; write samples.

    The first run parses music21's chorales (a minute or two) and caches their encoding in
    ~/.cache/rnnkit/music; later runs read the cache.

    Example: rnnkit music demo --epochs 20 --seed 0
    """
    from rich.console import Console

    console = Console()
    result = _train(console, epochs=epochs, seed=seed, device=device, progress=progress, **DEMO)
    _print_result(result, console)
    console.print("more: rnnkit music sample --run " + str(result.run_dir) + " --temperature 0.8 --seed 1")


@app.command()
def train(
    data: Annotated[
        Path | None, typer.Option(help="A folder of MIDI/MusicXML/kern/ABC files (default: music21's Bach chorales).")
    ] = None,
    cell: Annotated[str, typer.Option(help="Any cell of `rnnkit cells`.")] = "lstm",
    hidden: Annotated[int, typer.Option(help="Hidden units per layer.")] = 128,
    layers: Annotated[int, typer.Option(help="Stacked layers.")] = 1,
    dropout: Annotated[float, typer.Option(help="Dropout between layers and before the output layer.")] = 0.2,
    batch_size: Annotated[int, typer.Option(help="Pieces per batch (padded, with lengths).")] = 4,
    epochs: Annotated[int, typer.Option(help="Epochs (early stopping after 5 without a better validation NLL).")] = 20,
    lr: Annotated[float, typer.Option(help="Learning rate (Adam).")] = 5e-3,
    resolution: Annotated[int, typer.Option(help="Steps per quarter note (1 as JSB; 2 keeps eighth notes).")] = 1,
    transpose: Annotated[bool, typer.Option(help="Move every piece to no key signature (C major / A minor).")] = True,
    limit: Annotated[int, typer.Option(help="Only the first N chorales (0: all); for quick tries.")] = 0,
    samples: Annotated[int, typer.Option(help="Sampled pieces to write as MIDI.")] = 3,
    temperature: Temperature = 1.0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    seed: Annotated[int, typer.Option(help="Random seed (split, initialisation, batches, samples).")] = 0,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Train a piano-roll model; report NLL per step beside unigram and per-key Markov baselines.

    Example: rnnkit music train --cell gru --hidden 256 --layers 2 --epochs 40
    """
    from rich.console import Console

    console = Console()
    result = _train(console, data=data, cell=cell, hidden_size=hidden, num_layers=layers, dropout=dropout,
                    batch_size=batch_size, epochs=epochs, learning_rate=lr, steps_per_quarter=resolution,
                    transpose=transpose, limit=limit or None, num_samples=samples, temperature=temperature,
                    device=device, seed=seed, progress=progress)  # fmt: skip
    _print_result(result, console)


@app.command()
def sample(
    run: Annotated[Path, typer.Option(help="A music run directory (from `rnnkit music train` or `demo`).")],
    steps: Annotated[int | None, typer.Option(help="Time steps (default: a median training piece's).")] = None,
    num: Annotated[int, typer.Option(help="How many pieces.")] = 1,
    temperature: Temperature = 1.0,
    seed: Seed = 0,
    out: Annotated[Path | None, typer.Option(help="MIDI file (default RUN/samples/sample-seed<S>.mid).")] = None,
) -> None:
    """Sample new pieces from a trained model as MIDI, with a piano-roll PNG beside a real held-out piece.

    Example: rnnkit music sample --run runs/music-20261125-101500 --steps 64 --temperature 0.8 --out new.mid
    """
    from ..tasks.music import sample as write

    written = write(run, steps=steps, num=num, temperature=temperature, seed=0 if seed is None else seed, out=out)
    for name, path in written.items():
        typer.echo(f"{name}: {path}")
