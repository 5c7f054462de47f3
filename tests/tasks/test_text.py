"""The text task: `rnnkit text train|generate` on any UTF-8 text, with clear errors for bad input."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from rnnkit.language_model import LanguageModel
from rnnkit.tasks.text import stream_bits_per_char

TEXT = "the cat sat on the mat. the dog sat on the log.\n" * 60


def rnnkit(*args: str, cwd, timeout: float = 300) -> subprocess.CompletedProcess:
    """The CLI in a subprocess, working in ``cwd`` (its runs/ directory lands there)."""
    done = subprocess.run([sys.executable, "-m", "rnnkit", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd)  # fmt: skip
    return done


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("text")
    (root / "t.txt").write_text(TEXT, encoding="utf-8")
    done = rnnkit("text", "train", "--data", str(root / "t.txt"), "--layers", "1", "--hidden", "32", "--embedding",
                  "8", "--epochs", "2", "--batch-size", "4", "--chunk", "32", "--no-progress", cwd=root)  # fmt: skip
    assert done.returncode == 0, done.stderr
    run_dir = str(root / done.stdout.split("run: ")[1].split()[0])
    return root, run_dir, done.stdout


def test_train_reports_bits_per_char_beside_the_kneser_ney_baselines(text_run):
    _, run_dir, stdout = text_run
    assert "kneser ney 5" in stdout and "lstm (this run)" in stdout and "on validation" in stdout
    report = json.loads(open(f"{run_dir}/report.json").read())
    assert set(report["baselines_test_bits_per_char"]) == {"unigram", "kneser_ney_3", "kneser_ney_5"}
    assert report["test_bits_per_char"] < report["baselines_test_bits_per_char"]["unigram"]


def test_generate_continues_the_prime(text_run):
    _, run_dir, _ = text_run
    done = rnnkit("text", "generate", "--run", run_dir, "--prime", "the ", "--length", "40", "--seed", "0", cwd=run_dir)
    assert done.returncode == 0, done.stderr
    out = done.stdout.rstrip("\n")
    assert out.startswith("the ") and len(out) == 44
    again = rnnkit(
        "text", "generate", "--run", run_dir, "--prime", "the ", "--length", "40", "--seed", "0", cwd=run_dir
    )
    assert again.stdout == done.stdout


def test_a_prime_with_characters_never_seen_is_named(text_run):
    _, run_dir, _ = text_run
    done = rnnkit("text", "generate", "--run", run_dir, "--prime", "the Z", cwd=run_dir)
    assert done.returncode == 2 and "never saw: 'Z'" in done.stderr and "Traceback" not in done.stderr


def test_empty_and_non_utf8_corpora_are_clear_errors(tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    done = rnnkit("text", "train", "--data", str(tmp_path / "empty.txt"), "--no-progress", cwd=tmp_path)
    assert done.returncode == 2 and "holds no text" in done.stderr and "Traceback" not in done.stderr
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 ".encode("latin-1") * 10)
    done = rnnkit("text", "train", "--data", str(tmp_path / "latin1.txt"), "--no-progress", cwd=tmp_path)
    assert done.returncode == 2 and "UTF-8" in done.stderr and "offset 3" in done.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # no empty run left behind


def test_stream_evaluation_in_chunks_equals_one_pass_over_the_whole_stream():
    torch.manual_seed(0)
    model = LanguageModel(vocab_size=12, embedding_dim=6, hidden_size=10).eval()
    tokens = np.random.default_rng(0).integers(0, 12, 301)
    ids = torch.from_numpy(tokens)[None]
    whole = model.loss((ids[:, :-1], ids[:, 1:])).loss.item() / math.log(2)
    assert stream_bits_per_char(model, tokens, chunk_length=37) == pytest.approx(whole, rel=1e-5)


def test_validation_and_test_score_at_most_eval_max_chars_of_their_split(tmp_path, monkeypatch):
    import rnnkit.tasks.text as text

    monkeypatch.setattr(text, "EVAL_MAX_CHARS", 40)  # a big corpus in miniature: 144-character splits
    (tmp_path / "t.txt").write_text(TEXT, encoding="utf-8")
    run = text.train(tmp_path / "t.txt", hidden_size=8, embedding_dim=4, num_layers=1, epochs=1, batch_size=4,
                     chunk_length=16, progress=False, run_dir=tmp_path / "run")  # fmt: skip
    assert run.report["characters"]["test"] > 40
    assert run.report["scored_characters"] == {"val": 40, "test": 40}
    ids = np.array(run.vocab.encode(TEXT[-run.report["characters"]["test"] :][:40]))
    assert run.report["test_bits_per_char"] == pytest.approx(stream_bits_per_char(run.model, ids), rel=1e-5)
