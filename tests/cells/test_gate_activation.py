"""The one-kernel gate activation (cells/base.activate_gates_), tanh as 2σ(2z) - 1 and the layer norm
without a gain, against torch."""

import pytest
import torch

from rnnkit import CELLS
from rnnkit.cells.base import activate_gates_, activate_gates_backward, tanh_from_sigmoid


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


@pytest.mark.parametrize("dtype, atol", [(torch.float32, 2.5e-7), (torch.float64, 1e-15)])
def test_tanh_from_sigmoid_matches_torch_tanh_over_the_whole_range(dtype, atol):
    infinities = torch.tensor([float("inf"), -float("inf")], dtype=dtype)
    z = torch.cat((torch.linspace(-40, 40, 4001, dtype=dtype), infinities))
    got = tanh_from_sigmoid(z)
    torch.testing.assert_close(got, torch.tanh(z), atol=atol, rtol=0)
    assert got.abs().max() <= 1  # saturates at ±1, never past it
    assert torch.isnan(tanh_from_sigmoid(torch.tensor([float("nan")], dtype=dtype))).all()


def test_tanh_from_sigmoid_leaves_its_input_and_differentiates_like_tanh():
    z = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    before = z.detach().clone()
    (grad,) = torch.autograd.grad(tanh_from_sigmoid(z).sum(), z)
    assert torch.equal(z.detach(), before)
    torch.testing.assert_close(grad, 1 - torch.tanh(z.detach()) ** 2, atol=1e-12, rtol=0)


def test_layer_norm_without_gain_gives_torch_numbers_exactly():
    # layer_norm hands the kernel a gain of ones when given none (a faster CPU path): the same numbers
    from rnnkit.cells.layernorm_lstm import layer_norm, unit_gain

    a = torch.randn(5, 4, 8) * 3 + 1
    got = layer_norm(a)
    torch.testing.assert_close(got.output, torch.nn.functional.layer_norm(a, (8,), eps=1e-5), atol=0, rtol=0)
    assert unit_gain(a) is unit_gain(torch.zeros(2, 8))  # made once per size and dtype
    assert layer_norm(a.double()).output.dtype == torch.float64


def test_tanh_from_sigmoid_is_torch_tanh_off_the_cpu(monkeypatch):
    """Off the CPU (here the meta device, which any machine has) one tanh kernel, not three."""
    calls = []
    tanh = torch.tanh
    monkeypatch.setattr(torch, "tanh", lambda z: calls.append(z.device.type) or tanh(z))
    out = tanh_from_sigmoid(torch.empty(4, 8, device="meta"))
    assert calls == ["meta"] and out.shape == (4, 8) and out.device.type == "meta"
    tanh_from_sigmoid(torch.zeros(2))
    assert calls == ["meta"]  # the CPU keeps 2σ(2z) - 1
