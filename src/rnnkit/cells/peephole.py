"""LSTM with peephole connections (Gers & Schmidhuber 2000): the gates look at the cell state.

    i  = σ(W_ii x + W_hi h + b_i + w_ci ⊙ c)      input gate sees c_{t-1}
    f  = σ(W_if x + W_hf h + b_f + w_cf ⊙ c)      forget gate sees c_{t-1}
    g  = tanh(W_ig x + W_hg h + b_g)              cell candidate
    c' = f ⊙ c + i ⊙ g
    o  = σ(W_io x + W_ho h + b_o + w_co ⊙ c')     output gate sees c_t
    h' = o ⊙ tanh(c')

The peephole weights are diagonal: one vector ``weight_peephole`` (3H,) = [w_ci, w_cf, w_co].
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .base import Params, State, sigmoid_grad, tanh_from_sigmoid, tanh_grad
from .lstm import LSTM


class PeepholeSaved(NamedTuple):
    h_rec: Tensor
    input_gate: Tensor
    forget_gate: Tensor
    cell_candidate: Tensor
    output_gate: Tensor
    cell_prev: Tensor
    cell_state: Tensor
    tanh_cell: Tensor


class PeepholeLSTM(LSTM):
    """Peephole LSTM cell. Options: ``forget_bias`` (default 1.0) or ``chrono_init``."""

    name = "lstm_peephole"
    native_mode = None
    Saved = PeepholeSaved

    def extra_parameters(self) -> dict[str, tuple[int, ...]]:
        return {"weight_peephole": (3 * self.hidden_size,)}

    def step(self, x_proj: Tensor, state: State, p: Params, mask: Tensor | None = None):
        h_prev, cell_prev = state
        w_ci, w_cf, w_co = p.weight_peephole.chunk(3)
        h_rec = self.recurrent_input(h_prev, mask)
        z = self.gate_preactivations(x_proj, h_rec, p)  # (B, 4H)
        z_i, z_f, z_g, z_o = z.chunk(4, 1)
        input_gate = torch.sigmoid(torch.addcmul(z_i, w_ci, cell_prev))  # σ(z_i + w_ci ⊙ c)
        forget_gate = torch.sigmoid(torch.addcmul(z_f, w_cf, cell_prev))  # σ(z_f + w_cf ⊙ c)
        cell_candidate = tanh_from_sigmoid(z_g)
        cell_state = torch.addcmul(forget_gate * cell_prev, input_gate, cell_candidate)  # f ⊙ c + i ⊙ g
        output_gate = torch.sigmoid(torch.addcmul(z_o, w_co, cell_state))  # σ(z_o + w_co ⊙ c')
        tanh_cell = tanh_from_sigmoid(cell_state)
        hidden = output_gate * tanh_cell
        saved = PeepholeSaved(
            h_rec, input_gate, forget_gate, cell_candidate, output_gate, cell_prev, cell_state, tanh_cell
        )
        return (hidden, cell_state), saved

    def step_backward(self, grad_state: State, saved: PeepholeSaved, p: Params, mask: Tensor | None = None, out=None):
        grad_hidden, grad_cell = grad_state
        i, f, g, o, cell_prev, cell_state, tanh_cell = saved[1:]
        w_ci, w_cf, w_co = p.weight_peephole.chunk(3)
        # h' = o ⊙ tanh(c')
        grad_z_o = sigmoid_grad(grad_hidden * tanh_cell, o)
        # o = σ(z_o + w_co ⊙ c'): c' reaches the loss through tanh(c') and through o
        grad_cell = torch.addcmul(grad_cell + tanh_grad(grad_hidden * o, tanh_cell), grad_z_o, w_co)
        # c' = f ⊙ c + i ⊙ g
        grad_z_i = sigmoid_grad(grad_cell * g, i)
        grad_z_f = sigmoid_grad(grad_cell * cell_prev, f)
        grad_z_g = tanh_grad(grad_cell * i, g)
        # c reaches c' directly and through the peepholes of i and f
        grad_cell_prev = torch.addcmul(torch.addcmul(grad_cell * f, grad_z_i, w_ci), grad_z_f, w_cf)
        grad_z = torch.cat((grad_z_i, grad_z_f, grad_z_g, grad_z_o), 1, out=out)  # (B, 4H)
        grad_h_prev = self.hidden_gradient(grad_z, p, mask)
        grad_peephole = torch.cat(
            ((grad_z_i * cell_prev).sum(0), (grad_z_f * cell_prev).sum(0), (grad_z_o * cell_state).sum(0))
        )
        return grad_z, None, (grad_h_prev, grad_cell_prev), {"weight_peephole": grad_peephole}
