"""Coupled input-forget gate LSTM (CIFG; Greff et al. 2017, "LSTM: A Search Space Odyssey").

One gate decides both what to forget and what to write:  i = 1 - f.

    f  = σ(W_if x + W_hf h + b_f)          forget gate
    g  = tanh(W_ig x + W_hg h + b_g)       cell candidate
    o  = σ(W_io x + W_ho h + b_o)          output gate
    c' = f ⊙ c + (1 - f) ⊙ g
    h' = o ⊙ tanh(c')

Gate order f, g, o (three chunks: a quarter fewer weights than the LSTM).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .base import Cell, Params, State, activate_gates_, activate_gates_backward, tanh_from_sigmoid, tanh_grad


class CIFGSaved(NamedTuple):
    h_rec: Tensor
    forget_gate: Tensor
    cell_candidate: Tensor
    output_gate: Tensor
    cell_prev: Tensor
    tanh_cell: Tensor
    sigmoids: Tensor  # σ(k z) of activate_gates_, (B, 3H)


class CIFGLSTM(Cell):
    """CIFG LSTM cell. Options: ``forget_bias`` (default 1.0) or ``chrono_init``."""

    name = "lstm_cifg"
    gates = ("forget_gate", "cell_candidate", "output_gate")
    state_names = ("hidden", "cell_state")
    Saved = CIFGSaved

    def step(self, x_proj: Tensor, state: State, p: Params, mask: Tensor | None = None):
        h_prev, cell_prev = state
        h_rec = self.recurrent_input(h_prev, mask)
        z = self.gate_preactivations(x_proj, h_rec, p)  # (B, 3H)
        sigmoids = activate_gates_(z, self.gate_scales(z))  # (B, 3H), σ(z) for f, o and σ(2z) for g
        forget_gate, sigmoid_g, output_gate = sigmoids.chunk(3, 1)
        cell_candidate = 2 * sigmoid_g - 1  # tanh(z_g) = 2σ(2z_g) - 1
        cell_state = torch.addcmul(cell_candidate, forget_gate, cell_prev - cell_candidate)  # f ⊙ c + (1 - f) ⊙ g
        tanh_cell = tanh_from_sigmoid(cell_state)
        hidden = output_gate * tanh_cell
        saved = CIFGSaved(h_rec, forget_gate, cell_candidate, output_gate, cell_prev, tanh_cell, sigmoids)
        return (hidden, cell_state), saved

    def step_backward(self, grad_state: State, saved: CIFGSaved, p: Params, mask: Tensor | None = None, out=None):
        grad_hidden, grad_cell = grad_state
        f, g, o, cell_prev, tanh_cell, sigmoids = saved[1:]
        # h' = o ⊙ tanh(c')
        grad_o = grad_hidden * tanh_cell
        grad_cell = grad_cell + tanh_grad(grad_hidden * o, tanh_cell)
        # c' = f ⊙ c + (1 - f) ⊙ g
        grad_f = grad_cell * (cell_prev - g)
        grad_g = grad_cell * (1 - f)
        grad_cell_prev = grad_cell * f
        # f, o = σ(z);  g = tanh(z)
        grad_gates = torch.cat((grad_f, grad_g, grad_o), 1)  # (B, 3H)
        grad_z = activate_gates_backward(grad_gates, sigmoids, self.gate_scales(grad_gates), out=out)
        grad_h_prev = self.hidden_gradient(grad_z, p, mask)
        return grad_z, None, (grad_h_prev, grad_cell_prev), {}
