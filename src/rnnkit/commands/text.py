"""``rnnkit text train|generate``: character language models on any UTF-8 text."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .options import Num, RepetitionPenalty, Seed, Temperature, TopK, TopP

app = typer.Typer(help="Character language models on any UTF-8 text.", no_args_is_help=True)


@app.command()
def train(
    data: Annotated[Path | None, typer.Option(help="A UTF-8 text file or a directory of them.")] = None,
    cell: Annotated[str, typer.Option(help="Any cell of `rnnkit cells`.")] = "lstm",
    layers: Annotated[int, typer.Option(help="Stacked layers.")] = 2,
    hidden: Annotated[int, typer.Option(help="Hidden units per layer.")] = 512,
    embedding: Annotated[int, typer.Option(help="Character embedding size.")] = 128,
    dropout: Annotated[float, typer.Option(help="Dropout on inputs, between layers and on outputs.")] = 0.1,
    batch_size: Annotated[int, typer.Option(help="Parallel streams per batch, over all processes together.")] = 32,
    chunk: Annotated[int, typer.Option(help="Characters per chunk (truncated BPTT length).")] = 128,
    epochs: Annotated[int, typer.Option(help="Epochs.")] = 10,
    lr: Annotated[float, typer.Option(help="Learning rate (Adam).")] = 2e-3,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    devices: Annotated[int, typer.Option(help="Data-parallel processes per node (one per GPU on cuda).")] = 1,
    strategy: Annotated[str, typer.Option(help="auto or ddp (gloo on CPU, nccl on CUDA).")] = "auto",
    num_nodes: Annotated[int, typer.Option(help="Nodes of a torchrun or SLURM job, each running --devices.")] = 1,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    resume: Annotated[Path | None, typer.Option(help="Continue this run directory from its last checkpoint.")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Train a character language model; report bits per character beside n-gram baselines.

    Example: rnnkit text train --data book.txt --layers 2 --hidden 512 --epochs 10
    Two processes on one machine: rnnkit text train --data book.txt --devices 2 --strategy ddp
    """
    from rich.console import Console
    from rich.table import Table

    from ..tasks.text import train as run

    if data is None and resume is None:
        raise ValueError("Give --data FILE_OR_DIR (or --resume RUN_DIR).")
    result = run(data, cell=cell, num_layers=layers, hidden_size=hidden, embedding_dim=embedding, dropout=dropout,
                 batch_size=batch_size, chunk_length=chunk, epochs=epochs, learning_rate=lr, device=device,
                 devices=devices, strategy=strategy, num_nodes=num_nodes, seed=seed, resume=resume,
                 progress=progress)  # fmt: skip
    report = result.report
    if not report:
        return  # another process of a data-parallel run: the first one reports
    table = Table(title="Test bits per character (last 5% of the text; lower is better)")
    table.add_column("model")
    table.add_column("bits/char", justify="right")
    table.add_column("perplexity", justify="right")
    rows = {f"{result.model.config['cell']} (this run)": report["test_bits_per_char"],
            "  the same, on validation": report["val_bits_per_char"]}  # fmt: skip
    rows |= {k.replace("_", " "): v for k, v in report.get("baselines_test_bits_per_char", {}).items()}
    for name, bits in rows.items():
        table.add_row(name, f"{bits:.3f}", f"{2**bits:.2f}")
    console = Console()
    console.print(table)
    console.print(f"run: {result.run_dir}\nsamples: {result.run_dir / 'samples.txt'}")


@app.command()
def generate(
    run: Annotated[Path, typer.Option(help="A text run directory (from `rnnkit text train`).")],
    prime: Annotated[str, typer.Option(help="Text to continue.")] = "",
    length: Annotated[int, typer.Option(help="Characters to write.")] = 200,
    num: Num = 1,
    temperature: Temperature = 0.8,
    top_k: TopK = 0,
    top_p: TopP = 1.0,
    repetition_penalty: RepetitionPenalty = 1.0,
    seed: Seed = None,
) -> None:
    """Continue a prime with a trained model.

    Example: rnnkit text generate --run runs/text-20261125-101500 --prime "def " --length 300
    """
    from ..tasks.text import generate as write

    texts = write(run, prime, length, num=num, temperature=temperature, top_k=top_k, top_p=top_p,
                  repetition_penalty=repetition_penalty, seed=seed)  # fmt: skip
    for text in [texts] if isinstance(texts, str) else texts:
        typer.echo(prime + text)
        if num > 1:
            typer.echo("-" * 40)
