"""Mixed precision: every cell and backend under ``torch.autocast("cpu", dtype=torch.bfloat16)``.

The engines run the input projection and its gradients in bfloat16 and the time loop in float32
(``Recurrent``'s docstring); ``native`` is torch's kernel under autocast's rules.  Measured at
T=50, H=16, two bidirectional layers, variable lengths: outputs within 2.2e-2 of float32
(layer-norm LSTM; 7e-4 to 5e-3 for the others), gradients within 4% in relative norm (ReLU RNN,
where a few units cross the kink; under 3.3% for the others).
"""

from __future__ import annotations

import pytest
import torch

import rnnkit
from rnnkit.layers import BACKENDS

B, T, I, H = 3, 50, 4, 16
OUTPUT_TOLERANCE = 5e-2  # max abs difference to float32
GRADIENT_TOLERANCE = 0.1  # |g_bf16 - g_fp32| / |g_fp32| over all parameters together


def cases():
    for cell in sorted(rnnkit.CELLS):
        for backend in BACKENDS[1:]:
            try:
                rnnkit.Recurrent(cell, I, H, backend=backend)
            except ValueError:  # native for a cell torch has no kernel for
                continue
            yield cell, backend


def autocast(enabled: bool = True):
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled)


def run(layer, x, lengths, weights=None, mixed=True, backward_inside=False):
    """Output and the parameter gradients of a weighted sum of it, forward under autocast when
    ``mixed``, backward outside it (as torch recommends) unless ``backward_inside``."""
    with autocast(mixed):
        out, _ = layer(x, lengths=lengths)
        weights = torch.randn(out.shape) if weights is None else weights
        loss = (out.float() * weights).sum()
        if backward_inside:
            return out, torch.autograd.grad(loss, list(layer.parameters())), weights
    return out, torch.autograd.grad(loss, list(layer.parameters())), weights


@pytest.mark.parametrize(("cell", "backend"), list(cases()))
def test_bfloat16_autocast_runs_every_cell_and_backend_close_to_float32(cell, backend):
    layer = rnnkit.Recurrent(cell, I, H, num_layers=2, bidirectional=True, backend=backend)
    x, lengths = torch.randn(B, T, I), torch.tensor([T, 31, 7])
    out32, grads32, weights = run(layer, x, lengths, mixed=False)
    out16, grads16, _ = run(layer, x, lengths, weights)

    if backend != "native":  # torch's kernels choose their own output dtype under autocast
        assert out16.dtype == torch.float32
    assert (out16.float() - out32).abs().max() < OUTPUT_TOLERANCE
    assert all(torch.isfinite(g).all() for g in grads16)
    assert all(p.dtype == g.dtype == torch.float32 for p, g in zip(layer.parameters(), grads16))
    difference = torch.cat([(a - b).flatten() for a, b in zip(grads16, grads32)]).norm()
    assert difference / torch.cat([g.flatten() for g in grads32]).norm() < GRADIENT_TOLERANCE


@pytest.mark.parametrize("cell", ["lstm_peephole", "gru"])
def test_under_autocast_the_time_loop_runs_in_float32(cell):
    """compiled (C++ loops), fused and reference share the bfloat16 projection; their loops agree to
    float32 rounding (the C++ loops run float32 and float64 only).  dW_ih is a bfloat16 GEMM of
    inputs that differ in the last float32 bits: equal up to a bfloat16 rounding (2**-8)."""
    x, lengths = torch.randn(B, T, I), torch.tensor([T, 31, 7])
    results = {}
    for backend in ("compiled", "fused", "reference"):
        torch.manual_seed(1)
        layer = rnnkit.Recurrent(cell, I, H, bidirectional=True, backend=backend)
        torch.manual_seed(2)
        results[backend] = run(layer, x, lengths)[:2]
    names = [name for name, _ in layer.named_parameters()]
    for backend in ("fused", "reference"):
        torch.testing.assert_close(results[backend][0], results["compiled"][0], atol=1e-5, rtol=1e-5)
        for name, a, b in zip(names, results[backend][1], results["compiled"][1]):
            tolerance = 2**-7 * float(b.abs().max()) if name.startswith("weight_ih") else 1e-4
            torch.testing.assert_close(a, b, atol=tolerance, rtol=1e-4, msg=name)


@pytest.mark.parametrize("backend", ["compiled", "fused"])
def test_the_hand_written_backward_ignores_an_enclosing_autocast(backend):
    """``.backward()`` inside the autocast block runs the engines' backward in float32 all the same."""
    layer = rnnkit.Recurrent("lstm_peephole", I, H, backend=backend)
    x, lengths = torch.randn(B, T, I), torch.tensor([T, 31, 7])
    _, outside, weights = run(layer, x, lengths)
    _, inside, _ = run(layer, x, lengths, weights, backward_inside=True)
    for a, b in zip(inside, outside):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_autocast_takes_bfloat16_input_recurrent_dropout_and_steps():
    layer = rnnkit.Recurrent("lstm_cifg", I, H, num_layers=2, recurrent_dropout=0.3)
    x = torch.randn(B, T, I)
    with autocast():
        out, (h, c) = layer(x.bfloat16())  # training mode: dropout masks in float32 too
        out.sum().backward()
    assert out.dtype == h.dtype == c.dtype == torch.float32
    assert all(torch.isfinite(p.grad).all() and p.grad.dtype == torch.float32 for p in layer.parameters())

    layer.eval()
    with torch.no_grad():
        full, _ = layer(x[:, :1])
        with autocast():
            stepped, _ = layer.step(x[:, 0])  # generation under autocast goes through forward's path
    assert stepped.dtype == torch.float32
    assert (stepped - full[:, 0]).abs().max() < OUTPUT_TOLERANCE
    assert "under autocast" not in layer.explain()
    with autocast():
        assert "under autocast: the input projection and its gradients in bfloat16" in layer.explain()


def test_outside_autocast_a_bfloat16_input_is_still_refused():
    layer = rnnkit.Recurrent("gru_v1", I, H)
    with pytest.raises(ValueError, match="Expected input of dtype torch.float32"):
        layer(torch.randn(B, T, I).bfloat16())
