"""Gate activations against the layer's own forward and torch's equations, statistics by hand, plots, errors."""

from __future__ import annotations

import csv

import pytest
import torch

import rnnkit
from rnnkit.diagnostics.gates import (
    GateActivations,
    gate_activations,
    gate_names,
    gate_statistics,
    plot_gate_heatmaps,
    plot_gate_trace,
)


@pytest.mark.parametrize("cell", ["lstm", "gru", "lstm_peephole"])
def test_hidden_states_from_the_step_loop_equal_the_layer_output_and_final_state(cell):
    torch.manual_seed(0)
    layer = rnnkit.Recurrent(cell, 3, 8, num_layers=2)
    x, lengths = torch.randn(4, 7, 3), torch.tensor([7, 3, 5, 1])
    acts = gate_activations(layer, x, lengths)
    out, final = layer(x, lengths=lengths)
    h_n = final[0] if isinstance(final, tuple) else final
    torch.testing.assert_close(acts.hidden[-1], out, atol=1e-6, rtol=0)
    last = acts.hidden[-1][torch.arange(4), lengths - 1]  # (B, H) at each sequence's last valid step
    torch.testing.assert_close(last, h_n[-1], atol=1e-6, rtol=0)
    if cell != "gru":
        c_last = acts.cell_state[-1][torch.arange(4), lengths - 1]
        torch.testing.assert_close(c_last, final[1][-1], atol=1e-6, rtol=0)
    assert all(v.shape == (4, 7, 8) for per_layer in acts.gates for v in per_layer.values())
    assert float(acts.gates[0][acts.gate_names[0]][1, 3:].abs().max()) == 0.0  # zero past the length


def test_first_step_gates_equal_torch_lstm_equations():
    torch.manual_seed(1)
    layer = rnnkit.Recurrent("lstm", 3, 8)
    x = torch.randn(2, 4, 3)
    acts = gate_activations(layer, x)
    p = layer.layer_parameters(0)
    z = x[:, 0] @ p["weight_ih"].t() + p["bias_ih"] + p["bias_hh"]  # h_0 = 0
    z_i, z_f, _, z_o = z.chunk(4, 1)
    for name, pre in (("input_gate", z_i), ("forget_gate", z_f), ("output_gate", z_o)):
        torch.testing.assert_close(acts.gates[0][name][:, 0], torch.sigmoid(pre), atol=1e-6, rtol=0)


def test_gate_names_are_the_sigmoid_gates_of_each_cell():
    layer = rnnkit.Recurrent("lstm_cifg", 2, 4)
    assert gate_names(layer.cell) == ("forget_gate", "output_gate")
    assert gate_activations(layer, torch.randn(1, 3, 2)).gate_names == ("forget_gate", "output_gate")


def test_a_cell_without_gates_is_a_value_error_naming_the_gated_cells():
    with pytest.raises(ValueError, match=r"rnn_tanh.*no sigmoid gates") as error:
        gate_activations(rnnkit.Recurrent("rnn_tanh", 2, 4), torch.randn(1, 3, 2))
    assert "'lstm'" in str(error.value) and "'gru'" in str(error.value)
    with pytest.raises(ValueError, match="unidirectional"):
        gate_activations(rnnkit.Recurrent("lstm", 2, 4, bidirectional=True), torch.randn(1, 3, 2))
    with pytest.raises(ValueError, match=r"Expected x of shape \(B, T, I\) with I=2"):
        gate_activations(rnnkit.Recurrent("lstm", 2, 4), torch.randn(1, 3, 5))


def test_statistics_equal_a_hand_computation_over_valid_steps_only():
    # B=2, T=3, H=2; sequence 1 has one step, its steps 2 and 3 hold junk that must not count
    gate = torch.tensor(
        [[[0.05, 0.5], [0.95, 0.2], [0.5, 0.92]],
         [[0.0, 1.0], [0.7, 0.7], [0.7, 0.7]]]
    )  # fmt: skip
    acts = GateActivations("test", [{"forget_gate": gate}], [torch.zeros(2, 3, 2)], None, torch.tensor([3, 1]))
    stats = gate_statistics(acts)
    valid = [0.05, 0.5, 0.95, 0.2, 0.5, 0.92, 0.0, 1.0]
    assert stats.mean[0, 0].item() == pytest.approx(sum(valid) / 8)
    assert stats.frac_low[0, 0].item() == pytest.approx(2 / 8)  # 0.05, 0.0
    assert stats.frac_high[0, 0].item() == pytest.approx(3 / 8)  # 0.95, 0.92, 1.0
    assert stats.mean_per_step[0, 0].tolist() == pytest.approx([(0.05 + 0.5 + 0.0 + 1.0) / 4, 0.575, 0.71])
    assert stats.frac_low_per_step[0, 0].tolist() == pytest.approx([0.5, 0.0, 0.0])
    assert stats.frac_high_per_step[0, 0].tolist() == pytest.approx([0.25, 0.5, 0.5])
    assert stats.counts.tolist() == [2, 1, 1]
    assert stats.rows()[0]["frac_saturated"] == pytest.approx(5 / 8)


def test_csv_heatmaps_and_trace_are_written(tmp_path):
    torch.manual_seed(0)
    acts = gate_activations(rnnkit.Recurrent("gru", 3, 8, num_layers=2), torch.randn(3, 6, 3))
    stats = gate_statistics(acts)
    with stats.write_csv(tmp_path / "s.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 2 * (6 + 1)  # layers x gates x (steps + overall)
    assert plot_gate_heatmaps(stats, tmp_path / "h.png").read_bytes()[:4] == b"\x89PNG"
    values = acts.gates[-1]["update_gate"][0]  # (T, H)
    assert plot_gate_trace("床前明月光，", values, tmp_path / "t.png", gate="update_gate").stat().st_size > 1000
    with pytest.raises(ValueError, match="T=5 characters"):
        plot_gate_trace("abcde", values, tmp_path / "t.png")
