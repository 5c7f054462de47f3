"""The fused engine's time loops reorder each recurrent weight for oneDNN once a call, not once a step."""

from __future__ import annotations

import pytest
import torch

import rnnkit
from rnnkit import gemm
from rnnkit.cells import base
from rnnkit.engine import fused

# (cell, the weights its steps multiply by: forward and backward)
STEP_WEIGHTS = {"lstm": {"W_hh^T", "W_hh"}, "gru": {"W_hh^T", "W_hh"}, "gru_v1": {"W_hrz^T", "W_hn^T", "W_hrz", "W_hn"}}


def _train_step(layer: rnnkit.Recurrent, x: torch.Tensor) -> list[torch.Tensor]:
    T = x.shape[1]
    out, _ = layer(x, lengths=torch.tensor([T, T, T - 1] + [2] * 61))
    out.square().sum().backward()
    return [out.detach(), x.grad, *(p.grad for p in layer.parameters())]


@pytest.mark.parametrize("cell", sorted(STEP_WEIGHTS))
def test_each_step_weight_is_reordered_once_a_call_and_gives_the_plain_weights_numbers(cell, monkeypatch):
    """64 rows and H=256: each step's product is over oneDNN's 4M multiply-adds, so it runs there."""
    calls = []

    def counting_prepack(b, rows):
        calls.append(rows)
        return gemm.prepack(b, rows)

    results = {}
    for packed in (True, False):
        monkeypatch.setattr(base, "prepack", counting_prepack if packed else (lambda b, rows: b))
        torch.manual_seed(0)
        layer = rnnkit.Recurrent(cell, 8, 256, backend="fused")
        x = torch.randn(64, fused.REORDER_MIN_STEPS, 8, requires_grad=True)
        results[packed] = _train_step(layer, x)
    assert len(calls) == len(STEP_WEIGHTS[cell])  # not once a step: 16 steps forward, 16 backward
    assert set(calls) == {64}  # laid out for the call's batch, also in backward, whose first step has 2 rows
    for a, b in zip(results[True], results[False]):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_a_short_call_such_as_a_generation_step_reorders_nothing(monkeypatch):
    calls = []
    monkeypatch.setattr(base, "prepack", lambda b, rows: calls.append(rows) or b)
    layer = rnnkit.Recurrent("lstm", 8, 256, backend="fused")
    _train_step(layer, torch.randn(64, fused.REORDER_MIN_STEPS - 1, 8, requires_grad=True))
    assert calls == []  # a reorder costs about six steps' saving


def test_step_weight_keeps_the_plain_weight_where_autograd_needs_it_or_no_engine_asked():
    weight = torch.randn(1024, 256, requires_grad=True)
    p = base.Params({"weight_hh": weight})
    assert base.step_weight(p, "W_hh^T", weight.t()).grad_fn is not None  # no engine asked: the view itself
    p.reorder_rows = 64
    assert base.step_weight(p, "W_hh^T", weight.t()).grad_fn is not None  # autograd needs the plain view
    with torch.no_grad():
        p = base.Params({"weight_hh": weight})
        p.reorder_rows = 64
        packed = base.step_weight(p, "W_hh^T", weight.t())
    assert isinstance(packed, gemm.Prepacked) == (gemm.kernel() == "onednn")
