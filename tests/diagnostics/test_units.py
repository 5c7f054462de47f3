"""Hidden units: activations against the model's own forward, features by hand, a planted unit found, HTML, CLI."""

from __future__ import annotations

import csv
import re

import pytest
import torch
from typer.testing import CliRunner

from rnnkit.commands.diagnose import app
from rnnkit.data.vocab import Vocabulary
from rnnkit.diagnostics.units import (
    VERSE_BREAKS,
    UnitMatch,
    correlations,
    feature_tracks,
    find_units,
    unit_activations,
    units_html,
)
from rnnkit.language_model import LanguageModel


def _model(vocab, cell="lstm", layers=2):
    torch.manual_seed(0)
    return LanguageModel(len(vocab), embedding_dim=4, hidden_size=8, num_layers=layers, cell=cell).eval()


def test_hidden_activations_are_the_models_top_layer_per_text_from_the_zero_state():
    vocab = Vocabulary.from_text("abc\n")
    model = _model(vocab)
    texts = ["\nabca", "\ncb"]
    chars, acts = unit_activations(model, texts, vocab)
    assert chars == "\nabca\ncb" and acts.shape == (8, 8)
    for text, rows in zip(texts, acts.split([5, 3])):
        hidden, _ = model.hidden(torch.tensor([vocab.encode(text)]))
        torch.testing.assert_close(rows, hidden[0], atol=1e-6, rtol=0)


def test_cell_activations_are_the_top_layers_cell_state_and_need_an_lstm():
    vocab = Vocabulary.from_text("abc\n")
    model = _model(vocab)
    _, acts = unit_activations(model, "\nabc", vocab, which="cell")
    _, (h, c) = model.rnn(model.embedding(torch.tensor([vocab.encode("\nabc")])))
    torch.testing.assert_close(acts[-1], c[-1, 0], atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="cell state"):
        unit_activations(_model(vocab, cell="gru"), "ab", vocab, which="cell")


def test_characters_outside_the_vocabulary_are_a_value_error_listing_them():
    vocab = Vocabulary.from_text("abc\n")
    with pytest.raises(ValueError, match=r"2 characters it never saw: 'xy'"):
        unit_activations(_model(vocab), ["abx", "y"], vocab)


def test_feature_tracks_by_hand():
    tracks = feature_tracks('a (b) "c\'s"\nd', line_breaks="\n")
    assert tracks["line_position"].tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0, 1]
    assert tracks["chars_to_line_end"].tolist() == [11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1]
    assert tracks["line_number"].tolist() == [0] * 12 + [1]
    assert tracks["in_brackets"].tolist() == [0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    assert tracks["in_quotes"].tolist() == [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0]  # the ' of c's is an apostrophe
    assert tracks["after_punctuation"].tolist() == [0, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 0]


def test_verse_lines_end_at_their_punctuation_and_each_poem_starts_afresh():
    tracks = feature_tracks(["\n白日依山尽，黄河入海流。", "\n红豆"], ["line_position", "line_parity"], VERSE_BREAKS)
    assert tracks["line_position"].tolist() == [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5, 0, 0, 1, 2]
    assert tracks["line_parity"].tolist() == [0] + [1] * 6 + [0] * 6 + [0, 1, 1]
    with pytest.raises(ValueError, match="Expected features from"):
        feature_tracks("ab", "rhyme")


def test_a_planted_unit_is_found_and_constant_features_are_left_out():
    text = "".join("x" * n + "\n" for n in (3, 7, 5, 9, 4, 6))
    features = feature_tracks(text)
    torch.manual_seed(0)
    acts = 0.1 * torch.randn(len(text), 8)
    acts[:, 3] = torch.tanh(features["line_position"] / 5) + 0.01 * torch.randn(len(text))
    acts[:, 5] = -features["chars_to_line_end"] / 10
    matches = find_units(acts, features, top_k=2)
    assert matches["line_position"][0].unit == 3 and matches["line_position"][0].correlation > 0.95
    assert matches["chars_to_line_end"][0] == UnitMatch("chars_to_line_end", 5, pytest.approx(-1.0))
    assert "in_brackets" not in matches and "in_quotes" not in matches  # no brackets in this text
    assert len(matches["line_number"]) == 2


def test_correlations_equal_numpy_corrcoef():
    torch.manual_seed(0)
    acts, feature = torch.randn(30, 4, dtype=torch.float64), torch.randn(30, dtype=torch.float64)
    expected = torch.corrcoef(torch.cat([feature[None], acts.t()]))[0, 1:]
    torch.testing.assert_close(correlations(acts, feature), expected)
    acts[:, 2] = 1.0
    assert correlations(acts, feature)[2].item() == 0.0  # a constant unit


def test_html_is_escaped_self_contained_with_one_coloured_span_per_character(tmp_path):
    chars = '<b>&"x"\n'
    acts = torch.linspace(-1, 1, len(chars))[:, None].repeat(1, 3)
    page = units_html(chars, acts, [UnitMatch("in_quotes", 1, 0.5), 2], tmp_path / "u.html", title="<t>")
    text = page.read_text(encoding="utf-8")
    sections = re.findall(r'<div class="text">(.*?)</div>', text, re.S)
    assert len(sections) == 2
    for section in sections:
        spans = re.findall(r'<span style="background:(#[0-9a-f]{6})" title="[^"]+">(.*?)</span>', section, re.S)
        assert len(spans) == len(chars) and "".join(s for _, s in spans) == "&lt;b&gt;&amp;&quot;x&quot;↵\n"
        assert spans[0][0] == "#2166ac" and spans[-1][0] == "#b2182b"  # -1 blue, +1 red
    assert "<b>" not in text and "&lt;t&gt;" in text and "(r = +0.50)" in text
    assert "<script" not in text and "http" not in text
    with pytest.raises(ValueError, match="units in 0..2"):
        units_html(chars, acts, [3], tmp_path / "v.html")


def test_cli_gates_and_units_on_a_tiny_poetry_model_and_a_poems_file(tmp_path):
    from rnnkit.tasks.poetry import PoetryModel

    poems = ["白日依山尽，黄河入海流。欲穷千里目，更上一层楼。", "红豆生南国，春来发几枝。"]
    (tmp_path / "poems.txt").write_text("\n".join(poems), encoding="utf-8")
    vocab = Vocabulary.from_text("".join(poems) + "\n")
    torch.manual_seed(0)
    model = LanguageModel(len(vocab), embedding_dim=4, hidden_size=8, num_layers=1).eval()
    PoetryModel(model, vocab, {}).save(tmp_path / "model")
    common = ["--run", str(tmp_path / "model"), "--text", str(tmp_path / "poems.txt")]
    result = CliRunner().invoke(app, ["gates", *common, "--out", str(tmp_path / "g")])
    assert result.exit_code == 0, result.output
    assert "forget_gate" in result.output and "input_gate" in result.output
    assert (tmp_path / "g" / "gate_heatmaps.png").stat().st_size > 1000
    assert (tmp_path / "g" / "forget_gate_text.html").is_file()
    with (tmp_path / "g" / "gate_statistics.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 3 * (25 + 1)  # 3 gates x (25 steps + overall)
    result = CliRunner().invoke(app, ["units", *common, "--show", "1", "--out", str(tmp_path / "u")])
    assert result.exit_code == 0, result.output
    assert "line_position" in result.output
    page = (tmp_path / "u" / "units.html").read_text(encoding="utf-8")
    assert page.count("<section>") >= 2 and "白" in page and "红" not in page  # one poem shown
    (tmp_path / "bad.txt").write_text("白日依山尽，黄河入海流。\n明月几时有", encoding="utf-8")
    result = CliRunner().invoke(app, ["units", "--run", str(tmp_path / "model"), "--text", str(tmp_path / "bad.txt")])
    assert result.exit_code != 0 and "never saw" in str(result.exception)


def test_cli_inside_writes_gates_and_units_on_held_out_poems(tmp_path):
    from rnnkit.data.poetry import load_tang
    from rnnkit.tasks.poetry import PoetryModel, split_poems

    test_poems = split_poems(load_tang())[2]
    vocab = Vocabulary.from_text("".join(p.text() for p in test_poems[:400]) + "\n")
    torch.manual_seed(0)
    model = LanguageModel(len(vocab), embedding_dim=4, hidden_size=8, num_layers=1).eval()
    PoetryModel(model, vocab, {}).save(tmp_path / "model")
    result = CliRunner().invoke(app, ["inside", "--run", str(tmp_path / "model"), "--out", str(tmp_path / "inside")])
    assert result.exit_code == 0, result.output
    assert "7-character poems" in result.output and "line_position" in result.output
    written = {p.name for p in (tmp_path / "inside").iterdir()}
    assert written == {"gate_heatmaps.png", "gate_statistics.csv", "forget_gate_text.png", "forget_gate_text.html",
                       "units.html", "units.csv"}  # fmt: skip
