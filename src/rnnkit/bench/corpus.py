"""Memory of big corpora: build the on-disk token array of a generated text, then train on it.

    rnnkit bench corpus --sizes 100,1000        # MB of text; one row per size

For each size: write a text of random words (a fixed vocabulary of 2,000 lower-case words, a
newline after about one word in ten) to a scratch directory, then, each in a fresh Python
process (a process's high-water mark only rises):

1. build: ``encode_corpus``, the path ``rnnkit text train --data FILE`` takes (vocabulary pass,
   then the ids written to ``tokens.bin``);
2. train: open the corpus (memory-mapped), split it 90/5/5 and train a small LSTM language
   model for a fixed number of truncated-BPTT steps on ``stream_loader`` over the training split
   (a plain loop, as ``rnnkit bench fit``'s reference: Adam, clipping at 5, state carried);
3. scan: one whole epoch of the same ``stream_loader`` batches without the model (the data path
   alone over every training token, which 50 steps do not reach).

Each process reports its peak resident set size (``VmHWM``), the size it had after its imports
(``base``; the growth is ``peak - base``) and, at its end, the part of its resident memory that
is file-backed (``RssFile``: memory-mapped corpus pages, which the kernel may drop at any time,
and the shared libraries).  The scratch files are deleted at the end.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

WORDS = 2_000  # distinct words in the generated text
BLOCK_WORDS = 1 << 20  # words generated per vectorised block (about 7 MB)


@dataclass
class CorpusRow:
    text_mb: float  # size of the generated text file
    characters: int
    tokens_mb: float  # size of tokens.bin
    build_s: float
    build_base_mb: float  # resident size of the build process after its imports
    build_peak_mb: float  # its peak resident size
    train_steps: int
    train_s: float
    train_base_mb: float
    train_peak_mb: float
    train_file_mb: float  # file-backed resident memory at the end (mapped corpus pages, libraries)
    scan_batches: int  # one epoch of stream_loader over the training split, no model
    scan_s: float
    scan_base_mb: float
    scan_peak_mb: float
    scan_file_mb: float


def write_text(path: str | Path, size_bytes: int, seed: int = 0) -> Path:
    """Write ``size_bytes`` of ASCII text: random words from a fixed list, spaces and newlines.

    Vectorised: a table of the words padded to one width, rows picked at random, the padding
    masked out; about 100 MB/s.

    Example:
        >>> import tempfile, pathlib
        >>> path = write_text(pathlib.Path(tempfile.mkdtemp()) / "t.txt", 1000)
        >>> text = path.read_text()
        >>> len(text), text.count("\\n") > 5, set(text) <= set("abcdefghijklmnopqrstuvwxyz \\n")
        (1000, True, True)
    """
    if size_bytes < 1:
        raise ValueError(f"Expected a positive size in bytes. Received: size_bytes={size_bytes}")
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, 11, size=WORDS)  # (W,) letters per word
    width = int(lengths.max()) + 1  # a word and its separator
    table = rng.integers(ord("a"), ord("z") + 1, size=(WORDS, width), dtype=np.uint8)  # (W, width)
    columns = np.arange(width)
    path = Path(path)
    written = 0
    with open(path, "wb") as out:
        while written < size_bytes:
            picks = rng.integers(0, WORDS, size=BLOCK_WORDS)  # (K,) word ids
            rows = table[picks]  # (K, width)
            ends = lengths[picks]  # (K,)
            rows[np.arange(BLOCK_WORDS), ends] = np.where(rng.random(BLOCK_WORDS) < 0.1, ord("\n"), ord(" "))
            block = rows[columns <= ends[:, None]]  # the words and their separators, in order
            block = block[: size_bytes - written]
            block.tofile(out)
            written += len(block)
    return path


def _status_mb(field: str) -> float:
    """A ``/proc/self/status`` field in MB (VmHWM: peak resident size; VmRSS: current)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def build_in_this_process(text: str, directory: str) -> dict:
    """Step 1 in the calling process: the numbers of one ``encode_corpus`` call."""
    from ..data.corpus import encode_corpus

    base = _status_mb("VmRSS")
    start = time.perf_counter()
    corpus = encode_corpus(text, directory)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "base_mb": base, "peak_mb": _status_mb("VmHWM"), "characters": len(corpus)}


def train_in_this_process(directory: str, steps: int, batch_size: int = 32, chunk_length: int = 128) -> dict:
    """Step 2 in the calling process: ``steps`` steps of a small LSTM language model on the corpus."""
    import torch

    from ..data.batches import stream_loader
    from ..data.corpus import TokenCorpus
    from ..language_model import LanguageModel

    torch.manual_seed(0)
    base = _status_mb("VmRSS")
    start = time.perf_counter()
    corpus = TokenCorpus.open(directory)
    train_ids, _, _ = corpus.split()
    model = LanguageModel(len(corpus.vocab), embedding_dim=32, hidden_size=128, num_layers=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    state, done = None, 0
    for batch in stream_loader(train_ids, batch_size, chunk_length):
        out = model.loss(batch, state)
        optimizer.zero_grad()
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        state = tuple(s.detach() for s in out.state)  # truncated BPTT: carry the state, not its graph
        done += 1
        if done == steps:
            break
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "base_mb": base, "peak_mb": _status_mb("VmHWM"), "file_mb": _status_mb("RssFile"),
            "steps": done}  # fmt: skip


def scan_in_this_process(directory: str, batch_size: int = 32, chunk_length: int = 128) -> dict:
    """Step 3 in the calling process: every batch of one epoch over the training split, no model."""
    from ..data.batches import stream_loader
    from ..data.corpus import TokenCorpus

    base = _status_mb("VmRSS")
    start = time.perf_counter()
    train_ids, _, _ = TokenCorpus.open(directory).split()
    batches = sum(1 for _ in stream_loader(train_ids, batch_size, chunk_length))
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "base_mb": base, "peak_mb": _status_mb("VmHWM"), "file_mb": _status_mb("RssFile"),
            "batches": batches}  # fmt: skip


def _in_child(call: str) -> dict:
    """Run ``rnnkit.bench.corpus.<call>`` in a fresh Python process; its JSON result."""
    code = f"import json; from rnnkit.bench import corpus; print(json.dumps(corpus.{call}))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=3600)
    if result.returncode != 0:
        raise RuntimeError(f"rnnkit bench corpus: {call} failed: {result.stderr.strip().splitlines()[-1:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def measure(
    size_mb: float, steps: int = 50, workdir: str | Path | None = None, scan: bool = True, seed: int = 0
) -> CorpusRow:
    """One row: generate ``size_mb`` MB of text in a scratch directory under ``workdir`` (default: the
    system's temporary directory), build, train and (with ``scan``) scan in child processes, delete
    the scratch files.  Without ``scan`` the scan fields are 0.

    Example (a real row takes two Python start-ups; tests/bench/test_corpus.py runs one at 1 MB):
        >>> measure(0, steps=50)
        Traceback (most recent call last):
        ValueError: Expected size_mb > 0 and steps >= 1. Received: size_mb=0, steps=50
    """
    if not sys.platform.startswith("linux"):
        raise ValueError("rnnkit bench corpus reads /proc and runs on Linux only.")
    if size_mb <= 0 or steps < 1:
        raise ValueError(f"Expected size_mb > 0 and steps >= 1. Received: size_mb={size_mb}, steps={steps}")
    scratch = Path(tempfile.mkdtemp(prefix="rnnkit-bench-corpus-", dir=workdir))
    try:
        text = write_text(scratch / "text.txt", round(size_mb * 1e6), seed)
        directory = scratch / "corpus"
        built = _in_child(f"build_in_this_process({str(text)!r}, {str(directory)!r})")
        trained = _in_child(f"train_in_this_process({str(directory)!r}, {steps})")
        scanned = _in_child(f"scan_in_this_process({str(directory)!r})") if scan else None
        return CorpusRow(
            text_mb=text.stat().st_size / 1e6, characters=built["characters"],
            tokens_mb=(directory / "tokens.bin").stat().st_size / 1e6,
            build_s=built["seconds"], build_base_mb=built["base_mb"], build_peak_mb=built["peak_mb"],
            train_steps=trained["steps"], train_s=trained["seconds"], train_base_mb=trained["base_mb"],
            train_peak_mb=trained["peak_mb"], train_file_mb=trained["file_mb"],
            **{f"scan_{key}": scanned[name] if scanned else 0
               for key, name in (("batches", "batches"), ("s", "seconds"), ("base_mb", "base_mb"),
                                 ("peak_mb", "peak_mb"), ("file_mb", "file_mb"))},
        )  # fmt: skip
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run(
    sizes_mb: list[float], steps: int = 50, workdir: str | Path | None = None, scan: bool = True
) -> list[CorpusRow]:
    """``measure`` for each size, smallest first."""
    return [measure(size, steps, workdir, scan) for size in sorted(sizes_mb)]


def as_json(rows: list[CorpusRow]) -> str:
    return json.dumps([asdict(r) for r in rows], indent=1)
