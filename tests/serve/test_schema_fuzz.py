"""A schema-driven fuzz of the service (schemathesis, in process over ASGI): whatever the requests its OpenAPI
schema allows (positive) or breaks (negative), the service answers without a 5xx and keeps to its schema.

Schemathesis' pytest plugin (``schema.parametrize``, ``from_fixture``) does not run on pytest 9, so each
operation's strategy is drawn with Hypothesis' ``given``, derandomized, a bounded number of examples.
"""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from rnnkit.serve import create_app

EXAMPLES = 40  # per operation and generation mode
POSITIVE, NEGATIVE = GenerationMode.POSITIVE, GenerationMode.NEGATIVE
CASES = [
    ("/generate", "POST", POSITIVE),
    ("/generate", "POST", NEGATIVE),
    ("/forecast", "POST", POSITIVE),
    ("/forecast", "POST", NEGATIVE),
    ("/health", "GET", POSITIVE),
]  # /health has no input to break
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def service_schema(forecast_run):
    """The shipped poetry model and a tiny forecast run, so that /forecast answers too."""
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(forecast_run=forecast_run, max_wait_ms=0))


@pytest.mark.parametrize(("path", "method", "mode"), CASES, ids=[f"{m} {p} {g.value}" for p, m, g in CASES])
def test_the_service_never_answers_5xx_and_keeps_to_its_schema(service_schema, path, method, mode):
    operation = service_schema[path][method]
    statuses = Counter()

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    def fuzz(case):
        response = case.call()
        statuses[response.status_code] += 1
        case.validate_response(response, checks=CHECKS)
        if path == "/generate" and response.status_code == 200:  # every text well-formed: no <unk>
            assert all("\ufffd" not in text for text in response.json()["texts"]), (case.body, response.json())

    fuzz()
    print(f"{method} {path} {mode.value}: {sum(statuses.values())} requests, statuses {dict(sorted(statuses.items()))}")
    assert not any(status >= 500 for status in statuses)
    if method == "POST":  # valid requests mostly succeed (a few are refused: e.g. a head the model never saw)
        good = statuses[200] if mode == GenerationMode.POSITIVE else sum(statuses[s] for s in (413, 422))
        assert good >= EXAMPLES // 4, statuses
