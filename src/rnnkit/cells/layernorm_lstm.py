"""Layer-normalised LSTM (Ba, Kiros & Hinton 2016, "Layer Normalization", section 3.1/6.7).

Each gate's pre-activation is normalised over its H units with its own gain γ and bias β
(the bias of the cell: there is no ``bias_ih``/``bias_hh``, LN would cancel them), and the
cell state is normalised before the output non-linearity:

    a      = W_ih x + W_hh h                       (B, 4H), split into a_i, a_f, a_g, a_o
    LN(a)  = γ ⊙ (a - mean(a)) / sqrt(var(a) + ε) + β      over the H units of each gate
    i, f, o = σ(LN(a_i)), σ(LN(a_f)), σ(LN(a_o));   g = tanh(LN(a_g))
    c' = f ⊙ c + i ⊙ g
    h' = o ⊙ tanh(LN(c'))                          (the state carried on is the un-normalised c')

Parameters beyond the weights: ``ln_gates_weight``/``ln_gates_bias`` (4H,),
``ln_cell_weight``/``ln_cell_bias`` (H,).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .base import Cell, Params, State, sigmoid_grad, tanh_grad

EPS = 1e-5


def layer_norm(a: Tensor) -> tuple[Tensor, Tensor]:
    """Normalise the last dimension: returns ``(â, 1/σ)`` with â = (a - mean) / σ."""
    mean = a.mean(-1, keepdim=True)
    centred = a - mean
    inv_std = torch.rsqrt((centred * centred).mean(-1, keepdim=True) + EPS)
    return centred * inv_std, inv_std


def layer_norm_backward(grad_normed: Tensor, normed: Tensor, inv_std: Tensor) -> Tensor:
    """dL/da given dL/dâ, for â = (a - mean(a)) / σ(a) over the last dimension."""
    return inv_std * (
        grad_normed - grad_normed.mean(-1, keepdim=True) - normed * (grad_normed * normed).mean(-1, keepdim=True)
    )


class LayerNormSaved(NamedTuple):
    h_rec: Tensor
    gates_normed: Tensor  # (B, 4, H)
    gates_inv_std: Tensor  # (B, 4, 1)
    input_gate: Tensor
    forget_gate: Tensor
    cell_candidate: Tensor
    output_gate: Tensor
    cell_prev: Tensor
    cell_normed: Tensor
    cell_inv_std: Tensor
    tanh_cell: Tensor


class LayerNormLSTM(Cell):
    """Layer-norm LSTM cell. Options: ``forget_bias`` (initial β of the forget gate, default 1.0)."""

    name = "lstm_layernorm"
    gates = ("input_gate", "forget_gate", "cell_candidate", "output_gate")
    state_names = ("hidden", "cell_state")
    uses_bias = False
    Saved = LayerNormSaved

    def __init__(self, hidden_size: int, *, forget_bias: float = 1.0, **options):
        super().__init__(hidden_size, **options)
        self.forget_bias = float(forget_bias)

    def extra_parameters(self) -> dict[str, tuple[int, ...]]:
        H = self.hidden_size
        return {"ln_gates_weight": (4 * H,), "ln_gates_bias": (4 * H,), "ln_cell_weight": (H,), "ln_cell_bias": (H,)}

    @torch.no_grad()
    def reset_parameters(self, params: dict[str, Tensor]) -> None:
        super().reset_parameters(params)
        H = self.hidden_size
        params["ln_gates_weight"].fill_(1.0)
        params["ln_gates_bias"].zero_()
        params["ln_gates_bias"][H : 2 * H] = self.forget_bias
        params["ln_cell_weight"].fill_(1.0)
        params["ln_cell_bias"].zero_()

    def step(self, x_proj: Tensor, state: State, p: Params, mask: Tensor | None = None):
        h_prev, cell_prev = state
        H = self.hidden_size
        h_rec = self.recurrent_input(h_prev, mask)
        a = (x_proj + self.recurrent_projection(h_rec, p)).view(-1, 4, H)  # (B, 4, H)
        gates_normed, gates_inv_std = layer_norm(a)
        z = gates_normed * p.ln_gates_weight.view(4, H) + p.ln_gates_bias.view(4, H)
        z_i, z_f, z_g, z_o = z.unbind(1)
        input_gate = torch.sigmoid(z_i)
        forget_gate = torch.sigmoid(z_f)
        cell_candidate = torch.tanh(z_g)
        output_gate = torch.sigmoid(z_o)
        cell_state = forget_gate * cell_prev + input_gate * cell_candidate
        cell_normed, cell_inv_std = layer_norm(cell_state)
        tanh_cell = torch.tanh(cell_normed * p.ln_cell_weight + p.ln_cell_bias)
        hidden = output_gate * tanh_cell
        saved = LayerNormSaved(
            h_rec, gates_normed, gates_inv_std, input_gate, forget_gate, cell_candidate, output_gate,
            cell_prev, cell_normed, cell_inv_std, tanh_cell,
        )  # fmt: skip
        return (hidden, cell_state), saved

    def step_backward(self, grad_state: State, saved: LayerNormSaved, p: Params, mask: Tensor | None = None):
        grad_hidden, grad_cell = grad_state
        H = self.hidden_size
        _, gates_normed, gates_inv_std, i, f, g, o, cell_prev, cell_normed, cell_inv_std, tanh_cell = saved
        # h' = o ⊙ tanh(γ_c ⊙ ĉ + β_c)
        grad_o = grad_hidden * tanh_cell
        grad_cell_ln = grad_hidden * o * tanh_grad(tanh_cell)  # dL/d(γ_c ĉ + β_c)
        grad_ln_cell_weight = (grad_cell_ln * cell_normed).sum(0)
        grad_ln_cell_bias = grad_cell_ln.sum(0)
        # ĉ = LN(c')
        grad_cell = grad_cell + layer_norm_backward(grad_cell_ln * p.ln_cell_weight, cell_normed, cell_inv_std)
        # c' = f ⊙ c + i ⊙ g
        grad_cell_prev = grad_cell * f
        grad_z = torch.stack(
            (
                grad_cell * g * sigmoid_grad(i),
                grad_cell * cell_prev * sigmoid_grad(f),
                grad_cell * i * tanh_grad(g),
                grad_o * sigmoid_grad(o),
            ),
            1,
        )  # (B, 4, H), dL/dz for z = γ ⊙ â + β
        grad_ln_gates_weight = (grad_z * gates_normed).sum(0).reshape(-1)
        grad_ln_gates_bias = grad_z.sum(0).reshape(-1)
        # â = LN(a),  a = x_proj + h_rec @ W_hh^T
        grad_a = layer_norm_backward(grad_z * p.ln_gates_weight.view(4, H), gates_normed, gates_inv_std)
        grad_a = grad_a.reshape(-1, 4 * H)
        grad_h_prev = self.recurrent_input_backward(grad_a @ p.weight_hh, mask)
        grads = {
            "ln_gates_weight": grad_ln_gates_weight,
            "ln_gates_bias": grad_ln_gates_bias,
            "ln_cell_weight": grad_ln_cell_weight,
            "ln_cell_bias": grad_ln_cell_bias,
        }
        return grad_a, None, (grad_h_prev, grad_cell_prev), grads
