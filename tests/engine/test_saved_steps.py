"""What the fused and reference engines keep of each step: everything the hand-written backward needs
when autograd records the call, nothing when it does not (inference), with the same numbers either way."""

from __future__ import annotations

import contextlib
import weakref

import pytest
import torch

import rnnkit
from rnnkit.cells import CELLS

T, B, I, H = 12, 3, 5, 8


def _count_earlier_steps_alive(monkeypatch, cell: str) -> list[int]:
    """Patch ``cell``'s step to record, at each step t, how many ``tanh_cell`` tensors of the steps before
    t - 1 are still alive (the loop itself still holds step t - 1's while it runs step t). In inference
    nothing else refers to ``tanh_cell``: the hidden state is ``o ⊙ tanh_cell``, a new tensor."""
    cls = CELLS[cell]
    original, refs, alive = cls.step, [], []

    def step(self, x_proj, state, p, mask=None):
        new_state, saved = original(self, x_proj, state, p, mask)
        alive.append(sum(ref() is not None for ref in refs[:-1]))
        refs.append(weakref.ref(saved.tanh_cell))
        return new_state, saved

    monkeypatch.setattr(cls, "step", step)
    return alive


@pytest.mark.parametrize("backend", ["fused", "reference"])
@pytest.mark.parametrize("cell", ["lstm", "lstm_layernorm"])
@pytest.mark.parametrize("mode", ["no_grad", "inference_mode", "nothing requires grad"])
def test_inference_keeps_no_steps_saved_tensors(monkeypatch, cell, backend, mode):
    layer = rnnkit.Recurrent(cell, I, H, backend=backend)
    x = torch.randn(B, T, I)
    if mode == "nothing requires grad":
        layer.requires_grad_(False)
    alive = _count_earlier_steps_alive(monkeypatch, cell)
    context = {"no_grad": torch.no_grad, "inference_mode": torch.inference_mode}.get(mode, contextlib.nullcontext)
    with context():
        out, _ = layer(x, lengths=torch.tensor([T, T - 4, 2]))
    assert out.shape == (B, T, H)
    assert len(alive) == T and alive == [0] * T


@pytest.mark.parametrize("cell", ["lstm", "lstm_layernorm"])
def test_training_keeps_every_step_for_the_hand_written_backward(monkeypatch, cell):
    layer = rnnkit.Recurrent(cell, I, H, backend="fused")
    alive = _count_earlier_steps_alive(monkeypatch, cell)
    out, _ = layer(torch.randn(B, T, I))
    assert alive == [max(t - 1, 0) for t in range(T)]  # at step t, all of steps 0 .. t-2
    out.sum().backward()  # and the backward has them
    assert all(p.grad is not None for p in layer.parameters())


@pytest.mark.parametrize("backend", ["fused", "reference"])
@pytest.mark.parametrize("cell", sorted(c for c in CELLS if CELLS[c].has_backward()))
def test_inference_gives_the_numbers_of_a_training_forward(cell, backend):
    """Float64 (every cell, its own backend's two paths): the same outputs and final states, to rounding."""
    torch.manual_seed(0)
    layer = rnnkit.Recurrent(cell, I, H, num_layers=2, bidirectional=True, backend=backend).double()
    x = torch.randn(B, T, I, dtype=torch.float64)
    lengths = torch.tensor([T, 5, 1])
    trained_out, trained_state = layer(x, lengths=lengths)
    assert trained_out.requires_grad
    with torch.no_grad():
        out, state = layer(x, lengths=lengths)
    torch.testing.assert_close(out, trained_out.detach(), atol=1e-12, rtol=0)
    for a, b in zip(
        state if isinstance(state, tuple) else (state,), trained_state if isinstance(state, tuple) else (trained_state,)
    ):
        torch.testing.assert_close(a, b.detach(), atol=1e-12, rtol=0)
