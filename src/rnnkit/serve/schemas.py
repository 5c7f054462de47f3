"""The JSON bodies of the service: requests with their bounds (a value out of them is a 422 naming the field,
before any model runs) and responses."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model

MAX_HEADS = 8  # acrostic characters (lines of a poem)
MAX_PRIME = 2000  # characters of a text prime
MAX_LENGTH = 1000  # characters of generated text
MAX_NUM = 16  # poems or texts per request
MAX_BEAM = 8  # beam width
MAX_HISTORY = 100_000  # values of a forecast history

Finite = Annotated[float, Field(allow_inf_nan=False)]


def _integral(value):
    """2.0 is an integer in JSON Schema (and JavaScript); strings and booleans are not."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


Integer = Annotated[int, BeforeValidator(_integral)]  # strict otherwise: "2" and true are 422


class GenerateRequest(BaseModel):
    """Poetry (``acrostic``, ``form``, ``lines``) or text (``prime``, ``length``), and the sampling options."""

    model_config = ConfigDict(extra="forbid", strict=True)

    acrostic: Annotated[str, Field(min_length=1, max_length=MAX_HEADS)] | None = Field(
        None,
        description="Poetry: each character starts a line (藏头); the poem has as many lines.",
        examples=["春花秋月"],
    )
    form: Literal[5, 7] = Field(5, description="Poetry: characters per line.")
    lines: Integer = Field(4, ge=1, le=MAX_HEADS, description="Poetry without an acrostic: lines of the poem.")
    first_line: Annotated[str, Field(min_length=1, max_length=7)] | None = Field(
        None, description="Poetry: the poem starts with this line (no punctuation).", examples=["床前明月光"]
    )
    rhyme: bool = Field(False, description="Poetry: lines 2, 4, 6, 8 end in one rhyme group (中华新韵).")
    beam: Integer = Field(0, ge=0, le=MAX_BEAM, description="Poetry: beam width, the one most likely poem (num 1).")
    prime: str = Field("", max_length=MAX_PRIME, description="Text: the text to continue.")
    length: Integer = Field(200, ge=1, le=MAX_LENGTH, description="Text: characters to write.")
    num: Integer = Field(1, ge=1, le=MAX_NUM, description="How many poems or texts.")
    temperature: Finite = Field(0.8, gt=0, le=5, description="< 1 safer, > 1 wilder.")
    top_k: Integer = Field(0, ge=0, description="Sample among the k most likely (0: all).")
    top_p: Finite = Field(1.0, gt=0, le=1, description="Sample within the smallest set of probability p.")
    repetition_penalty: Finite = Field(1.0, ge=1, le=5, description="> 1 discourages repeats.")
    seed: Integer | None = Field(None, ge=0, le=2**63 - 1, description="Same seed, same texts, batched or not.")


class GenerateResponse(BaseModel):
    texts: list[str]
    kind: Literal["poetry", "text"]
    seconds: float = Field(description="Wall time of the request in the service, queueing included.")


class ForecastRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    history: Annotated[list[Finite], Field(max_length=MAX_HISTORY)] | None = Field(
        None, description="The series so far (at least the run's window); null: the run's own series."
    )
    horizon: Integer = Field(1, ge=1, description="Steps to forecast, at most the run's horizon.")


def forecast_request(horizon: int, window: int) -> type[ForecastRequest]:
    """``ForecastRequest`` with the bounds of one forecast run in its schema: horizon 1..H, history >= window.

    Example:
        >>> forecast_request(horizon=3, window=8).model_json_schema()["properties"]["horizon"]["maximum"]
        3
    """

    history = Annotated[list[Finite], Field(min_length=window, max_length=MAX_HISTORY)] | None
    return create_model(
        "ForecastRequest",
        __base__=ForecastRequest,
        history=(
            history,
            Field(None, description=f"The series so far, at least {window} values; null: the run's own."),
        ),
        horizon=(Integer, Field(1, ge=1, le=horizon, description=f"Steps to forecast, 1..{horizon}.")),
    )


class ForecastResponse(BaseModel):
    forecast: list[float]
    lower: list[float] | None = Field(None, description="95 % interval (a model with a gaussian head).")
    upper: list[float] | None = None
    baselines: dict[str, list[float]] = Field(description="naive and (with a full season of history) seasonal_naive.")


class ModelInfo(BaseModel):
    kind: Literal["poetry", "text"]
    cell: str
    vocab_size: int


class BatchStats(BaseModel):
    batches: int = Field(description="Model batches run for /generate.")
    requests: int
    rows: int
    requests_per_batch: dict[str, int] = Field(description="How many batches held 1, 2, ... requests.")
    max_requests_per_batch: int


class HealthResponse(BaseModel):
    status: Literal["ok"]
    model: ModelInfo
    forecast: bool
    batching: BatchStats


class Problem(BaseModel):
    """An error: a sentence, or FastAPI's list of validation errors."""

    detail: str | list[dict]
