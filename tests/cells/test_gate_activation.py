"""The one-kernel gate activation (cells/base.activate_gates_) against torch's sigmoid and tanh."""

import pytest
import torch

from rnnkit import CELLS
from rnnkit.cells.base import activate_gates_, activate_gates_backward


def reference_gates(cell, z):
    """σ for every gate chunk, tanh for the cell candidate, chunk by chunk."""
    chunks = z.chunk(cell.num_gates, 1)
    return torch.cat(
        [torch.tanh(c) if name == "cell_candidate" else torch.sigmoid(c) for name, c in zip(cell.gates, chunks)], 1
    )


@pytest.mark.parametrize("name", ["lstm", "lstm_cifg", "lstm_layernorm"])
def test_one_sigmoid_gives_sigmoid_gates_and_tanh_candidate(name):
    cell = CELLS[name](hidden_size=5)
    z = torch.randn(7, cell.num_gates * 5) * 6
    s = activate_gates_(z.clone(), cell.gate_scales(z))
    g = cell.gates.index("cell_candidate")
    gates = s.clone()
    gates[:, g * 5 : (g + 1) * 5] = 2 * s[:, g * 5 : (g + 1) * 5] - 1
    torch.testing.assert_close(gates, reference_gates(cell, z), atol=4e-7, rtol=0)


@pytest.mark.parametrize("name", ["lstm", "lstm_cifg"])
def test_backward_equals_autograd_of_sigmoid_and_tanh_in_float64(name):
    cell = CELLS[name](hidden_size=4)
    z = torch.randn(3, cell.num_gates * 4, dtype=torch.float64, requires_grad=True)
    grad = torch.randn(3, cell.num_gates * 4, dtype=torch.float64)
    (expected,) = torch.autograd.grad(reference_gates(cell, z), z, grad)
    scales = cell.gate_scales(z)
    s = activate_gates_(z.detach().clone(), scales)
    out = torch.empty_like(grad)
    got = activate_gates_backward(grad, s, scales, out=out)
    assert got.data_ptr() == out.data_ptr()
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=1e-12)


def test_scales_are_made_once_per_dtype():
    cell = CELLS["lstm"](hidden_size=3)
    a = cell.gate_scales(torch.zeros(1))
    assert cell.gate_scales(torch.zeros(2)) is a
    assert cell.gate_scales(torch.zeros(1, dtype=torch.float64)).k.dtype == torch.float64
    assert a.k.tolist() == [1.0] * 6 + [2.0] * 3 + [1.0] * 3
