"""A character (or token) vocabulary: ids for symbols, with one id for everything unknown."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence

UNKNOWN = "<unk>"  # id 0


class Vocabulary:
    """Maps symbols to ids and back.  Id 0 is ``<unk>``, which every unseen symbol encodes to.

    Example:
        >>> vocab = Vocabulary.from_text("春眠不觉晓，处处闻啼鸟。")
        >>> len(vocab), vocab.decode(vocab.encode("春晓"))
        (12, '春晓')
        >>> vocab.encode("冬")  # never seen: the unknown id
        [0]
    """

    def __init__(self, symbols: Sequence[str]):
        if UNKNOWN in symbols:
            raise ValueError(f"{UNKNOWN!r} is reserved for id 0; leave it out of the symbols.")
        self.itos: list[str] = [UNKNOWN, *symbols]
        self.stoi: dict[str, int] = {s: i for i, s in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("Vocabulary symbols must be distinct.")

    @classmethod
    def from_text(cls, text: str | Iterable[str], min_count: int = 1) -> Vocabulary:
        """Every character (or token, for an iterable of tokens) seen ``min_count`` times, most frequent first.
        A ``<unk>`` token in the text is the unknown symbol (id 0), as in the Penn Treebank."""
        counts = Counter(text)
        counts.pop(UNKNOWN, None)
        symbols = sorted((s for s, c in counts.items() if c >= min_count), key=lambda s: (-counts[s], s))
        return cls(symbols)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, symbol: str) -> bool:
        return symbol in self.stoi and symbol != UNKNOWN

    def id(self, symbol: str) -> int:
        """The id of a known symbol; a ``ValueError`` naming it otherwise."""
        if symbol not in self:
            raise ValueError(f"{symbol!r} is not in the vocabulary ({len(self) - 1} known symbols).")
        return self.stoi[symbol]

    def encode(self, text: Iterable[str]) -> list[int]:
        return [self.stoi.get(s, 0) for s in text]

    def decode(self, ids: Iterable[int]) -> str:
        return "".join("\ufffd" if i == 0 else self.itos[i] for i in ids)

    def to_json(self) -> str:
        return json.dumps({"symbols": self.itos[1:]}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Vocabulary:
        return cls(json.loads(text)["symbols"])
