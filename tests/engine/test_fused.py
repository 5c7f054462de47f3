"""The fused engine's time loops reorder each recurrent weight for oneDNN once a call, not once a step."""

from __future__ import annotations

import pytest
import torch

import rnnkit
from rnnkit import gemm
from rnnkit.cells import base

# (cell, the weights its steps multiply by: forward and backward)
STEP_WEIGHTS = {"lstm": {"W_hh^T", "W_hh"}, "gru": {"W_hh^T", "W_hh"}, "gru_v1": {"W_hrz^T", "W_hn^T", "W_hrz", "W_hn"}}


def _train_step(layer: rnnkit.Recurrent, x: torch.Tensor) -> list[torch.Tensor]:
    out, _ = layer(x, lengths=torch.tensor([4, 4, 3] + [2] * 61))
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
        x = torch.randn(64, 4, 8, requires_grad=True)
        results[packed] = _train_step(layer, x)
    assert len(calls) == len(STEP_WEIGHTS[cell])  # not once a step: 4 steps forward, 4 backward
    assert set(calls) == {64}  # laid out for the call's batch, also in backward, whose first step has 2 rows
    for a, b in zip(results[True], results[False]):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_step_weight_keeps_the_plain_weight_where_autograd_needs_it():
    weight = torch.randn(1024, 256, requires_grad=True)
    p = base.Params({"weight_hh": weight})
    assert base.step_weight(p, "W_hh^T", weight.t(), 64).grad_fn is not None  # the view itself, in the graph
    with torch.no_grad():
        packed = base.step_weight(base.Params({"weight_hh": weight}), "W_hh^T", weight.t(), 64)
    assert isinstance(packed, gemm.Prepacked) == (gemm.kernel() == "onednn")
