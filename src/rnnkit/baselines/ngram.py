"""Character n-gram language model with interpolated Kneser-Ney smoothing: the baseline every
character-level model's bits per character is printed beside.

Chen & Goodman (1998), interpolated Kneser-Ney with one absolute discount per order:

    P_n(w | h) = max(c(h w) - D_n, 0) / c(h •)  +  D_n · N1+(h •) / c(h •) · P_{n-1}(w | h')

where h' is h without its first character.  The highest order counts occurrences c; every
lower order counts *continuations*, c(h' w) := N1+(• h' w), the number of distinct characters
seen before h' w.  An unseen context backs off entirely to the next order; order 0 is the
uniform distribution over the vocabulary (training characters plus one unknown symbol), so
every character, seen or not, gets a probability and they sum to one.
The discount of each order is D = n1 / (n1 + 2 n2) from its count-of-counts.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable

UNKNOWN = "\x00"  # stands for every character not seen in training


class KneserNey:
    """Interpolated Kneser-Ney character model of order ``n``.

    Example:
        >>> model = KneserNey(order=3).fit("abracadabra " * 20)
        >>> round(sum(model.prob(c, "ab") for c in model.vocabulary), 6)
        1.0
        >>> model.bits_per_char("abracadabra") < model.bits_per_char("zqxjzqxjzqx")
        True
    """

    def __init__(self, order: int = 5):
        if not isinstance(order, int) or order < 1:
            raise ValueError(f"Expected order a positive integer. Received: order={order!r}")
        self.order = order
        self.vocabulary: list[str] = []

    def fit(self, text: str) -> KneserNey:
        """Count the n-grams of ``text`` (a string; several documents joined by a separator)."""
        if not isinstance(text, str) or not text:
            raise ValueError("Expected a non-empty training text.")
        n = self.order
        self.vocabulary = sorted(set(text) | {UNKNOWN})
        # counts[k]: k-gram -> count (k = n: occurrences; k < n: distinct left extensions)
        counts: list[Counter] = [Counter() for _ in range(n + 1)]
        counts[n].update(text[i : i + n] for i in range(len(text) - n + 1))
        for k in range(n - 1, 0, -1):  # from the top: order k counts the distinct left extensions in k + 1
            # the k-grams at the very start have no left neighbour: count them as occurrences too,
            # so that a short text's first characters are not lost
            counts[k].update(gram[1:] for gram in counts[k + 1])  # one per distinct (k+1)-gram
            if len(text) >= k:
                counts[k][text[:k]] += 1
        self._counts = counts
        self._context_total: list[Counter] = [Counter() for _ in range(n + 1)]
        self._context_types: list[Counter] = [Counter() for _ in range(n + 1)]
        self._discount = [0.0] * (n + 1)
        for k in range(1, n + 1):
            for gram, c in counts[k].items():
                self._context_total[k][gram[:-1]] += c
                self._context_types[k][gram[:-1]] += 1
            of = Counter(counts[k].values())
            n1, n2 = of.get(1, 0), of.get(2, 0)
            self._discount[k] = n1 / (n1 + 2 * n2) if n1 + n2 > 0 else 0.5
        return self

    def prob(self, char: str, context: str = "") -> float:
        """P(char | context), using the last ``order - 1`` characters of ``context``."""
        if not self.vocabulary:
            raise ValueError("KneserNey.prob called before fit().")
        char = char if char in self._counts[1] or char == UNKNOWN else UNKNOWN
        context = context[-(self.order - 1) :] if self.order > 1 else ""
        p = 1.0 / len(self.vocabulary)  # order 0: uniform
        for k in range(1, len(context) + 2):  # orders 1 .. len(context) + 1, low to high
            h = context[len(context) - (k - 1) :]
            total = self._context_total[k].get(h, 0)
            if total == 0:
                break  # this context was never seen: higher orders have nothing to add
            D = self._discount[k]
            c = self._counts[k].get(h + char, 0)
            p = max(c - D, 0.0) / total + D * self._context_types[k][h] / total * p
        return p

    def bits_per_char(self, text: str, history: str = "") -> float:
        """Average -log2 P(c_i | preceding characters) over ``text`` (``history`` primes the context)."""
        if not text:
            raise ValueError("Expected a non-empty text to score.")
        stream = history + text
        start = len(history)
        total = 0.0
        for i in range(start, len(stream)):
            total -= math.log2(self.prob(stream[i], stream[max(0, i - self.order + 1) : i]))
        return total / len(text)


def unigram_bits_per_char(train: str, test: str) -> float:
    """The context-free baseline: add-one unigram over the training characters plus unknown."""
    counts = Counter(train)
    vocabulary = len(counts) + 1
    total = len(train) + vocabulary
    return -sum(math.log2((counts.get(c, 0) + 1) / total) for c in test) / len(test)


def evaluate(train: str, test: str, orders: Iterable[int] = (3, 5)) -> dict[str, float]:
    """Bits per character of the unigram and of Kneser-Ney models of the given orders on ``test``."""
    result = {"unigram": unigram_bits_per_char(train, test)}
    for n in orders:
        result[f"kneser_ney_{n}"] = KneserNey(n).fit(train).bits_per_char(test)
    return result
