"""One-to-many music generation: a recurrent model of Bach chorales as piano-rolls, scored by
negative log-likelihood per time step beside unigram and per-key Markov baselines, sampled to MIDI.

    run = rnnkit.tasks.music.train(epochs=20)          # Bach chorales shipped with music21
    rnnkit.tasks.music.sample(run.run_dir, steps=64, temperature=1.0, seed=0, out="new.mid")

Encoding (the JSB Chorales benchmark's, Boulanger-Lewandowski et al. 2012): a piece is an
88-key piano-roll ``(T, 88)`` of booleans, MIDI pitches 21 (A0) .. 108 (C8), sampled every
quarter note by default (``steps_per_quarter=1``; 2 samples at eighth notes): step ``t`` holds
the pitches sounding at time ``t / steps_per_quarter`` quarters.  A note held over several steps
and the same note repeated look alike, as in the benchmark.  By default every piece is
transposed by the shift that brings its key signature to none (major keys to C, minor to A),
so the model need not learn each pattern in twelve keys.

Model: the frame of step ``t - 1`` (zeros before the first) goes into ``rnnkit.Recurrent``; a
linear layer gives 88 logits; each key is an independent Bernoulli given the past, so the
negative log-likelihood of a step is the binary cross-entropy summed over the 88 keys (nats),
averaged over the valid steps of the pieces (the benchmark's "NLL per time step").

Data: ``music21``'s corpus holds 371 Bach chorales (350 distinct files; identical encodings are
dropped before the split), parsed once (a minute or two) and cached as a ``.npz`` under
``$XDG_CACHE_HOME/rnnkit/music`` (``~/.cache/rnnkit/music``), keyed by the music21 version and the
encoding.  ``data=DIR`` reads your own MIDI / MusicXML / kern / ABC files instead.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers import Recurrent
from ..train.fit import LossOutput

LOWEST_PITCH = 21  # MIDI A0, the lowest piano key
NUM_KEYS = 88  # A0 .. C8
ENCODING_VERSION = 1  # bump when the encoding changes: old cache files are then ignored
MUSIC_SUFFIXES = (".mid", ".midi", ".xml", ".musicxml", ".mxl", ".krn", ".abc")
UNIGRAM_PRIOR = 0.5  # add-1/2 (Krichevsky-Trofimov) counts, so a key never seen in training has p > 0


# ---------------------------------------------------------------------------------------- music21
def import_music21():
    """Import music21 with a writable home and no network; a clear error when it is missing.

    music21 keeps user settings under ``~`` and parsed files in a scratch folder; when ``HOME`` is
    not writable it points ``HOME`` at a private temporary folder first.  Downloading is set to
    ``deny`` (in memory only): only local files are ever read.
    """
    home = Path(os.environ.get("HOME") or tempfile.gettempdir())
    if not (home.is_dir() and os.access(home, os.W_OK)):
        os.environ["HOME"] = tempfile.mkdtemp(prefix="rnnkit-music21-home-")
    try:
        import music21
        from music21 import environment
    except ImportError as error:
        raise ImportError(
            f"The music task needs music21 (BSD-3), which is not installed: pip install music21 ({error})"
        ) from None
    environment.Environment()["autoDownload"] = "deny"
    return music21


def music21_version() -> str | None:
    """music21's installed version without importing it (None when it is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("music21")
    except PackageNotFoundError:
        return None


def key_signature_shift(score) -> int:
    """Semitones in ``-6..5`` that move ``score``'s first key signature to none (C major / A minor).

    Example:
        >>> from music21 import key, stream
        >>> s = stream.Stream([key.KeySignature(1)])  # one sharp: G major / E minor
        >>> key_signature_shift(s)  # G -> C is 5 semitones up (E -> A likewise)
        5
    """
    from music21 import key

    signatures = list(score.recurse().getElementsByClass(key.KeySignature))
    if not signatures:
        return 0
    shift = -((7 * signatures[0].sharps) % 12)  # the major tonic of n sharps is 7n semitones above C
    return shift + 12 if shift < -6 else shift


def stream_to_roll(score, steps_per_quarter: int = 1, shift: int = 0) -> np.ndarray:
    """A music21 stream as a piano-roll ``(T, 88)`` of booleans: ``roll[t, k]`` is True when MIDI
    pitch ``21 + k`` sounds at time ``t / steps_per_quarter`` quarters (after ``shift`` semitones).

    ``T`` covers the stream's whole length (``highestTime``).  A note shorter than a step that
    sounds at no sampling instant is not seen (as in the JSB benchmark); pitches outside the
    piano's range are dropped; chord symbols and grace notes are skipped.

    Example:
        >>> from music21 import note, stream
        >>> s = stream.Stream()
        >>> s.insert(0, note.Note("C4", quarterLength=2)); s.insert(1, note.Note("E4", quarterLength=1))
        >>> roll = stream_to_roll(s)
        >>> roll.shape, [(np.flatnonzero(r) + 21).tolist() for r in roll]
        ((2, 88), [[60], [60, 64]])
    """
    from music21 import harmony

    _check_resolution(steps_per_quarter)
    flat = score.flatten()
    steps = math.ceil(float(flat.highestTime) * steps_per_quarter - 1e-9)
    roll = np.zeros((max(steps, 0), NUM_KEYS), dtype=bool)
    for element in flat.notes:
        if isinstance(element, harmony.Harmony) or not hasattr(element, "pitches"):
            continue
        onset, length = float(element.offset), float(element.quarterLength)
        if length <= 0:
            continue
        # the sampling instants t / steps_per_quarter inside [onset, onset + length)
        start = math.ceil(onset * steps_per_quarter - 1e-9)
        stop = min(math.ceil((onset + length) * steps_per_quarter - 1e-9), steps)
        for pitch in element.pitches:
            k = pitch.midi + shift - LOWEST_PITCH
            if 0 <= k < NUM_KEYS and stop > start:
                roll[start:stop, k] = True
    return roll


def roll_to_stream(roll: np.ndarray, steps_per_quarter: int = 1, bpm: float = 80.0):
    """A piano-roll ``(T, 88)`` back to a music21 ``Score`` (one piano part): each run of
    consecutive active steps of a key becomes one note.

    ``stream_to_roll(roll_to_stream(roll))`` gives ``roll`` back exactly.

    Example:
        >>> roll = np.zeros((3, 88), dtype=bool); roll[0:2, 60 - 21] = True; roll[2, 64 - 21] = True
        >>> [(n.offset, n.pitch.midi, n.quarterLength) for n in roll_to_stream(roll).flatten().notes]
        [(0.0, 60, 2.0), (2.0, 64, 1.0)]
    """
    import_music21()
    from music21 import instrument, note, stream, tempo

    roll = _check_roll(roll)
    _check_resolution(steps_per_quarter)
    part = stream.Part()
    part.insert(0, instrument.Piano())
    part.insert(0, tempo.MetronomeMark(number=bpm))
    padded = np.zeros((len(roll) + 2, NUM_KEYS), dtype=np.int8)
    padded[1:-1] = roll
    edges = np.diff(padded, axis=0)  # +1 where a run starts, -1 one past where it stops
    for k in range(NUM_KEYS):
        starts, stops = np.flatnonzero(edges[:, k] == 1), np.flatnonzero(edges[:, k] == -1)
        for start, stop in zip(starts, stops):
            n = note.Note(midi=LOWEST_PITCH + k)
            n.quarterLength = Fraction(int(stop - start), steps_per_quarter)
            part.insert(Fraction(int(start), steps_per_quarter), n)
    score = stream.Score()
    score.insert(0, part)
    return score


def write_midi(roll: np.ndarray, path: str | Path, steps_per_quarter: int = 1, bpm: float = 80.0) -> Path:
    """Write a piano-roll ``(T, 88)`` as a standard MIDI file (one piano track); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    roll_to_stream(roll, steps_per_quarter, bpm).write("midi", fp=str(path))
    return path


def _check_resolution(steps_per_quarter: int) -> None:
    if not isinstance(steps_per_quarter, int) or isinstance(steps_per_quarter, bool) or steps_per_quarter < 1:
        raise ValueError(
            f"Expected steps_per_quarter a positive integer (1: quarter notes as JSB, 2: eighth notes). "
            f"Received: {steps_per_quarter!r}"
        )


def _check_roll(roll) -> np.ndarray:
    roll = np.asarray(roll)
    if roll.ndim != 2 or roll.shape[1] != NUM_KEYS:
        raise ValueError(f"Expected a piano-roll of shape (T, {NUM_KEYS}). Received: {roll.shape}")
    return roll.astype(bool)


# ---------------------------------------------------------------------------------------- corpus
@dataclass
class MusicCorpus:
    """Encoded pieces: ``rolls[i]`` is a ``(T_i, 88)`` boolean piano-roll named ``names[i]``."""

    rolls: list[np.ndarray]
    names: list[str]
    steps_per_quarter: int = 1
    transpose: bool = True
    source: str = "music21 Bach chorales"
    duplicates_removed: int = 0
    parse_seconds: float = 0.0  # time spent parsing and encoding when the corpus was built
    from_cache: bool = False

    def __len__(self) -> int:
        return len(self.rolls)

    @property
    def steps(self) -> int:
        return sum(len(r) for r in self.rolls)

    def save(self, path: str | Path) -> Path:
        """One compressed ``.npz``: every roll stacked ``(sum T_i, 88)``, their lengths, names and settings."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = dict(steps_per_quarter=self.steps_per_quarter, transpose=self.transpose, source=self.source,
                    duplicates_removed=self.duplicates_removed, parse_seconds=self.parse_seconds,
                    encoding_version=ENCODING_VERSION)  # fmt: skip
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(
            tmp,
            frames=np.concatenate(self.rolls) if self.rolls else np.zeros((0, NUM_KEYS), dtype=bool),
            lengths=np.array([len(r) for r in self.rolls], dtype=np.int64),
            names=np.array(self.names, dtype=str),
            meta=np.array(json.dumps(meta)),
        )
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> MusicCorpus:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            bounds = np.cumsum(data["lengths"])[:-1]
            rolls = list(np.split(data["frames"], bounds)) if len(data["lengths"]) else []
            names = [str(n) for n in data["names"]]
        meta.pop("encoding_version", None)
        return cls(rolls, names, from_cache=True, **meta)


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/rnnkit/music`` (default ``~/.cache/rnnkit/music``), or a temporary folder when that
    is not writable."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rnnkit" / "music"
    try:
        base.mkdir(parents=True, exist_ok=True)
        if os.access(base, os.W_OK):
            return base
    except OSError:
        pass
    fallback = Path(tempfile.gettempdir()) / "rnnkit-cache" / "music"
    fallback.mkdir(parents=True, exist_ok=True)
    return fallback


def _deduplicate(rolls: list[np.ndarray], names: list[str]) -> tuple[list[np.ndarray], list[str], int]:
    seen: set[bytes] = set()
    kept_rolls, kept_names = [], []
    for roll, name in zip(rolls, names):
        key = roll.shape[0].to_bytes(8, "little") + np.packbits(roll).tobytes()
        if key not in seen:
            seen.add(key)
            kept_rolls.append(roll)
            kept_names.append(name)
    return kept_rolls, kept_names, len(rolls) - len(kept_rolls)


def load_chorales(
    steps_per_quarter: int = 1,
    transpose: bool = True,
    limit: int | None = None,
    cache: str | Path | None = None,
    log=None,
    workers: int = 0,
) -> MusicCorpus:
    """The Bach chorales of music21's corpus as piano-rolls, parsed once and cached.

    Args:
        steps_per_quarter: samples per quarter note (1 as JSB; 2 keeps the eighth notes).
        transpose: shift every chorale so its key signature has no sharps or flats.
        limit: only the first ``limit`` distinct chorale files (tests, quick tries).
        cache: the cache folder (default :func:`cache_dir`); the file name holds the music21
            version and the encoding, so a change of either re-parses.
        log: called with a line of progress text while parsing (e.g. ``print``).
        workers: parsing processes (0: one per CPU, at most 4, on Linux; 1 elsewhere).

    Example (the first call parses; later ones read the cache):
        >>> corpus = load_chorales(limit=2, cache=tempfile.mkdtemp())
        >>> len(corpus), corpus.rolls[0].shape[1]
        (2, 88)
    """
    _check_resolution(steps_per_quarter)
    version = music21_version()
    if version is None:
        import_music21()  # raises the clear error
    name = f"chorales-music21-{version}-enc{ENCODING_VERSION}-spq{steps_per_quarter}-{'C' if transpose else 'orig'}"
    if limit:
        name += f"-first{limit}"
    path = Path(cache or cache_dir()) / f"{name}.npz"
    if path.is_file():
        try:
            return MusicCorpus.load(path)
        except (OSError, ValueError, KeyError):
            path.unlink(missing_ok=True)  # a damaged cache file: parse again
    import_music21()
    from music21 import corpus as m21corpus

    files = list(dict.fromkeys(str(f) for f in m21corpus.chorales.Iterator(returnType="filename")))
    files = files[:limit] if limit else files
    start = time.perf_counter()
    workers = _parse_workers(workers, len(files))
    if log is not None:
        log(f"parsing {len(files)} chorales with music21 ({workers} process(es)); once, then cached in {path.parent}")
    jobs = [(file, steps_per_quarter, transpose) for file in files]
    if workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            encoded = list(pool.map(_encode_chorale, jobs, chunksize=8))
    else:
        encoded = []
        for i, job in enumerate(jobs):
            encoded.append(_encode_chorale(job))
            if log is not None and (i + 1) % 50 == 0:
                log(f"parsed {i + 1}/{len(files)} chorales ({time.perf_counter() - start:.0f} s)")
    names = [file for file, roll in zip(files, encoded) if roll.any()]
    rolls = [roll for roll in encoded if roll.any()]
    rolls, names, duplicates = _deduplicate(rolls, names)
    corpus = MusicCorpus(rolls, names, steps_per_quarter, transpose, "music21 Bach chorales", duplicates,
                         time.perf_counter() - start)  # fmt: skip
    corpus.save(path)
    return corpus


def _encode_chorale(job: tuple[str, int, bool]) -> np.ndarray:
    """Parse one chorale of music21's corpus and encode it (a top-level function: it runs in worker processes)."""
    file, steps_per_quarter, transpose = job
    import_music21()
    from music21 import corpus as m21corpus

    score = m21corpus.parse(file)
    return stream_to_roll(score, steps_per_quarter, key_signature_shift(score) if transpose else 0)


def _parse_workers(workers: int, jobs: int) -> int:
    """0: one process per CPU (at most 4) where processes can fork (Linux), else 1."""
    import multiprocessing
    import sys

    if workers < 0:
        raise ValueError(f"Expected workers >= 0 (0: automatic). Received: workers={workers}")
    if workers == 0:
        fork = sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()
        workers = min(4, os.cpu_count() or 1) if fork else 1
    return max(1, min(workers, jobs // 8))


def load_music_dir(path: str | Path, steps_per_quarter: int = 1, transpose: bool = True) -> MusicCorpus:
    """Your own pieces: every MIDI / MusicXML / kern / ABC file under ``path`` (a folder, searched
    recursively, or one file) as a piano-roll.  A file that cannot be read or holds no notes is a
    ``ValueError`` naming it.
    """
    _check_resolution(steps_per_quarter)
    path = Path(path)
    if not path.exists():
        raise ValueError(f"No such file or directory: {str(path)!r} (expected a folder of MIDI or MusicXML files).")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in MUSIC_SUFFIXES)
    else:
        files = [path]
    if not files:
        raise ValueError(f"{str(path)!r} holds no music files. Expected files ending in {', '.join(MUSIC_SUFFIXES)}.")
    import_music21()
    from music21 import converter

    start = time.perf_counter()
    rolls, names = [], []
    for file in files:
        if file.suffix.lower() not in MUSIC_SUFFIXES:
            raise ValueError(f"{str(file)!r} is not a music file this task reads ({', '.join(MUSIC_SUFFIXES)}).")
        try:
            score = converter.parse(file)
        except Exception as error:  # noqa: BLE001 — music21 raises many kinds; the user needs the file's name
            raise ValueError(f"music21 could not read {str(file)!r}: {type(error).__name__}: {error}") from None
        roll = stream_to_roll(score, steps_per_quarter, key_signature_shift(score) if transpose else 0)
        if not roll.any():
            raise ValueError(f"{str(file)!r} parses to no notes (an empty or percussion-only file?).")
        rolls.append(roll)
        names.append(str(file.relative_to(path)) if path.is_dir() else file.name)
    rolls, names, duplicates = _deduplicate(rolls, names)
    return MusicCorpus(rolls, names, steps_per_quarter, transpose, str(path), duplicates, time.perf_counter() - start)


def split_pieces(count: int, seed: int = 0, fractions: tuple[float, float] = (0.1, 0.1)) -> dict[str, np.ndarray]:
    """Indices of a random split by piece: validation and test get ``fractions`` of the pieces (at least
    one each), training the rest.

    Example:
        >>> {k: len(v) for k, v in split_pieces(20, seed=0).items()}
        {'train': 16, 'val': 2, 'test': 2}
    """
    if count < 3:
        raise ValueError(f"Expected at least 3 distinct pieces to split into train/validation/test. Received: {count}")
    order = np.random.default_rng(seed).permutation(count)
    n_val, n_test = (max(1, round(f * count)) for f in fractions)
    return {"train": np.sort(order[n_val + n_test :]), "val": np.sort(order[:n_val]),
            "test": np.sort(order[n_val : n_val + n_test])}  # fmt: skip


# ---------------------------------------------------------------------------------------- model
def pad_rolls(rolls: list) -> tuple[Tensor, Tensor]:
    """Pieces of different lengths as one batch: ``(B, T_max, 88)`` float frames, zero-padded, and ``(B,)`` lengths.

    Example:
        >>> x, lengths = pad_rolls([np.ones((3, 88), bool), np.ones((1, 88), bool)])
        >>> tuple(x.shape), lengths.tolist(), x[1, 1:].sum().item()
        ((2, 3, 88), [3, 1], 0.0)
    """
    lengths = torch.tensor([len(r) for r in rolls], dtype=torch.long)
    frames = torch.zeros(len(rolls), int(lengths.max()), NUM_KEYS)
    for i, roll in enumerate(rolls):
        frames[i, : len(roll)] = torch.as_tensor(np.asarray(roll), dtype=torch.float32)
    return frames, lengths


class PianoRollModel(nn.Module):
    """Next-frame model of a piano-roll: ``p(y_t | y_<t) = prod_k Bernoulli(y_t,k; sigmoid(W h_t + b)_k)``,
    ``h_t = RNN(y_{t-1}, h_{t-1})``, ``y_0`` fed as zeros.

    Example:
        >>> model = PianoRollModel(hidden_size=16)
        >>> frames = torch.randint(0, 2, (2, 5, 88)).float()  # (B, T, 88)
        >>> logits, state = model(frames)
        >>> tuple(logits.shape)
        (2, 5, 88)
        >>> out = model.loss((frames, torch.tensor([5, 3])))  # NLL per step (nats), over 8 valid steps
        >>> out.count
        8
    """

    def __init__(
        self,
        hidden_size: int = 128,
        num_layers: int = 1,
        cell: str = "lstm",
        dropout: float = 0.0,
        num_keys: int = NUM_KEYS,
        **layer_options,
    ):
        super().__init__()
        self.config = dict(hidden_size=hidden_size, num_layers=num_layers, cell=cell, dropout=dropout,
                           num_keys=num_keys, **layer_options)  # fmt: skip
        self.num_keys = num_keys
        self.rnn = Recurrent(cell, num_keys, hidden_size, num_layers=num_layers, dropout=dropout, **layer_options)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, num_keys)

    @torch.no_grad()
    def init_output_bias(self, probabilities: np.ndarray) -> None:
        """Start the output bias at the log-odds of each key's training frequency ``(K,)``: before any
        training the model predicts the unigram baseline instead of p = 1/2 for all 88 keys."""
        p = torch.as_tensor(np.asarray(probabilities), dtype=self.head.bias.dtype).clamp(1e-6, 1 - 1e-6)
        self.head.bias.copy_(torch.log(p) - torch.log1p(-p))

    def forward(self, frames: Tensor, state=None, lengths: Tensor | None = None):
        """Logits ``(B, T, K)`` of the frame after each input frame ``(B, T, K)``, and the final state."""
        if frames.dim() != 3 or frames.shape[-1] != self.num_keys:
            raise ValueError(f"Expected frames of shape (B, T, {self.num_keys}). Received: {tuple(frames.shape)}")
        h, state = self.rnn(frames, state, lengths)  # (B, T, H)
        return self.head(self.dropout(h)), state  # (B, T, K)

    def step(self, frame: Tensor, state=None):
        """One step for sampling: frame ``(B, K)`` -> logits of the next frame ``(B, K)``, state."""
        h, state = self.rnn.step(frame, state)  # (B, H)
        return self.head(h), state

    def step_nll(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """Per-step NLL ``(B, T)`` in nats (binary cross-entropy summed over keys) and the mask of valid steps."""
        frames, lengths = batch  # (B, T, K), (B,)
        inputs = torch.cat([torch.zeros_like(frames[:, :1]), frames[:, :-1]], dim=1)  # y_{t-1}, zeros first
        logits, _ = self(inputs, lengths=lengths)  # (B, T, K)
        nll = F.binary_cross_entropy_with_logits(logits, frames, reduction="none").sum(-1)  # (B, T)
        mask = torch.arange(frames.shape[1], device=frames.device)[None] < lengths.to(frames.device)[:, None]
        return nll * mask, mask

    def loss(self, batch: tuple[Tensor, Tensor], state=None) -> LossOutput:
        """Mean NLL per valid step (nats) of a padded batch ``(frames (B, T, K), lengths (B,))``."""
        nll, mask = self.step_nll(batch)
        count = int(mask.sum())
        return LossOutput(nll.sum() / count, count)


@torch.no_grad()
def nll_per_step(model: PianoRollModel, rolls: list[np.ndarray], batch_size: int = 64) -> float:
    """The model's NLL per time step (nats) over all steps of ``rolls``, pieces batched with padding."""
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for i in range(0, len(rolls), batch_size):
        frames, lengths = pad_rolls(rolls[i : i + batch_size])
        nll, mask = model.step_nll((frames.to(device), lengths))
        total += nll.sum().item()
        count += int(mask.sum())
    return total / count


# ---------------------------------------------------------------------------------------- baselines
def unigram_probabilities(rolls: list[np.ndarray], prior: float = UNIGRAM_PRIOR) -> np.ndarray:
    """``(88,)`` probability that each key sounds at a step, from training counts (add-``prior`` smoothing)."""
    frames = np.concatenate(rolls).astype(np.float64)
    return (frames.sum(0) + prior) / (len(frames) + 2 * prior)


def unigram_nll_per_step(probabilities: np.ndarray, rolls: list[np.ndarray]) -> float:
    """NLL per step (nats) of the unigram model: every step the same independent Bernoulli per key.

    Example (one key at p=0.5, the others at 0.25; two steps):
        >>> p = np.full(88, 0.25); p[0] = 0.5
        >>> y = np.zeros((2, 88), bool); y[0, 0] = True
        >>> round(unigram_nll_per_step(p, [y]), 4) == round(math.log(2) + 87 * -math.log(0.75), 4)
        True
    """
    frames = np.concatenate(rolls).astype(np.float64)
    log_p, log_q = np.log(probabilities), np.log1p(-probabilities)
    return float(-(frames @ log_p + (1 - frames) @ log_q).sum() / len(frames))


def markov_probabilities(rolls: list[np.ndarray], prior: float = UNIGRAM_PRIOR) -> np.ndarray:
    """``(2, 88)``: ``p[s, k]`` = P(key k sounds | it was ``s`` at the step before), each key its own two-state
    Markov chain (the step before the first is silent, as the model's input)."""
    on = np.zeros((2, NUM_KEYS))
    total = np.zeros((2, NUM_KEYS))
    for roll in rolls:
        prev = np.vstack([np.zeros((1, NUM_KEYS), bool), roll[:-1]])
        for s in (0, 1):
            here = prev == bool(s)
            total[s] += here.sum(0)
            on[s] += (here & roll).sum(0)
    return (on + prior) / (total + 2 * prior)


def markov_nll_per_step(probabilities: np.ndarray, rolls: list[np.ndarray]) -> float:
    """NLL per step (nats) of the per-key Markov baseline of :func:`markov_probabilities`."""
    total, steps = 0.0, 0
    for roll in rolls:
        prev = np.vstack([np.zeros((1, NUM_KEYS), bool), roll[:-1]]).astype(int)
        p = probabilities[prev, np.arange(NUM_KEYS)]  # (T, 88)
        total -= np.where(roll, np.log(p), np.log1p(-p)).sum()
        steps += len(roll)
    return float(total / steps)


# ---------------------------------------------------------------------------------------- sampling
@torch.no_grad()
def sample_rolls(
    model: PianoRollModel, steps: int, num: int = 1, temperature: float = 1.0, seed: int | None = 0
) -> np.ndarray:
    """Sample ``num`` piano-rolls of ``steps`` steps: ``(num, steps, 88)`` booleans.

    Each key of a step is drawn from ``Bernoulli(sigmoid(logit / temperature))`` given the frames
    before; ``temperature=0`` takes every key whose probability exceeds 1/2.  The same seed gives
    the same rolls.

    Example:
        >>> sample_rolls(PianoRollModel(hidden_size=8), steps=6, num=2, seed=0).shape
        (2, 6, 88)
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"Expected steps a positive integer. Received: steps={steps!r}")
    if temperature < 0 or not math.isfinite(temperature):
        raise ValueError(f"Expected temperature >= 0 (0: most likely keys). Received: temperature={temperature}")
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator(device="cpu").manual_seed(seed) if seed is not None else None
    frame = torch.zeros(num, model.num_keys, device=device)  # y_0: silence
    state, frames = None, []
    for _ in range(steps):
        logits, state = model.step(frame, state)  # (num, K)
        if temperature == 0:
            frame = (logits > 0).float()
        else:
            p = torch.sigmoid(logits.float().cpu() / temperature)
            frame = torch.bernoulli(p, generator=generator).to(device)
        frames.append(frame.bool().cpu())
    return torch.stack(frames, dim=1).numpy()


# ---------------------------------------------------------------------------------------- plots
def plot_piano_rolls(rolls: dict[str, np.ndarray], path: str | Path, steps_per_quarter: int = 1) -> Path:
    """Piano-rolls one above the other (pitch against time in quarter notes) to a PNG; returns its path."""
    from ..plots import _pyplot, _save

    plt = _pyplot()
    active = np.flatnonzero(np.concatenate([_check_roll(r) for r in rolls.values()]).any(0))
    low, high = (active.min() - 2, active.max() + 3) if len(active) else (60 - 21 - 12, 60 - 21 + 12)
    low, high = max(0, low), min(NUM_KEYS, high)
    fig, axes = plt.subplots(len(rolls), 1, figsize=(10, 2.6 * len(rolls)), dpi=100, squeeze=False)
    for ax, (title, roll) in zip(axes[:, 0], rolls.items()):
        quarters = len(roll) / steps_per_quarter
        ax.imshow(roll[:, low:high].T, origin="lower", aspect="auto", cmap="Greys", interpolation="nearest",
                  extent=(0, quarters, LOWEST_PITCH + low - 0.5, LOWEST_PITCH + high - 0.5))  # fmt: skip
        c_keys = [m for m in range(LOWEST_PITCH + low, LOWEST_PITCH + high) if m % 12 == 0]
        ax.set_yticks(c_keys, [f"C{m // 12 - 1}" for m in c_keys])
        ax.set_title(title, fontsize=10)
        ax.set_ylabel("pitch")
        ax.grid(axis="y", alpha=0.3)
    axes[-1, 0].set_xlabel("time (quarter notes)")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return _save(fig, Path(path))


# ---------------------------------------------------------------------------------------- train / use
@dataclass
class MusicRun:
    run_dir: Path
    model: PianoRollModel
    report: dict
    written: dict = field(default_factory=dict)  # what was written: name -> path


def _loader(rolls: list[np.ndarray], batch_size: int, shuffle: bool, seed: int):
    from torch.utils.data import DataLoader

    generator = torch.Generator().manual_seed(seed)
    return DataLoader(rolls, batch_size=batch_size, shuffle=shuffle, collate_fn=pad_rolls, generator=generator)


def train(
    data: str | Path | None = None,
    *,
    cell: str = "lstm",
    hidden_size: int = 128,
    num_layers: int = 1,
    dropout: float = 0.2,
    batch_size: int = 4,
    epochs: int = 20,
    learning_rate: float = 5e-3,
    steps_per_quarter: int = 1,
    transpose: bool = True,
    limit: int | None = None,
    num_samples: int = 3,
    temperature: float = 1.0,
    device: str = "auto",
    seed: int = 0,
    run_dir: str | Path | None = None,
    runs_dir: str | Path = "runs",
    cache: str | Path | None = None,
    progress: bool = True,
    log=None,
) -> MusicRun:
    """Train a piano-roll model on the Bach chorales (or ``data``, a folder of MIDI/MusicXML); see the module.

    Writes into the run directory, beside ``fit``'s files: ``corpus.npz`` (the encoded pieces and the
    split), ``report.json`` (validation and test NLL per step, and on the same test pieces the
    unigram and per-key Markov baselines), ``samples/sample-<i>.mid`` (sampled with ``temperature``
    and ``seed``) and ``plots/pianoroll.png`` (a sample above a real test chorale).

    Example (about 2 minutes on 2 cores once the chorales are cached)::

        run = train(epochs=20, seed=0)
        run.report["test_nll_per_step"], run.report["baselines_test_nll_per_step"]["unigram"]
    """

    from ..train import Splits, TrainConfig, fit, load_weights, new_run_dir

    config = TrainConfig(task="music", epochs=epochs, learning_rate=learning_rate, device=device, seed=seed,
                         runs_dir=str(runs_dir), progress=progress, early_stopping=5)  # fmt: skip
    if data is not None:
        corpus = load_music_dir(data, steps_per_quarter, transpose)
    else:
        corpus = load_chorales(steps_per_quarter, transpose, limit=limit, cache=cache, log=log)
    split = split_pieces(len(corpus), seed)
    train_rolls, val_rolls, test_rolls = ([corpus.rolls[i] for i in split[k]] for k in ("train", "val", "test"))
    run_dir = Path(run_dir) if run_dir is not None else new_run_dir("music", runs_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    corpus.save(run_dir / "corpus.npz")
    np.savez(run_dir / "split.npz", **split)

    torch.manual_seed(seed)
    model = PianoRollModel(hidden_size=hidden_size, num_layers=num_layers, cell=cell, dropout=dropout)
    unigram = unigram_probabilities(train_rolls)
    model.init_output_bias(unigram)
    splits = Splits(_loader(train_rolls, batch_size, True, seed), _loader(val_rolls, 64, False, seed), unit="steps")
    median_steps = int(np.median([len(r) for r in train_rolls]))
    meta = {"data": str(data) if data is not None else "music21 Bach chorales", "steps_per_quarter": steps_per_quarter,
            "transpose": transpose, "batch_size": batch_size, "median_steps": median_steps}  # fmt: skip
    result = fit(model, splits, config, run_dir=run_dir, meta=meta)
    load_weights(model, run_dir, "best")
    model.cpu().eval()

    markov = markov_probabilities(train_rolls)
    report = {
        "run_dir": str(run_dir),
        "units": "nats per time step (binary cross-entropy summed over 88 keys), over all steps of the test pieces",
        "test_nll_per_step": nll_per_step(model, test_rolls),
        "val_nll_per_step": nll_per_step(model, val_rolls),
        "baselines_test_nll_per_step": {
            "unigram": unigram_nll_per_step(unigram, test_rolls),
            "per_key_markov": markov_nll_per_step(markov, test_rolls),
        },
        "best_epoch": result.best_epoch, "epochs": result.epochs, "stop_reason": result.stop_reason,
        "data": {
            "source": corpus.source, "pieces": len(corpus), "duplicates_removed": corpus.duplicates_removed,
            "steps_per_quarter": steps_per_quarter, "transposed_to_no_key_signature": transpose,
            "parse_seconds": round(corpus.parse_seconds, 2), "read_from_cache": corpus.from_cache,
        },
        "split": {k: {"pieces": len(v), "steps": sum(len(corpus.rolls[i]) for i in v)} for k, v in split.items()},
        "test_pieces": [corpus.names[i] for i in split["test"]],
        "model": model.config,
    }  # fmt: skip
    written = _write_samples(model, run_dir, corpus.steps_per_quarter, median_steps, num_samples, temperature, seed,
                             real=(corpus.names[split["test"][0]], test_rolls[0]))  # fmt: skip
    report["samples"] = {k: str(v) for k, v in written.items()}
    (run_dir / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    return MusicRun(run_dir, model, report, written)


def _write_samples(model, run_dir: Path, steps_per_quarter: int, steps: int, num: int, temperature: float, seed: int,
                   real: tuple[str, np.ndarray] | None = None, out: Path | None = None) -> dict:  # fmt: skip
    """Sample ``num`` rolls; write them as MIDI (``out`` for the first, else ``samples/sample-<i>.mid``) and the
    piano-roll PNG of the first beside ``real``.  Returns name -> path."""
    written: dict[str, Path] = {}
    if num < 1:
        return written
    rolls = sample_rolls(model, steps, num=num, temperature=temperature, seed=seed)
    for i, roll in enumerate(rolls):
        path = out if (out is not None and num == 1) else None
        if path is None:
            path = (out.with_name(f"{out.stem}-{i + 1}{out.suffix}") if out is not None
                    else run_dir / "samples" / f"sample-{i + 1}.mid")  # fmt: skip
        written[f"midi {i + 1}" if num > 1 else "midi"] = write_midi(roll, path, steps_per_quarter)
    panels = {f"sampled ({model.config['cell']}, temperature {temperature}, seed {seed})": rolls[0]}
    if real is not None:
        panels[f"real (held-out {Path(real[0]).stem})"] = real[1]
    png = out.with_suffix(".png") if out is not None else run_dir / "plots" / "pianoroll.png"
    written["piano-roll"] = plot_piano_rolls(panels, png, steps_per_quarter)
    return written


def load_run(run_dir: str | Path, device: str = "cpu") -> MusicRun:
    """A trained music run's best model and report."""
    from ..train import load_weights, read_run_config

    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    if config.get("train", {}).get("task") != "music" or "steps_per_quarter" not in config:
        raise ValueError(f"{str(run_dir)!r} is not a music run (its config.json has no music settings).")
    model = load_weights(PianoRollModel(**config["model"]), run_dir, "best").to(device).eval()
    report_path = run_dir / "report.json"
    report = json.loads(report_path.read_text(encoding="utf-8")) if report_path.is_file() else {}
    return MusicRun(run_dir, model, report)


def sample(
    run_dir: str | Path,
    steps: int | None = None,
    num: int = 1,
    temperature: float = 1.0,
    seed: int = 0,
    out: str | Path | None = None,
) -> dict:
    """Sample new pieces from a trained run and write them as MIDI (and a piano-roll PNG beside a real
    held-out piece).  ``steps`` defaults to the median training piece's length; ``out`` is the MIDI path
    (default ``RUN_DIR/samples/sample-<seed>.mid``).  Returns name -> path of what was written.
    """
    run = load_run(run_dir)
    config = json.loads((run.run_dir / "config.json").read_text(encoding="utf-8"))
    steps = steps if steps is not None else int(config["median_steps"])
    if not isinstance(num, int) or num < 1:
        raise ValueError(f"Expected num a positive integer. Received: num={num!r}")
    out = Path(out) if out is not None else run.run_dir / "samples" / f"sample-seed{seed}.mid"
    if out.suffix.lower() not in (".mid", ".midi"):
        raise ValueError(f"Expected --out to end in .mid or .midi. Received: {str(out)!r}")
    real = None
    if (run.run_dir / "corpus.npz").is_file() and (run.run_dir / "split.npz").is_file():
        corpus = MusicCorpus.load(run.run_dir / "corpus.npz")
        first_test = int(np.load(run.run_dir / "split.npz")["test"][0])
        real = (corpus.names[first_test], corpus.rolls[first_test])
    return _write_samples(run.model, run.run_dir, int(config["steps_per_quarter"]), steps, num, temperature, seed,
                          real=real, out=out)  # fmt: skip
