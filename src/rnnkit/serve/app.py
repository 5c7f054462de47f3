"""The FastAPI application of ``rnnkit serve``: ``create_app`` loads the models once and wires the endpoints.

Errors are ``{"detail": ...}`` with a 4xx: FastAPI's list for a value out of the schema's bounds (422), a
sentence for what the model cannot write (422: characters it never saw, a text option on a poetry model),
for a body over ``MAX_BODY_BYTES`` (413) and for /forecast without a forecast run (404).
"""

from __future__ import annotations

import json
import math
import time
from contextlib import asynccontextmanager
from functools import lru_cache
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..decoding import SamplingOptions, beam_search
from .batcher import Batcher, Job
from .page import PAGE
from .runs import forecast, load_forecast_run, load_generation_model
from .schemas import (
    ForecastRequest,
    ForecastResponse,
    GenerateRequest,
    GenerateResponse,
    HealthResponse,
    Problem,
    forecast_request,
)

MAX_BODY_BYTES = 4 * 1024 * 1024
NO_FORECAST = "no forecast model: start rnnkit serve with --forecast-run DIR"
NOT_JSON = "Expected a JSON object in UTF-8 as the request body; it could not be parsed."
ERRORS = {
    400: {"model": Problem, "description": "Body not JSON"},
    413: {"model": Problem, "description": "Body too large"},
    422: {"model": Problem, "description": "A value out of bounds, or one the model cannot write"},
}


class SafeJSONResponse(JSONResponse):
    """JSON that always renders: a value JSON cannot hold (NaN, a lone surrogate echoed back from a
    request) is written as text instead of failing the response."""

    def render(self, content) -> bytes:
        try:
            return super().render(content)
        except (ValueError, UnicodeEncodeError):
            return json.dumps(_representable(content), separators=(",", ":")).encode("ascii")


def _representable(value):
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {str(k): _representable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_representable(v) for v in value]
    return value


def create_app(
    run: str | Path | None = None, forecast_run: str | Path | None = None, max_batch: int = 16, max_wait_ms: float = 10
) -> FastAPI:
    """The service: the generating model of ``run`` (default: the shipped poetry model), the forecaster of
    ``forecast_run`` (optional), /generate requests batched up to ``max_batch`` rows or ``max_wait_ms``.

    A run that cannot be loaded is a ``ValueError`` here, before the service starts.

    Example:
        >>> from fastapi.testclient import TestClient
        >>> client = TestClient(create_app())
        >>> client.get("/health").json()["model"]["kind"]
        'poetry'
        >>> client.post("/generate", json={"acrostic": "春Ж"}).status_code
        422
    """
    generation = load_generation_model(run)
    forecaster = load_forecast_run(forecast_run) if forecast_run is not None else None
    batcher = Batcher(generation.model, generation.vocab, max_batch=max_batch, max_wait_ms=max_wait_ms)
    Forecast = (
        ForecastRequest
        if forecaster is None
        else forecast_request(forecaster.model.horizon, forecaster.settings["window"])
    )
    form_of = lru_cache(maxsize=1024)(generation.form)  # a PoemForm's masks are built once per acrostic and form

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await batcher.close()

    app = FastAPI(
        title="rnnkit",
        version=__version__,
        description="Poems, text and forecasts from rnnkit models. Concurrent /generate requests are batched.",
        lifespan=lifespan,
        default_response_class=SafeJSONResponse,
    )
    app.state.batcher = batcher

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError):
        return SafeJSONResponse({"detail": jsonable_encoder(error.errors())}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException):
        detail = NOT_JSON if error.status_code == 400 and "parsing the body" in str(error.detail) else error.detail
        return SafeJSONResponse({"detail": detail}, status_code=error.status_code, headers=error.headers)

    @app.middleware("http")
    async def _limit_body(request: Request, call_next):
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_BODY_BYTES:
            detail = f"Expected a request body of at most {MAX_BODY_BYTES} bytes. Received: {length} bytes"
            return SafeJSONResponse({"detail": detail}, status_code=413)
        return await call_next(request)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> str:
        return PAGE

    @app.get("/health", response_model=HealthResponse)
    async def health() -> dict:
        """The model served and whether /forecast has a model; ``batching``: the batches served so far."""
        info = {"kind": generation.kind, "cell": generation.model.config["cell"], "vocab_size": len(generation.vocab)}
        return {"status": "ok", "model": info, "forecast": forecaster is not None, "batching": batcher.stats()}

    @app.get("/stats", include_in_schema=False)
    async def stats() -> dict:
        return batcher.stats()

    @app.post("/generate", response_model=GenerateResponse, responses=ERRORS)
    async def generate(body: GenerateRequest) -> dict:
        """Poems (acrostic with ``acrostic``; ``form`` characters a line) or text (after ``prime``)."""
        start = time.perf_counter()
        try:
            if generation.kind == "poetry" and body.prime:
                raise ValueError("prime is for text models; this service writes poems: give acrostic, form or lines.")
            if generation.kind == "text" and body.acrostic is not None:
                raise ValueError("acrostic is for poetry models; this service writes text: give prime and length.")
            if body.beam and (generation.kind == "text" or body.num != 1):
                raise ValueError("beam search writes the one most likely poem: give num 1 (and a poetry model).")
            form = form_of(acrostic=body.acrostic, form=body.form, lines=body.lines, length=body.length,
                           first_line=body.first_line, rhyme=body.rhyme)  # fmt: skip
            prefix = generation.prefix(body.prime)
            options = SamplingOptions(temperature=body.temperature, top_k=body.top_k, top_p=body.top_p,
                                      repetition_penalty=body.repetition_penalty)  # fmt: skip
        except ValueError as error:
            raise HTTPException(422, str(error)) from None
        if body.beam:  # deterministic and not batched: one search per request, in a thread
            ids, _ = await run_in_threadpool(beam_search, generation.model, prefix, form, body.beam)
            texts = [form.render(generation.vocab, ids)]
        else:
            texts = await batcher.submit(Job(form, prefix, body.num, options, body.seed))
        return {"texts": texts, "kind": generation.kind, "seconds": time.perf_counter() - start}

    async def forecast_(body) -> dict:
        """The next ``horizon`` steps after ``history`` (null: the run's own series), beside the naive forecasts."""
        if forecaster is None:
            raise HTTPException(404, NO_FORECAST)
        try:
            return await run_in_threadpool(forecast, forecaster, body.history, body.horizon)
        except ValueError as error:
            raise HTTPException(422, str(error)) from None

    forecast_.__annotations__["body"] = Forecast  # the run's bounds, known only now (not a string annotation)
    app.post("/forecast", response_model=ForecastResponse, response_model_exclude_none=True,
             responses={404: {"model": Problem}, **ERRORS})(forecast_)  # fmt: skip

    return app
