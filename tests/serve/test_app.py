"""The HTTP service: /health, /generate (poems, text, batching), /forecast, the page, and its 4xx for bad requests."""

from __future__ import annotations

import asyncio
import re
import sys

import httpx
import pytest
from fastapi.testclient import TestClient

from rnnkit.serve import create_app
from rnnkit.tasks.poetry import generate as write_poems
from rnnkit.tasks.poetry import load_model


@pytest.fixture(scope="module")
def app():
    return create_app(max_wait_ms=50)  # the shipped poetry model; a wide window so that concurrent requests batch


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app) as client:
        yield client


def test_health_names_the_model_and_the_batches_served(client):
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["forecast"] is False
    assert health["model"] == {"kind": "poetry", "cell": "lstm", "vocab_size": len(load_model().vocab)}
    assert set(health["batching"]) >= {"batches", "requests", "rows", "requests_per_batch"}


def test_acrostic_poems_start_each_line_with_its_head_and_are_what_the_library_writes(client):
    answer = client.post("/generate", json={"acrostic": "春花秋月", "form": 7, "num": 3, "seed": 0})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["kind"] == "poetry" and body["seconds"] > 0 and len(body["texts"]) == 3
    for poem in body["texts"]:
        lines = poem.splitlines()
        assert [line[0] for line in lines] == list("春花秋月")
        assert [len(line) for line in lines] == [8] * 4 and lines[1][-1] == "。"  # 7 characters and punctuation
    assert body["texts"] == write_poems(load_model(), acrostic="春花秋月", form=7, num=3, seed=0)


def test_a_poem_without_acrostic_has_the_lines_and_form_asked_for(client):
    (poem,) = client.post("/generate", json={"form": 5, "lines": 2, "seed": 1}).json()["texts"]
    assert [len(line) for line in poem.splitlines()] == [6, 6]


def test_first_line_rhyme_and_beam_are_what_the_library_writes(client):
    from rnnkit.decoding import rhyme_group

    body = {"acrostic": "春花秋月", "form": 5, "rhyme": True, "num": 2, "seed": 3}
    texts = client.post("/generate", json=body).json()["texts"]
    assert texts == write_poems(load_model(), acrostic="春花秋月", form=5, rhyme=True, num=2, seed=3)
    for poem in texts:
        lines = poem.splitlines()
        assert rhyme_group(lines[1][-2]) == rhyme_group(lines[3][-2]) is not None  # the characters before 。
    (poem,) = client.post("/generate", json={"first_line": "床前明月光", "form": 5, "seed": 0}).json()["texts"]
    assert poem.startswith("床前明月光，")
    (best,) = client.post("/generate", json={"acrostic": "江山", "form": 7, "beam": 3}).json()["texts"]
    assert [best] == write_poems(load_model(), acrostic="江山", form=7, beam=3)
    answer = client.post("/generate", json={"acrostic": "江山", "beam": 3, "num": 2})
    assert answer.status_code == 422 and "beam search writes the one most likely poem" in answer.json()["detail"]


REQUESTS = [  # different heads, forms, rows, seeds and options; some share a batch, some cannot
    {"acrostic": "春花秋月", "form": 5, "num": 2, "seed": 1},
    {"acrostic": "江山如画", "form": 5, "num": 1, "seed": 2},
    {"acrostic": "风月", "form": 7, "num": 3, "seed": 3},
    {"acrostic": "明月", "form": 7, "num": 1, "seed": 4},
    {"acrostic": "白日依山", "form": 5, "num": 1, "seed": 5, "top_k": 20, "top_p": 0.9, "repetition_penalty": 1.2},
    {"lines": 4, "form": 5, "num": 2, "seed": 6},
    {"acrostic": "天地", "form": 5},  # no seed: drawn from torch's generator, whatever its neighbours
]


def test_concurrent_requests_share_batches_and_each_seeded_one_gets_what_it_gets_alone(app, client):
    alone = [client.post("/generate", json=request).json()["texts"] for request in REQUESTS]
    before = client.get("/health").json()["batching"]

    async def together():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as concurrent:
            answers = await asyncio.gather(*(concurrent.post("/generate", json=r) for r in REQUESTS))
        return [answer.json()["texts"] for answer in answers]

    batched = asyncio.run(together())
    after = client.get("/health").json()["batching"]
    assert after["requests"] - before["requests"] == len(REQUESTS)
    assert after["batches"] - before["batches"] < len(REQUESTS) and after["max_requests_per_batch"] > 1
    for request, solo, texts in zip(REQUESTS, alone, batched):
        assert len(texts) == request.get("num", 1)
        if "acrostic" in request:
            assert all([line[0] for line in t.splitlines()] == list(request["acrostic"]) for t in texts)
        if "seed" in request:
            assert texts == solo, request


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"form": "7"}, "form"),  # wrong types
        ({"num": "2"}, "num"),
        ({"acrostic": 5}, "acrostic"),
        ({"seed": 1.5}, "seed"),
        ({"seed": True}, "seed"),
        ({"form": 6}, "form"),  # out of range
        ({"num": 17}, "num"),
        ({"num": 0}, "num"),
        ({"temperature": 0}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"repetition_penalty": 0.5}, "repetition_penalty"),
        ({"lines": 9}, "lines"),
        ({"acrostic": "一二三四五六七八九"}, "acrostic"),  # over the limits
        ({"prime": "x" * 2001}, "prime"),
        ({"length": 1001}, "length"),
        ({"colour": "red"}, "colour"),  # not a field
    ],
)
def test_bad_values_are_422_naming_the_field(client, body, field):
    answer = client.post("/generate", json=body)
    assert answer.status_code == 422, answer.text
    assert any(error["loc"][-1] == field for error in answer.json()["detail"]), answer.json()


def test_characters_the_model_cannot_write_and_text_options_on_poems_are_422_in_one_sentence(client):
    answer = client.post("/generate", json={"acrostic": "春Ж", "form": 5})
    assert answer.status_code == 422 and "'Ж'" in answer.json()["detail"] and "never seen" in answer.json()["detail"]
    answer = client.post("/generate", json={"prime": "春风"})
    assert answer.status_code == 422 and "prime is for text models" in answer.json()["detail"]
    assert (
        client.post("/generate", content=b"not json", headers={"content-type": "application/json"}).status_code == 422
    )
    not_utf8 = client.post("/generate", content=b'{"a": "\xff"}', headers={"content-type": "application/json"})
    assert not_utf8.status_code == 400 and "could not be parsed" in not_utf8.json()["detail"]
    surrogate = client.post(
        "/generate", content=b'{"acrostic": "\\ud800"}', headers={"content-type": "application/json"}
    )
    assert surrogate.status_code == 422 and surrogate.json()["detail"][0]["loc"] == ["body", "acrostic"]
    nan = client.post("/generate", content=b'{"temperature": NaN}', headers={"content-type": "application/json"})
    assert nan.status_code == 422 and nan.json()["detail"][0]["type"] == "finite_number"


def test_a_body_over_the_limit_is_413(client):
    answer = client.post("/generate", content=b" " * (5 * 1024 * 1024), headers={"content-type": "application/json"})
    assert answer.status_code == 413 and "at most" in answer.json()["detail"]


def test_forecast_without_a_forecast_run_is_404_saying_how_to_start_one(client):
    answer = client.post("/forecast", json={"horizon": 1})
    assert answer.status_code == 404
    assert answer.json() == {"detail": "no forecast model: start rnnkit serve with --forecast-run DIR"}


def test_forecast_from_the_runs_series_and_from_a_history(forecast_run):
    from rnnkit.forecast.task import load_run, predict

    with TestClient(create_app(forecast_run=forecast_run)) as client:
        assert client.get("/health").json()["forecast"] is True
        own = client.post("/forecast", json={"history": None, "horizon": 3}).json()
        assert own["forecast"] == pytest.approx(predict(forecast_run)["forecast"].tolist(), rel=1e-6)
        values = load_run(forecast_run).series.values[:, 0]
        assert own["baselines"]["naive"] == pytest.approx([values[-1]] * 3)
        assert len(own["baselines"]["seasonal_naive"]) == 3
        given = client.post("/forecast", json={"history": values.tolist(), "horizon": 2}).json()
        assert given["forecast"] == pytest.approx(own["forecast"][:2], rel=1e-6)
        answer = client.post("/forecast", json={"history": [1e300] * 8})
        assert answer.status_code == 422 and "not finite" in answer.json()["detail"]
        for body, field in [({"horizon": 4}, "horizon"), ({"horizon": 0}, "horizon"), ({"history": [0.5] * 7},
                            "history"), ({"history": ["a"] * 8}, 0), ({"history": 3}, "history")]:  # fmt: skip
            answer = client.post("/forecast", json=body)
            assert answer.status_code == 422 and answer.json()["detail"][0]["loc"][-1] == field, answer.text
        assert (
            client.get("/openapi.json").json()["components"]["schemas"]["ForecastRequest"]["properties"]["horizon"][
                "maximum"
            ]
            == 3
        )


def test_a_text_run_continues_a_prime_and_batches_too(text_run):
    app = create_app(text_run, max_wait_ms=50)
    with TestClient(app) as client:
        assert client.get("/health").json()["model"]["kind"] == "text"
        request = {"prime": "the ", "length": 30, "num": 2, "seed": 0, "temperature": 0.5}
        solo = client.post("/generate", json=request).json()
        assert solo["kind"] == "text" and [len(t) for t in solo["texts"]] == [30, 30]
        unseen = client.post("/generate", json={"prime": "thé"})
        assert unseen.status_code == 422 and "'é'" in unseen.json()["detail"]
        assert client.post("/generate", json={"acrostic": "春"}).status_code == 422

    async def together():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service") as concurrent:
            return await asyncio.gather(
                *(concurrent.post("/generate", json=r) for r in [request, {**request, "seed": 1}])
            )

    first, _ = asyncio.run(together())
    assert first.json()["texts"] == solo["texts"]
    assert app.state.batcher.stats()["max_requests_per_batch"] == 2


def test_the_page_is_self_contained_with_the_ids_of_the_contract(client):
    answer = client.get("/")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    page = answer.text
    for element in ('input id="acrostic"', 'select id="form"', 'input id="seed"', 'button id="write"',
                    'div id="poems"', 'div id="error"', '"poem"'):  # fmt: skip
        assert element in page, element
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page) and "@import" not in page
    schema = client.get("/openapi.json").json()
    assert {"/generate", "/forecast", "/health"} <= set(schema["paths"])


def test_an_unknown_run_is_one_clear_line_with_exit_code_2(tmp_path, monkeypatch, capsys):
    from rnnkit.cli import main

    monkeypatch.setattr(sys, "argv", ["rnnkit", "serve", "--run", str(tmp_path / "nothing")])
    with pytest.raises(SystemExit) as exit_:
        main()
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "does not exist" in err and "Traceback" not in err
    with pytest.raises(ValueError, match="no config.json"):
        create_app(tmp_path)
