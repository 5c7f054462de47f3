"""rnnkit bench corpus at a tiny size: generated text, build and training each measured in a child process."""

from __future__ import annotations

from pathlib import Path

import pytest

from rnnkit.bench import corpus


def test_generated_text_has_the_size_and_the_shape_asked_for(tmp_path):
    path = corpus.write_text(tmp_path / "t.txt", 123_457, seed=1)
    text = path.read_text(encoding="ascii")
    lines = text.split("\n")
    assert len(text) == 123_457
    assert set(text) <= set("abcdefghijklmnopqrstuvwxyz \n")
    assert 50 < len(lines) < 5_000 and max(len(line) for line in lines) < 1_000  # lines of ~10 words
    assert corpus.write_text(tmp_path / "u.txt", 123_457, seed=1).read_bytes() == path.read_bytes()
    with pytest.raises(ValueError, match="Expected a positive size"):
        corpus.write_text(tmp_path / "v.txt", 0)


def test_bench_measures_build_and_training_peaks_and_cleans_up(tmp_path):
    row = corpus.measure(1, steps=2, workdir=tmp_path, scan=False)
    assert row.text_mb == 1.0 and row.characters == 1_000_000 and row.tokens_mb == 2.0  # uint16 ids
    assert row.train_steps == 2
    for step in ("build", "train"):
        base, peak = getattr(row, f"{step}_base_mb"), getattr(row, f"{step}_peak_mb")
        assert 0 < base <= peak, (step, base, peak)
    assert row.build_s > 0 and row.train_s > 0 and row.train_file_mb > 0
    assert row.scan_batches == 0
    assert not any(Path(tmp_path).iterdir())  # the scratch text and corpus are gone
