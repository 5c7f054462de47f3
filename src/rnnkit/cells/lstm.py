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

from .base import Cell, Params, State, sigmoid_grad, tanh_grad


class LSTMSaved(NamedTuple):
    h_rec: Tensor
    input_gate: Tensor
    forget_gate: Tensor
    cell_candidate: Tensor
    output_gate: Tensor
    cell_prev: Tensor
    tanh_cell: Tensor


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
        z_i, z_f, z_g, z_o = z.chunk(4, 1)
        input_gate = torch.sigmoid(z_i)
        forget_gate = torch.sigmoid(z_f)
        cell_candidate = torch.tanh(z_g)
        output_gate = torch.sigmoid(z_o)
        cell_state = torch.addcmul(forget_gate * cell_prev, input_gate, cell_candidate)  # f ⊙ c + i ⊙ g
        tanh_cell = torch.tanh(cell_state)
        hidden = output_gate * tanh_cell
        saved = LSTMSaved(h_rec, input_gate, forget_gate, cell_candidate, output_gate, cell_prev, tanh_cell)
        return (hidden, cell_state), saved

    def step_backward(self, grad_state: State, saved: LSTMSaved, p: Params, mask: Tensor | None = None, out=None):
        grad_hidden, grad_cell = grad_state
        i, f, g, o, cell_prev, tanh_cell = saved[1:]
        # h' = o ⊙ tanh(c')
        grad_o = grad_hidden * tanh_cell
        grad_cell = grad_cell + tanh_grad(grad_hidden * o, tanh_cell)
        # c' = f ⊙ c + i ⊙ g
        grad_f = grad_cell * cell_prev
        grad_i = grad_cell * g
        grad_g = grad_cell * i
        grad_cell_prev = grad_cell * f
        # i, f, o = σ(z);  g = tanh(z)
        grad_z = torch.cat(
            (sigmoid_grad(grad_i, i), sigmoid_grad(grad_f, f), tanh_grad(grad_g, g), sigmoid_grad(grad_o, o)),
            1,
            out=out,
        )  # (B, 4H)
        # z = x_proj + h_rec @ W_hh^T
        grad_h_prev = self.hidden_gradient(grad_z, p, mask)
        return grad_z, None, (grad_h_prev, grad_cell_prev), {}
