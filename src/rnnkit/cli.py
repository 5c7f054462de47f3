"""The ``rnnkit`` command line (typer + rich).  Heavy modules are imported inside each command."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from . import __version__
from .commands import caption as caption_commands
from .commands import classify as classify_commands
from .commands import diagnose as diagnose_commands
from .commands import export as export_commands
from .commands import forecast as forecast_commands
from .commands import memory as memory_commands
from .commands import music as music_commands
from .commands import poetry as poetry_commands
from .commands import seq2seq as seq2seq_commands
from .commands import serve as serve_commands
from .commands import tag as tag_commands
from .commands import text as text_commands

app = typer.Typer(
    help="rnnkit: recurrent neural networks on PyTorch. Every cell written out, checked against torch, and fast.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
bench_app = typer.Typer(help="Benchmarks, each with a reference measured in the same run.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
app.add_typer(forecast_commands.app, name="forecast")
app.add_typer(poetry_commands.app, name="poetry")
app.add_typer(text_commands.app, name="text")
app.add_typer(classify_commands.app, name="classify")
app.add_typer(tag_commands.app, name="tag")
app.add_typer(seq2seq_commands.app, name="seq2seq")
app.add_typer(caption_commands.app, name="caption")
app.add_typer(music_commands.app, name="music")
app.add_typer(diagnose_commands.app, name="diagnose")
app.add_typer(memory_commands.app, name="tasks")
app.command("export")(export_commands.export)
app.command("serve")(serve_commands.serve)

STATE = {"verbose": False}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rnnkit {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show full tracebacks on errors.")] = False,
) -> None:
    STATE["verbose"] = verbose


@app.command()
def cells() -> None:
    """List the cells, their gates and the backend `auto` picks for each.

    Example: rnnkit cells
    """
    from rich.console import Console
    from rich.table import Table

    from .cells import CELLS
    from .layers import Recurrent

    table = Table(title="rnnkit cells")
    for column in ("name", "gates", "state", "auto backend"):
        table.add_column(column)
    for name, cls in CELLS.items():
        layer = Recurrent(name, 1, 1)
        table.add_row(name, ", ".join(cls.gates), ", ".join(cls.state_names), layer.explain())
    Console().print(table)


@app.command()
def loops(
    verbose: Annotated[bool, typer.Option(help="Show the compiler's output.")] = False,
) -> None:
    """Build the compiled time loops of the cells (once per machine; cached), and say where they are.

    Cells that torch has no kernel for (peephole, CIFG, layer-norm LSTM, GRU v1, any cell with
    recurrent dropout) run their BPTT in these C++ loops. Without a compiler they run the slower
    Python loops, with a warning.

    Example: rnnkit loops
    """
    import time

    from rich.console import Console

    from .engine import compiled

    console = Console()
    start = time.perf_counter()
    ops = compiled.load_loops(verbose=verbose)
    seconds = time.perf_counter() - start
    console.print(f"flags: {' '.join(compiled.build_flags())}")
    console.print(f"cache: {compiled.cache_dir() / compiled.build_name()}")
    if ops is None:
        console.print(f"[bold red]not built[/]: {compiled.loops_error()}; the Python loops run instead.")
        raise typer.Exit(1)
    from .gemm import ONEDNN_MIN_MACS, kernel

    blas = "libtorch's BLAS, called directly" if compiled.direct_blas() else "ATen's addmm (no BLAS symbol found)"
    if ops.brgemm_enabled():
        blas = f"float32 on oneDNN's brgemm micro-kernel, float64 on {blas}"
    elif kernel() == "onednn":
        blas += f"; float32 products of at least {ONEDNN_MIN_MACS:,} multiply-adds on oneDNN"
    console.print(f"compiled loops ready ({seconds:.1f} s); per-step GEMMs: {blas}")


@app.command()
def demo(
    steps: Annotated[int, typer.Option(help="Training steps per cell.")] = 300,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Acrostic poems from the shipped poetry model, then every cell trained on the adding problem.

    Example: rnnkit demo --steps 300
    """
    from rich.console import Console
    from rich.panel import Panel
    from rich.progress import Progress
    from rich.table import Table

    from .demo import BASELINE_MSE, quick_adding
    from .tasks.poetry import generate, load_model

    console = Console()
    poetry = load_model()
    report = poetry.report
    panels = [
        Panel("\n".join(generate(poetry, acrostic=heads, form=form, seed=seed)), title=f"藏头 {heads}, {form}")
        for heads, form in (("春花秋月", 7), ("江山如画", 5), ("风月无边", 7))
    ]
    from rich.columns import Columns

    console.print(Columns(panels))
    if report.get("test_bits_per_char"):
        baseline = report.get("baselines_test_bits_per_char", {}).get("kneser_ney_5")
        console.print(
            f"shipped poetry model: {report['test_bits_per_char']:.2f} bits/char on held-out poems"
            + (f" (Kneser-Ney 5-gram: {baseline:.2f})" if baseline else "")
            + "\nmore: rnnkit poetry generate --acrostic 春花秋月 --form 7 --num 3 --seed 0\n"
        )
    names = ["rnn_tanh", "lstm", "lstm_peephole", "lstm_cifg", "gru", "gru_v1", "lstm_layernorm"]
    results = []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("adding problem", total=len(names))
        for name in names:
            progress.update(task, description=f"training {name}")
            results.append(quick_adding(name, steps=steps, seed=seed))
            progress.advance(task)
    table = Table(title=f"Adding problem, T=10..20, {steps} steps of batch 64: test MSE (lower is better)")
    for column in ("cell", "backend", "test MSE", "baseline (predict 1.0)", "train s"):
        table.add_column(column, justify="right" if column != "cell" else "left")
    for r in results:
        table.add_row(r["cell"], r["backend"], f"{r['test_mse']:.4f}", f"{BASELINE_MSE:.4f}", f"{r['seconds']:.1f}")
    console.print(table)


@bench_app.command("cells")
def bench_cells(
    size: Annotated[
        str, typer.Option(help="small (T200 B16 I32 H64), medium (T100 B64 I128 H256), large (T100 B128 I256 H512).")
    ] = "medium",  # noqa: E501
    cells: Annotated[str, typer.Option(help="Comma-separated cell names (default: all built-in).")] = "",
    backends: Annotated[str, typer.Option(help="Comma-separated backends (default: all that apply).")] = "",
    repeats: Annotated[int, typer.Option(help="Timed repeats; the median is reported.")] = 5,
    threads: Annotated[int, typer.Option(help="torch threads (0: torch's default).")] = 0,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON rows instead of a table.")] = False,
) -> None:
    """Forward and forward+backward time of every cell and backend, as a ratio to torch.nn.LSTM.

    Example: rnnkit bench cells --size small --json
    """
    import json

    import torch
    from rich.console import Console
    from rich.table import Table

    from .bench import cells as bench

    if threads:
        torch.set_num_threads(threads)
    console = Console(stderr=json_out)
    with console.status(f"timing cells at size {size}..."):
        rows = bench.run(
            size,
            cells=[c for c in cells.split(",") if c] or None,
            backends=[b for b in backends.split(",") if b] or None,
            repeats=repeats,
            progress=lambda r: console.log(f"{r.cell:15s} {r.backend:9s} fwd+bwd {r.fwdbwd_ms:8.1f} ms"),
        )
    if json_out:
        typer.echo(json.dumps(bench.as_json_rows(rows), indent=1))
        return
    T, B, I, H = bench.SIZES[size]
    table = Table(title=f"{size}: T={T} B={B} I={I} H={H} — {bench.machine()}")
    for column in ("cell", "backend", "fwd ms", "fwd+bwd ms", "fwd+bwd / nn.LSTM"):
        table.add_column(column, justify="left" if column in ("cell", "backend") else "right")
    for r in rows:
        table.add_row(r.cell, r.backend, f"{r.fwd_ms:.1f}", f"{r.fwdbwd_ms:.1f}", f"{r.ratio_fwdbwd:.2f}x")
    console.print(table)


@bench_app.command("memory")
def bench_memory(
    size: Annotated[str, typer.Option(help="small, medium or large (as bench cells).")] = "large",
    cells: Annotated[str, typer.Option(help="Comma-separated cell names (default: all built-in).")] = "",
    backends: Annotated[str, typer.Option(help="Comma-separated backends (default: native, compiled, fused).")] = "",
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON rows instead of a table.")] = False,
) -> None:
    """Peak memory of one forward+backward of every cell and backend, beside torch.nn.LSTM's (Linux).

    Example: rnnkit bench memory --size large --backends compiled
    """
    from rich.console import Console
    from rich.table import Table

    from .bench import memory

    console = Console(stderr=json_out)
    with console.status(f"measuring peak memory at size {size} (one process per row)..."):
        rows = memory.run(size, cells=[c for c in cells.split(",") if c] or None,
                          backends=[b for b in backends.split(",") if b] or None)  # fmt: skip
    if json_out:
        print(memory.as_json(rows))
        return
    from .bench.cells import SIZES

    T, B, I, H = SIZES[size]
    table = Table(title=f"Peak memory of forward+backward, {size} (T={T}, B={B}, I={I}, H={H})")
    for column in ("cell", "backend", "peak MB", "/ nn.LSTM"):
        table.add_column(column, justify="left" if column in ("cell", "backend") else "right")
    for r in rows:
        table.add_row(r.cell, r.backend, f"{r.peak_mb:.1f}", f"{r.ratio:.2f}x")
    console.print(table)


@bench_app.command("generate")
def bench_generate(
    repeats: Annotated[int, typer.Option(help="Timed repeats; the median is reported.")] = 5,
    threads: Annotated[int, typer.Option(help="torch threads (0: torch's default).")] = 0,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON rows instead of a table.")] = False,
) -> None:
    """Characters per second of constrained poem sampling at batch 1 and 64, beside a bare loop
    of the same model's steps; the difference is the decoding overhead.

    Example: rnnkit bench generate --repeats 3
    """
    import json
    from dataclasses import asdict

    import torch
    from rich.console import Console
    from rich.table import Table

    from .bench import generate as bench

    if threads:
        torch.set_num_threads(threads)
    with Console(stderr=True).status("timing generation..."):
        rows = bench.run(repeats=repeats)
    if json_out:
        typer.echo(json.dumps([asdict(r) for r in rows], indent=1))
        return
    table = Table(title="7-character quatrains with the shipped poetry model (top-k 50, top-p 0.95, penalty 1.1)")
    columns = ("batch", "bare loop chars/s", "decoding chars/s", "decoding overhead", "bare loop, steps as forward()",
               "step speed-up")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(str(r.batch), f"{r.bare_chars_per_s:,.0f}", f"{r.decode_chars_per_s:,.0f}", f"{r.overhead:.0%}",
                      f"{r.forward_chars_per_s:,.0f}", f"{r.step_speedup:.2f}x")  # fmt: skip
    Console().print(table)


@bench_app.command("fit")
def bench_fit(
    size: Annotated[str, typer.Option(help="small (LSTM-128, batch 32x64) or medium (LSTM-512, 64x100).")] = "small",
    repeats: Annotated[int, typer.Option(help="Alternating repeats; the median is reported.")] = 3,
    threads: Annotated[int, typer.Option(help="torch threads (0: torch's default).")] = 0,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON row instead of a table.")] = False,
) -> None:
    """Training throughput of rnnkit.train.fit against a plain PyTorch loop doing the same steps.

    Example: rnnkit bench fit --size medium
    """
    import json
    from dataclasses import asdict

    import torch
    from rich.console import Console
    from rich.table import Table

    from .bench import fit as bench

    if threads:
        torch.set_num_threads(threads)
    with Console(stderr=True).status(f"timing fit() and a plain loop at size {size}..."):
        row = bench.run(size, repeats=repeats)
    if json_out:
        typer.echo(json.dumps(asdict(row), indent=1))
        return
    table = Table(title=f"One epoch of truncated BPTT, {size} language model: tokens/s over the training steps")
    for column in ("plain loop tok/s", "fit() tok/s", "fit / plain", "fit() wall s", "plain wall s"):
        table.add_column(column, justify="right")
    table.add_row(f"{row.plain_tokens_per_s:,.0f}", f"{row.fit_tokens_per_s:,.0f}", f"{row.ratio:.2f}",
                  f"{row.fit_wall_s:.1f}", f"{row.plain_wall_s:.1f}")  # fmt: skip
    Console().print(table)


@bench_app.command("forecast")
def bench_forecast(
    sizes: Annotated[str, typer.Option(help="Comma-separated model sizes: small (LSTM-32), medium (LSTM 64,64).")] = (
        "small,medium"
    ),
    repeats: Annotated[int, typer.Option(help="Alternating repeats; the median is reported.")] = 3,
    threads: Annotated[int, typer.Option(help="torch threads (0: torch's default).")] = 0,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON rows instead of a table.")] = False,
) -> None:
    """Forecast training throughput (windows/s) of rnnkit.train.fit against a plain loop on the same windows.

    Example: rnnkit bench forecast --sizes small,medium --repeats 3
    """
    import json
    from dataclasses import asdict

    import torch
    from rich.console import Console
    from rich.table import Table

    from .bench import forecast as bench

    if threads:
        torch.set_num_threads(threads)
    names = [s.strip() for s in sizes.split(",") if s.strip()]
    with Console(stderr=True).status("timing fit() and a plain loop on forecast windows..."):
        rows = bench.run(names, repeats=repeats)
    if json_out:
        typer.echo(json.dumps([asdict(r) for r in rows], indent=1))
        return
    table = Table(title=f"One epoch of forecast windows ({bench.describe()}): windows/s over the training steps")
    for column in ("size", "model", "plain loop win/s", "fit() win/s", "fit / plain", "fit() wall s", "plain wall s"):
        table.add_column(column, justify="left" if column in ("size", "model") else "right")
    for r in rows:
        table.add_row(r.size, r.model, f"{r.plain_windows_per_s:,.0f}", f"{r.fit_windows_per_s:,.0f}",
                      f"{r.ratio:.2f}", f"{r.fit_wall_s:.1f}", f"{r.plain_wall_s:.1f}")  # fmt: skip
    Console().print(table)


@bench_app.command("corpus")
def bench_corpus(
    sizes: Annotated[str, typer.Option(help="Comma-separated sizes of the generated text, in MB.")] = "100,1000",
    steps: Annotated[int, typer.Option(help="Training steps (LSTM-128, batch 32 x 128 characters).")] = 50,
    scan: Annotated[bool, typer.Option(help="Also read one whole epoch of batches without the model.")] = True,
    workdir: Annotated[str, typer.Option(help="Where the scratch text and corpus go (default: the temp dir).")] = "",
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON rows instead of a table.")] = False,
) -> None:
    """Peak memory of building the on-disk corpus of a generated text and training on it, per size (Linux).

    Example: rnnkit bench corpus --sizes 100,1000
    """
    from rich.console import Console
    from rich.table import Table

    from .bench import corpus as bench

    names = [float(s) for s in sizes.split(",") if s.strip()]
    with Console(stderr=True).status("generating, building and training (each step in its own process)..."):
        rows = bench.run(names, steps=steps, workdir=workdir or None, scan=scan)
    if json_out:
        typer.echo(bench.as_json(rows))
        return
    table = Table(title=f"Peak resident MB (after imports -> peak) of encode_corpus, {steps} training steps, one scan")
    columns = ("text MB", "tokens MB", "build s", "build MB", "train s", "train MB", "scan s", "scan MB")
    for column in columns:
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(f"{r.text_mb:,.0f}", f"{r.tokens_mb:,.0f}", f"{r.build_s:.1f}",
                      f"{r.build_base_mb:.0f} -> {r.build_peak_mb:.0f}", f"{r.train_s:.1f}",
                      f"{r.train_base_mb:.0f} -> {r.train_peak_mb:.0f}", f"{r.scan_s:.1f}",
                      f"{r.scan_base_mb:.0f} -> {r.scan_peak_mb:.0f}" if scan else "-")  # fmt: skip
    Console().print(table)


@bench_app.command("serve")
def bench_serve(
    levels: Annotated[str, typer.Option(help="Comma-separated concurrency levels (requests kept in flight).")] = (
        "1,4,16,32"
    ),
    requests: Annotated[int, typer.Option(help="Requests per level (at most).")] = 128,
    max_seconds: Annotated[float, typer.Option(help="Seconds per level (at most; requests in flight finish).")] = 60,
    form: Annotated[int, typer.Option(help="Characters per line of the requested quatrains: 5 or 7.")] = 7,
    compare_at: Annotated[int, typer.Option(help="Concurrency of one more level with batching off (0: none).")] = 16,
    run: Annotated[str, typer.Option(help="Model dir for the service (default: the shipped poetry model).")] = "",
    url: Annotated[str, typer.Option(help="Load a service already running on loopback instead of starting one.")] = "",
    threads: Annotated[int, typer.Option(help="OMP_NUM_THREADS of the service (0: inherited).")] = 0,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Requests per second and p50/p99 latency of batch-1 poem requests to `rnnkit serve` on loopback, at
    rising concurrency, with the batch sizes the service formed; and once with its batching off.

    Example: rnnkit bench serve --levels 1,4,16,32 --requests 128
    """
    import json

    from rich.console import Console
    from rich.table import Table

    from .bench import serve as bench

    console = Console(stderr=True)

    def progress(r: bench.Level) -> None:
        console.log(f"concurrency {r.concurrency:3d}: {r.requests_per_s:6.1f} req/s, p50 {r.p50_ms:7.1f} ms, "
                    f"p99 {r.p99_ms:7.1f} ms")  # fmt: skip

    with console.status("starting the service and loading it..."):
        rows = bench.run(tuple(int(c) for c in levels.split(",") if c.strip()), requests=requests,
                         max_seconds=max_seconds, form=form, compare_at=compare_at or None, run_dir=run or None,
                         url=url or None, threads=threads, progress=progress)  # fmt: skip
    if json_out:
        typer.echo(json.dumps(bench.as_json(rows, threads), indent=1, ensure_ascii=False))
        return
    title = f"rnnkit serve, batch-1 {form}-character acrostic quatrains on loopback — {bench.machine(threads)}"
    table = Table(title=title)
    columns = ("in flight", "batching", "requests", "errors", "req/s", "p50 ms", "p99 ms", "mean batch", "largest")
    for column in columns:
        table.add_column(column, justify="right")
    for r in rows:
        batching = "off" if r.max_batch == 1 else f"max {r.max_batch}" if r.max_batch else "on"
        mean_batch = f"{r.mean_batch:.1f}" if r.mean_batch is not None else "-"
        table.add_row(str(r.concurrency), batching, str(r.requests), str(r.errors), f"{r.requests_per_s:.1f}",
                      f"{r.p50_ms:.0f}", f"{r.p99_ms:.0f}", mean_batch, str(r.largest_batch or "-"))  # fmt: skip
    Console().print(table)


def main() -> None:
    """Entry point: run the app; turn our errors into one clear line (exit 2 bad usage, 1 failure)."""
    try:
        app(standalone_mode=False)
    except typer.Exit as exit_:
        sys.exit(exit_.exit_code)
    except OSError as error:  # the machine's fault, not the command line's (a full disk is also a ValueError)
        _fail(error, 1)
    except (ValueError, TypeError) as error:
        _fail(error, 2)
    except Exception as error:  # noqa: BLE001 — every other failure: one line, traceback on --verbose
        # click's usage errors (click itself, or the copy that typer >= 0.2x vendors) show themselves
        if callable(getattr(error, "show", None)) and isinstance(getattr(error, "exit_code", None), int):
            error.show()
            sys.exit(error.exit_code)
        if isinstance(error, typer.Abort):
            sys.exit(1)
        _fail(error, 1)


def _fail(error: BaseException, code: int) -> None:
    if STATE["verbose"]:
        raise error
    print(f"rnnkit: error: {error}", file=sys.stderr)
    print("hint: run with --verbose for the full traceback", file=sys.stderr)
    sys.exit(code)
