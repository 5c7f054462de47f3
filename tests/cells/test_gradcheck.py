"""Acceptance 1: the hand-written BPTT of every cell, in Python loops (``fused``) and in C++ loops
(``compiled``), against float64 numerical and autograd gradients."""

from __future__ import annotations

import pytest
import torch

import rnnkit
from helpers import as_function, layer_inputs, make_layer

CELLS = sorted(rnnkit.CELLS)
LENGTHS = {"all_full": None, "variable": torch.tensor([5, 2, 4])}
HAND_WRITTEN = ["fused", "compiled"]


@pytest.mark.parametrize("backend", HAND_WRITTEN)
@pytest.mark.parametrize("lengths", LENGTHS.values(), ids=LENGTHS.keys())
@pytest.mark.parametrize("cell", CELLS)
def test_hand_written_backward_passes_float64_gradcheck(cell, lengths, backend):
    layer = make_layer(cell, backend)  # 2 layers, bidirectional
    x, state = layer_inputs(layer)
    f, params = as_function(layer, lengths)
    assert torch.autograd.gradcheck(f, (x, *state, *params), eps=1e-6, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("backend", HAND_WRITTEN)
@pytest.mark.parametrize("lengths", LENGTHS.values(), ids=LENGTHS.keys())
@pytest.mark.parametrize("cell", CELLS)
def test_hand_written_gradients_equal_autograd_reference(cell, lengths, backend):
    torch.manual_seed(1)
    fused = make_layer(cell, backend, recurrent_dropout=0.0)
    reference = make_layer(cell, "reference")
    reference.load_state_dict(fused.state_dict())
    x, state = layer_inputs(fused)
    results = []
    for layer in (fused, reference):
        f, params = as_function(layer, lengths)
        inputs = (x, *state, *params)
        outputs = f(*inputs)
        weights = [torch.randn_like(o) for o in outputs] if not results else results[0][2]
        loss = sum((o * w).sum() for o, w in zip(outputs, weights))
        grads = torch.autograd.grad(loss, inputs, allow_unused=True)
        results.append((outputs, grads, weights))
    (out_f, grad_f, _), (out_r, grad_r, _) = results
    for a, b in zip(out_f, out_r):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-9)
    for a, b in zip(grad_f, grad_r):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-9)


@pytest.mark.parametrize("cell", CELLS)
def test_hand_written_backward_with_recurrent_dropout_matches_reference(cell):
    """The same dropout mask (same seed) gives the same gradients on every engine."""
    grads = []
    for backend in ("fused", "compiled", "reference"):
        torch.manual_seed(3)
        layer = make_layer(cell, backend, recurrent_dropout=0.3, num_layers=1)
        x, state = layer_inputs(layer)
        out, _ = layer(x, state if len(state) > 1 else state[0], torch.tensor([5, 3, 4]))
        out.square().sum().backward()
        grads.append([x.grad] + [p.grad for p in layer.parameters()])
    for engine in grads[:2]:
        for a, b in zip(engine, grads[2]):
            torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-9)


@pytest.mark.parametrize("backend", HAND_WRITTEN)
def test_hand_written_engine_refuses_double_backward_clearly(backend):
    layer = make_layer("lstm_peephole", backend, num_layers=1, bidirectional=False)
    x, _ = layer_inputs(layer)
    out, _ = layer(x)
    with pytest.raises(RuntimeError, match="backend='reference'"):
        torch.autograd.grad(out.sum(), x, create_graph=True)
    # ... and the reference engine gives second derivatives
    layer.backend = "reference"
    out, _ = layer(x)
    (g,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    g.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
