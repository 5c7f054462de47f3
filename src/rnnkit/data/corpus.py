"""Text of any size as a compact array of token ids on disk.

``encode_corpus`` reads UTF-8 files in chunks (memory does not grow with the corpus), builds a
character vocabulary in a first pass and writes the ids in a second, as a flat ``uint16`` (or
``uint32`` for vocabularies over 65,535) file that ``TokenCorpus`` memory-maps.  Both passes are
numpy over the chunk's code points (a count per code point, an id per code point), about
50 MB/s for the two together, in memory of a few chunks:

    corpus_dir/
      tokens.bin   the ids, one per character, in file order
      vocab.json   the Vocabulary
      meta.json    sources, counts, dtype

Splits are by position: the first 90% of the characters train, the next 5% validate, the
last 5% test, so no text is in two splits.
"""

from __future__ import annotations

import codecs
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .vocab import Vocabulary

CHUNK_BYTES = 1 << 20
CODE_POINTS = 0x110000  # every Unicode code point


def text_files(path: str | Path) -> list[Path]:
    """A file, or every file under a directory (sorted, hidden ones skipped)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not any(s.startswith(".") for s in p.parts))
        if files:
            return files
        raise ValueError(f"No files under {str(path)!r}.")
    raise ValueError(f"No such file or directory: {str(path)!r}.")


def read_chunks(path: Path, chunk_bytes: int = CHUNK_BYTES) -> Iterator[str]:
    """Decoded text of ``path`` in chunks; a ``ValueError`` naming the file and byte offset on bad UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    offset, first = 0, True
    with open(path, "rb") as f:
        while True:
            raw = f.read(chunk_bytes)
            pending = len(decoder.getstate()[0])  # bytes of a character cut by the last chunk
            try:
                text = decoder.decode(raw, final=not raw)
            except UnicodeDecodeError as error:
                at = offset - pending + error.start
                raise ValueError(f"{str(path)!r} is not UTF-8 text: invalid byte at offset {at}.") from None
            offset += len(raw)
            if text:  # the first text may begin with a BOM, even when chunks shorter than it came before
                yield text.removeprefix("\ufeff") if first else text
                first = False
            if not raw:
                return


def code_points(text: str) -> np.ndarray:
    """(n,) uint32: the Unicode code point of each character of ``text``.

    >>> code_points("a春").tolist()
    [97, 26149]
    """
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def count_characters(files: list[Path]) -> dict[str, int]:
    """How often each character occurs in the files: one ``bincount`` per chunk, summed in at most
    one count per code point (9 MB however large the text)."""
    counts = np.zeros(0, dtype=np.int64)
    for path in files:
        for chunk in read_chunks(path):
            chunk_counts = np.bincount(code_points(chunk))  # (max code point + 1,)
            if len(chunk_counts) > len(counts):
                counts = np.pad(counts, (0, len(chunk_counts) - len(counts)))
            counts[: len(chunk_counts)] += chunk_counts
    return {chr(c): int(counts[c]) for c in np.flatnonzero(counts)}


def id_table(vocab: Vocabulary, dtype: type) -> np.ndarray:
    """(0x110000,) the id of every code point: its character's id, 0 (``<unk>``) for the rest."""
    table = np.zeros(CODE_POINTS, dtype=dtype)
    for symbol, index in vocab.stoi.items():
        if len(symbol) == 1:  # the corpus is read character by character
            table[ord(symbol)] = index
    return table


@dataclass
class TokenCorpus:
    """A memory-mapped token array with its vocabulary.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "a.txt").write_text("hello world\\n" * 20, encoding="utf-8")
        >>> corpus = encode_corpus(d / "a.txt", d / "corpus")
        >>> len(corpus), corpus.vocab.decode(corpus.tokens[:5])
        (240, 'hello')
        >>> [len(part) for part in corpus.split()]
        [216, 12, 12]
    """

    tokens: np.ndarray  # (N,) memory-mapped ids
    vocab: Vocabulary
    meta: dict

    @classmethod
    def open(cls, directory: str | Path) -> TokenCorpus:
        directory = Path(directory)
        for name in ("tokens.bin", "vocab.json", "meta.json"):
            if not (directory / name).is_file():
                raise ValueError(f"{str(directory)!r} is not an encoded corpus: {name} is missing.")
        meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
        vocab = Vocabulary.from_json((directory / "vocab.json").read_text(encoding="utf-8"))
        tokens = np.memmap(directory / "tokens.bin", dtype=meta["dtype"], mode="r", shape=(meta["num_tokens"],))
        return cls(tokens, vocab, meta)

    def __len__(self) -> int:
        return len(self.tokens)

    def split(self, fractions: tuple[float, float, float] = (0.9, 0.05, 0.05)) -> tuple[np.ndarray, ...]:
        """Train, validation and test views of the array, by position (no copies)."""
        if len(fractions) != 3 or abs(sum(fractions) - 1) > 1e-9 or min(fractions) < 0:
            raise ValueError(f"Expected three fractions summing to 1. Received: {fractions}")
        n = len(self.tokens)
        a, b = round(n * fractions[0]), round(n * (fractions[0] + fractions[1]))
        return self.tokens[:a], self.tokens[a:b], self.tokens[b:]


def encode_corpus(
    source: str | Path, directory: str | Path, vocab: Vocabulary | None = None, min_count: int = 1
) -> TokenCorpus:
    """Encode a UTF-8 file or directory of files into ``directory`` and open it.

    With ``vocab`` given (e.g. a trained model's), characters outside it become ``<unk>``;
    otherwise the vocabulary is every character seen ``min_count`` times.
    """
    files = text_files(source)
    if vocab is None:
        counts = count_characters(files)
        if not counts:
            raise ValueError(f"{str(source)!r} holds no text (empty files).")
        vocab = Vocabulary(
            [s for s, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if counts[s] >= min_count]
        )
    dtype = np.uint16 if len(vocab) <= np.iinfo(np.uint16).max else np.uint32
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    table = id_table(vocab, dtype)
    num_tokens = 0
    partial = directory / "tokens.bin.partial"
    with open(partial, "wb") as out:
        for path in files:
            for chunk in read_chunks(path):
                table[code_points(chunk)].tofile(out)  # (len(chunk),) ids
                num_tokens += len(chunk)
    if num_tokens == 0:
        partial.unlink()
        raise ValueError(f"{str(source)!r} holds no text (empty files).")
    os.replace(partial, directory / "tokens.bin")
    (directory / "vocab.json").write_text(vocab.to_json(), encoding="utf-8")
    meta = {"sources": [str(p) for p in files], "num_tokens": num_tokens, "dtype": np.dtype(dtype).name}
    (directory / "meta.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
    return TokenCorpus.open(directory)
