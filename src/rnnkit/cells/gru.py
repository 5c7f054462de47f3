"""Gated recurrent unit (Cho et al. 2014), in its two common forms.

``gru`` — reset after the recurrent matmul (PyTorch's and cuDNN's form, Keras ``reset_after=True``):

    r  = σ(W_ir x + b_ir + W_hr h + b_hr)          reset gate
    z  = σ(W_iz x + b_iz + W_hz h + b_hz)          update gate
    n  = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)) candidate
    h' = (1 - z) ⊙ n + z ⊙ h

``gru_v1`` — reset before the recurrent matmul (the paper's form, Keras ``reset_after=False``):

    n  = tanh(W_in x + b_in + W_hn (r ⊙ h) + b_hn)

Gate order r, z, n and parameter names match ``torch.nn.GRU``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from ..gemm import matmul
from .base import Cell, Params, State, sigmoid_grad, step_weight, tanh_from_sigmoid, tanh_grad


class GRUSaved(NamedTuple):
    h_rec: Tensor
    h_prev: Tensor
    reset_gate: Tensor
    update_gate: Tensor
    candidate: Tensor
    h_proj_n: Tensor  # W_hn h + b_hn


class GRU(Cell):
    """GRU cell, reset-after form (identical to ``torch.nn.GRU``)."""

    name = "gru"
    gates = ("reset_gate", "update_gate", "candidate")
    native_mode = "GRU"
    fold_recurrent_bias = False  # b_hn sits inside r ⊙ (W_hn h + b_hn)
    Saved = GRUSaved

    def step(self, x_proj: Tensor, state: State, p: Params, mask: Tensor | None = None):
        (h_prev,) = state
        h_rec = self.recurrent_input(h_prev, mask)
        x_r, x_z, x_n = x_proj.chunk(3, 1)
        h_r, h_z, h_n = self.recurrent_projection(h_rec, p).chunk(3, 1)  # each (B, H)
        reset_gate = torch.sigmoid(x_r + h_r)
        update_gate = torch.sigmoid(x_z + h_z)
        candidate = tanh_from_sigmoid(x_n + reset_gate * h_n)
        hidden = torch.addcmul(candidate, update_gate, h_prev - candidate)  # (1 - z) ⊙ n + z ⊙ h
        return (hidden,), GRUSaved(h_rec, h_prev, reset_gate, update_gate, candidate, h_n)

    def step_backward(self, grad_state: State, saved: GRUSaved, p: Params, mask: Tensor | None = None, out=None):
        (grad_hidden,) = grad_state
        _, h_prev, r, z, n, h_n = saved
        # h' = (1 - z) ⊙ n + z ⊙ h
        grad_h_direct = grad_hidden * z
        grad_n = grad_hidden - grad_h_direct  # dL/dh' ⊙ (1 - z)
        grad_z = grad_hidden * (h_prev - n)
        # n = tanh(x_n + r ⊙ h_n)
        grad_n_pre = tanh_grad(grad_n, n)
        grad_h_n = grad_n_pre * r
        grad_r = grad_n_pre * h_n
        # r = σ(x_r + h_r),  z = σ(x_z + h_z)
        grad_r_pre = sigmoid_grad(grad_r, r)
        grad_z_pre = sigmoid_grad(grad_z, z)
        grad_x_proj = torch.cat((grad_r_pre, grad_z_pre, grad_n_pre), 1, out=out)  # (B, 3H)
        grad_h_proj = torch.cat((grad_r_pre, grad_z_pre, grad_h_n), 1)  # (B, 3H)
        # h_proj = h_rec @ W_hh^T + b_hh
        grad_h_prev = grad_h_direct + self.hidden_gradient(grad_h_proj, p, mask)
        return grad_x_proj, grad_h_proj, (grad_h_prev,), {}


class GRUv1Saved(NamedTuple):
    h_rec: Tensor
    h_prev: Tensor
    reset_gate: Tensor
    update_gate: Tensor
    candidate: Tensor
    reset_h: Tensor  # r ⊙ h_rec, the input of W_hn


class GRUv1(Cell):
    """GRU cell, reset-before form (Cho et al. 2014; Keras ``reset_after=False``)."""

    name = "gru_v1"
    gates = ("reset_gate", "update_gate", "candidate")
    Saved = GRUv1Saved

    def step(self, x_proj: Tensor, state: State, p: Params, mask: Tensor | None = None):
        (h_prev,) = state
        H = self.hidden_size
        h_rec = self.recurrent_input(h_prev, mask)
        x_rz, x_n = x_proj[:, : 2 * H], x_proj[:, 2 * H :]
        w_rz = step_weight(p, "W_hrz^T", p.weight_hh[: 2 * H].t())  # (H, 2H)
        w_n = step_weight(p, "W_hn^T", p.weight_hh[2 * H :].t())  # (H, H)
        r_z = torch.sigmoid(matmul(h_rec, w_rz, x_rz))  # (B, 2H)
        reset_gate, update_gate = r_z.chunk(2, 1)
        reset_h = reset_gate * h_rec
        candidate = tanh_from_sigmoid(matmul(reset_h, w_n, x_n))
        hidden = torch.addcmul(candidate, update_gate, h_prev - candidate)  # (1 - z) ⊙ n + z ⊙ h
        return (hidden,), GRUv1Saved(h_rec, h_prev, reset_gate, update_gate, candidate, reset_h)

    def step_backward(self, grad_state: State, saved: GRUv1Saved, p: Params, mask: Tensor | None = None, out=None):
        (grad_hidden,) = grad_state
        H = self.hidden_size
        h_rec, h_prev, r, z, n, _ = saved
        w_rz = step_weight(p, "W_hrz", p.weight_hh[: 2 * H])  # (2H, H)
        w_n = step_weight(p, "W_hn", p.weight_hh[2 * H :])  # (H, H)
        # h' = (1 - z) ⊙ n + z ⊙ h
        grad_h_direct = grad_hidden * z
        grad_n = grad_hidden - grad_h_direct  # dL/dh' ⊙ (1 - z)
        grad_z = grad_hidden * (h_prev - n)
        # n = tanh(x_n + (r ⊙ h_rec) @ W_hn^T)
        grad_n_pre = tanh_grad(grad_n, n)
        grad_reset_h = matmul(grad_n_pre, w_n)
        grad_r = grad_reset_h * h_rec
        # r = σ(x_r + h_rec @ W_hr^T),  z = σ(x_z + h_rec @ W_hz^T)
        grad_rz_pre = torch.cat((sigmoid_grad(grad_r, r), sigmoid_grad(grad_z, z)), 1)  # (B, 2H)
        grad_h_rec = matmul(grad_rz_pre, w_rz, grad_reset_h * r)
        grad_h_prev = grad_h_direct + self.recurrent_input_backward(grad_h_rec, mask)
        return torch.cat((grad_rz_pre, grad_n_pre), 1, out=out), None, (grad_h_prev,), {}

    def weight_hh_grad(self, grad_h_proj: Tensor, saved: list[GRUv1Saved]) -> Tensor:
        """W_hr, W_hz multiply h_rec; W_hn multiplies r ⊙ h_rec: two GEMMs over all rows."""
        H = self.hidden_size
        h_rec = torch.cat([s.h_rec for s in saved])  # (N, H)
        reset_h = torch.cat([s.reset_h for s in saved])  # (N, H)
        return torch.cat((grad_h_proj[:, : 2 * H].t() @ h_rec, grad_h_proj[:, 2 * H :].t() @ reset_h))
