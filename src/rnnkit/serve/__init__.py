"""``rnnkit serve``: an HTTP service (FastAPI) for poems, text and forecasts, with a web page for acrostic poems.

    from rnnkit.serve import create_app
    app = create_app()                       # the shipped poetry model; run it with uvicorn
    app = create_app("runs/text-...", forecast_run="runs/forecast-...")

Endpoints: ``GET /health``, ``POST /generate``, ``POST /forecast``, ``GET /`` (the page), ``GET /stats``
(the batches served), ``GET /openapi.json`` and ``/docs``.  Concurrent ``/generate`` requests are batched
(``batcher.Batcher``).  fastapi is imported here only, never by ``import rnnkit``.
"""

from .app import create_app

__all__ = ["create_app"]
