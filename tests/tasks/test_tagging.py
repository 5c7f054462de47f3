"""Sequence tagging: the CRF against brute force, the tagger's padding, CoNLL I/O and its errors,
the most-frequent-tag baseline, and short end-to-end runs through the API and the CLI."""

from __future__ import annotations

import itertools
import json
import lzma
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from rnnkit.commands.tag import app
from rnnkit.crf import LinearChainCRF
from rnnkit.tasks.tagging import (
    MostFrequentTag,
    Sentence,
    Tagger,
    TagVocab,
    make_batch,
    parse_conll,
    read_conll,
    synthetic_ner,
    tag_sentences,
    tagging_scores,
    train,
    write_conll,
)

# ------------------------------------------------------------------------------------------ CRF


def brute_force_scores(crf: LinearChainCRF, emissions: torch.Tensor, n: int) -> dict[tuple, float]:
    """Score of every tag path of length n, summed term by term from the definition."""
    start, A, end = (p.detach() for p in (crf.start_transitions, crf.transitions, crf.end_transitions))
    emissions = emissions.detach()
    scores = {}
    for path in itertools.product(range(crf.num_tags), repeat=n):
        s = start[path[0]] + end[path[-1]] + sum(emissions[t, path[t]] for t in range(n))
        s = s + sum(A[path[t - 1], path[t]] for t in range(1, n))
        scores[path] = float(s)
    return scores


def crf_example(K=3, T=4, lengths=(4, 1, 2, 3), dtype=torch.float64):
    torch.manual_seed(1)
    crf = LinearChainCRF(K).to(dtype)
    with torch.no_grad():
        for p in crf.parameters():
            p.normal_()
    emissions = torch.randn(len(lengths), T, K, dtype=dtype)
    return crf, emissions, torch.tensor(lengths)


def test_log_partition_equals_brute_force_over_all_paths_with_lengths():
    crf, emissions, lengths = crf_example()
    got = crf.log_partition(emissions, lengths)
    for b, n in enumerate(lengths.tolist()):
        scores = brute_force_scores(crf, emissions[b], n)
        expected = math.log(sum(math.exp(s) for s in scores.values()))
        assert got[b].item() == pytest.approx(expected, rel=1e-10, abs=1e-10)


def test_path_score_and_nll_match_brute_force_and_ignore_padding():
    crf, emissions, lengths = crf_example()
    tags = torch.randint(0, 3, (4, 4))
    nll = crf.neg_log_likelihood(emissions, tags, lengths)
    for b, n in enumerate(lengths.tolist()):
        scores = brute_force_scores(crf, emissions[b], n)
        log_z = math.log(sum(math.exp(s) for s in scores.values()))
        path = tuple(tags[b, :n].tolist())
        assert crf.path_score(emissions, tags, lengths)[b].item() == pytest.approx(scores[path], abs=1e-10)
        assert nll[b].item() == pytest.approx(log_z - scores[path], abs=1e-10)
    # whatever lies past each length (emissions and tags) changes nothing
    noisy_e, noisy_t = emissions.clone(), tags.clone()
    for b, n in enumerate(lengths.tolist()):
        noisy_e[b, n:] = 100 * torch.randn_like(noisy_e[b, n:])
        noisy_t[b, n:] = 2 - noisy_t[b, n:]
    assert torch.allclose(crf.neg_log_likelihood(noisy_e, noisy_t, lengths), nll, atol=1e-12)
    assert crf.decode(noisy_e, lengths) == crf.decode(emissions, lengths)


def test_viterbi_equals_brute_force_argmax():
    crf, emissions, lengths = crf_example(K=4, T=5, lengths=(5, 2, 1, 4))
    for b, path in enumerate(crf.decode(emissions, lengths)):
        scores = brute_force_scores(crf, emissions[b], lengths[b].item())
        assert tuple(path) == max(scores, key=scores.get)


def test_crf_nll_gradient_passes_gradcheck_in_float64():
    crf, emissions, lengths = crf_example(K=3, T=4, lengths=(4, 2, 3))
    tags = torch.randint(0, 3, (3, 4))
    names = [n for n, _ in crf.named_parameters()]

    def nll(e, *params):
        return torch.func.functional_call(crf, dict(zip(names, params)), (e, tags, lengths))

    inputs = [emissions.requires_grad_()] + [p.detach().clone().requires_grad_() for p in crf.parameters()]
    assert torch.autograd.gradcheck(nll, inputs)


def test_crf_rejects_bad_shapes_and_lengths():
    crf = LinearChainCRF(3)
    with pytest.raises(ValueError, match=r"Expected emissions of shape \(B, T, 3\). Received: \(2, 4, 5\)"):
        crf.log_partition(torch.zeros(2, 4, 5))
    with pytest.raises(ValueError, match="values in 1..4"):
        crf.log_partition(torch.zeros(2, 4, 3), torch.tensor([0, 4]))


# ------------------------------------------------------------------------------------------ tagger


def tiny_corpus() -> list[Sentence]:
    return [
        Sentence("the cat sat on the mat".split(), "DET NOUN VERB ADP DET NOUN".split()),
        Sentence("a dog ran".split(), "DET NOUN VERB".split()),
        Sentence("dogs bark".split(), "NOUN VERB".split()),
        Sentence("the bird sang on a branch today".split(), "DET NOUN VERB ADP DET NOUN ADV".split()),
    ]


@pytest.mark.parametrize("cell,crf,chars", [("lstm", True, True), ("gru", False, True), ("lstm", True, False)])
def test_tagger_results_do_not_depend_on_padding(cell, crf, chars):
    sentences = tiny_corpus()
    vocab = TagVocab.build(sentences, min_word_count=1)
    torch.manual_seed(0)
    model = Tagger(len(vocab.words), len(vocab.chars), len(vocab.tags), embedding_dim=6, char_dim=4,
                   char_hidden=3 if chars else 0, cell=cell, hidden_size=5, crf=crf).double().eval()  # fmt: skip
    tokens, tags = [s.tokens for s in sentences], [s.tags for s in sentences]
    batch = make_batch(vocab, tokens, tags)
    together = model.emissions(batch)
    loss_together = model.loss(batch).loss * sum(map(len, tokens))
    loss_alone = 0.0
    for b, (t, g) in enumerate(zip(tokens, tags)):
        one = make_batch(vocab, [t], [g])
        alone = model.emissions(one)
        torch.testing.assert_close(together[b, : len(t)], alone[0], rtol=1e-10, atol=1e-10)
        assert model.predict(one)[0] == model.predict(batch)[b]
        loss_alone = loss_alone + model.loss(one).loss * len(t)
    torch.testing.assert_close(loss_together, loss_alone, rtol=1e-10, atol=1e-10)


# ------------------------------------------------------------------------------------------ CoNLL I/O


def test_conll_reader_skips_docstart_and_comments_and_reads_hash_tokens(tmp_path):
    text = "-DOCSTART- -X- O\n\n# sent_id = 1\nJohn NNP B-PER\nlives VBZ O\n\n\n#  NN O\nrocks VBZ O\n"
    path = tmp_path / "a.conll"
    path.write_text(text, encoding="utf-8")
    assert read_conll(path) == [Sentence(["John", "lives"], ["B-PER", "O"]), Sentence(["#", "rocks"], ["O", "O"])]
    assert read_conll(path, tag_column=1)[0].tags == ["NNP", "VBZ"]
    tsv = "# comment\n#\tSYM\nok\tADJ\n"  # tab-separated: a one-column '#' comment, then a '#' token
    assert parse_conll(tsv) == [Sentence(["#", "ok"], ["SYM", "ADJ"])]
    assert parse_conll("just\nwords\n") == [Sentence(["just", "words"], None)]


def test_conllu_reads_form_and_upos_and_skips_ranges_and_empty_nodes(tmp_path):
    rows = [["1-2", "won't"], ["1", "wo", "will", "AUX"], ["2", "n't", "not", "PART"], ["2.1", "go", "go", "VERB"],
            ["3", "go", "go", "VERB"]]  # fmt: skip
    text = "# text = won't go\n" + "".join("\t".join(r + ["_"] * (10 - len(r))) + "\n" for r in rows) + "\n"
    path = tmp_path / "x.conllu"
    path.write_text(text, encoding="utf-8")
    assert read_conll(path) == [Sentence(["wo", "n't", "go"], ["AUX", "PART", "VERB"])]
    path.write_text(text.replace("\tnot\t", "\t"), encoding="utf-8")
    with pytest.raises(ValueError, match=r"x\.conllu, line 4: expected 10 tab-separated CoNLL-U columns, found 9"):
        read_conll(path)


def test_write_then_read_is_the_identity(tmp_path):
    sentences = [Sentence(["Hello", "#", "world", "!"], ["INTJ", "SYM", "NOUN", "PUNCT"]), Sentence(["x"], ["X"])]
    assert read_conll(write_conll(sentences, tmp_path / "o.conll")) == sentences
    compressed = tmp_path / "o.conll.xz"
    compressed.write_bytes(lzma.compress((tmp_path / "o.conll").read_bytes()))
    assert read_conll(compressed) == sentences


_letters = st.characters(blacklist_categories=("Cs", "Zs", "Zl", "Zp", "Cc", "Cf"))
_token = st.text(_letters, min_size=1, max_size=6).filter(
    lambda t: not t.startswith("-DOCSTART-") and not any(c.isspace() for c in t)
)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.tuples(_token, _token), min_size=1, max_size=5), min_size=1, max_size=4))
def test_round_trip_of_any_tokens_and_tags(tmp_path_factory, rows):
    sentences = [Sentence([t for t, _ in s], [g for _, g in s]) for s in rows]
    path = tmp_path_factory.mktemp("rt") / "p.conll"
    assert read_conll(write_conll(sentences, path)) == sentences


def test_reader_errors_name_the_file_and_line(tmp_path):
    bad = tmp_path / "bad.conll"
    bad.write_text("The DET\ncat NOUN\nsat VERB extra\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.conll, line 3: expected 2 columns \(as on line 1\), found 3"):
        read_conll(bad)
    empty = tmp_path / "empty.conll"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"empty\.conll: the file is empty"):
        read_conll(empty)
    latin = tmp_path / "latin.conll"
    latin.write_bytes("The DET\ncaf\u00e9 NOUN\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin\.conll: not UTF-8 text: byte 0xe9 at byte offset 11 \(line 2\)"):
        read_conll(latin)
    comments = tmp_path / "comments.conll"
    comments.write_text("# only\n# comments\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no sentences found"):
        read_conll(comments)
    with pytest.raises(ValueError, match="expected tag_column within the 2 columns of line 1. Received: tag_column=4"):
        read_conll(bad, tag_column=4)
    with pytest.raises(ValueError, match="is not a file"):
        read_conll(tmp_path / "missing.conll")


# ------------------------------------------------------------------------------------------ baseline, metrics


def test_most_frequent_tag_baseline_on_a_hand_example():
    train_sentences = [
        Sentence(["I", "can", "fish"], ["PRON", "AUX", "VERB"]),
        Sentence(["a", "can", "of", "fish"], ["DET", "NOUN", "ADP", "NOUN"]),
        Sentence(["fish", "can", "swim"], ["NOUN", "AUX", "VERB"]),
    ]
    mft = MostFrequentTag(train_sentences)
    # can: AUX 2, NOUN 1; fish: NOUN 2, VERB 1; overall NOUN 3 > AUX 2 = VERB 2: unknown words are NOUN
    assert mft.predict(["can", "fish", "whales", "I"]) == ["AUX", "NOUN", "NOUN", "PRON"]


def test_macro_f1_matches_a_hand_count():
    gold = [["A", "A", "B"], ["C"]]
    predicted = [["A", "B", "B"], ["A"]]
    scores = tagging_scores(gold, predicted, entities=False)
    # A: tp 1, fp 1, fn 1 -> 0.5; B: tp 1, fp 1 -> 2/3; C: fn 1 -> 0
    assert scores["accuracy"] == 0.5
    assert scores["macro_f1"] == pytest.approx((0.5 + 2 / 3 + 0) / 3)


def test_synthetic_corpus_is_deterministic_in_its_seed_and_well_formed():
    a, b, c = synthetic_ner(50, 10, 10, seed=3), synthetic_ner(50, 10, 10, seed=3), synthetic_ner(50, 10, 10, seed=4)
    assert a.train == b.train and a.test == b.test and a.train != c.train
    tags = {t for s in a.train + a.test for t in s.tags}
    assert {"B-PER", "B-LOC", "B-ORG", "O"} <= tags
    for s in a.train + a.test:
        assert len(s.tokens) == len(s.tags)
        for prev, tag in zip(["O"] + s.tags, s.tags):
            if tag.startswith("I-"):
                assert prev[2:] == tag[2:]  # I- continues an entity of the same type


# ------------------------------------------------------------------------------------------ end to end


def test_tiny_training_run_writes_its_report_and_tags_with_the_saved_model(tmp_path):
    data = tmp_path / "pos.conll"
    write_conll(tiny_corpus() * 5, data)
    run = train(data, epochs=1, hidden_size=8, embedding_dim=6, char_hidden=3, batch_size=4, progress=False,
                run_dir=tmp_path / "run", min_word_count=1)  # fmt: skip
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert 0.0 <= report["test"]["accuracy"] <= 1.0 and "macro_f1" in report["baseline_test"]
    assert report["sentences"] == {"train": 16, "val": 2, "test": 2}
    for name in ("loss.png", "tag_f1.png", "confusion.png"):
        assert (tmp_path / "run" / "plots" / name).stat().st_size > 1000
    assert (tmp_path / "run" / "test_predictions.conll").is_file()
    from rnnkit.tasks.tagging import load_run

    loaded = load_run(tmp_path / "run")
    tokens = [["the", "cat", "ran"]]
    assert tag_sentences(loaded.model, loaded.vocab, tokens) == tag_sentences(run.model, run.vocab, tokens)


@pytest.fixture(scope="module")
def ner_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("ner")
    result = CliRunner().invoke(app, ["train", "--dataset", "synthetic-ner", "--max-train-sentences", "200",
                                      "--epochs", "2", "--hidden", "16", "--embedding", "16", "--char-hidden", "8",
                                      "--batch-size", "16", "--lr", "0.01", "--no-progress", "--runs-dir",
                                      str(root)])  # fmt: skip
    assert result.exit_code == 0, result.output
    return root, next(root.iterdir()), result.output


def test_cli_train_on_synthetic_ner_reports_entity_f1_beside_the_baseline(ner_run):
    _, run_dir, output = ner_run
    assert "entity F1" in output and "most frequent tag" in output
    report = json.loads((run_dir / "report.json").read_text())
    for key in ("test", "baseline_test"):
        assert 0.0 <= report[key]["entity_f1"] <= 1.0
        assert set(report[key]["per_tag_f1"]) <= {"PER", "LOC", "ORG"}
    assert "GENERATED" in report["split"]


def test_cli_predict_writes_conll_from_text_and_from_a_file(ner_run):
    root, run_dir, _ = ner_run
    runner = CliRunner()
    done = runner.invoke(app, ["predict", "--run", str(run_dir), "--text", "Maria flew to Oslo."])
    assert done.exit_code == 0, done.output
    lines = done.output.strip().split("\n")
    assert [line.split("\t")[0] for line in lines] == ["Maria", "flew", "to", "Oslo", "."]
    assert all(line.split("\t")[1] in {"O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"} for line in lines)
    source = root / "in.conll"
    source.write_text("Ask\nJohn\n\nGlobex\nhired\nKim\n", encoding="utf-8")
    done = runner.invoke(app, ["predict", "--run", str(run_dir), "--input", str(source), "--output",
                               str(root / "out.conll")])  # fmt: skip
    assert done.exit_code == 0, done.output
    out = read_conll(root / "out.conll")
    assert [s.tokens for s in out] == [["Ask", "John"], ["Globex", "hired", "Kim"]] and all(s.tags for s in out)


def test_cli_errors_are_value_errors_with_the_reason(tmp_path):
    runner = CliRunner()
    done = runner.invoke(app, ["train", "--dataset", "nope", "--runs-dir", str(tmp_path)])
    assert isinstance(done.exception, ValueError) and "ud-en-ewt" in str(done.exception)
    done = runner.invoke(app, ["predict", "--run", str(tmp_path)])
    assert isinstance(done.exception, ValueError) and "--input" in str(done.exception)
