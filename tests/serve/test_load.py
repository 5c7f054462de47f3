"""rnnkit bench serve at a tiny size: the service in a child process on loopback, two concurrency levels of a
few requests, then one level with its batching off. The figures are checked for sense, never for speed."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from rnnkit.bench import serve
from rnnkit.cli import app


def test_tiny_load_test_answers_every_request_and_reports_sane_figures():
    result = CliRunner().invoke(app, ["bench", "serve", "--levels", "1,4", "--requests", "4", "--max-seconds", "30",
                                      "--compare-at", "4", "--form", "5", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{") :])
    assert "cores" in report["machine"] and "torch" in report["machine"]
    levels = report["levels"]
    assert [(r["concurrency"], r["max_batch"]) for r in levels] == [(1, None), (4, None), (4, 1)]
    for r in levels:
        assert r["requests"] == 4 and r["errors"] == 0, r
        assert r["requests_per_s"] > 0 and r["seconds"] > 0, r
        assert 0 < r["p50_ms"] <= r["p99_ms"], r
    # the service's own counters: one request at a time never shares a batch, nor does any with batching off
    assert [(r["mean_batch"], r["largest_batch"]) for r in levels[::2]] == [(1.0, 1), (1.0, 1)], levels
    assert 1.0 <= levels[1]["mean_batch"] <= levels[1]["largest_batch"] <= 4, levels[1]


def test_percentiles_are_nearest_rank_values():
    latencies = [float(v) for v in range(1, 101)]  # 1..100
    assert serve.percentile(latencies, 50) == 50.0 and serve.percentile(latencies, 99) == 99.0
    assert serve.percentile(latencies, 100) == 100.0 and serve.percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError, match="Expected at least one value"):
        serve.percentile([], 50)


def test_requests_are_batch_1_acrostics_seeded_by_their_index():
    bodies = [serve.request_body(i, form=5) for i in range(20)]
    assert all(b["num"] == 1 and b["form"] == 5 and len(b["acrostic"]) == 4 for b in bodies)
    assert [b["seed"] for b in bodies] == list(range(20))


def test_only_loopback_services_are_loaded():
    with pytest.raises(ValueError, match="Expected a loopback URL"):
        serve.run(url="http://example.com:8000")
    with pytest.raises(ValueError, match="Expected concurrency levels >= 1"):
        serve.run(levels=(0,))
