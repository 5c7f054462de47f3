"""The Recurrent layer: parity with torch's modules, lengths, packed input, bad input, seeds."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnkit

TORCH_MODULES = {
    "lstm": lambda *a, **k: nn.LSTM(*a, **k),
    "gru": lambda *a, **k: nn.GRU(*a, **k),
    "rnn_tanh": lambda *a, **k: nn.RNN(*a, nonlinearity="tanh", **k),
    "rnn_relu": lambda *a, **k: nn.RNN(*a, nonlinearity="relu", **k),
}
BACKENDS = ("native", "compiled", "fused", "reference")


def torch_run(module, x, state, lengths):
    """torch's module on (B, T, I), through its PackedSequence path when lengths are given."""
    if lengths is None:
        return module(x, state)
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, final = module(packed, state)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out, final


def flat(state):
    return list(state) if isinstance(state, tuple) else [state]


@pytest.mark.parametrize("lengths", [None, [7, 3, 1, 7, 5]], ids=["full", "variable"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell", sorted(TORCH_MODULES))
def test_every_backend_matches_torch_module_with_copied_weights(cell, backend, lengths):
    """Acceptance 2: outputs, final states and parameter gradients within 1e-5 in float32."""
    module = TORCH_MODULES[cell](6, 8, num_layers=2, bidirectional=True, batch_first=True)
    layer = rnnkit.Recurrent(cell, 6, 8, num_layers=2, bidirectional=True, backend=backend)
    layer.load_state_dict(module.state_dict())
    x = torch.randn(5, 7, 6)
    n_state = 2 if cell == "lstm" else 1
    state = tuple(0.3 * torch.randn(4, 5, 8) for _ in range(n_state))
    state_arg = state if n_state == 2 else state[0]
    lengths_t = None if lengths is None else torch.tensor(lengths)

    x_t, x_r = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_t, final_t = torch_run(module, x_t, state_arg, lengths_t)
    out_r, final_r = layer(x_r, state_arg, lengths=lengths_t)
    torch.testing.assert_close(out_r, out_t, atol=1e-5, rtol=1e-5)
    for a, b in zip(flat(final_r), flat(final_t)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)

    weights = [torch.randn_like(out_t)] + [torch.randn_like(s) for s in flat(final_t)]
    for out, final in ((out_t, final_t), (out_r, final_r)):
        sum((o * w).sum() for o, w in zip([out, *flat(final)], weights)).backward()
    torch.testing.assert_close(x_r.grad, x_t.grad, atol=1e-5, rtol=1e-5)
    torch_grads = dict(module.named_parameters())
    for name, p in layer.named_parameters():
        torch.testing.assert_close(p.grad, torch_grads[name].grad, atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize("backend", BACKENDS)
def test_packed_sequence_in_gives_packed_sequence_out(backend):
    module = nn.LSTM(4, 5, batch_first=True)
    layer = rnnkit.Recurrent("lstm", 4, 5, backend=backend)
    layer.load_state_dict(module.state_dict())
    x, lengths = torch.randn(3, 6, 4), torch.tensor([2, 6, 4])
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out_r, (h_r, c_r) = layer(packed)
    out_t, (h_t, c_t) = module(packed)
    assert isinstance(out_r, nn.utils.rnn.PackedSequence)
    torch.testing.assert_close(out_r.data, out_t.data, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(h_r, h_t, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(c_r, c_t, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("cell", sorted(rnnkit.CELLS))
def test_final_state_is_last_valid_step_and_padding_is_zero(cell):
    """Each sequence run alone gives the same output and final state as inside a padded batch,
    and the backward direction starts at each sequence's own last step."""
    layer = rnnkit.Recurrent(cell, 3, 4, num_layers=2, bidirectional=True).double()
    x = torch.randn(3, 6, 3, dtype=torch.float64)
    lengths = [6, 2, 4]
    out, final = layer(x, lengths=torch.tensor(lengths))
    for j, n in enumerate(lengths):
        out_j, final_j = layer(x[j : j + 1, :n])
        torch.testing.assert_close(out[j, :n], out_j[0])
        assert out[j, n:].abs().max().item() == 0 if n < 6 else True
        for a, b in zip(flat(final), flat(final_j)):
            torch.testing.assert_close(a[:, j], b[:, 0])


def test_batch_first_false_takes_time_major_input():
    layer = rnnkit.Recurrent("gru", 3, 4, batch_first=False)
    x = torch.randn(6, 2, 3)  # (T, B, I)
    out, h = layer(x)
    assert out.shape == (6, 2, 4) and h.shape == (1, 2, 4)
    torch.testing.assert_close(out[-1], h[0])


def test_state_dict_loads_into_torch_module_both_ways():
    layer = rnnkit.Recurrent("gru", 3, 4, num_layers=2, bidirectional=True)
    module = nn.GRU(3, 4, num_layers=2, bidirectional=True, batch_first=True)
    module.load_state_dict(layer.state_dict())
    x = torch.randn(2, 5, 3)
    torch.testing.assert_close(layer(x)[0], module(x)[0])


def test_auto_backend_picks_native_only_when_exact():
    assert rnnkit.Recurrent("lstm", 2, 3).backend == "native"
    assert rnnkit.Recurrent("gru", 2, 3).explain().startswith("native")
    dropped = rnnkit.Recurrent("lstm", 2, 3, recurrent_dropout=0.2)
    assert dropped.backend == "compiled" and "recurrent dropout" in dropped.explain()
    peephole = rnnkit.Recurrent("lstm_peephole", 2, 3)
    assert peephole.backend == "compiled" and "no built-in" in peephole.explain()
    assert "one C++ call per direction for all time steps" in peephole.explain()
    with pytest.raises(ValueError, match="no built-in 'gru_v1'"):
        rnnkit.Recurrent("gru_v1", 2, 3, backend="native")


def test_registered_user_cell_runs_on_reference_engine():
    class MinimalRNN(rnnkit.Cell):  # h' = tanh(x_proj + W h) with no step_backward
        name = "minimal_test_cell"
        gates = ("hidden",)

        def step(self, x_proj, state, p, mask=None):
            (h,) = state
            return (torch.tanh(x_proj + self.recurrent_projection(self.recurrent_input(h, mask), p)),), None

    rnnkit.cells.register(MinimalRNN)
    try:
        layer = rnnkit.Recurrent("minimal_test_cell", 2, 3, num_layers=2, bidirectional=True)
        assert layer.backend == "reference" and "no step_backward" in layer.explain()
        out, h = layer(torch.randn(4, 5, 2), lengths=torch.tensor([5, 1, 3, 2]))
        out.sum().backward()
        assert out.shape == (4, 5, 6) and layer.weight_hh_l1_reverse.grad is not None
        with pytest.raises(ValueError, match="step_backward"):
            rnnkit.Recurrent("minimal_test_cell", 2, 3, backend="fused")
    finally:
        rnnkit.CELLS.pop("minimal_test_cell")


def test_orthogonal_recurrent_init_and_forget_bias():
    layer = rnnkit.Recurrent("lstm", 3, 4, recurrent_init="orthogonal", forget_bias=2.0)
    for block in layer.weight_hh_l0.detach().split(4):
        torch.testing.assert_close(block @ block.t(), torch.eye(4), atol=1e-5, rtol=0)
    total = (layer.bias_ih_l0 + layer.bias_hh_l0).detach()
    assert torch.all(total[4:8] == 2.0)
    cifg = rnnkit.Recurrent("lstm_cifg", 3, 4, forget_bias=3.0)  # gates f, g, o: f is the first chunk
    assert torch.all((cifg.bias_ih_l0 + cifg.bias_hh_l0)[:4] == 3.0)
    layernorm = rnnkit.Recurrent("lstm_layernorm", 3, 4)  # its bias is the LN beta of each gate
    assert torch.all(layernorm.ln_gates_bias_l0[4:8] == 1.0) and not hasattr(layernorm, "bias_ih_l0")


@pytest.mark.parametrize("cell, forget, input_gate", [("lstm", 1, 0), ("lstm_peephole", 1, 0), ("lstm_cifg", 0, None)])
def test_chrono_init_spreads_forget_times_over_1_to_T_max(cell, forget, input_gate):
    torch.manual_seed(0)
    H, T_max = 256, 200
    layer = rnnkit.Recurrent(cell, 3, H, chrono_init=T_max)
    bias = (layer.bias_ih_l0 + layer.bias_hh_l0).detach().view(-1, H)  # (G, H)
    times = bias[forget].exp()  # u = e^b ~ U(1, T_max - 1): the unit's forgetting time 1/(1 - f) ≈ 1 + u
    assert times.min() >= 1 and times.max() <= T_max - 1 and times.max() > 0.8 * T_max
    assert abs(times.mean().item() - T_max / 2) < 15
    if input_gate is not None:
        torch.testing.assert_close(bias[input_gate], -bias[forget])
    layernorm = rnnkit.Recurrent("lstm_layernorm", 3, H, chrono_init=T_max)
    assert layernorm.ln_gates_bias_l0[H : 2 * H].exp().max() > 0.8 * T_max


# ---------------------------------------------------------------- acceptance 3: bad input
@pytest.fixture
def lstm():
    return rnnkit.Recurrent("lstm", 4, 5, num_layers=2)


def test_wrong_feature_size_names_expected_shape(lstm):
    with pytest.raises(ValueError, match=r"\(B, T, I\) with I=4.*3 features"):
        lstm(torch.randn(2, 6, 3))


def test_wrong_rank_names_expected_shape(lstm):
    with pytest.raises(ValueError, match=r"\(B, T, I\).*Received shape \(6, 4\)"):
        lstm(torch.randn(6, 4))


def test_lengths_longer_than_T_are_refused(lstm):
    with pytest.raises(ValueError, match=r"1\.\.T=6.*\[7, 2\]"):
        lstm(torch.randn(2, 6, 4), lengths=torch.tensor([7, 2]))


def test_zero_length_is_refused(lstm):
    with pytest.raises(ValueError, match=r"1\.\.T=6.*\[0, 2\]"):
        lstm(torch.randn(2, 6, 4), lengths=torch.tensor([0, 2]))


def test_lengths_of_wrong_shape_name_expected_shape(lstm):
    with pytest.raises(ValueError, match=r"lengths of shape \(2,\)"):
        lstm(torch.randn(2, 6, 4), lengths=torch.tensor([6, 2, 3]))


def test_state_of_wrong_shape_names_expected_shape(lstm):
    bad = (torch.zeros(1, 2, 5), torch.zeros(1, 2, 5))
    with pytest.raises(ValueError, match=r"\(L\*D, B, H\) = \(2, 2, 5\).*\(1, 2, 5\)"):
        lstm(torch.randn(2, 6, 4), bad)
    with pytest.raises(ValueError, match=r"\(h, c\) tuple"):
        lstm(torch.randn(2, 6, 4), torch.zeros(2, 2, 5))


def test_input_dtype_unlike_the_weights_is_named(lstm):
    with pytest.raises(ValueError, match=r"dtype torch.float32.*Received torch.float64"):
        lstm(torch.randn(2, 6, 4, dtype=torch.float64))


def test_unknown_cell_lists_known_cells():
    with pytest.raises(ValueError, match=r"Unknown cell 'lstn'.*'gru'.*'lstm'"):
        rnnkit.Recurrent("lstn", 2, 3)


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"backend": "cudnn"}, r"Expected backend one of .*Received: backend='cudnn'"),
        ({"dropout": 1.5}, r"dropout in \[0, 1\)"),
        ({"activation": "gelu", "cell": "rnn_tanh"}, r"activation one of \['relu', 'tanh'\]"),
        ({"recurrent_init": "xavier"}, r"recurrent_init one of"),
        ({"hidden_size": 0}, r"hidden_size a positive integer"),
        ({"forget_bias": 2.0, "cell": "gru"}, r"forget_bias applies to cells with a forget gate; 'gru'"),
        ({"chrono_init": 100, "cell": "rnn_tanh"}, r"chrono_init applies to cells with a forget gate"),
        ({"chrono_init": 2}, r"chrono_init as the longest dependency in steps, an integer of at least 3"),
        ({"chrono_init": 100, "forget_bias": 1.0}, r"forget_bias or chrono_init, not both"),
    ],
)
def test_bad_options_list_accepted_values(kwargs, pattern):
    args = {"cell": "lstm", "input_size": 2, "hidden_size": 3, **kwargs}
    with pytest.raises(ValueError, match=pattern):
        rnnkit.Recurrent(**args)


# ---------------------------------------------------------------- acceptance 4: seeds
@pytest.mark.parametrize("cell", ["lstm", "gru_v1", "lstm_layernorm"])
def test_same_seed_gives_same_outputs_and_gradients(cell):
    def run(seed):
        torch.manual_seed(seed)
        layer = rnnkit.Recurrent(cell, 3, 4, num_layers=2, dropout=0.3, recurrent_dropout=0.2)
        x = torch.randn(2, 5, 3)
        out, _ = layer(x)
        out.sum().backward()
        return out.detach(), [p.grad for p in layer.parameters()]

    (out_a, grads_a), (out_b, grads_b), (out_c, _) = run(7), run(7), run(8)
    assert torch.equal(out_a, out_b) and all(torch.equal(a, b) for a, b in zip(grads_a, grads_b))
    assert not torch.equal(out_a, out_c)


def test_eval_mode_turns_dropout_off():
    layer = rnnkit.Recurrent("lstm", 3, 4, num_layers=2, dropout=0.5, recurrent_dropout=0.5).eval()
    x = torch.randn(2, 5, 3)
    torch.testing.assert_close(layer(x)[0], layer(x)[0])


@pytest.mark.parametrize("cell", sorted(rnnkit.CELLS))
def test_step_by_step_equals_one_call_over_the_sequence(cell):
    """Recurrent.step (generation: one compiled loop call per layer under no_grad) against forward."""
    torch.manual_seed(0)
    layer = rnnkit.Recurrent(cell, 5, 6, num_layers=2).eval()
    x = torch.randn(3, 7, 5)
    expected, expected_final = layer(x)
    state, outputs = None, []
    with torch.no_grad():
        for t in range(7):
            out, state = layer.step(x[:, t], state)
            outputs.append(out)
    torch.testing.assert_close(torch.stack(outputs, 1), expected, atol=1e-5, rtol=1e-5)
    for a, b in zip(flat(state), flat(expected_final)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    with torch.enable_grad():  # with autograd on, step runs forward on a length-1 sequence: gradients flow
        out, _ = layer.step(x[:, 0].clone().requires_grad_())
        assert out.requires_grad


def test_step_refuses_bidirectional_layers_and_misshapen_input():
    with pytest.raises(ValueError, match="a bidirectional layer needs the whole sequence"):
        rnnkit.Recurrent("gru", 2, 3, bidirectional=True).step(torch.randn(4, 2))
    with pytest.raises(ValueError, match=r"Expected x of shape \(B, I\) with I=2. Received \(4, 1, 2\)"):
        rnnkit.Recurrent("gru", 2, 3).step(torch.randn(4, 1, 2))
    with torch.no_grad(), pytest.raises(ValueError, match="I=2 features. Received shape \\(4, 3\\)"):
        rnnkit.Recurrent("lstm_cifg", 2, 3).step(torch.randn(4, 3))


@pytest.mark.parametrize("backend", ["fused", "compiled"])
def test_the_two_bias_gradients_are_equal_and_never_one_tensor(backend):
    """b_ih and b_hh of an LSTM get the same gradient, summed once: each bias still gets its own tensor,
    so that an in-place update of one gradient (clipping, an optimizer) leaves the other alone."""
    torch.manual_seed(0)
    layer = rnnkit.Recurrent("lstm", 3, 4, backend=backend)
    out, _ = layer(torch.randn(2, 5, 3))
    out.square().sum().backward()
    grad_ih, grad_hh = layer.bias_ih_l0.grad, layer.bias_hh_l0.grad
    torch.testing.assert_close(grad_ih, grad_hh)
    assert grad_ih.untyped_storage().data_ptr() != grad_hh.untyped_storage().data_ptr()
    before = grad_hh.clone()
    grad_ih.mul_(0.5)
    torch.testing.assert_close(grad_hh, before)
