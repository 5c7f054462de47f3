"""Unaligned many-to-many: an encoder-decoder with attention that rewrites one sequence as another.

    run = rnnkit.tasks.seq2seq.train(dataset="dates", epochs=8)         # "3 March 1998" -> "1998-03-03"
    rnnkit.tasks.seq2seq.translate(run.run_dir, "Tue, Mar 3, 1998", beam_size=4)

Data: tab-separated pair files (``source<TAB>target`` a line, extra columns ignored, as the
Tatoeba/Anki files) or the shipped ``dates`` task, generated on the fly.  Character-level by
default (``tokens="word"`` splits words and punctuation).  Pairs are split 80/10/10 by *source
string* with the seed, so no test source is ever seen in training.

Model (:class:`Seq2Seq`): embeddings, an encoder :class:`rnnkit.Recurrent` (optionally
bidirectional) run with the source lengths, and a decoder :class:`rnnkit.Recurrent` run one step
at a time with attention over the encoder outputs, padded source positions masked out:

- ``bahdanau`` (Bahdanau, Cho & Bengio 2015): additive score ``v^T tanh(W s_{t-1} + U h_j)``, the
  previous decoder state queries; the context joins the decoder input.
- ``luong`` (Luong, Pham & Manning 2015, "general"): score ``h_t^T W_a h_j``, the current decoder
  output queries; attentional hidden state ``h~_t = tanh(W_c [c_t; h_t])`` (no input feeding).
- ``none``: the plain encoder-decoder of Sutskever et al. / Cho et al. (the encoder's final state only).

Decoding: greedy and beam search (``score = log p / length**alpha``, ``length`` counting ``</s>``),
both batched, both returning the attention weights.  Metrics on the test split: exact match and
corpus BLEU (sacrebleu over our own tokens: characters joined by spaces, a space written ``▁``,
``tokenize="none"``), beside the copy-input and most-frequent-target baselines.
"""

from __future__ import annotations

import datetime
import json
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.vocab import Vocabulary
from ..layers import Recurrent
from ..train.config import check_choice
from ..train.fit import LossOutput

ATTENTIONS = ("bahdanau", "luong", "none")
TOKENS = ("char", "word")
DATASETS = ("dates",)
SPECIALS = ("<pad>", "<s>", "</s>")  # after Vocabulary's "<unk>" (id 0)
PAD, BOS, EOS = 1, 2, 3
SPLIT = (0.8, 0.1, 0.1)

Pair = tuple[str, str]


# ---------------------------------------------------------------------------------------------- data
def read_pairs(path: str | Path) -> list[Pair]:
    """The ``(source, target)`` pairs of a tab-separated file; columns after the second are ignored.

    Blank lines are skipped; a line without a tab, an empty source or target, an empty file or
    bytes that are not UTF-8 are a ``ValueError`` that says where.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "pairs.tsv"
        >>> _ = p.write_text("Go.\\tVa !\\tCC-BY 2.0 (France)\\nHi.\\tSalut !\\n", encoding="utf-8")
        >>> read_pairs(p)
        [('Go.', 'Va !'), ('Hi.', 'Salut !')]
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"Expected a tab-separated pair file. Received {str(path)!r}, which is not a file.")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{str(path)!r} is not UTF-8: byte {error.start} (0x{raw[error.start]:02x}) cannot be decoded. "
            "Convert it to UTF-8 (e.g. iconv -f latin1 -t utf-8)."
        ) from None
    pairs = []
    lines = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")  # any mix of line ends
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if "\t" not in line:
            raise ValueError(
                f"{str(path)!r}, line {number}: expected 'source<TAB>target'. Received no tab: {line[:80]!r}"
            )
        source, target = (column.strip() for column in line.split("\t")[:2])
        for name, value in (("source", source), ("target", target)):
            if not value:
                raise ValueError(f"{str(path)!r}, line {number}: the {name} is empty. Received: {line[:80]!r}")
        pairs.append((source, target))
    if not pairs:
        raise ValueError(f"{str(path)!r} is empty: expected lines 'source<TAB>target'.")
    return pairs


def tokenize(text: str, tokens: str = "char") -> list[str]:
    """Characters (``"char"``) or words and punctuation marks (``"word"``) of ``text``.

    Example:
        >>> tokenize("Hi, you!", "word"), tokenize("Hi!")
        (['Hi', ',', 'you', '!'], ['H', 'i', '!'])
    """
    check_choice("tokens", tokens, TOKENS)
    return list(text) if tokens == "char" else re.findall(r"\w+|[^\w\s]", text)


def detokenize(pieces: Sequence[str], tokens: str = "char") -> str:
    """The inverse of :func:`tokenize` up to spacing (words are joined by single spaces)."""
    return "".join(pieces) if tokens == "char" else " ".join(pieces)


def build_vocabulary(texts: Sequence[str], tokens: str = "char") -> Vocabulary:
    """A vocabulary of the tokens of ``texts`` with ``<pad> <s> </s>`` at ids 1-3 (``<unk>`` is 0).

    Example:
        >>> v = build_vocabulary(["abba"])
        >>> v.itos, v.encode("ab")
        (['<unk>', '<pad>', '<s>', '</s>', 'a', 'b'], [4, 5])
    """
    counts = Counter(t for text in texts for t in tokenize(text, tokens))
    symbols = sorted((s for s in counts if s not in SPECIALS), key=lambda s: (-counts[s], s))
    return Vocabulary([*SPECIALS, *symbols])


def split_pairs(pairs: Sequence[Pair], seed: int = 0, fractions=SPLIT) -> tuple[list[Pair], list[Pair], list[Pair]]:
    """Train/validation/test split (80/10/10) by distinct source string, shuffled with ``seed``.

    All pairs of one source go to the same split, so no test source is seen in training.

    Example:
        >>> pairs = [(f"s{i}", f"t{i}") for i in range(20)] + [("s0", "u0")]
        >>> train, val, test = split_pairs(pairs, seed=1)
        >>> len(train), len(val), len(test), {s for s, _ in train} & {s for s, _ in test}
        (17, 2, 2, set())
    """
    sources = sorted({s for s, _ in pairs})
    if len(sources) < 3:
        raise ValueError(f"Expected at least 3 distinct sources to split train/val/test. Received {len(sources)}.")
    random.Random(seed).shuffle(sources)
    n_test = max(1, round(len(sources) * fractions[2]))
    n_val = max(1, round(len(sources) * fractions[1]))
    part = {s: 2 for s in sources[:n_test]} | {s: 1 for s in sources[n_test : n_test + n_val]}
    splits: tuple[list[Pair], list[Pair], list[Pair]] = ([], [], [])
    for pair in pairs:
        splits[part.get(pair[0], 0)].append(pair)
    return splits


# ------------------------------------------------------------------------------------ the dates task
_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]  # fmt: skip  (English whatever the locale, unlike calendar.month_name)
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 11 <= n % 100 <= 13 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


# Numeric forms are unambiguous by their separator: "/" is month first (US), "." and "-" day first.
DATE_FORMATS = {
    "3 March 1998": lambda d: f"{d.day} {_MONTHS[d.month - 1]} {d.year}",
    "Tue, Mar 3, 1998": lambda d: f"{_DAYS[d.weekday()][:3]}, {_MONTHS[d.month - 1][:3]} {d.day}, {d.year}",
    "03/03/98": lambda d: f"{d.month:02d}/{d.day:02d}/{d.year % 100:02d}",
    "3/3/1998": lambda d: f"{d.month}/{d.day}/{d.year}",
    "March 3rd, 1998": lambda d: f"{_MONTHS[d.month - 1]} {_ordinal(d.day)}, {d.year}",
    "MARCH 3, 1998": lambda d: f"{_MONTHS[d.month - 1].upper()} {d.day}, {d.year}",
    "1998年3月3日": lambda d: f"{d.year}年{d.month}月{d.day}日",
    "03.03.1998": lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}",
    "3 mar 98": lambda d: f"{d.day} {_MONTHS[d.month - 1][:3].lower()} {d.year % 100:02d}",
    "3-Mar-1998": lambda d: f"{d.day}-{_MONTHS[d.month - 1][:3]}-{d.year}",
    "Tuesday, 3 March 1998": lambda d: f"{_DAYS[d.weekday()]}, {d.day} {_MONTHS[d.month - 1]} {d.year}",
    "the 3rd of March, 1998": lambda d: f"the {_ordinal(d.day)} of {_MONTHS[d.month - 1]}, {d.year}",
    "Mar 3 1998": lambda d: f"{_MONTHS[d.month - 1][:3]} {d.day} {d.year}",
    "19980303": lambda d: f"{d.year}{d.month:02d}{d.day:02d}",
}
FIRST_DATE, LAST_DATE = datetime.date(1950, 1, 1), datetime.date(2049, 12, 31)  # two-digit years: 50-99 -> 19xx


def date_pairs(num: int = 20000, seed: int = 0) -> list[Pair]:
    """``num`` pairs (human-written date, ISO date) with distinct sources; the same seed, the same pairs.

    Dates are uniform over 1950-01-01..2049-12-31 (so a two-digit year is unambiguous), each
    written in one of :data:`DATE_FORMATS` chosen uniformly.

    Example:
        >>> date_pairs(3, seed=0)
        [('Feb 15 2019', '2019-02-15'), ('18 June 2025', '2025-06-18'), ('16 jun 96', '1996-06-16')]
    """
    if num < 1:
        raise ValueError(f"Expected num >= 1 date pairs. Received num={num}")
    rng = random.Random(seed)
    span = (LAST_DATE - FIRST_DATE).days
    writers = list(DATE_FORMATS.values())
    pairs, seen = [], set()
    while len(pairs) < num:
        date = FIRST_DATE + datetime.timedelta(days=rng.randint(0, span))
        source = rng.choice(writers)(date)
        if source not in seen:
            seen.add(source)
            pairs.append((source, date.isoformat()))
    return pairs


# --------------------------------------------------------------------------------------------- batches
class PairBatch(NamedTuple):
    source: Tensor  # (B, S) source ids, PAD after each length
    source_lengths: Tensor  # (B,)
    target_in: Tensor  # (B, T) <s> y_1 .. y_n, PAD after
    target_out: Tensor  # (B, T) y_1 .. y_n </s>, PAD after


def encode_pairs(pairs: Sequence[Pair], source_vocab: Vocabulary, target_vocab: Vocabulary, tokens: str = "char"):
    """Token ids of each pair: a list of ``(source_ids, target_ids)`` (no specials added yet)."""
    return [(source_vocab.encode(tokenize(s, tokens)), target_vocab.encode(tokenize(t, tokens))) for s, t in pairs]


def collate(examples: Sequence[tuple[list[int], list[int]]]) -> PairBatch:
    """Pad a list of ``(source_ids, target_ids)`` into a :class:`PairBatch`.

    Example:
        >>> b = collate([([5, 6, 7], [8]), ([5], [9, 9])])
        >>> b.source.tolist(), b.source_lengths.tolist(), b.target_in.tolist(), b.target_out.tolist()
        ([[5, 6, 7], [5, 1, 1]], [3, 1], [[2, 8, 1], [2, 9, 9]], [[8, 3, 1], [9, 9, 3]])
    """
    B = len(examples)
    S = max(len(s) for s, _ in examples)
    T = max(len(t) for _, t in examples) + 1
    source = torch.full((B, S), PAD, dtype=torch.long)
    target_in = torch.full((B, T), PAD, dtype=torch.long)
    target_out = torch.full((B, T), PAD, dtype=torch.long)
    for b, (s, t) in enumerate(examples):
        source[b, : len(s)] = torch.tensor(s, dtype=torch.long)
        target_in[b, : len(t) + 1] = torch.tensor([BOS, *t], dtype=torch.long)
        target_out[b, : len(t) + 1] = torch.tensor([*t, EOS], dtype=torch.long)
    lengths = torch.tensor([len(s) for s, _ in examples], dtype=torch.long)
    return PairBatch(source, lengths, target_in, target_out)


# ----------------------------------------------------------------------------------------------- model
class Encoded(NamedTuple):
    """What the decoder reads: the encoder outputs, their attention keys, the source mask, its state."""

    memory: Tensor  # (B, S, M) encoder outputs h_j, M = D * H (zero past each length)
    keys: Tensor | None  # (B, S, A) the source side of the score, computed once (None without attention)
    mask: Tensor  # (B, S) True at valid source positions
    state: Tensor | tuple[Tensor, ...]  # the decoder's initial state, (L, B, H) each

    def repeat_interleave(self, k: int) -> Encoded:
        """Each example repeated ``k`` times in a row (for a beam of ``k``)."""
        state = tuple(s.repeat_interleave(k, 1) for s in _as_tuple(self.state))
        return Encoded(self.memory.repeat_interleave(k, 0),
                       None if self.keys is None else self.keys.repeat_interleave(k, 0),
                       self.mask.repeat_interleave(k, 0), _from_tuple(state))  # fmt: skip


def _as_tuple(state) -> tuple[Tensor, ...]:
    return (state,) if isinstance(state, Tensor) else tuple(state)


def _from_tuple(state: tuple[Tensor, ...]):
    return state[0] if len(state) == 1 else state


class Seq2Seq(nn.Module):
    r"""Encoder-decoder with attention over the encoder outputs; see the module docstring for the scores.

    One decoder step, given the previous output token ``y_{t-1}`` and state ``s_{t-1}``:

    - bahdanau: ``a_t = softmax_j(v^T tanh(W_q s_{t-1} + W_k h_j))``, ``c_t = sum_j a_tj h_j``,
      ``s_t = RNN([E y_{t-1}; c_t], s_{t-1})``, ``logits = W_o [s_t; c_t]``
    - luong: ``s_t = RNN(E y_{t-1}, s_{t-1})``, ``a_t = softmax_j(s_t^T W_a h_j)``,
      ``h~_t = tanh(W_c [c_t; s_t])``, ``logits = W_o h~_t``
    - none: ``s_t = RNN(E y_{t-1}, s_{t-1})``, ``logits = W_o s_t``

    Padded source positions get score ``-inf``: their weight is exactly 0.  The decoder's initial
    state is ``tanh(W_b [h_fwd; h_bwd])`` of the encoder's final state, layer by layer.

    Args:
        source_vocab_size, target_vocab_size: ``V_s``, ``V_t`` (ids 1-3 are ``<pad> <s> </s>``).
        embedding_dim: ``E``; hidden_size: ``H`` of the decoder and of each encoder direction.
        cell: any name of ``rnnkit.CELLS``; num_layers: ``L`` of encoder and decoder.
        bidirectional: encoder in both directions (``M = 2H``).
        attention: ``"bahdanau"``, ``"luong"`` or ``"none"``; attention_size: ``A`` of the
            additive score (default ``H``).
        dropout: on embeddings and before the output layer (and between layers).
        teacher_forcing: in training, the chance at each step that an example is fed the gold
            token rather than its own prediction (1.0: always gold; evaluation always feeds gold).
        backend: of both recurrent layers (``rnnkit.Recurrent``); on a CPU ``"compiled"`` runs the
            packed bidirectional encoder about 3x faster than torch's kernels (``"auto"``).

    Shapes: source ``(B, S)`` ids with lengths ``(B,)``; target_in ``(B, T)``;
    ``forward`` returns logits ``(B, T, V_t)`` and attention ``(B, T, S)`` (None without attention).

    Example:
        >>> model = Seq2Seq(10, 12, embedding_dim=8, hidden_size=16)
        >>> batch = collate([([4, 5, 6], [7, 8]), ([4], [9])])
        >>> logits, attention = model(batch.source, batch.source_lengths, batch.target_in)
        >>> logits.shape, attention.shape, attention[1, :, 1:].abs().max().item()
        (torch.Size([2, 3, 12]), torch.Size([2, 3, 3]), 0.0)
    """

    def __init__(
        self,
        source_vocab_size: int,
        target_vocab_size: int,
        *,
        embedding_dim: int = 64,
        hidden_size: int = 128,
        cell: str = "gru",
        num_layers: int = 1,
        bidirectional: bool = True,
        attention: str = "bahdanau",
        attention_size: int | None = None,
        dropout: float = 0.0,
        teacher_forcing: float = 1.0,
        backend: str = "auto",
    ):
        super().__init__()
        check_choice("attention", attention, ATTENTIONS)
        if not 0.0 <= teacher_forcing <= 1.0:
            raise ValueError(f"Expected teacher_forcing in [0, 1]. Received: teacher_forcing={teacher_forcing}")
        attention_size = attention_size or hidden_size
        self.config = dict(source_vocab_size=source_vocab_size, target_vocab_size=target_vocab_size,
                           embedding_dim=embedding_dim, hidden_size=hidden_size, cell=cell, num_layers=num_layers,
                           bidirectional=bidirectional, attention=attention, attention_size=attention_size,
                           dropout=dropout, teacher_forcing=teacher_forcing, backend=backend)  # fmt: skip
        self.attention, self.teacher_forcing = attention, teacher_forcing
        self.num_layers, self.num_directions = num_layers, 2 if bidirectional else 1
        H, E = hidden_size, embedding_dim
        M = self.num_directions * H  # encoder output size
        self.source_embedding = nn.Embedding(source_vocab_size, E, padding_idx=PAD)
        self.target_embedding = nn.Embedding(target_vocab_size, E, padding_idx=PAD)
        self.encoder = Recurrent(cell, E, H, num_layers, bidirectional=bidirectional, dropout=dropout, backend=backend)
        self.bridge = nn.ModuleList(nn.Linear(M, H) for _ in self.encoder.cell.state_names)  # W_b per state
        decoder_input = E + (M if attention == "bahdanau" else 0)
        self.decoder = Recurrent(cell, decoder_input, H, num_layers, dropout=dropout, backend=backend)
        if attention == "bahdanau":
            self.W_q = nn.Linear(H, attention_size, bias=False)  # query: the previous decoder state
            self.W_k = nn.Linear(M, attention_size)  # keys: the encoder outputs
            self.v = nn.Linear(attention_size, 1, bias=False)
            out_features = H + M
        elif attention == "luong":
            self.W_a = nn.Linear(M, H, bias=False)  # score(s_t, h_j) = s_t^T W_a h_j
            self.W_c = nn.Linear(M + H, H, bias=False)  # h~_t = tanh(W_c [c_t; s_t])
            out_features = H
        else:
            out_features = H
        self.drop = nn.Dropout(dropout)
        self.W_o = nn.Linear(out_features, target_vocab_size)

    # -- encoder ---------------------------------------------------------------------------------
    def encode(self, source: Tensor, lengths: Tensor) -> Encoded:
        """Run the encoder: source ``(B, S)`` ids and lengths ``(B,)`` -> :class:`Encoded`."""
        x = self.drop(self.source_embedding(source))  # (B, S, E)
        memory, final = self.encoder(x, lengths=lengths)  # (B, S, M), (L*D, B, H) each
        B, S = source.shape
        mask = torch.arange(S, device=source.device) < lengths.to(source.device).unsqueeze(1)  # (B, S)
        state = []
        for W_b, s in zip(self.bridge, _as_tuple(final)):
            s = s.view(self.num_layers, self.num_directions, B, -1).permute(0, 2, 1, 3).reshape(self.num_layers, B, -1)
            state.append(torch.tanh(W_b(s)))  # (L, B, H)
        if self.attention == "bahdanau":
            keys = self.W_k(memory)  # (B, S, A)
        elif self.attention == "luong":
            keys = self.W_a(memory)  # (B, S, H): W_a h_j
        else:
            keys = None
        return Encoded(memory, keys, mask, _from_tuple(tuple(state)))

    # -- attention ----------------------------------------------------------------------------
    def attend(self, query: Tensor, encoded: Encoded) -> tuple[Tensor, Tensor]:
        """Attention weights ``(B, S)`` (0 on padding, summing to 1) and context ``(B, M)`` for query ``(B, H)``."""
        if self.attention == "bahdanau":
            scores = self.v(torch.tanh(self.W_q(query).unsqueeze(1) + encoded.keys)).squeeze(2)  # (B, S)
        else:
            scores = torch.bmm(encoded.keys, query.unsqueeze(2)).squeeze(2)  # (B, S): s_t^T W_a h_j
        weights = torch.softmax(scores.masked_fill(~encoded.mask, float("-inf")), dim=1)  # (B, S)
        context = torch.bmm(weights.unsqueeze(1), encoded.memory).squeeze(1)  # (B, M)
        return weights, context

    # -- decoder ------------------------------------------------------------------------------
    def decode_step(self, y_prev: Tensor, state, encoded: Encoded) -> tuple[Tensor, object, Tensor | None]:
        """One decoder step: previous tokens ``(B,)`` -> logits ``(B, V_t)``, new state, weights ``(B, S)`` or None."""
        e = self.drop(self.target_embedding(y_prev))  # (B, E)
        weights = None
        if self.attention == "bahdanau":
            s_prev = _as_tuple(state)[0][-1]  # (B, H): the top layer's previous hidden state queries
            weights, context = self.attend(s_prev, encoded)
            s, state = self.decoder.step(torch.cat([e, context], 1), state)  # (B, H)
            features = torch.cat([s, context], 1)  # (B, H + M)
        elif self.attention == "luong":
            s, state = self.decoder.step(e, state)  # (B, H): the current output queries
            weights, context = self.attend(s, encoded)
            features = torch.tanh(self.W_c(torch.cat([context, s], 1)))  # (B, H): h~_t
        else:
            features, state = self.decoder.step(e, state)
        return self.W_o(self.drop(features)), state, weights

    def forward(
        self, source: Tensor, lengths: Tensor, target_in: Tensor, teacher_forcing: float = 1.0
    ) -> tuple[Tensor, Tensor | None]:
        """Logits ``(B, T, V_t)`` and attention ``(B, T, S)`` over ``target_in``'s steps.

        At step ``t > 0`` each example is fed the gold ``target_in[:, t]`` with probability
        ``teacher_forcing`` (one draw per example and step), else its own previous argmax.
        """
        encoded = self.encode(source, lengths)
        if teacher_forcing == 1.0 and self.attention != "bahdanau":
            return self._forward_teacher_forced(encoded, target_in)
        state = encoded.state
        B, T = target_in.shape
        logits, weights = [], []
        y = target_in[:, 0]  # <s>
        for t in range(T):
            if t > 0:
                y = target_in[:, t]
                if teacher_forcing < 1.0:
                    own = logits[-1].argmax(1)  # (B,) the model's own previous prediction
                    gold = torch.rand(B, device=y.device) < teacher_forcing
                    y = torch.where(gold, y, own)
            step_logits, state, step_weights = self.decode_step(y, state, encoded)
            logits.append(step_logits)
            weights.append(step_weights)
        attention = None if self.attention == "none" else torch.stack(weights, 1)
        return torch.stack(logits, 1), attention

    def _forward_teacher_forced(self, encoded: Encoded, target_in: Tensor) -> tuple[Tensor, Tensor | None]:
        """All steps at once: with gold inputs and no context in the decoder input (luong, none), the
        decoder runs as one sequence and the attention of every step is one batched product."""
        e = self.drop(self.target_embedding(target_in))  # (B, T, E)
        s, _ = self.decoder(e, encoded.state)  # (B, T, H)
        if self.attention == "none":
            return self.W_o(self.drop(s)), None
        scores = torch.bmm(s, encoded.keys.transpose(1, 2))  # (B, T, S): s_t^T W_a h_j
        weights = torch.softmax(scores.masked_fill(~encoded.mask.unsqueeze(1), float("-inf")), dim=2)  # (B, T, S)
        context = torch.bmm(weights, encoded.memory)  # (B, T, M)
        features = torch.tanh(self.W_c(torch.cat([context, s], 2)))  # (B, T, H): h~_t
        return self.W_o(self.drop(features)), weights

    def loss(self, batch: PairBatch, state=None, teacher_forcing: float | None = None) -> LossOutput:
        """Token-level cross-entropy (nats) over the valid target tokens, ``</s>`` included.

        ``teacher_forcing`` defaults to the model's ratio in training mode and to 1.0 in evaluation.
        """
        source, lengths, target_in, target_out = batch
        if teacher_forcing is None:
            teacher_forcing = self.teacher_forcing if self.training else 1.0
        logits, _ = self(source, lengths, target_in, teacher_forcing)  # (B, T, V_t)
        count = int((target_out != PAD).sum())
        total = F.cross_entropy(logits.flatten(0, 1), target_out.flatten(), ignore_index=PAD, reduction="sum")
        return LossOutput(total / max(count, 1), count)


# -------------------------------------------------------------------------------------------- decoding
@dataclass
class Hypothesis:
    """One decoded output."""

    tokens: list[int]  # output ids, without </s>
    log_prob: float  # sum of the log-probabilities of the tokens (and of </s> when finished)
    score: float  # log_prob / length**alpha, length = len(tokens) + finished
    attention: Tensor | None = None  # (length, S_b): weights of each output step over the valid source
    finished: bool = True  # ended with </s> (else it hit max_length)


def _reorder(state, index: Tensor):
    return _from_tuple(tuple(s.index_select(1, index) for s in _as_tuple(state)))


@torch.no_grad()
def greedy_decode(
    model: Seq2Seq, source: Tensor, lengths: Tensor, max_length: int = 50, alpha: float = 0.0
) -> list[Hypothesis]:
    """The most likely token at every step, for a batch: source ``(B, S)``, lengths ``(B,)``.

    Example:
        >>> model = Seq2Seq(10, 12, embedding_dim=8, hidden_size=16).eval()
        >>> [len(h.tokens) <= 5 for h in greedy_decode(model, torch.tensor([[4, 5], [6, 1]]), torch.tensor([2, 1]), 5)]
        [True, True]
    """
    encoded = model.encode(source, lengths)
    state, B = encoded.state, source.shape[0]
    y = torch.full((B,), BOS, dtype=torch.long, device=source.device)
    ended = torch.zeros(B, dtype=torch.bool, device=source.device)
    log_prob = torch.zeros(B, dtype=torch.float64, device=source.device)
    outputs, weights = [], []
    for _ in range(max_length):
        logits, state, step_weights = model.decode_step(y, state, encoded)
        log_p = torch.log_softmax(logits.double(), 1)  # (B, V_t)
        y = log_p.argmax(1)
        log_prob += torch.where(ended, 0.0, log_p.gather(1, y.unsqueeze(1)).squeeze(1))
        outputs.append(y)
        weights.append(step_weights)
        ended |= y == EOS
        if bool(ended.all()):
            break
    outputs = torch.stack(outputs, 1).tolist()  # (B, steps)
    hypotheses = []
    for b, row in enumerate(outputs):
        finished = EOS in row
        tokens = row[: row.index(EOS)] if finished else row
        length = len(tokens) + finished
        attention = None
        if weights[0] is not None:
            attention = torch.stack([w[b, : int(lengths[b])] for w in weights[:length]]).cpu()
        lp = float(log_prob[b])
        hypotheses.append(Hypothesis(tokens, lp, lp / length**alpha, attention, finished))
    return hypotheses


@torch.no_grad()
def beam_search(
    model: Seq2Seq, source: Tensor, lengths: Tensor, beam_size: int = 4, alpha: float = 0.7, max_length: int = 50
) -> list[Hypothesis]:
    """Beam search for a batch: the best hypothesis of each example by ``log p / length**alpha``.

    Every example keeps ``beam_size`` live beams (as rows ``b*K .. b*K+K-1`` of one batch).  At
    each step the ``2K`` best extensions are ranked; ``</s>`` among the first ``K`` ends a
    hypothesis, the best ``K`` others live on.  An example stops when it has ``K`` ended
    hypotheses; at ``max_length`` its live beams count as (unfinished) hypotheses.  ``length``
    counts ``</s>``.  With ``beam_size=1`` this is greedy decoding.

    Example:
        >>> model = Seq2Seq(10, 12, embedding_dim=8, hidden_size=16).eval()
        >>> src, lengths = torch.tensor([[4, 5], [6, 1]]), torch.tensor([2, 1])
        >>> [h.tokens for h in beam_search(model, src, lengths, beam_size=1, max_length=5)] == [
        ...     h.tokens for h in greedy_decode(model, src, lengths, max_length=5)]
        True
    """
    if beam_size < 1:
        raise ValueError(f"Expected beam_size >= 1. Received: beam_size={beam_size}")
    B, K, device = source.shape[0], beam_size, source.device
    encoded = model.encode(source, lengths).repeat_interleave(K)
    state = encoded.state
    y = torch.full((B * K,), BOS, dtype=torch.long, device=device)
    beam_log_prob = torch.zeros(B, K, dtype=torch.float64, device=device)
    beam_log_prob[:, 1:] = float("-inf")  # at the start all beams are the same: expand one
    history = torch.zeros(B * K, 0, dtype=torch.long, device=device)  # (B*K, t) tokens so far
    attention = torch.zeros(B * K, 0, source.shape[1], device=device)  # (B*K, t, S)
    finished: list[list[Hypothesis]] = [[] for _ in range(B)]
    done = [False] * B

    def hypothesis(b: int, tokens: list[int], log_prob: float, weights: Tensor, ended: bool) -> Hypothesis:
        length = len(tokens) + ended
        w = None if model.attention == "none" else weights[:length, : int(lengths[b])].cpu()
        return Hypothesis(tokens, log_prob, log_prob / length**alpha, w, ended)

    for _ in range(max_length):
        logits, state, step_weights = model.decode_step(y, state, encoded)
        log_p = torch.log_softmax(logits.double(), 1)  # (B*K, V)
        V = log_p.shape[1]
        if step_weights is not None:
            attention = torch.cat([attention, step_weights.unsqueeze(1)], 1)
        total = (beam_log_prob.view(B * K, 1) + log_p).view(B, K * V)  # (B, K*V)
        top_log_prob, top_index = total.topk(min(2 * K, K * V), dim=1)  # (B, 2K)
        top_log_prob, top_index = top_log_prob.tolist(), top_index.tolist()
        origin = torch.arange(B * K).view(B, K)  # (B, K) the rows that the live beams extend
        word = torch.full((B, K), PAD, dtype=torch.long)
        new_log_prob = torch.full((B, K), float("-inf"), dtype=torch.float64)
        for b in range(B):
            if done[b]:
                continue
            alive = 0
            for rank, (lp, index) in enumerate(zip(top_log_prob[b], top_index[b])):
                if lp == float("-inf"):
                    break
                k, w = divmod(index, V)
                if w == EOS:
                    if rank < K:
                        row = b * K + k
                        finished[b].append(hypothesis(b, history[row].tolist(), lp, attention[row], True))
                    continue
                origin[b, alive], word[b, alive], new_log_prob[b, alive] = b * K + k, w, lp
                alive += 1
                if alive == K:
                    break
            done[b] = len(finished[b]) >= K
        if all(done):
            break
        rows = origin.view(-1).to(device)
        history = torch.cat([history[rows], word.view(-1, 1).to(device)], 1)
        attention = attention[rows]
        state = _reorder(state, rows)
        y = word.view(-1).to(device)
        beam_log_prob = new_log_prob.to(device)
    else:
        for b in range(B):  # max_length reached: the live beams are hypotheses too
            if not done[b]:
                for k in range(K):
                    if beam_log_prob[b, k] > float("-inf"):
                        row = b * K + k
                        finished[b].append(
                            hypothesis(b, history[row].tolist(), float(beam_log_prob[b, k]), attention[row], False)
                        )
    return [max(hyps, key=lambda h: h.score) for hyps in finished]


@torch.no_grad()
def sequence_log_prob(model: Seq2Seq, source: Tensor, lengths: Tensor, outputs: Sequence[Sequence[int]]) -> Tensor:
    """``log p(outputs + </s> | source)`` of each example under teacher forcing, ``(B,)`` float64."""
    batch = collate([(source[b, : int(lengths[b])].tolist(), list(out)) for b, out in enumerate(outputs)])
    logits, _ = model(batch.source.to(source.device), batch.source_lengths, batch.target_in.to(source.device))
    log_p = torch.log_softmax(logits.double(), 2)  # (B, T, V)
    target = batch.target_out.to(source.device)
    picked = log_p.gather(2, target.clamp(min=0).unsqueeze(2)).squeeze(2)  # (B, T)
    return picked.masked_fill(target == PAD, 0.0).sum(1)


# ------------------------------------------------------------------------------------------ evaluation
def corpus_bleu(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[str]]) -> float:
    """Corpus BLEU (0-100, sacrebleu) over token lists: tokens joined by spaces (a space token as ``▁``),
    ``tokenize="none"``, so characters are BLEU's units at character level.

    Example:
        >>> round(corpus_bleu([list("1998-03-03")], [list("1998-03-03")]), 1)
        100.0
    """
    import sacrebleu

    def line(pieces: Sequence[str]) -> str:
        return " ".join(p.replace(" ", "▁") for p in pieces)

    refs = [line(r) for r in references]
    return sacrebleu.corpus_bleu([line(h) for h in hypotheses], [refs], tokenize="none").score


def _scores(predictions: Sequence[Sequence[str]], references: Sequence[Sequence[str]]) -> dict:
    exact = sum(list(p) == list(r) for p, r in zip(predictions, references)) / len(references)
    return {"exact_match": exact, "bleu": corpus_bleu(predictions, references)}


@torch.no_grad()
def decode_pairs(
    model: Seq2Seq,
    sources: Sequence[str],
    source_vocab: Vocabulary,
    tokens: str = "char",
    beam_size: int = 1,
    alpha: float = 0.7,
    max_length: int = 50,
    batch_size: int = 256,
) -> list[Hypothesis]:
    """Decode ``sources`` in batches: greedy for ``beam_size=1``, beam search otherwise."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(sources), batch_size):
        ids = [source_vocab.encode(tokenize(s, tokens)) for s in sources[start : start + batch_size]]
        batch = collate([(s, []) for s in ids])
        source, lengths = batch.source.to(device), batch.source_lengths
        if beam_size == 1:
            out += greedy_decode(model, source, lengths, max_length, alpha)
        else:
            out += beam_search(model, source, lengths, beam_size, alpha, max_length)
    return out


def evaluate(
    model: Seq2Seq,
    pairs: Sequence[Pair],
    source_vocab: Vocabulary,
    target_vocab: Vocabulary,
    train_pairs: Sequence[Pair] = (),
    tokens: str = "char",
    beam_size: int = 4,
    alpha: float = 0.7,
    max_length: int = 50,
) -> tuple[dict, dict[str, list[Hypothesis]]]:
    """Exact match and BLEU of greedy and beam decoding on ``pairs``, beside the baselines.

    Baselines on the same pairs: ``copy_input`` (the prediction is the source) and, given
    ``train_pairs``, ``most_frequent_target`` (the most frequent training target, every time).
    Returns ``(scores, {"greedy": hypotheses, "beam": hypotheses})``.
    """
    sources = [s for s, _ in pairs]
    references = [tokenize(t, tokens) for _, t in pairs]
    decoded = {"greedy": decode_pairs(model, sources, source_vocab, tokens, 1, alpha, max_length)}
    if beam_size > 1:
        decoded["beam"] = decode_pairs(model, sources, source_vocab, tokens, beam_size, alpha, max_length)
    scores = {name: _scores([_tokens_of(target_vocab, h.tokens) for h in hyps], references)
              for name, hyps in decoded.items()}  # fmt: skip
    scores["copy_input"] = _scores([tokenize(s, tokens) for s in sources], references)
    if train_pairs:
        common = tokenize(Counter(t for _, t in train_pairs).most_common(1)[0][0], tokens)
        scores["most_frequent_target"] = _scores([common] * len(pairs), references)
    return scores, decoded


def _tokens_of(vocab: Vocabulary, ids: Sequence[int]) -> list[str]:
    """The tokens of ``ids`` as a list (``Vocabulary.decode`` joins them into one string)."""
    return [vocab.itos[i] for i in ids]


# --------------------------------------------------------------------------------------------- plots
def plot_attention(examples: Sequence[tuple[Sequence[str], Sequence[str], Tensor]], path: str | Path) -> Path:
    """Attention heatmaps, one panel per ``(source_tokens, output_tokens, weights (T_out, S))``: source
    tokens on x, output tokens on y.

    Example:
        >>> import tempfile
        >>> w = torch.softmax(torch.randn(3, 4), 1)
        >>> plot_attention([(list("abcd"), ["x", "y", "</s>"], w)], Path(tempfile.mkdtemp()) / "a.png").is_file()
        True
    """
    from ..plots import _pyplot, _save

    plt = _pyplot()
    n = len(examples)
    if n == 0:
        raise ValueError("Expected at least one (source, output, weights) example to plot. Received none.")
    widths = [max(3.0, 0.3 * len(src) + 1.5) for src, _, _ in examples]
    height = max(3.0, 0.3 * max(len(out) for _, out, _ in examples) + 1.5)
    fig, axes = plt.subplots(1, n, figsize=(sum(widths), height), dpi=100, squeeze=False)
    for ax, (src, out, weights) in zip(axes[0], examples):
        weights = torch.as_tensor(weights, dtype=torch.float32).cpu().numpy()
        if weights.shape != (len(out), len(src)):
            raise ValueError(f"Expected weights of shape (outputs, sources) = ({len(out)}, {len(src)}). "
                             f"Received {weights.shape}.")  # fmt: skip
        ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
        ax.set_xticks(range(len(src)), [s if s != " " else "▁" for s in src], fontsize=8)
        ax.set_yticks(range(len(out)), [s if s != " " else "▁" for s in out], fontsize=8)
        ax.set_xlabel("source")
        ax.set_ylabel("output")
    fig.tight_layout()
    return _save(fig, path)


def _attention_example(source: str, hyp: Hypothesis, source_vocab, target_vocab, tokens: str):
    src = tokenize(source, tokens)
    out = _tokens_of(target_vocab, hyp.tokens) + (["</s>"] if hyp.finished else [])
    return src, out, hyp.attention


# ------------------------------------------------------------------------------------------ training
@dataclass
class Seq2SeqRun:
    run_dir: Path
    model: Seq2Seq
    source_vocab: Vocabulary
    target_vocab: Vocabulary
    tokens: str
    max_length: int
    report: dict = field(default_factory=dict)


def load_data(data: str | Path | None = None, dataset: str | None = None, examples: int = 20000, seed: int = 0):
    """The pairs of a file or of a shipped dataset, split train/val/test by source (see :func:`split_pairs`)."""
    if (data is None) == (dataset is None):
        raise ValueError(f"Give exactly one of data=PAIRS_FILE or dataset=NAME. Received data={data!r}, "
                         f"dataset={dataset!r}.")  # fmt: skip
    if dataset is not None:
        check_choice("dataset", dataset, DATASETS)
        pairs = date_pairs(examples, seed)
    else:
        pairs = read_pairs(data)
    return split_pairs(pairs, seed)


def train(
    data: str | Path | None = None,
    *,
    dataset: str | None = None,
    examples: int = 20000,
    tokens: str = "char",
    cell: str = "gru",
    hidden_size: int = 128,
    embedding_dim: int = 32,
    num_layers: int = 1,
    bidirectional: bool = True,
    attention: str = "bahdanau",
    dropout: float = 0.0,
    teacher_forcing: float = 1.0,
    backend: str = "auto",
    batch_size: int = 64,
    epochs: int = 10,
    learning_rate: float = 3e-3,
    beam_size: int = 4,
    alpha: float = 0.7,
    device: str = "auto",
    seed: int = 0,
    run_dir: str | Path | None = None,
    plot_examples: int = 3,
    progress: bool = True,
) -> Seq2SeqRun:
    """Train an attention encoder-decoder on a pair file (``data``) or ``dataset="dates"``.

    Writes into the run directory, besides what ``fit`` writes: ``source_vocab.json``,
    ``target_vocab.json``, ``report.json`` (test exact match and BLEU, greedy and beam, beside
    the copy-input and most-frequent-target baselines; validation exact match), ``predictions.tsv``
    (the test split decoded) and ``plots/attention.png`` (the first ``plot_examples`` test pairs).

    Example:
        >>> import tempfile
        >>> run = train(dataset="dates", examples=200, hidden_size=16, embedding_dim=8, epochs=1, progress=False,
        ...             run_dir=tempfile.mkdtemp())
        >>> sorted(run.report["test"]) == ["beam", "copy_input", "greedy", "most_frequent_target"]
        True
    """
    from torch.utils.data import DataLoader

    from ..train import Splits, TrainConfig, fit, load_weights, new_run_dir

    check_choice("tokens", tokens, TOKENS)
    check_choice("attention", attention, ATTENTIONS)
    train_pairs, val_pairs, test_pairs = load_data(data, dataset, examples, seed)
    config = TrainConfig(task="seq2seq", epochs=epochs, learning_rate=learning_rate, device=device, seed=seed,
                         progress=progress)  # fmt: skip
    run_dir = Path(run_dir) if run_dir else new_run_dir("seq2seq", config.runs_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    source_vocab = build_vocabulary([s for s, _ in train_pairs], tokens)
    target_vocab = build_vocabulary([t for _, t in train_pairs], tokens)
    (run_dir / "source_vocab.json").write_text(source_vocab.to_json(), encoding="utf-8")
    (run_dir / "target_vocab.json").write_text(target_vocab.to_json(), encoding="utf-8")
    max_length = max(len(tokenize(t, tokens)) for _, t in train_pairs) * 2 + 5

    torch.manual_seed(seed)
    model = Seq2Seq(len(source_vocab), len(target_vocab), embedding_dim=embedding_dim, hidden_size=hidden_size,
                    cell=cell, num_layers=num_layers, bidirectional=bidirectional, attention=attention,
                    dropout=dropout, teacher_forcing=teacher_forcing, backend=backend)  # fmt: skip
    train_ids = encode_pairs(train_pairs, source_vocab, target_vocab, tokens)
    val_ids = encode_pairs(val_pairs, source_vocab, target_vocab, tokens)
    splits = Splits(
        DataLoader(
            train_ids,
            batch_size=batch_size,
            shuffle=True,
            collate_fn=collate,
            generator=torch.Generator().manual_seed(seed),
        ),  # fmt: skip
        DataLoader(val_ids, batch_size=256, collate_fn=collate),
        unit="tokens",
    )
    meta = {"data": None if data is None else str(data), "dataset": dataset, "examples": examples, "tokens": tokens,
            "max_length": max_length, "batch_size": batch_size,
            "pairs": {"train": len(train_pairs), "val": len(val_pairs), "test": len(test_pairs)}}  # fmt: skip
    result = fit(model, splits, config, run_dir=run_dir, meta=meta)
    load_weights(model, run_dir, "best")
    model.eval()

    val_scores, _ = evaluate(model, val_pairs, source_vocab, target_vocab, (), tokens, 1, alpha, max_length)
    test_scores, decoded = evaluate(model, test_pairs, source_vocab, target_vocab, train_pairs, tokens, beam_size,
                                    alpha, max_length)  # fmt: skip
    lines = ["source\ttarget\tgreedy\tbeam"]
    for (s, t), g, b in zip(test_pairs, decoded["greedy"], decoded.get("beam", decoded["greedy"])):
        lines.append("\t".join([s, t, *(detokenize(_tokens_of(target_vocab, h.tokens), tokens) for h in (g, b))]))
    (run_dir / "predictions.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    plots = {"loss": str(run_dir / "plots" / "loss.png")}
    if attention != "none" and plot_examples > 0:
        chosen = decoded.get("beam", decoded["greedy"])[:plot_examples]
        examples_ = [_attention_example(s, h, source_vocab, target_vocab, tokens)
                     for (s, _), h in zip(test_pairs, chosen)]  # fmt: skip
        plots["attention"] = str(plot_attention(examples_, run_dir / "plots" / "attention.png"))
    report = {
        "run_dir": str(run_dir),
        "data": meta["data"] or dataset,
        "tokens": tokens,
        "test": test_scores,
        "val": {"greedy": val_scores["greedy"]},
        "beam_size": beam_size,
        "alpha": alpha,
        "pairs": meta["pairs"],
        "split": "80/10/10 by distinct source string, shuffled with the seed",
        "bleu": "sacrebleu corpus BLEU over tokens joined by spaces (a space as ▁), tokenize='none'",
        "best_epoch": result.best_epoch, "epochs": result.epochs, "stop_reason": result.stop_reason,
        "best_val_loss_nats_per_token": result.best_loss,
        "plots": plots,
    }  # fmt: skip
    (run_dir / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    return Seq2SeqRun(run_dir, model, source_vocab, target_vocab, tokens, max_length, report)


def load_run(run_dir: str | Path, device: str = "cpu") -> Seq2SeqRun:
    """A trained seq2seq run's best model and vocabularies."""
    from ..train import load_weights, read_run_config

    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    if not (run_dir / "source_vocab.json").is_file():
        raise ValueError(f"{str(run_dir)!r} is not a seq2seq run (no source_vocab.json).")
    source_vocab = Vocabulary.from_json((run_dir / "source_vocab.json").read_text(encoding="utf-8"))
    target_vocab = Vocabulary.from_json((run_dir / "target_vocab.json").read_text(encoding="utf-8"))
    model = load_weights(Seq2Seq(**config["model"]), run_dir, "best").to(device).eval()
    report_path = run_dir / "report.json"
    report = json.loads(report_path.read_text(encoding="utf-8")) if report_path.is_file() else {}
    return Seq2SeqRun(run_dir, model, source_vocab, target_vocab, config["tokens"], config["max_length"], report)


@dataclass
class Translation:
    text: str  # the output, detokenized
    tokens: list[str]
    score: float  # log p / length**alpha
    source_tokens: list[str]
    attention: Tensor | None  # (outputs + </s>, sources)


def translate(
    run: str | Path | Seq2SeqRun,
    text: str,
    beam_size: int = 4,
    alpha: float = 0.7,
    plot: str | Path | None = None,
) -> Translation:
    """Rewrite ``text`` with a trained run (greedy for ``beam_size=1``); ``plot`` writes its attention PNG.

    Tokens the model never saw are a ``ValueError`` naming them.

    Example:
        >>> import tempfile
        >>> run = train(dataset="dates", examples=200, hidden_size=16, embedding_dim=8, epochs=1, progress=False,
        ...             beam_size=1, run_dir=tempfile.mkdtemp())
        >>> len(translate(run, "3 March 1998").text) <= run.max_length
        True
    """
    run = run if isinstance(run, Seq2SeqRun) else load_run(run)
    pieces = tokenize(text.strip(), run.tokens)
    if not pieces:
        raise ValueError(f"Expected some text to translate. Received: {text!r}")
    unknown = sorted({p for p in pieces if p not in run.source_vocab})
    if unknown:
        kind = "characters" if run.tokens == "char" else "words"
        raise ValueError(f"The input has {kind} the model never saw: {unknown}. Received: {text!r}")
    (hyp,) = decode_pairs(run.model, [text.strip()], run.source_vocab, run.tokens, beam_size, alpha, run.max_length)
    out = _tokens_of(run.target_vocab, hyp.tokens)
    result = Translation(detokenize(out, run.tokens), out, hyp.score, pieces, hyp.attention)
    if plot is not None and hyp.attention is not None:
        plot_attention([(pieces, out + (["</s>"] if hyp.finished else []), hyp.attention)], plot)
    return result
