"""What the engines keep in inference. The fused and reference engines keep each step's tensors when
autograd records the call (the hand-written backward needs them) and nothing when it does not; the
fused and compiled engines then also project the input a run of whole steps at a time
(``packing.run_in_chunks``). The numbers are a training forward's either way."""

from __future__ import annotations

import contextlib
import weakref

import pytest
import torch

import rnnkit
from rnnkit.cells import CELLS
from rnnkit.engine import compiled, fused

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


def small_chunks(monkeypatch) -> None:
    """Runs of exactly 3 steps, for every cell: any step takes a run past 1 byte once it has 3. Set where
    the engines read them: pytest's importlib mode loads a second copy of ``packing`` when it collects
    that module's doctests before this file."""
    for limits in {id(f.__globals__): f.__globals__ for f in (fused.run_in_chunks, compiled.run_in_chunks)}.values():
        monkeypatch.setitem(limits, "CHUNK_BYTES", 1)
        monkeypatch.setitem(limits, "MIN_CHUNK_STEPS", 3)


@pytest.mark.parametrize("chunks", ["one run", "runs of 3 steps"])
@pytest.mark.parametrize("backend", ["fused", "reference", "compiled"])
@pytest.mark.parametrize("cell", sorted(c for c in CELLS if CELLS[c].has_backward()))
def test_inference_gives_the_numbers_of_a_training_forward(monkeypatch, cell, backend, chunks):
    """Float64 (every cell, each backend's two paths): the same outputs and final states, to rounding.
    Lengths 12, 6, 4 and 1: in runs of 3 steps sequences end inside a run (4, 1) and at a run's end (6),
    and two of them in different runs before the last."""
    if chunks != "one run":
        small_chunks(monkeypatch)
    torch.manual_seed(0)
    layer = rnnkit.Recurrent(cell, I, H, num_layers=2, bidirectional=True, backend=backend).double()
    x = torch.randn(4, T, I, dtype=torch.float64)
    lengths = torch.tensor([T, 6, 4, 1])
    trained_out, trained_state = layer(x, lengths=lengths)
    assert trained_out.requires_grad
    with torch.no_grad():
        out, state = layer(x, lengths=lengths)
    torch.testing.assert_close(out, trained_out.detach(), atol=1e-12, rtol=0)
    for a, b in zip(
        state if isinstance(state, tuple) else (state,), trained_state if isinstance(state, tuple) else (trained_state,)
    ):
        torch.testing.assert_close(a, b.detach(), atol=1e-12, rtol=0)


@pytest.mark.parametrize("backend", ["fused", "compiled"])
def test_inference_with_recurrent_dropout_in_chunks_uses_each_sequences_one_mask(monkeypatch, backend):
    """A layer in training mode under no_grad (Monte Carlo dropout): the mask rows follow the sequences
    from run to run, as in one call."""
    layer = rnnkit.Recurrent("lstm_layernorm", I, H, recurrent_dropout=0.5, backend=backend).double().train()
    x = torch.randn(B, T, I, dtype=torch.float64)
    lengths = torch.tensor([T, 7, 3])
    torch.manual_seed(1)
    trained_out, _ = layer(x, lengths=lengths)
    small_chunks(monkeypatch)
    torch.manual_seed(1)
    with torch.no_grad():
        out, _ = layer(x, lengths=lengths)
    torch.testing.assert_close(out, trained_out.detach(), atol=1e-12, rtol=0)


@pytest.mark.parametrize("backend", ["fused", "compiled"])
def test_inference_projects_a_run_of_steps_at_a_time(monkeypatch, backend):
    """No projection of more than a run's rows (here 3 steps of B rows), in inference only."""
    small_chunks(monkeypatch)
    rows = []
    if backend == "fused":
        project = CELLS["lstm"].input_projection
        monkeypatch.setattr(
            CELLS["lstm"], "input_projection", lambda self, x, p: rows.append(len(x)) or project(self, x, p)
        )
    else:
        project = compiled.input_projection
        monkeypatch.setattr(compiled, "input_projection", lambda cell, x, p: rows.append(len(x)) or project(cell, x, p))
    layer = rnnkit.Recurrent("lstm", I, H, backend=backend).double()
    x = torch.randn(B, T, I, dtype=torch.float64)
    with torch.no_grad():
        layer(x)
    assert sum(rows) == B * T and max(rows) <= 3 * B and len(rows) >= T // 3
    rows.clear()
    layer(x.requires_grad_())  # training: one projection of every row
    assert rows == [B * T]
