"""The poetry task: training on poems, the shipped model, generate() and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import rnnkit.poetry
from rnnkit.data.poetry import Poem, load_tang
from rnnkit.tasks.poetry import baseline_text, split_poems


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    export = tmp_path_factory.mktemp("model") / "m"
    poems = load_tang()[:300]
    model = rnnkit.poetry.train("tiny", poems, epochs=1, run_dir=run_dir, export=export, progress=False)
    return model, run_dir, export


def test_split_is_by_poem_without_duplicates_across_parts():
    poems = load_tang()[:2000]
    parts = split_poems(poems + poems[:50])  # 50 exact duplicates
    texts = [{p.text() for p in part} for part in parts]
    assert sum(len(t) for t in texts) == len({p.text() for p in poems})
    assert not (texts[0] & texts[1]) and not (texts[0] & texts[2]) and not (texts[1] & texts[2])


def test_training_writes_a_report_with_bits_per_char_beside_the_baselines(tiny_run):
    model, run_dir, export = tiny_run
    report = json.loads((run_dir / "report.json").read_text())
    assert set(report["baselines_test_bits_per_char"]) == {"unigram", "kneser_ney_3", "kneser_ney_5"}
    assert 0 < report["test_bits_per_char"] < 20
    assert {"model.safetensors", "config.json", "vocab.json"} <= {p.name for p in export.iterdir()}
    assert "== epoch 1 ==" in (run_dir / "samples.txt").read_text()


def test_exported_model_generates_the_same_poems_as_the_trained_one(tiny_run):
    model, _, export = tiny_run
    a = rnnkit.poetry.generate(model, form=5, num=2, seed=3)
    b = rnnkit.poetry.generate(export, form=5, num=2, seed=3)
    assert a == b


def test_shipped_model_writes_acrostic_poems_with_exact_form():
    poems = rnnkit.poetry.generate(acrostic="春花秋月", form=7, num=3, seed=0)
    assert len(poems) == 3
    for poem in poems:
        lines = poem.splitlines()
        assert [line[0] for line in lines] == list("春花秋月")
        assert [line[-1] for line in lines] == ["，", "。", "，", "。"]
        assert all(len(line) == 8 for line in lines)
    assert poems == rnnkit.poetry.generate(acrostic="春花秋月", form=7, num=3, seed=0)  # --seed reproduces


def test_shipped_model_beam_search_and_first_line():
    (poem,) = rnnkit.poetry.generate(form=5, lines=8, beam=3)
    assert len(poem.splitlines()) == 8
    (poem,) = rnnkit.poetry.generate(first_line="床前明月光", form=5, num=1, seed=1)
    assert poem.startswith("床前明月光，")


def test_unknown_head_character_is_named():
    with pytest.raises(ValueError, match=r"'龘' never seen"):
        rnnkit.poetry.generate(acrostic="春龘", form=5)


def test_cli_generate_with_the_shipped_model():
    done = subprocess.run(
        [sys.executable, "-m", "rnnkit", "poetry", "generate", "--acrostic", "春花秋月", "--form", "7", "--num", "3",
         "--seed", "0"], capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    poems = done.stdout.strip().split("\n\n")
    assert len(poems) == 3 and all([line[0] for line in p.splitlines()] == list("春花秋月") for p in poems)
    assert poems == rnnkit.poetry.generate(acrostic="春花秋月", form=7, num=3, seed=0)


def test_cli_unknown_head_is_one_line_with_exit_2():
    done = subprocess.run([sys.executable, "-m", "rnnkit", "poetry", "generate", "--acrostic", "龘"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2 and "never seen" in done.stderr and "Traceback" not in done.stderr


def test_baseline_text_counts_one_newline_per_poem():
    assert baseline_text([Poem(["一二三四五", "六七八九十"])]) == "一二三四五，六七八九十。\n"
