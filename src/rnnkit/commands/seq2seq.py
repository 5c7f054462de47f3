"""``rnnkit seq2seq demo|train|translate``: encoder-decoder with attention (unaligned many-to-many)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Sequence to sequence with attention: rewrite one sequence as another.", no_args_is_help=True)

# The demo's settings, picked on the validation split of the dates task (see the report of the task).
DEMO = dict(dataset="dates", examples=20000, attention="luong", cell="gru", hidden_size=64, embedding_dim=32,
            batch_size=128, epochs=4, learning_rate=3e-3, backend="compiled")  # fmt: skip


def _print_report(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    test = report["test"]
    beam = f"beam search (k={report['beam_size']}, alpha={report['alpha']})"
    names = {"greedy": "model, greedy", "beam": f"model, {beam}", "copy_input": "baseline: copy the input",
             "most_frequent_target": "baseline: most frequent training target"}  # fmt: skip
    table = Table(title=f"Test split ({report['pairs']['test']} pairs, {report['data']}, {report['tokens']}-level)")
    table.add_column("method")
    table.add_column("exact match", justify="right")
    table.add_column("BLEU", justify="right")
    for key, name in names.items():
        if key in test:
            table.add_row(name, f"{100 * test[key]['exact_match']:.1f}%", f"{test[key]['bleu']:.1f}")
    console = Console()
    console.print(table)
    console.print(f"validation exact match (greedy): {100 * report['val']['greedy']['exact_match']:.1f}%")
    console.print(f"BLEU: {report['bleu']}")
    console.print(f"run: {report['run_dir']}")
    for name, path in report["plots"].items():
        console.print(f"{name} plot: {path}")
    console.print(f"report: {Path(report['run_dir']) / 'report.json'}")


@app.command()
def demo(
    examples: Annotated[int, typer.Option(help="Date pairs generated (80/10/10 split).")] = DEMO["examples"],
    epochs: Annotated[int, typer.Option(help="Epochs.")] = DEMO["epochs"],
    hidden: Annotated[int, typer.Option(help="Hidden units.")] = DEMO["hidden_size"],
    seed: Annotated[int, typer.Option(help="Random seed (data, split and weights).")] = 0,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Learn to write dates ("Tue, Mar 3, 1998", "03/03/98", "1998年3月3日", ...) as ISO 1998-03-03.

    A few minutes on two CPU cores.  Prints exact match and BLEU of greedy and beam decoding
    beside the copy-the-input and most-frequent-date baselines, and writes an attention plot.

    Example: rnnkit seq2seq demo
    """
    from ..tasks.seq2seq import train as run

    settings = DEMO | {"examples": examples, "epochs": epochs, "hidden_size": hidden}
    result = run(**settings, seed=seed, progress=progress)
    _print_report(result.report)
    from ..tasks.seq2seq import translate

    for text in ("3 March 1998", "Tue, Mar 3, 1998", "1998年3月3日"):
        typer.echo(f"{text!r} -> {translate(result, text).text!r}")


@app.command()
def train(
    data: Annotated[Path | None, typer.Option(help="A UTF-8 file of 'source<TAB>target' lines.")] = None,
    dataset: Annotated[str | None, typer.Option(help="A shipped task instead of --data: dates.")] = None,
    examples: Annotated[int, typer.Option(help="Pairs to generate for --dataset.")] = 20000,
    tokens: Annotated[str, typer.Option(help="char or word.")] = "char",
    attention: Annotated[str, typer.Option(help="bahdanau, luong or none.")] = "bahdanau",
    cell: Annotated[str, typer.Option(help="Any cell of `rnnkit cells`.")] = "gru",
    hidden: Annotated[int, typer.Option(help="Hidden units (decoder, and each encoder direction).")] = 128,
    embedding: Annotated[int, typer.Option(help="Token embedding size.")] = 32,
    layers: Annotated[int, typer.Option(help="Stacked layers of encoder and decoder.")] = 1,
    bidirectional: Annotated[bool, typer.Option(help="Bidirectional encoder.")] = True,
    teacher_forcing: Annotated[float, typer.Option(help="Chance of feeding the gold token at each step.")] = 1.0,
    dropout: Annotated[float, typer.Option(help="Dropout on embeddings and before the output layer.")] = 0.0,
    batch_size: Annotated[int, typer.Option(help="Pairs per batch.")] = 64,
    epochs: Annotated[int, typer.Option(help="Epochs.")] = 10,
    lr: Annotated[float, typer.Option(help="Learning rate (Adam).")] = 3e-3,
    beam: Annotated[int, typer.Option(help="Beam size of the beam-search evaluation.")] = 4,
    alpha: Annotated[float, typer.Option(help="Length normalisation: score = log p / length**alpha.")] = 0.7,
    backend: Annotated[str, typer.Option(help="Recurrent backend: auto, native, compiled, fused.")] = "auto",
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Train an encoder-decoder with attention; report exact match and BLEU beside baselines.

    Example: rnnkit seq2seq train --data fra.txt --tokens word --attention luong --epochs 10
    """
    from ..tasks.seq2seq import train as run

    if data is None and dataset is None:
        raise ValueError("Give --data PAIRS_FILE (source<TAB>target lines) or --dataset dates.")
    result = run(data, dataset=dataset, examples=examples, tokens=tokens, attention=attention, cell=cell,
                 hidden_size=hidden, embedding_dim=embedding, num_layers=layers, bidirectional=bidirectional,
                 teacher_forcing=teacher_forcing, dropout=dropout, batch_size=batch_size, epochs=epochs,
                 learning_rate=lr, beam_size=beam, alpha=alpha, backend=backend, device=device, seed=seed,
                 progress=progress)  # fmt: skip
    _print_report(result.report)


@app.command()
def translate(
    run: Annotated[Path, typer.Option(help="A seq2seq run directory (from `rnnkit seq2seq train` or demo).")],
    text: Annotated[str, typer.Option(help="The source text.")],
    beam: Annotated[int, typer.Option(help="Beam size (1: greedy).")] = 4,
    alpha: Annotated[float, typer.Option(help="Length normalisation: score = log p / length**alpha.")] = 0.7,
    plot: Annotated[Path | None, typer.Option(help="Write the attention heatmap to this PNG.")] = None,
) -> None:
    """Rewrite one text with a trained model (and plot where it attended).

    Example: rnnkit seq2seq translate --run runs/seq2seq-20261202-120000 --text "Tue, Mar 3, 1998" --plot a.png
    """
    from ..tasks.seq2seq import translate as rewrite

    result = rewrite(run, text, beam_size=beam, alpha=alpha, plot=plot)
    typer.echo(result.text)
    if plot is not None and result.attention is not None:
        typer.echo(f"attention plot: {plot}", err=True)
