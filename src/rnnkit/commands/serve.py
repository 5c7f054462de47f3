"""``rnnkit serve``: the HTTP service (FastAPI on uvicorn) for poems, text and forecasts, with a web page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def serve(
    run: Annotated[
        Path | None, typer.Option(help="A poetry model or run directory, or a text run (default: the shipped poems).")
    ] = None,
    forecast_run: Annotated[Path | None, typer.Option(help="A forecast run directory, for /forecast.")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on (127.0.0.1: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    max_batch: Annotated[int, typer.Option(help="Most rows of concurrent /generate requests in one batch.")] = 16,
    max_wait_ms: Annotated[float, typer.Option(help="How long a request waits for others to batch with.")] = 10,
) -> None:
    """Serve /generate, /forecast, /health, the OpenAPI schema (/docs) and a page for acrostic poems (/).

    Example: rnnkit serve --port 8000   (then open http://127.0.0.1:8000/)
    """
    import uvicorn

    from ..serve import create_app

    if not 0 <= port <= 65535:
        raise ValueError(f"Expected a port in 0..65535. Received: --port {port}")
    app = create_app(run, forecast_run=forecast_run, max_batch=max_batch, max_wait_ms=max_wait_ms)
    typer.echo(f"rnnkit serve: http://{host}:{port}/ (API docs: /docs); Ctrl+C stops it")
    uvicorn.run(app, host=host, port=port, log_level="info")
