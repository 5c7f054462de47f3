"""Numerical robustness: every cell over 10,000 steps in float32, and under saturating inputs.

Outputs, final states and the gradients of every parameter and of the input stay finite, for a
loss on every step (the sum of the outputs) plus a loss on the last step (whose gradient crosses
all 10,000 steps).  One backward of the two together checks both: a sum of gradients is finite
only if each is (at twice the cost, ``torch.nn.GRU``'s CPU backward takes seconds at T=10,000).
``auto`` is the backend a user gets (native or compiled); the Python loops of ``fused`` are
checked on shorter sequences, where they cost a second per cell at 10,000.
"""

from __future__ import annotations

import pytest
import torch

import rnnkit

B, I, H = 2, 4, 16
LONG, SHORT = 10_000, 2_000
CELLS = sorted(rnnkit.CELLS)


def assert_finite_forward_and_backward(layer: rnnkit.Recurrent, x: torch.Tensor) -> None:
    """Forward and backward (all outputs plus the last step once more): everything finite."""
    out, final = layer(x)  # (B, T, H)
    finals = final if isinstance(final, tuple) else (final,)
    assert torch.isfinite(out).all(), f"{layer.explain()}: non-finite output"
    assert all(torch.isfinite(s).all() for s in finals), f"{layer.explain()}: non-finite final state"
    names, params = zip(*layer.named_parameters())
    grads = torch.autograd.grad(out.sum() + out[:, -1].sum(), [x, *params])
    bad = [name for name, g in zip(("input", *names), grads) if not torch.isfinite(g).all()]
    assert not bad, f"{layer.cell.name} ({layer.backend}): non-finite gradients of {bad}"


@pytest.mark.parametrize("cell", CELLS)
def test_ten_thousand_steps_stay_finite_in_float32(cell):
    layer = rnnkit.Recurrent(cell, I, H)  # default init, backend auto
    x = torch.randn(B, LONG, I, requires_grad=True)
    assert_finite_forward_and_backward(layer, x)


def saturating_cases():
    """(cell, backend): auto for every cell, and fused where auto runs the compiled loops."""
    for cell in CELLS:
        yield cell, "auto"
        if rnnkit.Recurrent(cell, I, H).backend == "compiled":
            yield cell, "fused"


@pytest.mark.parametrize(("cell", "backend"), list(saturating_cases()))
def test_saturating_inputs_stay_finite(cell, backend):
    """Inputs 100x their usual size drive every gate to 0 or 1 (and the ReLU RNN's state to hundreds):
    no NaN from a saturated sigmoid, tanh or layer norm, forward or backward."""
    layer = rnnkit.Recurrent(cell, I, H, backend=backend)
    x = (100 * torch.randn(B, SHORT, I)).requires_grad_()
    assert_finite_forward_and_backward(layer, x)
