"""``rnnkit tag demo|train|predict``: one tag per token (part of speech, named entities)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Sequence tagging: one tag per token (POS, named entities), BiLSTM(-CRF).",
                  no_args_is_help=True)  # fmt: skip

# The demo's settings: measured to train in a few minutes on 2 CPU cores (see the README).
DEMO = dict(dataset="ud-en-ewt", crf=True, char_features=True, hidden_size=64, embedding_dim=50, char_hidden=25,
            dropout=0.25, batch_size=32, epochs=6, learning_rate=5e-3)  # fmt: skip


def _print_report(report: dict, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    entities = "entity_f1" in report["test"]
    table = Table(title=title)
    table.add_column("model")
    columns = ["token accuracy"] + (["entity P", "entity R", "entity F1"] if entities else ["macro F1 over tags"])
    keys = ["accuracy"] + (["entity_precision", "entity_recall", "entity_f1"] if entities else ["macro_f1"])
    for column in columns:
        table.add_column(column, justify="right")
    for name, key in (("model", "test"), ("most frequent tag", "baseline_test"), ("model, on validation", "val")):
        table.add_row(name, *(f"{report[key][k]:.4f}" for k in keys))
    console = Console()
    console.print(table)
    run_dir = Path(report["run_dir"])
    console.print(f"split: {report['split']}\nrun: {run_dir}\nreport: {run_dir / 'report.json'}\n"
                  f"plots: {run_dir / 'plots' / 'loss.png'}, {run_dir / 'plots' / 'tag_f1.png'}, "
                  f"{run_dir / 'plots' / 'confusion.png'}")  # fmt: skip


@app.command()
def demo(
    epochs: Annotated[int, typer.Option(help="Epochs over the 12,544 training sentences.")] = DEMO["epochs"],
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Part-of-speech tagging of English (UD English Web Treebank, shipped): a BiLSTM-CRF with
    character features, its test accuracy beside the most-frequent-tag baseline (a few minutes on CPU).

    Example: rnnkit tag demo
    """
    import time

    from rich.console import Console

    from ..tasks.tagging import tag_sentences, tokenize
    from ..tasks.tagging import train as run

    start = time.perf_counter()
    result = run(**(DEMO | {"epochs": epochs}), seed=seed, progress=progress)
    seconds = time.perf_counter() - start
    _print_report(result.report, "UD English EWT, universal POS tags, test split (official)")
    console = Console()
    for text in ("I saw her duck under the table.", "Can you book a flight to Boston for me?"):
        tokens = tokenize(text)
        tags = tag_sentences(result.model, result.vocab, [tokens])[0]
        console.print(" ".join(f"{t}/[bold]{g}[/]" for t, g in zip(tokens, tags)))
    console.print(f"trained and scored in {seconds:.0f} s; "
                  f"more: rnnkit tag predict --run {result.run_dir} --text \"Your sentence here.\"")  # fmt: skip


@app.command()
def train(
    data: Annotated[Path | None, typer.Option(help="A CoNLL file (token first, tag last) or .conllu.")] = None,
    dataset: Annotated[str | None, typer.Option(help="Instead of --data: ud-en-ewt or synthetic-ner.")] = None,
    dev: Annotated[Path | None, typer.Option(help="Validation file (with --test); else --data is split.")] = None,
    test: Annotated[Path | None, typer.Option(help="Test file (with --dev).")] = None,
    token_column: Annotated[int | None, typer.Option(help="Token column (default: first; CoNLL-U: FORM).")] = None,
    tag_column: Annotated[int | None, typer.Option(help="Tag column (default: last; CoNLL-U: UPOS).")] = None,
    crf: Annotated[bool, typer.Option(help="Decode with a linear-chain CRF (else per-token argmax).")] = True,
    char_features: Annotated[bool, typer.Option(help="Add a character BiLSTM's summary of each word.")] = True,
    cell: Annotated[str, typer.Option(help="Any cell of `rnnkit cells`.")] = "lstm",
    layers: Annotated[int, typer.Option(help="Stacked BiLSTM layers.")] = 1,
    hidden: Annotated[int, typer.Option(help="Hidden units per direction.")] = 128,
    embedding: Annotated[int, typer.Option(help="Word embedding size.")] = 100,
    char_hidden: Annotated[int, typer.Option(help="Character BiLSTM units per direction.")] = 50,
    dropout: Annotated[float, typer.Option(help="Dropout on word features and BiLSTM outputs.")] = 0.33,
    batch_size: Annotated[int, typer.Option(help="Sentences per batch.")] = 32,
    epochs: Annotated[int, typer.Option(help="Epochs.")] = 10,
    lr: Annotated[float, typer.Option(help="Learning rate (Adam).")] = 2e-3,
    max_train_sentences: Annotated[int, typer.Option(help="Use only the first N training sentences (0: all).")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    runs_dir: Annotated[Path, typer.Option(help="Where run directories go.")] = Path("runs"),
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Train a BiLSTM(-CRF) tagger; report test scores beside the most-frequent-tag baseline.

    Example: rnnkit tag train --dataset synthetic-ner --epochs 5
    """
    from ..tasks.tagging import train as run

    result = run(data, dataset=dataset, dev=dev, test=test, token_column=token_column, tag_column=tag_column,
                 crf=crf, char_features=char_features, cell=cell, num_layers=layers, hidden_size=hidden,
                 embedding_dim=embedding, char_hidden=char_hidden, dropout=dropout, batch_size=batch_size,
                 epochs=epochs, learning_rate=lr, max_train_sentences=max_train_sentences, device=device, seed=seed,
                 runs_dir=runs_dir, progress=progress)  # fmt: skip
    _print_report(result.report, f"{result.report['data']}: test split")


@app.command()
def predict(
    run: Annotated[Path, typer.Option(help="A tagging run directory (from `rnnkit tag train`).")],
    input: Annotated[Path | None, typer.Option(help="A CoNLL file of tokens (any tag column is ignored).")] = None,
    text: Annotated[str | None, typer.Option(help="Instead of --input: a sentence of plain text.")] = None,
    output: Annotated[Path | None, typer.Option(help="Write the CoNLL here (default: print it).")] = None,
    token_column: Annotated[int | None, typer.Option(help="Token column of --input (default: first).")] = None,
) -> None:
    """Tag tokens with a trained model; write CoNLL (token, tab, tag; a blank line between sentences).

    Example: rnnkit tag predict --run runs/tag-20261202-120000 --text "The cat sat on the mat."
    """
    from ..tasks.tagging import Sentence, read_conll, tokenize, write_conll
    from ..tasks.tagging import predict as tag

    if (input is None) == (text is None):
        raise ValueError('Give exactly one of --input FILE.conll or --text "a sentence".')
    if text is not None:
        tokens = [tokenize(text)]
        if not tokens[0]:
            raise ValueError(f"Expected some words in --text. Received: {text!r}")
    else:
        tokens = [s.tokens for s in read_conll(input, token_column=token_column)]
    tags = tag(run, tokens)
    sentences = [Sentence(t, g) for t, g in zip(tokens, tags)]
    if output is not None:
        write_conll(sentences, output)
        typer.echo(f"wrote {sum(len(t) for t in tokens)} tagged tokens in {len(tokens)} sentences to {output}")
    else:
        for s in sentences:
            typer.echo("\n".join(f"{t}\t{g}" for t, g in zip(s.tokens, s.tags)) + "\n")
