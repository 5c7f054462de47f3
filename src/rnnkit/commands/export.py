"""``rnnkit export``: a language model's run (or model directory) as safetensors or as an ONNX step."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def export(
    run: Annotated[Path, typer.Option(help="Run or model directory of a language model (poetry or text).")],
    out: Annotated[Path, typer.Option(help="Where to write: a directory (safetensors) or a file (onnx).")],
    format: Annotated[
        str, typer.Option("--format", help="safetensors (weights, config.json, vocab.json) or onnx (one step).")
    ] = "safetensors",
    opset: Annotated[int, typer.Option(help="ONNX opset (onnx only).")] = 18,
    check: Annotated[bool, typer.Option(help="Compare onnxruntime with PyTorch on a few steps (onnx only).")] = True,
) -> None:
    """Export a language model for deployment: a self-contained safetensors directory, or an ONNX graph
    of one step (inputs token (B,), h[, c] (L, B, H); outputs logits (B, V) and the new state).

    Example: rnnkit export --run src/rnnkit/data/poetry/model --format onnx --out poetry.onnx
    """
    import time

    from rich.console import Console

    from ..export import FORMATS, check_onnx, export_onnx, export_safetensors, read_language_model
    from ..train.config import check_choice

    check_choice("format", format, FORMATS)
    console = Console()
    start = time.perf_counter()
    if format == "safetensors":
        path = export_safetensors(run, out)
        size = sum(p.stat().st_size for p in path.iterdir() if p.is_file())
        console.print(f"wrote {path}/ ({', '.join(sorted(p.name for p in path.iterdir()))}): {size / 1e6:.1f} MB "
                      f"in {time.perf_counter() - start:.1f} s")  # fmt: skip
        return
    if out.is_dir():
        raise ValueError(f"Expected --out to be a file for --format onnx. Received: {str(out)!r} is a directory.")
    source = read_language_model(run)
    metadata = {"task": source.task} | ({"vocab": source.vocab_json} if source.vocab_json is not None else {})
    path = export_onnx(source.model, out, opset=opset, metadata=metadata)
    seconds = time.perf_counter() - start
    state = "token, h, c -> logits, h_next, c_next" if len(source.model.rnn.cell.state_names) == 2 else (
        "token, h -> logits, h_next")  # fmt: skip
    console.print(f"wrote {path} ({state}; batch axis dynamic): {path.stat().st_size / 1e6:.1f} MB in {seconds:.1f} s")
    if check:
        difference = check_onnx(source.model, path)
        verdict = "[green]same numbers[/]" if difference < 1e-4 else "[bold red]DIFFERENT[/]"
        console.print(f"onnxruntime vs PyTorch over 3 steps of batch 2: max |difference| {difference:.1e} ({verdict})")
        if difference >= 1e-4:
            raise typer.Exit(1)
