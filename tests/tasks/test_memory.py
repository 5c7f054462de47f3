"""The long-range memory tasks: generators, baselines, a tiny training run and the CLI."""

from __future__ import annotations

import math

import pytest
import torch
from typer.testing import CliRunner

from rnnkit.commands.memory import app
from rnnkit.tasks.memory import (
    BASELINE_MSE,
    COPY_LENGTH,
    DELIMITER,
    adding_batch,
    adding_fixed_batch,
    copy_baseline,
    copy_batch,
    train_adding,
    train_copy,
    trained_gradient_flows,
)


def test_fixed_adding_has_one_marker_per_half_and_sums_them():
    T = 31
    x, y = adding_fixed_batch(256, T, torch.Generator().manual_seed(1))
    assert x.shape == (256, T, 2) and y.shape == (256,)
    markers = x[..., 1]
    assert set(markers.unique().tolist()) == {0.0, 1.0}
    assert (markers.sum(1) == 2).all()
    assert (markers[:, : T // 2].sum(1) == 1).all() and (markers[:, T // 2 :].sum(1) == 1).all()
    for values, mark, target in zip(x[..., 0], markers, y):
        assert target.item() == pytest.approx(sum(v for v, m in zip(values.tolist(), mark.tolist()) if m == 1.0))


def test_variable_adding_markers_lie_in_the_valid_part():
    x, lengths, y = adding_batch(128, 20, torch.Generator().manual_seed(2))
    for seq, n, target in zip(x, lengths, y):
        marked = seq[:, 1].nonzero().flatten().tolist()
        assert len(marked) == 2 and marked[1] < n and marked[0] < n // 2 <= marked[1]
        assert target.item() == pytest.approx(seq[marked, 0].sum().item())


def test_baseline_mse_is_what_predicting_one_scores():
    _, y = adding_fixed_batch(200_000, 10, torch.Generator().manual_seed(3))
    assert ((y - 1) ** 2).mean().item() == pytest.approx(BASELINE_MSE, abs=3e-3)


def test_copy_layout():
    T = 7
    x, y = copy_batch(16, T, torch.Generator().manual_seed(4))
    assert x.shape == y.shape == (16, T + 20)
    assert ((x[:, :10] >= 1) & (x[:, :10] <= 8)).all()
    assert (x[:, 10 + T - 1] == DELIMITER).all()
    assert (x == DELIMITER).sum().item() == 16
    rest = torch.cat((x[:, 10 : 10 + T - 1], x[:, 10 + T :]), 1)
    assert (rest == 0).all()
    assert (y[:, : T + 10] == 0).all() and torch.equal(y[:, -10:], x[:, :10])


def test_copy_baseline_is_the_memoryless_cross_entropy():
    T = 13
    x, y = copy_batch(4, T, torch.Generator().manual_seed(5))
    logits = torch.full((4, T + 20, 10), -1e9)
    logits[:, : T + 10, 0] = 0.0  # certain blank before recall
    logits[:, T + 10 :, 1:9] = 0.0  # uniform over the 8 symbols at recall
    nats = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten()).item()
    assert nats == pytest.approx(copy_baseline(T)) == pytest.approx(COPY_LENGTH * math.log(8) / (T + 20))


def test_tiny_lstm_beats_the_adding_baseline():
    r = train_adding("lstm", T=10, steps=300, hidden_size=16, learning_rate=1e-2, batch_size=32, test_size=500,
                     eval_every=100, seed=0, progress=False)  # fmt: skip
    assert r["test_mse"] < 0.5 * BASELINE_MSE
    assert r["curve"][0]["step"] == 0 and r["curve"][-1]["step"] == 300


def test_same_seed_same_result():
    a = train_copy("gru", T=3, steps=5, hidden_size=8, test_size=16, seed=7, progress=False)
    b = train_copy("gru", T=3, steps=5, hidden_size=8, test_size=16, seed=7, progress=False)
    assert a["test_nats"] == b["test_nats"] and 0 <= a["recall_accuracy"] <= 1


@pytest.mark.parametrize("command", ["adding", "copy"])
def test_cli_writes_png_and_csv(tmp_path, command):
    args = [command, "--compare", "rnn_tanh,lstm", "--T", "4", "--steps", "4", "--hidden", "4", "--eval-every", "2",
            "--test-size", "8", "--batch-size", "4", "--out", str(tmp_path), "--no-progress"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "baseline" in result.output
    png, csv = tmp_path / f"{command}_T4_compare.png", tmp_path / f"{command}_T4_compare.csv"
    assert png.stat().st_size > 0
    lines = csv.read_text().splitlines()
    assert lines[0].startswith("cell,step") and len(lines) == 1 + 2 * 3
    assert (tmp_path / f"{command}_T4_compare_gradient_flow.png").exists() == (command == "adding")


def test_chrono_applies_to_forget_gate_cells_only_and_the_table_says_so(tmp_path):
    args = ["adding", "--compare", "rnn_tanh,lstm", "--chrono", "--T", "4", "--steps", "1", "--hidden", "4",
            "--test-size", "8", "--batch-size", "4", "--out", str(tmp_path), "--no-progress"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "lstm (native, chrono init)" in result.output and "rnn_tanh (native)" in result.output
    r = train_adding("lstm", T=50, steps=1, hidden_size=64, progress=False, chrono=True)
    forget_bias = (r["model"].rnn.bias_ih_l0 + r["model"].rnn.bias_hh_l0).detach()[64:128]  # (H,)
    assert r["chrono"] and forget_bias.exp().max() > 20  # log U(1, 49): forgetting times up to ~49 steps


def test_trained_gradient_flow_is_the_gradient_of_the_models_own_squared_error():
    r = train_adding("lstm", T=6, steps=2, hidden_size=4, test_size=8, progress=False)
    flow = trained_gradient_flows([r], batch_size=3, seed=5)["lstm"]
    x, y = adding_fixed_batch(3, 6, torch.Generator().manual_seed(5 + 20_000))
    model = r["model"]
    _, (h, _) = model.rnn(x)
    h_T = h[-1].detach().requires_grad_(True)  # (B, H)
    ((model.head(h_T).squeeze(-1) - y) ** 2).sum().backward()
    assert flow.norms[0, -1].item() == pytest.approx(h_T.grad.norm(dim=1).mean().item(), rel=1e-5)
    with pytest.raises(ValueError, match="Expected results of train_adding"):
        trained_gradient_flows([train_copy("lstm", T=2, steps=1, hidden_size=4, test_size=4, progress=False)])


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: train_adding("lstm", T=1, steps=1, progress=False), "T to be an integer of at least 2"),
        (lambda: train_copy("lstm", T=0, steps=1, progress=False), "T to be an integer"),
        (lambda: train_adding("nope", T=5, steps=1, progress=False), "Unknown cell 'nope'. Expected one of"),
        (lambda: adding_fixed_batch(2, 1, torch.Generator()), "Received: T=1"),
    ],
)
def test_bad_input_is_a_clear_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
