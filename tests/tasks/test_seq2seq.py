"""The seq2seq task: attention encoder-decoder, greedy and beam decoding, pair files, dates, CLI."""

from __future__ import annotations

import datetime
import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from rnnkit.commands.seq2seq import app
from rnnkit.tasks.seq2seq import (
    BOS,
    DATE_FORMATS,
    EOS,
    PAD,
    Seq2Seq,
    beam_search,
    collate,
    corpus_bleu,
    date_pairs,
    greedy_decode,
    load_data,
    read_pairs,
    train,
    translate,
)

SOURCES = [[4, 5, 6, 7, 8], [9, 4], [5, 5, 6], [7]]  # ids of a source vocabulary of 10
TARGETS = [[4, 5, 6], [7], [8, 9, 4, 5], [6, 6]]  # ids of a target vocabulary of 11


def tiny_model(attention: str = "bahdanau", cell: str = "gru", **options) -> Seq2Seq:
    torch.manual_seed(0)
    return Seq2Seq(10, 11, embedding_dim=6, hidden_size=8, cell=cell, attention=attention, **options)


def batch_of(sources=SOURCES, targets=TARGETS):
    return collate(list(zip(sources, targets)))


# ------------------------------------------------------------------------------------------ decoding
@pytest.mark.parametrize("attention", ["bahdanau", "luong", "none"])
def test_beam_search_with_beam_size_one_is_greedy_decoding(attention):
    model = tiny_model(attention).eval()
    with torch.no_grad():
        model.W_o.bias[EOS] += 1.0  # some outputs end before max_length, some do not
    b = batch_of()
    greedy = greedy_decode(model, b.source, b.source_lengths, max_length=6, alpha=0.7)
    beam = beam_search(model, b.source, b.source_lengths, beam_size=1, alpha=0.7, max_length=6)
    assert [h.tokens for h in beam] == [h.tokens for h in greedy]
    assert [h.finished for h in beam] == [h.finished for h in greedy]
    for g, h in zip(greedy, beam):
        assert h.log_prob == pytest.approx(g.log_prob, abs=1e-5)
        assert h.score == pytest.approx(g.score, abs=1e-5)


@pytest.mark.parametrize("attention", ["bahdanau", "luong"])
@pytest.mark.parametrize("alpha", [0.0, 0.7])
def test_beam_score_is_the_length_normalised_log_prob_of_its_output(attention, alpha):
    model = tiny_model(attention).eval()
    with torch.no_grad():
        model.W_o.bias[EOS] += 1.5
    b = batch_of()
    hyps = beam_search(model, b.source, b.source_lengths, beam_size=3, alpha=alpha, max_length=8)
    assert all(h.finished for h in hyps)
    # the reference: one teacher-forced pass over <s> y </s> per example, log-softmax picked by hand
    for i, h in enumerate(hyps):
        source = torch.tensor([SOURCES[i]])
        target_in = torch.tensor([[BOS, *h.tokens]])
        with torch.no_grad():
            logits, _ = model(source, torch.tensor([len(SOURCES[i])]), target_in)
        log_p = torch.log_softmax(logits[0].double(), 1)
        gold = [*h.tokens, EOS]
        log_prob = sum(float(log_p[t, y]) for t, y in enumerate(gold))
        assert h.log_prob == pytest.approx(log_prob, abs=1e-4)
        assert h.score == pytest.approx(log_prob / len(gold) ** alpha, abs=1e-4)
        assert h.attention.shape == (len(gold), len(SOURCES[i]))


def test_a_wider_beam_never_scores_below_greedy_on_the_same_objective():
    model = tiny_model("luong").eval()
    with torch.no_grad():
        model.W_o.bias[EOS] += 1.5
    b = batch_of()
    greedy = greedy_decode(model, b.source, b.source_lengths, max_length=8, alpha=0.0)
    beam = beam_search(model, b.source, b.source_lengths, beam_size=5, alpha=0.0, max_length=8)
    assert all(h.score >= g.score - 1e-6 for g, h in zip(greedy, beam) if g.finished)


# ------------------------------------------------------------------------------------------ attention
@pytest.mark.parametrize("attention", ["bahdanau", "luong"])
@pytest.mark.parametrize("teacher_forcing", [1.0, 0.5])
def test_attention_sums_to_one_over_valid_positions_and_is_exactly_zero_on_padding(attention, teacher_forcing):
    model = tiny_model(attention)
    b = batch_of()
    _, weights = model(b.source, b.source_lengths, b.target_in, teacher_forcing)  # (B, T, S)
    for i, n in enumerate(b.source_lengths.tolist()):
        torch.testing.assert_close(weights[i, :, :n].sum(1), torch.ones(weights.shape[1]))
        assert weights[i, :, n:].eq(0).all()


@pytest.mark.parametrize("attention", ["bahdanau", "luong", "none"])
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_a_padded_batch_gives_each_example_what_it_gets_alone(attention, cell):
    model = tiny_model(attention, cell).eval()
    b = batch_of()
    logits, _ = model(b.source, b.source_lengths, b.target_in)
    batch_loss = model.loss(b)
    total = 0.0
    for i, (s, t) in enumerate(zip(SOURCES, TARGETS)):
        one = batch_of([s], [t])
        alone, _ = model(one.source, one.source_lengths, one.target_in)
        torch.testing.assert_close(logits[i, : len(t) + 1], alone[0], atol=1e-5, rtol=1e-5)
        out = model.loss(one)
        total += out.loss.item() * out.count
        assert greedy_decode(model, one.source, one.source_lengths, 6)[0].tokens == (
            greedy_decode(model, b.source, b.source_lengths, 6)[i].tokens
        )
    assert batch_loss.count == sum(len(t) + 1 for t in TARGETS)
    assert batch_loss.loss.item() * batch_loss.count == pytest.approx(total, rel=1e-5)


# ---------------------------------------------------------------------------------- teacher forcing
def reference_bahdanau_logits(model: Seq2Seq, source, lengths, target_in) -> torch.Tensor:
    """Teacher-forced logits from the equations, with torch.nn.GRUCell holding the decoder's weights."""
    cell = torch.nn.GRUCell(model.decoder.input_size, model.decoder.hidden_size)
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        getattr(cell, name).data.copy_(getattr(model.decoder, name + "_l0"))
    encoded = model.encode(source, lengths)
    h = encoded.state[-1]  # (B, H)
    memory, mask = encoded.memory, encoded.mask  # (B, S, M), (B, S)
    out = []
    for t in range(target_in.shape[1]):
        e = model.target_embedding(target_in[:, t])
        u = torch.tanh(model.W_q(h)[:, None, :] + model.W_k(memory)) @ model.v.weight[0]  # (B, S)
        a = torch.exp(u - u.max(1, keepdim=True).values) * mask
        a = a / a.sum(1, keepdim=True)
        c = (a[:, :, None] * memory).sum(1)
        h = cell(torch.cat([e, c], 1), h)
        out.append(model.W_o(torch.cat([h, c], 1)))
    return torch.stack(out, 1)


def reference_loss(logits, target_out) -> float:
    log_p = torch.log_softmax(logits, 2)
    picked = [-log_p[b, t, y] for b in range(len(target_out)) for t, y in enumerate(target_out[b].tolist()) if y != PAD]
    return float(sum(picked).detach() / len(picked))


def test_teacher_forced_loss_matches_a_reference_from_the_equations():
    model = tiny_model("bahdanau")
    model.teacher_forcing = 1.0
    b = batch_of()
    expected = reference_loss(reference_bahdanau_logits(model, b.source, b.source_lengths, b.target_in), b.target_out)
    assert model.loss(b).loss.item() == pytest.approx(expected, rel=1e-5)


def test_luong_all_steps_at_once_equals_one_step_at_a_time():
    model = tiny_model("luong")
    b = batch_of()
    fast, fast_weights = model(b.source, b.source_lengths, b.target_in, teacher_forcing=1.0)
    encoded = model.encode(b.source, b.source_lengths)
    state, slow, slow_weights = encoded.state, [], []
    for t in range(b.target_in.shape[1]):
        logits, state, w = model.decode_step(b.target_in[:, t], state, encoded)
        slow.append(logits)
        slow_weights.append(w)
    torch.testing.assert_close(fast, torch.stack(slow, 1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fast_weights, torch.stack(slow_weights, 1), atol=1e-6, rtol=1e-5)
    assert model.loss(b).loss.item() == pytest.approx(reference_loss(fast, b.target_out), rel=1e-5)


@pytest.mark.parametrize("attention", ["bahdanau", "luong"])
def test_teacher_forcing_ratio_one_and_zero_give_different_losses(attention):
    model = tiny_model(attention).train()
    b = batch_of()
    gold = model.loss(b, teacher_forcing=1.0).loss.item()
    free = model.loss(b, teacher_forcing=0.0).loss.item()
    assert gold != pytest.approx(free, rel=1e-4)
    model.teacher_forcing = 1.0
    assert model.loss(b).loss.item() == pytest.approx(gold, rel=1e-6)
    # evaluation always feeds the gold tokens, whatever the training ratio
    model.teacher_forcing = 0.0
    assert model.eval().loss(b).loss.item() == pytest.approx(gold, rel=1e-6)


def test_bad_options_name_what_was_received():
    with pytest.raises(ValueError, match="attention.*'dot'"):
        Seq2Seq(5, 5, attention="dot")
    with pytest.raises(ValueError, match="teacher_forcing=1.5"):
        Seq2Seq(5, 5, teacher_forcing=1.5)


# -------------------------------------------------------------------------------------------- data
def test_pair_files_ignore_extra_columns_blank_lines_crlf_and_a_bom(tmp_path):
    path = tmp_path / "fra.txt"
    path.write_bytes("\ufeffGo.\tVa !\tCC-BY 2.0 (France) Attribution\r\n\r\nHi.\tSalut !\n".encode())
    assert read_pairs(path) == [("Go.", "Va !"), ("Hi.", "Salut !")]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"a\tb\nno tab here\n", r"line 2: expected 'source<TAB>target'. Received no tab: 'no tab here'"),
        (b"", "is empty"),
        (b"\n  \n", "is empty"),
        (b"ab\tcd\n\xe9t\xe9\tsummer\n", r"not UTF-8: byte 6 \(0xe9\)"),
        (b"a\tb\n\tb\n", "line 2: the source is empty"),
        (b"a\t  \n", "line 1: the target is empty"),
    ],
)
def test_pair_file_errors_say_where(tmp_path, content, message):
    path = tmp_path / "pairs.tsv"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        read_pairs(path)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(*[st.text(st.characters(blacklist_categories=["Cc", "Cs", "Zl", "Zp", "Zs"]),
                                    min_size=1, max_size=8)] * 2), min_size=1, max_size=5))  # fmt: skip
def test_written_pairs_read_back(tmp_path_factory, pairs):
    path = tmp_path_factory.mktemp("pairs") / "p.tsv"
    path.write_text("".join(f"{s}\t{t}\textra\n" for s, t in pairs), encoding="utf-8")
    assert read_pairs(path) == [(s.strip(), t.strip()) for s, t in pairs]


def test_each_date_format_writes_its_own_example_for_tuesday_3_march_1998():
    tuesday = datetime.date(1998, 3, 3)
    assert {name: write(tuesday) for name, write in DATE_FORMATS.items()} == {n: n for n in DATE_FORMATS}


def test_dates_are_deterministic_iso_and_the_test_sources_are_never_trained_on():
    assert date_pairs(300, seed=3) == date_pairs(300, seed=3)
    assert date_pairs(300, seed=3) != date_pairs(300, seed=4)
    train_pairs, val_pairs, test_pairs = load_data(dataset="dates", examples=2000, seed=1)
    assert (len(train_pairs), len(val_pairs), len(test_pairs)) == (1600, 200, 200)
    assert not {s for s, _ in train_pairs} & {s for s, _ in test_pairs}
    assert not {s for s, _ in train_pairs} & {s for s, _ in val_pairs}
    for _, target in train_pairs + test_pairs:
        date = datetime.date.fromisoformat(target)
        assert datetime.date(1950, 1, 1) <= date <= datetime.date(2049, 12, 31) and date.isoformat() == target


def test_bleu_is_100_for_a_perfect_copy_and_lower_for_a_wrong_date():
    refs = [list("1998-03-03"), list("2001-12-25")]
    assert corpus_bleu(refs, refs) == pytest.approx(100.0)
    assert corpus_bleu([list("1998-03-04"), list("2001-12-25")], refs) < 100.0


# ---------------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def dates_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("seq2seq") / "run"
    return train(dataset="dates", examples=300, hidden_size=16, embedding_dim=8, epochs=1, batch_size=32,
                 beam_size=2, progress=False, run_dir=run_dir)  # fmt: skip


def test_a_tiny_run_writes_its_report_plots_and_predictions(dates_run):
    run_dir = dates_run.run_dir
    report = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
    assert set(report["test"]) == {"greedy", "beam", "copy_input", "most_frequent_target"}
    assert report["pairs"] == {"train": 240, "val": 30, "test": 30}
    for scores in report["test"].values():
        assert 0.0 <= scores["exact_match"] <= 1.0 and 0.0 <= scores["bleu"] <= 100.0
    assert (run_dir / "plots" / "attention.png").stat().st_size > 1000
    assert (run_dir / "plots" / "loss.png").stat().st_size > 1000
    assert len((run_dir / "predictions.tsv").read_text(encoding="utf-8").splitlines()) == 31


def test_translate_names_characters_the_model_never_saw(dates_run, tmp_path):
    out = translate(dates_run.run_dir, "3 March 1998", beam_size=2, plot=tmp_path / "a.png")
    assert (tmp_path / "a.png").is_file() and out.attention.shape[1] == len("3 March 1998")
    with pytest.raises(ValueError, match=r"never saw: \['@', 'Ω'\]"):
        translate(dates_run.run_dir, "3 Ωarch 1998 @")


def test_word_level_pairs_from_a_file(tmp_path):
    words = ["one", "two", "three", "four", "five", "six"]
    lines = [f"{a} {b}\t{b} {a} !" for a in words for b in words]
    (tmp_path / "pairs.tsv").write_text("\n".join(lines), encoding="utf-8")
    run = train(tmp_path / "pairs.tsv", tokens="word", attention="luong", hidden_size=8, embedding_dim=4, epochs=1,
                beam_size=2, progress=False, run_dir=tmp_path / "run")  # fmt: skip
    assert run.report["tokens"] == "word"
    assert set(run.target_vocab.itos[4:]) <= {*words, "!"} and "three" in run.source_vocab
    assert len(translate(run, "two five", beam_size=2).tokens) <= run.max_length


def test_cli_train_and_translate(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    done = runner.invoke(app, ["train", "--dataset", "dates", "--examples", "200", "--hidden", "8", "--embedding",
                               "4", "--epochs", "1", "--beam", "2", "--no-progress"])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "baseline: copy the input" in done.output and "model, beam search (k=2" in done.output
    run_dir = next((tmp_path / "runs").iterdir())
    done = runner.invoke(app, ["translate", "--run", str(run_dir), "--text", "Mar 3 1998", "--beam", "1",
                               "--plot", "a.png"])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert (tmp_path / "a.png").is_file()
    done = runner.invoke(app, ["translate", "--run", str(run_dir), "--text", "Mar 3 1998 ☃"])
    assert isinstance(done.exception, ValueError) and "☃" in str(done.exception)
    done = runner.invoke(app, ["train", "--epochs", "1"])
    assert isinstance(done.exception, ValueError) and "--dataset dates" in str(done.exception)


def test_cli_demo_runs_with_small_settings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    done = CliRunner().invoke(app, ["demo", "--examples", "200", "--epochs", "1", "--hidden", "8", "--no-progress"])
    assert done.exit_code == 0, done.output
    assert "exact match" in done.output and "'3 March 1998' -> " in done.output
