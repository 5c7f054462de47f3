"""Long short-term memory (Hochreiter & Schmidhuber 1997; forget gate: Gers et al. 2000).

    i  = σ(W_ii x + W_hi h + b_i)          input gate
    f  = σ(W_if x + W_hf h + b_f)          forget gate
    g  = tanh(W_ig x + W_hg h + b_g)       cell candidate
    o  = σ(W_io x + W_ho h + b_o)          output gate
    c' = f ⊙ c + i ⊙ g                     cell state
    h' = o ⊙ tanh(c')                      hidden state

Gate order i, f, g, o and parameter names match ``torch.nn.LSTM``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .base import Cell, Params, State, activate_gates_, activate_gates_backward, tanh_from_sigmoid, tanh_grad


class LSTMSaved(NamedTuple):
    h_rec: Tensor
    input_gate: Tensor
    forget_gate: Tensor
    cell_candidate: Tensor
    output_gate: Tensor
    cell_prev: Tensor
    tanh_cell: Tensor
    sigmoids: Tensor  # σ(k z) of activate_gates_, (B, 4H)


class LSTM(Cell):
    """LSTM cell. Options: ``forget_bias`` (initial forget-gate bias, default 1.0) or ``chrono_init``."""

    name = "lstm"
    gates = ("input_gate", "forget_gate", "cell_candidate", "output_gate")
    state_names = ("hidden", "cell_state")
    native_mode = "LSTM"
    Saved = LSTMSaved

    def step(self, x_proj: Tensor, state: State, p: Params, mask: Tensor | None = None):
        h_prev, cell_prev = state
        h_rec = self.recurrent_input(h_prev, mask)
        z = self.gate_preactivations(x_proj, h_rec, p)  # (B, 4H)
        sigmoids = activate_gates_(z, self.gate_scales(z))  # (B, 4H), σ(z) for i, f, o and σ(2z) for g
        input_gate, forget_gate, sigmoid_g, output_gate = sigmoids.chunk(4, 1)
        cell_candidate = 2 * sigmoid_g - 1  # tanh(z_g) = 2σ(2z_g) - 1
        cell_state = torch.addcmul(forget_gate * cell_prev, input_gate, cell_candidate)  # f ⊙ c + i ⊙ g
        tanh_cell = tanh_from_sigmoid(cell_state)
        hidden = output_gate * tanh_cell
        saved = LSTMSaved(h_rec, input_gate, forget_gate, cell_candidate, output_gate, cell_prev, tanh_cell, sigmoids)
        return (hidden, cell_state), saved

    def step_backward(self, grad_state: State, saved: LSTMSaved, p: Params, mask: Tensor | None = None, out=None):
        grad_hidden, grad_cell = grad_state
        i, f, g, o, cell_prev, tanh_cell, sigmoids = saved[1:]
        # h' = o ⊙ tanh(c')
        grad_o = grad_hidden * tanh_cell
        grad_cell = grad_cell + tanh_grad(grad_hidden * o, tanh_cell)
        # c' = f ⊙ c + i ⊙ g
        grad_i = grad_cell * g
        grad_f = grad_cell * cell_prev
        grad_g = grad_cell * i
        grad_cell_prev = grad_cell * f
        # i, f, o = σ(z);  g = tanh(z)
        grad_gates = torch.cat((grad_i, grad_f, grad_g, grad_o), 1)  # (B, 4H)
        grad_z = activate_gates_backward(grad_gates, sigmoids, self.gate_scales(grad_gates), out=out)
        # z = x_proj + h_rec @ W_hh^T
        grad_h_prev = self.hidden_gradient(grad_z, p, mask)
        return grad_z, None, (grad_h_prev, grad_cell_prev), {}
