"""The fused and reference engines off the CPU, on the meta device (shapes without data), the stand-in
for a GPU that every machine has: no step may make a CPU tensor, or call a CPU-only kernel, when its
input lives elsewhere (a GPU tensor of a custom cell runs exactly these loops).

torch's autocast knows no meta device, so the tests switch it off there; the rest runs as written.
Lengths are left out: torch's own ``pad_packed_sequence`` reads data, which meta tensors have none of.
"""

from __future__ import annotations

import contextlib

import pytest
import torch

import rnnkit

B, T, I, H = 3, 7, 5, 8


@pytest.fixture
def meta_without_autocast(monkeypatch):
    is_enabled, autocast = torch.is_autocast_enabled, torch.autocast

    def is_autocast_enabled(*args):
        return False if args and args[0] == "meta" else is_enabled(*args)

    def no_autocast_on_meta(device_type, *args, **kwargs):
        return contextlib.nullcontext() if device_type == "meta" else autocast(device_type, *args, **kwargs)

    monkeypatch.setattr(torch, "is_autocast_enabled", is_autocast_enabled)
    monkeypatch.setattr(torch, "autocast", no_autocast_on_meta)


@pytest.mark.parametrize("backend", ["fused", "reference"])
@pytest.mark.parametrize("cell", sorted(rnnkit.CELLS))
def test_training_and_inference_stay_on_the_inputs_device(meta_without_autocast, cell, backend):
    torch.manual_seed(0)
    layer = rnnkit.Recurrent(cell, I, H, num_layers=2, bidirectional=True, recurrent_dropout=0.1, backend=backend)
    layer = layer.to("meta")
    x = torch.randn(B, T, I, device="meta", requires_grad=True)
    out, final = layer(x)
    assert out.shape == (B, T, 2 * H) and out.device.type == "meta"
    for state in final if isinstance(final, tuple) else (final,):
        assert state.shape == (4, B, H) and state.device.type == "meta"
    out.sum().backward()
    assert x.grad.shape == x.shape and x.grad.device.type == "meta"
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape and p.grad.device.type == "meta", name
    with torch.no_grad():
        step_out, _ = rnnkit.Recurrent(cell, I, H, backend=backend).to("meta").step(x[:, 0].detach())
    assert step_out.shape == (B, H) and step_out.device.type == "meta"
