"""The music task: piano-roll encoding, the model's NLL, baselines, sampling to MIDI, `rnnkit music` and its errors.

No test parses the whole chorale corpus: tiny streams built here, and at most three chorales.
"""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

pytest.importorskip("music21")

from music21 import chord, converter, key, note, stream  # noqa: E402

from rnnkit.commands.music import app  # noqa: E402
from rnnkit.tasks import music  # noqa: E402
from rnnkit.tasks.music import (  # noqa: E402
    NUM_KEYS,
    PianoRollModel,
    key_signature_shift,
    markov_nll_per_step,
    markov_probabilities,
    nll_per_step,
    pad_rolls,
    roll_to_stream,
    sample_rolls,
    stream_to_roll,
    unigram_nll_per_step,
    unigram_probabilities,
    write_midi,
)


def two_voices() -> stream.Stream:
    """Soprano and bass, no pitch repeated back to back within a voice (so runs of steps are notes)."""
    s = stream.Stream()
    for offset, name, length in [(0, "E5", 1), (1, "D5", 1), (2, "C5", 2), (4, "B4", 0.5), (4.5, "A4", 1.5)]:
        s.insert(offset, note.Note(name, quarterLength=length))
    for offset, name, length in [(0, "C3", 2), (2, "A2", 1), (3, "F2", 1), (4, "G2", 2)]:
        s.insert(offset, note.Note(name, quarterLength=length))
    return s


def notes_of(score) -> set[tuple[float, int, float]]:
    return {(float(n.offset), p.midi, float(n.quarterLength)) for n in score.flatten().notes for p in n.pitches}


# ------------------------------------------------------------------------------------------- encoding
def test_stream_to_roll_to_stream_gives_the_same_pitches_at_the_same_offsets():
    original = two_voices()
    roll = stream_to_roll(original, steps_per_quarter=2)
    assert roll.shape == (12, NUM_KEYS)
    assert notes_of(roll_to_stream(roll, steps_per_quarter=2)) == notes_of(original)


def test_chord_pitches_all_sound_and_each_step_is_the_set_of_sounding_pitches():
    s = stream.Stream()
    s.insert(0, chord.Chord(["C4", "E4", "G4"], quarterLength=2))
    s.insert(2, note.Note("F4", quarterLength=1))
    roll = stream_to_roll(s)
    assert [sorted(np.flatnonzero(r) + 21) for r in roll] == [[60, 64, 67], [60, 64, 67], [65]]


def test_quarter_sampling_drops_an_off_beat_eighth_but_eighth_sampling_keeps_it():
    s = stream.Stream()
    s.insert(0, note.Note("C4", quarterLength=0.5))
    s.insert(0.5, note.Note("D4", quarterLength=0.5))  # a passing note between two beats
    s.insert(1, note.Note("E4", quarterLength=1))
    quarters = stream_to_roll(s, steps_per_quarter=1)
    eighths = stream_to_roll(s, steps_per_quarter=2)
    assert [list(np.flatnonzero(r) + 21) for r in quarters] == [[60], [64]]
    assert [list(np.flatnonzero(r) + 21) for r in eighths] == [[60], [62], [64], [64]]


@settings(max_examples=15, deadline=None)
@given(st.lists(st.lists(st.integers(0, NUM_KEYS - 1), max_size=4), min_size=1, max_size=12), st.sampled_from([1, 2]))
def test_any_roll_survives_roll_to_stream_to_roll(steps, steps_per_quarter):
    roll = np.zeros((len(steps), NUM_KEYS), dtype=bool)
    for t, keys in enumerate(steps):
        roll[t, keys] = True
    roll[-1, 0] = True  # the stream's length is where its last note ends
    back = stream_to_roll(roll_to_stream(roll, steps_per_quarter), steps_per_quarter)
    np.testing.assert_array_equal(back, roll)


@pytest.mark.parametrize("sharps, shift", [(0, 0), (1, 5), (-1, -5), (-2, 2), (3, 3), (4, -4), (-6, -6)])
def test_key_signature_shift_moves_the_major_tonic_to_c(sharps, shift):
    s = stream.Stream([key.KeySignature(sharps)])
    assert key_signature_shift(s) == shift
    tonic = key.KeySignature(sharps).asKey("major").tonic.midi
    assert (tonic + shift) % 12 == 0


def test_transposition_shifts_every_key_of_the_roll():
    s = two_voices()
    np.testing.assert_array_equal(stream_to_roll(s, shift=3)[:, 3:], stream_to_roll(s)[:, :-3])


# ------------------------------------------------------------------------------------------- model and baselines
def random_rolls(lengths, seed=0, density=0.08):
    rng = np.random.default_rng(seed)
    return [rng.random((n, NUM_KEYS)) < density for n in lengths]


def test_loss_equals_binary_cross_entropy_by_hand_over_valid_steps():
    torch.manual_seed(0)
    model = PianoRollModel(hidden_size=12, num_layers=2, cell="gru").eval()
    rolls = random_rolls([6, 3, 5])
    out = model.loss(pad_rolls(rolls))
    total, steps = 0.0, 0
    for roll in rolls:  # one piece at a time, no padding, log-likelihood written out
        y = torch.as_tensor(roll, dtype=torch.float64)
        inputs = torch.cat([torch.zeros(1, NUM_KEYS), torch.as_tensor(roll[:-1], dtype=torch.float32)])
        with torch.no_grad():
            h, _ = model.rnn(inputs[None])
            p = torch.sigmoid(model.head(h)[0].double())  # (T, 88)
        total += -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).sum().item()
        steps += len(roll)
    assert out.count == steps == 14
    assert out.loss.item() == pytest.approx(total / steps, rel=1e-5)


def test_nll_is_the_same_batched_with_padding_and_one_piece_at_a_time():
    torch.manual_seed(1)
    model = PianoRollModel(hidden_size=10, cell="lstm_peephole").eval()
    rolls = random_rolls([7, 2, 5, 4], seed=1)
    batched = nll_per_step(model, rolls, batch_size=4)
    alone = sum(nll_per_step(model, [r]) * len(r) for r in rolls) / sum(len(r) for r in rolls)
    assert batched == pytest.approx(alone, rel=1e-5)


def test_output_bias_initialised_at_the_unigram_gives_the_unigram_nll_with_zero_weights():
    rolls = random_rolls([20, 30], seed=2, density=0.2)
    model = PianoRollModel(hidden_size=8)
    torch.nn.init.zeros_(model.head.weight)
    p = unigram_probabilities(rolls)
    model.init_output_bias(p)
    assert nll_per_step(model, rolls) == pytest.approx(unigram_nll_per_step(p, rolls), rel=1e-5)


def test_unigram_baseline_on_a_hand_example():
    train = np.zeros((4, NUM_KEYS), dtype=bool)
    train[:3, 39] = True  # middle C sounds at 3 of 4 steps; every other key never
    p = unigram_probabilities([train], prior=0.5)
    assert p[39] == pytest.approx(3.5 / 5) and p[0] == pytest.approx(0.5 / 5)
    test = np.zeros((2, NUM_KEYS), dtype=bool)
    test[0, 39] = True
    test[1, 40] = True
    by_hand = -(math.log(0.7) + 87 * math.log(0.9)) - (math.log(0.3) + math.log(0.1) + 86 * math.log(0.9))
    assert unigram_nll_per_step(p, [test]) == pytest.approx(by_hand / 2)


def test_per_key_markov_baseline_on_a_hand_example():
    roll = np.zeros((4, NUM_KEYS), dtype=bool)
    roll[1:3, 0] = True  # key 0: off, on, on, off; the step before the first is silent
    p = markov_probabilities([roll], prior=1e-12)
    assert p[0, 0] == pytest.approx(0.5)  # from off: t0 stays off, t1 turns on
    assert p[1, 0] == pytest.approx(0.5)  # from on: t2 stays on, t3 turns off
    assert p[0, 1] == pytest.approx(0.0, abs=1e-9)  # every other key: off -> off at all 4 steps
    assert markov_nll_per_step(p, [roll]) == pytest.approx(math.log(2), rel=1e-6)  # 4 coin flips over 4 steps


# ------------------------------------------------------------------------------------------- sampling
def test_sampling_is_deterministic_with_the_seed_and_the_midi_reads_back(tmp_path):
    torch.manual_seed(0)
    model = PianoRollModel(hidden_size=8)
    model.init_output_bias(np.full(NUM_KEYS, 0.05))
    a = sample_rolls(model, steps=16, num=2, seed=3)
    b = sample_rolls(model, steps=16, num=2, seed=3)
    c = sample_rolls(model, steps=16, num=2, seed=4)
    np.testing.assert_array_equal(a, b)
    assert a.any() and not np.array_equal(a, c)
    roll = a[0].copy()
    roll[-1, 50] = True  # something sounds at the last step, so the file has the roll's full length
    path = write_midi(roll, tmp_path / "x.mid", steps_per_quarter=2)
    back = converter.parse(path)
    np.testing.assert_array_equal(stream_to_roll(back, steps_per_quarter=2), roll)


def test_temperature_zero_takes_the_keys_above_one_half():
    model = PianoRollModel(hidden_size=4)
    torch.nn.init.zeros_(model.head.weight)
    p = np.full(NUM_KEYS, 0.1)
    p[[39, 43, 46]] = 0.9
    model.init_output_bias(p)
    roll = sample_rolls(model, steps=3, temperature=0)[0]
    assert all(sorted(np.flatnonzero(r)) == [39, 43, 46] for r in roll)


# ------------------------------------------------------------------------------------------- corpus, training, CLI
def write_pieces(folder, count=6, seed=0):
    """Short two-voice pieces (scales over a bass) as MIDI files in ``folder``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        steps = int(rng.integers(12, 20))
        roll = np.zeros((steps, NUM_KEYS), dtype=bool)
        tonic = 48 + int(rng.integers(0, 12)) - 21
        scale = [0, 2, 4, 5, 7, 9, 11, 12]
        for t in range(steps):
            roll[t, tonic + 12 + scale[t % 8]] = True
            roll[t, tonic + (0 if (t // 4) % 2 == 0 else 7)] = True
        write_midi(roll, folder / f"piece{i}.mid")
    return folder


def test_three_chorales_parse_to_rolls_and_the_second_load_reads_the_cache(tmp_path):
    corpus = music.load_chorales(limit=3, cache=tmp_path)
    assert len(corpus) == 3 and not corpus.from_cache and all(r.shape[1] == NUM_KEYS and r.any() for r in corpus.rolls)
    assert all(name.startswith("bach/") for name in corpus.names)
    again = music.load_chorales(limit=3, cache=tmp_path)
    assert again.from_cache and again.names == corpus.names
    assert all(np.array_equal(a, b) for a, b in zip(again.rolls, corpus.rolls))
    (cached,) = tmp_path.glob("*.npz")
    assert f"music21-{music.music21_version()}" in cached.name


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("music")
    data = write_pieces(root / "pieces")
    args = ["train", "--data", str(data), "--hidden", "8", "--epochs", "1", "--batch-size", "2", "--samples", "1",
            "--no-progress", "--device", "cpu"]  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)  # runs/ lands in root
        result = CliRunner().invoke(app, args, env={"COLUMNS": "200"}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    run_dir = root / result.output.split("run: ")[1].split()[0]
    return root, run_dir, result.output


@pytest.fixture(autouse=True)
def _runs_in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # runs/ lands in the test's folder


def test_train_reports_nll_per_step_beside_the_baselines_and_writes_samples(cli_run):
    _, run_dir, output = cli_run
    assert "lstm 1x8 (this run)" in output and "unigram baseline" in output and "per key markov" in output
    report = json.loads((run_dir / "report.json").read_text())
    assert set(report["baselines_test_nll_per_step"]) == {"unigram", "per_key_markov"}
    assert report["split"] == {"train": {"pieces": 4, "steps": report["split"]["train"]["steps"]},
                               "val": report["split"]["val"], "test": report["split"]["test"]}  # fmt: skip
    assert math.isfinite(report["test_nll_per_step"]) and report["data"]["pieces"] == 6
    for name in ("samples/sample-1.mid", "plots/pianoroll.png", "plots/loss.png", "corpus.npz", "model.safetensors"):
        assert (run_dir / name).is_file(), name
    assert converter.parse(run_dir / "samples" / "sample-1.mid").flatten().notes  # music21 reads the sample back


def test_sample_command_is_seeded_and_writes_midi_and_png(cli_run, tmp_path):
    _, run_dir, _ = cli_run
    runner = CliRunner()
    args = ["sample", "--run", str(run_dir), "--steps", "12", "--temperature", "1.5", "--seed", "7"]
    first = runner.invoke(app, [*args, "--out", str(tmp_path / "a.mid")], catch_exceptions=False)
    second = runner.invoke(app, [*args, "--out", str(tmp_path / "b.mid")], catch_exceptions=False)
    assert first.exit_code == 0 and second.exit_code == 0, first.output
    assert (tmp_path / "a.png").is_file() and f"midi: {tmp_path / 'a.mid'}" in first.output
    a, b = (stream_to_roll(converter.parse(tmp_path / f)) for f in ("a.mid", "b.mid"))
    np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------------------------------- errors
def test_a_data_path_that_does_not_exist_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(app, ["train", "--data", str(tmp_path / "nope"), "--no-progress"])
    assert isinstance(result.exception, ValueError) and "No such file or directory" in str(result.exception)
    assert "nope" in str(result.exception)


def test_a_folder_without_music_files_is_a_clear_error(tmp_path):
    (tmp_path / "notes.txt").write_text("not music")
    with pytest.raises(ValueError, match=r"holds no music files\. Expected files ending in \.mid"):
        music.load_music_dir(tmp_path)


def test_a_file_with_no_notes_is_named(tmp_path):
    empty = stream.Stream([note.Rest(quarterLength=4)])
    empty.write("midi", fp=str(tmp_path / "silence.mid"))
    with pytest.raises(ValueError, match=r"silence\.mid' parses to no notes"):
        music.load_music_dir(tmp_path)


def test_an_unreadable_file_is_named(tmp_path):
    (tmp_path / "broken.mid").write_bytes(b"MThd\x00\x00garbage")
    with pytest.raises(ValueError, match=r"music21 could not read .*broken\.mid"):
        music.load_music_dir(tmp_path)


def test_too_few_pieces_to_split_is_a_clear_error(tmp_path):
    write_pieces(tmp_path, count=2)
    corpus = music.load_music_dir(tmp_path)
    with pytest.raises(ValueError, match="at least 3 distinct pieces.*Received: 2"):
        music.split_pieces(len(corpus))


def test_missing_music21_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "music21", None)  # import music21 now raises ImportError
    monkeypatch.setattr(music, "music21_version", lambda: None)
    with pytest.raises(ImportError, match="pip install music21"):
        music.load_chorales(limit=1)


def test_bad_arguments_echo_what_was_received(tmp_path):
    model = PianoRollModel(hidden_size=4)
    with pytest.raises(ValueError, match=r"temperature >= 0.*Received: temperature=-1"):
        sample_rolls(model, steps=4, temperature=-1)
    with pytest.raises(ValueError, match=r"shape \(B, T, 88\)\. Received: \(2, 3, 12\)"):
        model(torch.zeros(2, 3, 12))
    with pytest.raises(ValueError, match=r"shape \(T, 88\)\. Received: \(4, 12\)"):
        roll_to_stream(np.zeros((4, 12)))
    with pytest.raises(ValueError, match="steps_per_quarter a positive integer.*Received: 0"):
        stream_to_roll(two_voices(), steps_per_quarter=0)
    (tmp_path / "config.json").write_text(json.dumps({"train": {"task": "text"}}))
    with pytest.raises(ValueError, match="is not a music run"):
        music.sample(tmp_path)
