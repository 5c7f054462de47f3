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

import functools
from typing import NamedTuple

import torch
from torch import Tensor

from .base import Cell, Params, State, activate_gates_, activate_gates_backward, tanh_from_sigmoid, tanh_grad

EPS = 1e-5


class Normalised(NamedTuple):
    """LN(a) over the last dimension, and what its backward needs."""

    input: Tensor
    output: Tensor  # γ ⊙ â + β, or â without gain; â = (a - mean(a)) / σ, σ = sqrt(var(a) + ε)
    mean: Tensor
    inv_std: Tensor  # 1 / σ


def layer_norm(a: Tensor, gain: Tensor | None = None, bias: Tensor | None = None) -> Normalised:
    """Normalise the last dimension of ``a``, then ``γ ⊙ â + β`` if given: torch's kernel, one pass.

    Without a gain it hands the kernel a gain of ones: torch's CPU kernel takes a slower path without
    one (53 against 23 µs for the gates, (64, 4, 256), torch 2.13, 2 threads), with the same numbers.
    """
    if gain is None and a.device.type == "cpu":
        gain = unit_gain(a)
    output, mean, inv_std = torch.native_layer_norm(a, a.shape[-1:], gain, bias, EPS)
    return Normalised(a, output, mean, inv_std)


@functools.cache
def _ones(size: int, dtype: torch.dtype) -> Tensor:
    return torch.ones(size, dtype=dtype)


def unit_gain(a: Tensor) -> Tensor:
    """A gain of ones (H,) for the last dimension of the CPU tensor ``a`` (..., H), made once per size
    and dtype.

    >>> unit_gain(torch.zeros(2, 3)).tolist()
    [1.0, 1.0, 1.0]
    """
    return _ones(a.shape[-1], a.dtype)


def layer_norm_backward(
    grad_output: Tensor, ln: Normalised, gain: Tensor | None = None, bias: Tensor | None = None
) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """Given dL/dy for y = γ ⊙ â + β:  dL/da = (1/σ) ⊙ (dâ - mean(dâ) - â ⊙ mean(dâ ⊙ â)) with dâ = γ ⊙ dy,
    dL/dγ = Σ_batch dy ⊙ â, dL/dβ = Σ_batch dy; by torch's fused kernel."""
    has_affine = gain is not None
    return torch.ops.aten.native_layer_norm_backward(
        grad_output, ln.input, ln.input.shape[-1:], ln.mean, ln.inv_std, gain, bias, [True, has_affine, has_affine]
    )


class LayerNormSaved(NamedTuple):
    h_rec: Tensor
    gates_ln: Normalised  # of a, (B, 4, H); without its output â (the step wrote z over it)
    input_gate: Tensor
    forget_gate: Tensor
    cell_candidate: Tensor
    output_gate: Tensor
    cell_prev: Tensor
    cell_ln: Normalised  # of c', (B, H)
    tanh_cell: Tensor
    sigmoids: Tensor  # σ(k z) of activate_gates_, (B, 4H)


class LayerNormLSTM(Cell):
    """Layer-norm LSTM cell. Options: ``forget_bias`` (initial β of the forget gate, default 1.0) or
    ``chrono_init``."""

    name = "lstm_layernorm"
    gates = ("input_gate", "forget_gate", "cell_candidate", "output_gate")
    state_names = ("hidden", "cell_state")
    uses_bias = False
    Saved = LayerNormSaved

    def extra_parameters(self) -> dict[str, tuple[int, ...]]:
        H = self.hidden_size
        return {"ln_gates_weight": (4 * H,), "ln_gates_bias": (4 * H,), "ln_cell_weight": (H,), "ln_cell_bias": (H,)}

    @torch.no_grad()
    def reset_parameters(self, params: dict[str, Tensor]) -> None:
        super().reset_parameters(params)
        H = self.hidden_size
        params["ln_gates_weight"].fill_(1.0)
        params["ln_gates_bias"].zero_()
        for gate, bias in self.initial_gate_biases().items():  # β of the forget (and input) gate
            index = self.gates.index(gate)
            params["ln_gates_bias"][index * H : (index + 1) * H] = bias
        params["ln_cell_weight"].fill_(1.0)
        params["ln_cell_bias"].zero_()

    def step(self, x_proj: Tensor, state: State, p: Params, mask: Tensor | None = None):
        h_prev, cell_prev = state
        H = self.hidden_size
        h_rec = self.recurrent_input(h_prev, mask)
        a = self.gate_preactivations(x_proj, h_rec, p).view(-1, 4, H)  # (B, 4, H)
        gates_ln = layer_norm(a)
        # z = γ ⊙ â + β, written over â (backward recomputes â from a and the statistics)
        a_hat = gates_ln.output.view(-1, 4 * H)
        z = torch.addcmul(p.ln_gates_bias, a_hat, p.ln_gates_weight, out=None if torch.is_grad_enabled() else a_hat)
        gates_ln = gates_ln._replace(output=None)
        sigmoids = activate_gates_(z, self.gate_scales(z))  # (B, 4H), σ(z) for i, f, o and σ(2z) for g
        input_gate, forget_gate, sigmoid_g, output_gate = sigmoids.chunk(4, 1)
        cell_candidate = 2 * sigmoid_g - 1  # tanh(z_g) = 2σ(2z_g) - 1
        cell_state = torch.addcmul(forget_gate * cell_prev, input_gate, cell_candidate)  # f ⊙ c + i ⊙ g
        cell_ln = layer_norm(cell_state, p.ln_cell_weight, p.ln_cell_bias)  # γ_c ⊙ ĉ + β_c
        tanh_cell = tanh_from_sigmoid(cell_ln.output)
        hidden = output_gate * tanh_cell
        saved = LayerNormSaved(
            h_rec,
            gates_ln,
            input_gate,
            forget_gate,
            cell_candidate,
            output_gate,
            cell_prev,
            cell_ln,
            tanh_cell,
            sigmoids,
        )
        return (hidden, cell_state), saved

    def step_backward(self, grad_state: State, saved: LayerNormSaved, p: Params, mask: Tensor | None = None, out=None):
        grad_hidden, grad_cell = grad_state
        H = self.hidden_size
        _, gates_ln, i, f, g, o, cell_prev, cell_ln, tanh_cell, sigmoids = saved
        # The (B, 4H) work happens in place in ``out`` (the engine's slice for this step's dL/da), not in
        # fresh (B, 4H) tensors: no cat, and the sigmoid backward and the gain product write over their input.
        grad_gates = torch.empty_like(sigmoids) if out is None else out  # (B, 4H): dL/d(i, f, g, o)
        grad_i, grad_f, grad_g, grad_o = grad_gates.chunk(4, 1)
        # h' = o ⊙ tanh(γ_c ⊙ ĉ + β_c)
        torch.mul(grad_hidden, tanh_cell, out=grad_o)
        grad_cell_ln = tanh_grad(grad_hidden * o, tanh_cell)  # dL/d(γ_c ⊙ ĉ + β_c)
        # γ_c ⊙ LN(c') + β_c
        grad_cell_normed, grad_ln_cell_weight, grad_ln_cell_bias = layer_norm_backward(
            grad_cell_ln, cell_ln, p.ln_cell_weight, p.ln_cell_bias
        )
        grad_cell = grad_cell + grad_cell_normed
        # c' = f ⊙ c + i ⊙ g
        torch.mul(grad_cell, g, out=grad_i)
        torch.mul(grad_cell, cell_prev, out=grad_f)
        torch.mul(grad_cell, i, out=grad_g)
        grad_cell_prev = grad_cell * f
        # i, f, o = σ(z);  g = tanh(z)
        grad_z = activate_gates_backward(grad_gates, sigmoids, self.gate_scales(grad_gates), out=grad_gates)
        # z = γ ⊙ â + β
        a_hat = torch.sub(gates_ln.input, gates_ln.mean).mul_(gates_ln.inv_std).view(-1, 4 * H)  # â
        grad_ln_gates_weight = a_hat.mul_(grad_z).sum(0)
        grad_ln_gates_bias = grad_z.sum(0)
        # â = LN(a),  a = x_proj + h_rec @ W_hh^T
        grad_a, _, _ = layer_norm_backward(grad_z.mul_(p.ln_gates_weight).view(-1, 4, H), gates_ln)
        grad_a = grad_a.view(-1, 4 * H)
        grad_h_prev = self.hidden_gradient(grad_a, p, mask)
        grads = {
            "ln_gates_weight": grad_ln_gates_weight,
            "ln_gates_bias": grad_ln_gates_bias,
            "ln_cell_weight": grad_ln_cell_weight,
            "ln_cell_bias": grad_ln_cell_bias,
        }
        return grad_a, None, (grad_h_prev, grad_cell_prev), grads
