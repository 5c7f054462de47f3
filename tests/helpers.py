"""Shared test helpers: run a layer as a pure function of (inputs, parameters)."""

from __future__ import annotations

import torch
from torch.func import functional_call

import rnnkit


def make_layer(cell: str, backend: str, *, input_size=3, hidden_size=4, num_layers=2, bidirectional=True, **kw):
    return rnnkit.Recurrent(
        cell, input_size, hidden_size, num_layers=num_layers, bidirectional=bidirectional, backend=backend, **kw
    ).double()


def layer_inputs(layer, batch=3, steps=5, requires_grad=True):
    """x (B, T, I) and an initial state, float64, all requiring grad."""
    x = torch.randn(batch, steps, layer.input_size, dtype=torch.float64, requires_grad=requires_grad)
    shape = (layer.num_layers * layer.num_directions, batch, layer.hidden_size)
    state = tuple(
        (0.5 * torch.randn(shape, dtype=torch.float64)).requires_grad_(requires_grad) for _ in layer.cell.state_names
    )
    return x, state


def as_function(layer, lengths=None):
    """f(x, *state, *params) -> (output, *final_state), for gradcheck."""
    names = [name for name, _ in layer.named_parameters()]
    n_state = len(layer.cell.state_names)

    def f(x, *tensors):
        state, params = tensors[:n_state], dict(zip(names, tensors[n_state:]))
        state_arg = state if n_state > 1 else state[0]
        out, final = functional_call(layer, params, (x, state_arg, lengths))
        final = final if isinstance(final, tuple) else (final,)
        return (out, *final)

    return f, [p.detach().clone().requires_grad_(True) for p in layer.parameters()]
