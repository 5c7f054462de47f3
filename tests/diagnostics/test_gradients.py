"""Gradient flow through time: per-step norms against an independent autograd loop, warnings, spectra, CLI."""

from __future__ import annotations

import csv

import pytest
import torch
from typer.testing import CliRunner

import rnnkit
from rnnkit.commands.diagnose import app
from rnnkit.demo import adding_batch
from rnnkit.diagnostics import gradient_flow, plot_gradient_flow, recurrent_spectra


def _readout(H: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(H, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _torch_cells(layer: rnnkit.Recurrent, kind) -> list[torch.nn.Module]:
    """torch.nn.LSTMCell/GRUCell per layer with the layer's weights copied in."""
    cells = []
    for index in range(layer.num_layers):
        p = layer.layer_parameters(index)
        cell = kind(p["weight_ih"].shape[1], layer.hidden_size).double()
        cell.load_state_dict({k: v.detach().clone() for k, v in p.items()})
        cells.append(cell)
    return cells


def _reference_norms(cells, x, w, loss):
    """Plain autograd loop over torch's cells, one sequence at a time; retain_grad on every h_t."""
    B, T, _ = x.shape
    L = len(cells)
    sums, counts = torch.zeros(L, T, dtype=torch.float64), torch.zeros(T)
    for b in range(B):
        hs, state = [[] for _ in range(L)], [None] * L
        total = 0.0
        for t in range(T):
            inp = x[b : b + 1, t]  # (1, I)
            for index, cell in enumerate(cells):
                state[index] = cell(inp, state[index])
                h = state[index][0] if isinstance(state[index], tuple) else state[index]
                h.retain_grad()
                hs[index].append(h)
                inp = h
            if loss == "sum":
                total = total + (inp @ w).sum()
        if loss == "last":
            total = (inp @ w).sum()
        total.backward()
        for index in range(L):
            for t, h in enumerate(hs[index]):
                sums[index, t] += h.grad.norm()
        counts[:T] += 1
    return sums / counts


def test_norms_equal_a_plain_autograd_loop_over_torch_lstm_cells_for_each_layer():
    torch.manual_seed(0)
    layer = rnnkit.Recurrent("lstm", 3, 5, num_layers=2).double()
    x = torch.randn(4, 12, 3, dtype=torch.float64)
    w = _readout(5)
    flow = gradient_flow(layer, x, loss="last", head=lambda h: h @ w)
    expected = _reference_norms(_torch_cells(layer, torch.nn.LSTMCell), x, w, "last")
    torch.testing.assert_close(flow.norms, expected, rtol=1e-10, atol=1e-14)


def test_norms_with_lengths_and_summed_loss_equal_a_per_sequence_loop_over_torch_gru_cells():
    torch.manual_seed(1)
    layer = rnnkit.Recurrent("gru", 2, 4).double()
    x = torch.randn(3, 9, 2, dtype=torch.float64)
    lengths = torch.tensor([9, 4, 6])
    w = _readout(4)
    flow = gradient_flow(layer, x, lengths=lengths, loss="sum", head=lambda h: h @ w)
    cells = _torch_cells(layer, torch.nn.GRUCell)
    # each sequence on its own, cut to its length; the mean at step t over the sequences still running
    sums, counts = torch.zeros(9, dtype=torch.float64), torch.zeros(9)
    for b, n in enumerate(lengths.tolist()):
        sums[:n] += _reference_norms(cells, x[b : b + 1, :n], w, "sum")[0]
        counts[:n] += 1
    torch.testing.assert_close(flow.norms[0], sums / counts, rtol=1e-10, atol=1e-14)


def _adding_input(T: int) -> torch.Tensor:
    x, _, _ = adding_batch(8, T, torch.Generator().manual_seed(0))
    return x  # (8, T, 2)


def test_vanishing_warning_fires_for_tanh_rnn_with_small_recurrent_weights():
    torch.manual_seed(0)
    layer = rnnkit.Recurrent("rnn_tanh", 2, 16)
    with torch.no_grad():
        layer.weight_hh_l0.mul_(0.5 / torch.linalg.svdvals(layer.weight_hh_l0)[0])  # spectral norm 0.5
    flow = gradient_flow(layer, _adding_input(50))
    assert flow.ratio[0] < 0.5**40  # |dh_t/dh_{t-1}| <= 0.5 every step
    assert flow.decay_per_step[0] < 0.5
    assert any(w.startswith("vanishing") for w in flow.warnings)


def test_on_the_same_input_the_warning_fires_for_the_small_weight_tanh_rnn_and_not_for_the_lstm():
    # Acceptance 1 as written.  T=20: an untrained LSTM with forget bias 1 keeps about 0.8 of the
    # gradient per step back, so beyond ~25 steps it too falls below the 1e-3 threshold (the README
    # and the next test say so); the small-weight tanh RNN keeps at most 0.5 per step.
    x = _adding_input(20)
    torch.manual_seed(0)
    tanh = rnnkit.Recurrent("rnn_tanh", 2, 16)
    with torch.no_grad():
        tanh.weight_hh_l0.mul_(0.5 / torch.linalg.svdvals(tanh.weight_hh_l0)[0])  # spectral norm 0.5
    torch.manual_seed(0)
    lstm = rnnkit.Recurrent("lstm", 2, 16)  # forget bias 1, the default
    tanh_flow, lstm_flow = gradient_flow(tanh, x), gradient_flow(lstm, x)
    assert any(w.startswith("vanishing") for w in tanh_flow.warnings)
    assert lstm_flow.warnings == [] and lstm_flow.ratio[0] > 1e-3


def test_lstm_keeps_gradients_longer_than_a_tanh_rnn_and_with_an_open_forget_gate_does_not_vanish():
    x = _adding_input(50)
    torch.manual_seed(0)
    tanh = gradient_flow(rnnkit.Recurrent("rnn_tanh", 2, 16), x)
    torch.manual_seed(0)
    lstm = gradient_flow(rnnkit.Recurrent("lstm", 2, 16), x)  # forget bias 1 (the default)
    assert lstm.decay_per_step[0] > tanh.decay_per_step[0] + 0.1
    assert lstm.ratio[0] > 1e3 * tanh.ratio[0]
    torch.manual_seed(0)
    open_gate = gradient_flow(rnnkit.Recurrent("lstm", 2, 16, forget_bias=3.0), x)
    assert open_gate.ratio[0] > 1e-3 and open_gate.warnings == []


def test_exploding_warning_fires_for_relu_rnn_with_large_recurrent_weights():
    torch.manual_seed(0)
    layer = rnnkit.Recurrent("rnn_relu", 2, 16)
    with torch.no_grad():
        layer.weight_hh_l0.copy_(1.5 * torch.eye(16))  # positive inputs keep units on: Jacobian 1.5 I
    flow = gradient_flow(layer, _adding_input(50))
    assert flow.decay_per_step[0] > 1.4
    assert any(w.startswith("exploding") for w in flow.warnings)
    assert not any(
        w.startswith("exploding") for w in gradient_flow(layer, _adding_input(50), exploding_threshold=1e12).warnings
    )


def test_singular_values_and_spectral_radius_match_torch_linalg_for_each_gate_block():
    torch.manual_seed(0)
    layer = rnnkit.Recurrent("gru", 3, 6, num_layers=2)
    singular_values, radii = recurrent_spectra(layer)
    for index in range(2):
        W = layer.layer_parameters(index)["weight_hh"].detach().double()
        torch.testing.assert_close(singular_values[index]["weight_hh"], torch.linalg.svdvals(W))
        for gate, block in zip(("reset_gate", "update_gate", "candidate"), W.split(6, 0)):
            torch.testing.assert_close(singular_values[index][gate], torch.linalg.svdvals(block))
            assert radii[index][gate] == pytest.approx(float(torch.linalg.eigvals(block).abs().max()))


def test_bad_input_shape_gives_a_value_error_naming_the_expected_shape():
    layer = rnnkit.Recurrent("lstm", 3, 4)
    with pytest.raises(ValueError, match=r"\(B, T, 3\).*Received: \(2, 5, 7\)"):
        gradient_flow(layer, torch.randn(2, 5, 7))
    with pytest.raises(ValueError, match=r"\(B, T, I\)"):
        gradient_flow(layer, torch.randn(5, 3))
    with pytest.raises(ValueError, match="loss"):
        gradient_flow(layer, torch.randn(2, 5, 3), loss="mean")


def test_plot_writes_a_png(tmp_path):
    x = torch.randn(2, 6, 3)
    flows = {c: gradient_flow(rnnkit.Recurrent(c, 3, 4), x) for c in ("rnn_tanh", "gru")}
    path = plot_gradient_flow(flows, tmp_path / "flow.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_prints_the_table_and_writes_png_and_csv(tmp_path):
    result = CliRunner().invoke(
        app,
        ["gradients", "--cells", "rnn_tanh,lstm", "--T", "12", "--hidden", "4", "--seed", "0", "--out", str(tmp_path)],
    )
    assert result.exit_code == 0, result.output
    assert "rnn_tanh" in result.output and "lstm" in result.output
    assert (tmp_path / "gradient_flow.png").stat().st_size > 1000
    with (tmp_path / "gradient_flow.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 12 and {r["cell"] for r in rows} == {"rnn_tanh", "lstm"}
    assert all(float(r["grad_norm"]) > 0 for r in rows)
