"""`rnnkit diagnose gradients --run`: a saved language model's own layer under its own next-character loss."""

from __future__ import annotations

import csv

import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from rnnkit.commands.diagnose import app
from rnnkit.data.vocab import Vocabulary
from rnnkit.language_model import LanguageModel
from rnnkit.tasks.poetry import PoetryModel

T = 12
LINE = "abcabdabcabd"[:T]  # read as "\n" + LINE: exactly T+1 characters, so every window is the same one


def _saved_model(directory):
    vocab = Vocabulary.from_text("\nabcd")
    torch.manual_seed(0)
    model = LanguageModel(vocab_size=len(vocab), embedding_dim=4, hidden_size=8, num_layers=1, cell="gru")
    PoetryModel(model.eval(), vocab, {}).save(directory)
    return model, vocab


def _reference_norms(model: LanguageModel, ids: list[int]) -> torch.Tensor:
    """Plain autograd over torch.nn.GRUCell with the model's weights; retain_grad on every h_t."""
    params = model.rnn.layer_parameters(0)
    cell = torch.nn.GRUCell(4, 8)
    cell.load_state_dict({k: v.detach().clone() for k, v in params.items()})
    x = model.embedding(torch.tensor([ids[:T]])).detach()  # (1, T, E)
    h, hs = None, []
    for t in range(T):
        h = cell(x[:, t], h)
        h.retain_grad()
        hs.append(h)
    F.cross_entropy(model.head(h), torch.tensor([ids[T]])).backward()  # the loss on the character after the T-th
    return torch.stack([g.grad.norm() for g in hs]).double()


def test_gradient_flow_of_a_saved_model_equals_a_plain_autograd_loop_with_its_own_loss(tmp_path):
    model, vocab = _saved_model(tmp_path / "model")
    (tmp_path / "poem.txt").write_text(LINE + "\n", encoding="utf-8")
    args = ["gradients", "--run", str(tmp_path / "model"), "--text", str(tmp_path / "poem.txt"), "--T", str(T),
            "--batch-size", "3", "--out", str(tmp_path / "out")]  # fmt: skip
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "gru-8" in result.output and "next-character" in result.output
    assert (tmp_path / "out" / "gradient_flow.png").stat().st_size > 1000
    rows = list(csv.DictReader((tmp_path / "out" / "gradient_flow.csv").open()))
    measured = torch.tensor([float(r["grad_norm"]) for r in rows], dtype=torch.float64)
    expected = _reference_norms(model, vocab.encode("\n" + LINE))
    torch.testing.assert_close(measured, expected, rtol=1e-4, atol=1e-9)  # float32 model, 6 digits in the csv


def test_trained_mode_refuses_a_summed_loss_and_too_short_a_text(tmp_path):
    _saved_model(tmp_path / "model")
    (tmp_path / "poem.txt").write_text(LINE + "\n", encoding="utf-8")
    base = ["gradients", "--run", str(tmp_path / "model"), "--text", str(tmp_path / "poem.txt")]
    result = CliRunner().invoke(app, [*base, "--T", str(T), "--loss", "sum"])
    assert isinstance(result.exception, ValueError) and "--loss last" in str(result.exception)
    result = CliRunner().invoke(app, [*base, "--T", str(T + 1)])
    assert isinstance(result.exception, ValueError) and "T+1 = 14 characters" in str(result.exception)
