"""Deployment export: one-step ONNX graphs that give PyTorch's numbers in onnxruntime, for every cell
and both heads, at any batch size; safetensors directories that the loaders read back; ``rnnkit export``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import rnnkit
from rnnkit.cells import CELLS
from rnnkit.cli import app
from rnnkit.data.vocab import Vocabulary
from rnnkit.export import (
    export_onnx,
    export_safetensors,
    load_exported,
    onnx_session,
    read_language_model,
    run_onnx_step,
)
from rnnkit.language_model import LanguageModel
from rnnkit.tasks.poetry import PoetryModel, load_model
from rnnkit.tasks.text import load_run

V, E, H = 20, 8, 16
TOLERANCE = 1e-4
runner = CliRunner()


def tiny_model(cell: str, num_layers: int = 1, output: str = "softmax", vocab_size: int = V) -> LanguageModel:
    """A tiny language model with every parameter moved off its init (layer-norm gains, peepholes...)."""
    model = LanguageModel(vocab_size, E, H, num_layers=num_layers, cell=cell, output=output)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    return model.eval()


def largest_step_difference(model: LanguageModel, session, batch_size: int, steps: int = 5) -> tuple[float, float]:
    """Max |onnxruntime - model.step| over ``steps`` steps of random tokens, each step's state fed back:
    (in the logits, in the state)."""
    torch_state, onnx_state = None, None
    logits_error = state_error = 0.0
    for _ in range(steps):
        token = torch.randint(0, model.vocab_size, (batch_size,))
        logits, torch_state = model.step(token, torch_state)
        onnx_logits, onnx_state = run_onnx_step(session, token.numpy(), onnx_state)
        expected = (torch_state,) if isinstance(torch_state, torch.Tensor) else torch_state
        assert onnx_logits.shape == (batch_size, model.vocab_size)
        assert [s.shape for s in onnx_state] == [tuple(s.shape) for s in expected]
        logits_error = max(logits_error, float(np.abs(onnx_logits - logits.numpy()).max()))
        state_error = max(state_error, max(float(np.abs(o - t.numpy()).max()) for o, t in zip(onnx_state, expected)))
    return logits_error, state_error


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_onnx_step_gives_pytorch_logits_and_state_for_five_steps_at_batch_1_and_3(tmp_path, cell, recwarn):
    model = tiny_model(cell, num_layers=2).train()
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    session = onnx_session(export_onnx(model, tmp_path / f"{cell}.onnx"))
    assert [str(w.message) for w in recwarn.list] == []  # the exporter's known chatter is silenced, no other
    assert model.training and all(torch.equal(before[n], t) for n, t in model.state_dict().items())  # not changed
    model.eval()
    names = ["token", "h", "c"] if cell == "lstm" else ["token", "h"]
    assert [i.name for i in session.get_inputs()] == names
    assert [o.name for o in session.get_outputs()] == ["logits"] + [f"{n}_next" for n in names[1:]]
    token_axis = session.get_inputs()[0].shape[0]
    assert isinstance(token_axis, str) and session.get_inputs()[1].shape == [2, token_axis, H]  # dynamic batch
    for batch_size in (1, 3):  # one exported file
        logits_error, state_error = largest_step_difference(model, session, batch_size)
        assert logits_error < TOLERANCE and state_error < TOLERANCE, (batch_size, logits_error, state_error)
    with pytest.raises(ValueError, match=r"Expected the state as \(h(, c)?,\). Received 3 tensors"):
        run_onnx_step(session, [1], (np.zeros((2, 1, H), np.float32),) * 3)


@pytest.mark.parametrize("cell", sorted(set(CELLS) - {"lstm", "gru", "rnn_relu"}))  # rnn_relu: rnn_tanh's class
def test_every_other_cell_exports_as_plain_ops_with_pytorch_numbers(tmp_path, cell):
    model = tiny_model(cell)
    path = export_onnx(model, tmp_path / f"{cell}.onnx")
    import onnx

    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert not ops & {"LSTM", "GRU", "RNN", "Loop", "Scan", "If"}, ops  # the cell's equations, unrolled
    logits_error, state_error = largest_step_difference(model, onnx_session(path), batch_size=3)
    assert logits_error < TOLERANCE and state_error < TOLERANCE, (logits_error, state_error)


def test_a_bidirectional_model_cannot_be_exported_as_one_step(tmp_path):
    model = LanguageModel(V, E, H, num_layers=1, bidirectional=True)
    with pytest.raises(ValueError, match="Expected a unidirectional model.*Received: bidirectional=True"):
        export_onnx(model, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


@pytest.fixture()
def poetry_dir(tmp_path):
    """A tiny poetry-style model directory (as PoetryModel.save writes): LSTM with an adaptive softmax."""
    vocab = Vocabulary.from_text("春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。\n")
    model = tiny_model("lstm", output="adaptive", vocab_size=len(vocab))
    return PoetryModel(model, vocab, {"test_bits_per_char": 5.0}).save(tmp_path / "poetry"), model


def test_cli_onnx_of_a_poetry_model_with_adaptive_softmax_gives_its_log_probabilities(tmp_path, poetry_dir):
    directory, model = poetry_dir
    result = runner.invoke(
        app, ["export", "--run", str(directory), "--format", "onnx", "--out", str(tmp_path / "p.onnx")]
    )
    assert result.exit_code == 0, result.output
    assert "same numbers" in " ".join(result.output.split())  # the command's own parity check
    session = onnx_session(tmp_path / "p.onnx")
    metadata = session.get_modelmeta().custom_metadata_map
    assert (
        metadata["task"] == "poetry"
        and Vocabulary.from_json(metadata["vocab"]).itos == load_model(directory).vocab.itos
    )
    assert json.loads(metadata["model_config"])["output"] == "adaptive"
    for batch_size in (1, 3):
        logits_error, state_error = largest_step_difference(model, session, batch_size)
        assert logits_error < TOLERANCE and state_error < TOLERANCE, (batch_size, logits_error, state_error)
    logits, _ = run_onnx_step(session, [1, 2])
    assert np.allclose(np.exp(logits).sum(1), 1.0, atol=1e-5)  # log-probabilities over the whole vocabulary


def test_cli_safetensors_of_a_poetry_model_loads_back_with_the_same_logits(tmp_path, poetry_dir):
    directory, model = poetry_dir
    out = tmp_path / "exported"
    result = runner.invoke(app, ["export", "--run", str(directory), "--format", "safetensors", "--out", str(out)])
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["task"] == "poetry" and config["rnnkit"] == rnnkit.__version__ and config["report"]
    reloaded = load_model(out)
    token = torch.tensor([3, 1, 4])
    assert torch.equal(reloaded.model.step(token)[0], model.step(token)[0])
    assert reloaded.vocab.itos == load_model(directory).vocab.itos


def test_safetensors_of_a_text_run_checkpoint_loads_back_with_load_run_and_load_exported(tmp_path):
    run_dir = tmp_path / "run"  # what fit() leaves while training: config.json, vocab.json, checkpoints/best.ckpt
    (run_dir / "checkpoints").mkdir(parents=True)
    model = tiny_model("gru", num_layers=2)
    state_dict = {f"model.{name}": tensor for name, tensor in model.state_dict().items()}
    torch.save({"state_dict": state_dict, "epoch": 1}, run_dir / "checkpoints" / "best.ckpt")
    (run_dir / "config.json").write_text(json.dumps({"train": {"task": "text"}, "model": model.config}))
    (run_dir / "vocab.json").write_text(Vocabulary.from_text("abcdefghijklmnopqrs").to_json(), encoding="utf-8")
    out = export_safetensors(run_dir, tmp_path / "exported")
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors", "vocab.json"]
    tokens = torch.randint(0, V, (2, 7))
    expected = model(tokens)[0]
    assert torch.equal(load_exported(out)(tokens)[0], expected)
    text_run = load_run(out)
    assert torch.equal(text_run.model(tokens)[0], expected) and len(text_run.vocab) == len(Vocabulary.from_json(
        (run_dir / "vocab.json").read_text(encoding="utf-8")))  # fmt: skip
    assert read_language_model(out).task == "text"


def test_directories_that_hold_no_language_model_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="is not a run directory"):
        export_safetensors(tmp_path, tmp_path / "out")
    (tmp_path / "config.json").write_text(json.dumps({"train": {"task": "classify"}, "model": {"num_classes": 3}}))
    with pytest.raises(ValueError, match=r"Expected the directory of a language model.*task='classify'"):
        export_safetensors(tmp_path, tmp_path / "out")
    (tmp_path / "config.json").write_text(json.dumps({"task": "text", "model": LanguageModel(V, E, H).config}))
    with pytest.raises(ValueError, match="Expected weights in"):
        read_language_model(tmp_path)
    assert not (tmp_path / "out").exists()


def test_cli_errors_name_the_format_the_directory_and_the_bidirectional_layer(tmp_path):
    result = runner.invoke(app, ["export", "--run", str(tmp_path), "--out", str(tmp_path / "x")])
    assert isinstance(result.exception, ValueError) and "is not a run directory (no config.json)" in str(
        result.exception
    )
    result = runner.invoke(app, ["export", "--run", str(tmp_path), "--format", "tflite", "--out", str(tmp_path / "x")])
    assert isinstance(result.exception, ValueError)
    assert "Expected format to be one of ['safetensors', 'onnx']. Received: format='tflite'" in str(result.exception)
    model = LanguageModel(V, E, H, num_layers=1, bidirectional=True)
    PoetryModel(model, Vocabulary.from_text("abcdefghijklmnopqrs"), {}).save(tmp_path / "bi")
    result = runner.invoke(
        app, ["export", "--run", str(tmp_path / "bi"), "--format", "onnx", "--out", str(tmp_path / "x")]
    )
    assert isinstance(result.exception, ValueError) and "bidirectional=True" in str(result.exception)
