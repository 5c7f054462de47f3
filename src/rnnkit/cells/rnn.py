"""The plain (Elman) recurrent cell:  h' = f(W_ih x + b_ih + W_hh h + b_hh),  f = tanh or ReLU.

Parameter names match ``torch.nn.RNN`` (``nonlinearity='tanh'`` or ``'relu'``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .base import Cell, Params, State, tanh_grad

# activation: (f(z), (grad, h) -> grad ⊙ f'(z) written from the output h = f(z))
ACTIVATIONS = {
    "tanh": (torch.tanh, tanh_grad),
    "relu": (torch.relu, lambda grad, h: torch.ops.aten.threshold_backward(grad, h, 0)),
}


class RNNSaved(NamedTuple):
    h_rec: Tensor
    hidden: Tensor


class RNN(Cell):
    """h' = f(W_ih x + b_ih + W_hh h + b_hh). Options: ``activation`` ('tanh' or 'relu')."""

    name = "rnn_tanh"
    gates = ("hidden",)
    Saved = RNNSaved
    default_activation = "tanh"

    def __init__(self, hidden_size: int, *, activation: str | None = None, **options):
        super().__init__(hidden_size, **options)
        activation = activation or self.default_activation
        if activation not in ACTIVATIONS:
            raise ValueError(f"Expected activation one of {sorted(ACTIVATIONS)}. Received: activation={activation!r}")
        self.activation_name = activation
        self.activation, self.activation_grad = ACTIVATIONS[activation]
        self.native_mode = {"tanh": "RNN_TANH", "relu": "RNN_RELU"}[activation]

    def step(self, x_proj: Tensor, state: State, p: Params, mask: Tensor | None = None):
        (h_prev,) = state
        h_rec = self.recurrent_input(h_prev, mask)
        hidden = self.activation(self.gate_preactivations(x_proj, h_rec, p))  # (B, H)
        return (hidden,), RNNSaved(h_rec, hidden)

    def step_backward(self, grad_state: State, saved: RNNSaved, p: Params, mask: Tensor | None = None, out=None):
        (grad_hidden,) = grad_state
        # h' = f(z),  z = x_proj + h_rec @ W_hh^T
        grad_z = self.activation_grad(grad_hidden, saved.hidden)
        grad_h_prev = self.hidden_gradient(grad_z, p, mask)
        return grad_z, None, (grad_h_prev,), {}


class ReLURNN(RNN):
    """The plain RNN with ReLU: h' = max(0, W_ih x + b_ih + W_hh h + b_hh)."""

    name = "rnn_relu"
    default_activation = "relu"
