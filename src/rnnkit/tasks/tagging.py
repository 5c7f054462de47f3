"""Sequence tagging (aligned many-to-many): one tag per token, e.g. part of speech or named entities.

    run = rnnkit.tasks.tagging.train(dataset="ud-en-ewt", epochs=4)
    rnnkit.tasks.tagging.predict(run.run_dir, [["I", "saw", "her", "duck", "."]])
    # [['PRON', 'VERB', 'PRON', 'NOUN', 'PUNCT']]

The model (Lample et al. 2016; Huang et al. 2015) reads each word as an embedding plus, optionally,
the final states of a small character BiLSTM over its letters; a BiLSTM (any cell of rnnkit) reads
the sentence; a linear layer gives emission scores per tag; and either each token takes its own
argmax (trained with cross-entropy) or a linear-chain CRF (:mod:`rnnkit.crf`) picks the best
whole path (trained with the sentence's negative log-likelihood).

Every score comes beside the **most-frequent-tag** baseline on the same test split: each word
gets the tag it had most often in training, an unseen word the most frequent tag overall.
Token accuracy always; for BIO/IOBES tags, entity precision/recall/F1 (seqeval, CoNLL style);
for other tags (POS), macro F1 over tags.

Data: any CoNLL-style file (``read_conll``), a CoNLL-U treebank, or a named data set:
``ud-en-ewt`` (Universal Dependencies English Web Treebank, shipped, UPOS tags) and
``synthetic-ner`` (generated template sentences with BIO person/location/organisation tags).
"""

from __future__ import annotations

import gzip
import json
import lzma
import random
import re
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor, nn

from ..crf import LinearChainCRF
from ..data.vocab import Vocabulary
from ..layers import Recurrent

UD_DIR = Path(__file__).resolve().parents[1] / "data" / "ud"
DATASETS = ("ud-en-ewt", "synthetic-ner")
MAX_WORD_CHARS = 20  # longer words (URLs) are read by their first and last 10 characters


# --------------------------------------------------------------------------------------------- reading
class Sentence(NamedTuple):
    """One sentence: its tokens and their tags (``None`` for a file without a tag column)."""

    tokens: list[str]
    tags: list[str] | None


def read_text(path: str | Path) -> str:
    """A UTF-8 file's text (``.xz`` and ``.gz`` are decompressed), with a clear error for bytes
    that are not UTF-8 (their byte offset and line) and for an empty file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"Expected a CoNLL file. Received: {str(path)!r}, which is not a file.")
    raw = path.read_bytes()
    if path.suffix in (".xz", ".gz"):
        try:
            raw = lzma.decompress(raw) if path.suffix == ".xz" else gzip.decompress(raw)
        except (lzma.LZMAError, zlib.error, OSError, EOFError) as error:
            raise ValueError(f"{path}: not a readable {path.suffix} file ({error}).") from None
    if not raw.strip():
        raise ValueError(f"{path}: the file is empty; expected tokens, one a line, a blank line between sentences.")
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ValueError(
            f"{path}: not UTF-8 text: byte 0x{raw[error.start]:02x} at byte offset {error.start} (line {line}). "
            "Expected UTF-8; convert the file first (e.g. iconv -f latin1 -t utf-8)."
        ) from None


def _is_conllu(name: str, lines: list[str]) -> bool:
    if name.endswith((".conllu", ".conllu.xz", ".conllu.gz")):
        return True
    for line in lines:
        if line.strip() and not line.startswith("#"):
            cols = line.rstrip("\r").split("\t")
            return len(cols) == 10 and cols[0].split("-")[0].split(".")[0].isdigit()
    return False


def parse_conll(
    text: str,
    name: str = "<text>",
    token_column: int | None = None,
    tag_column: int | None = None,
    format: str = "auto",
) -> list[Sentence]:
    """Sentences of a CoNLL-style text: one token a line, columns separated by tabs (when the first
    token line has a tab) or else by any whitespace, a blank line between sentences.

    Columns: the token is column ``token_column`` (default the first) and the tag column
    ``tag_column`` (default the last; negative counts from the end).  A file with one column has
    no tags (``Sentence.tags`` is ``None``).  ``-DOCSTART-`` lines are skipped.  A line starting
    with ``#`` where a sentence starts is a comment, unless it has as many columns as the token
    lines (so a ``#`` token, as in ``#<TAB>SYM``, is read as a token).

    ``format="conllu"`` (or ``"auto"`` for a ``.conllu`` name or 10 tab-separated columns with a
    numeric ID) reads CoNLL-U: FORM and UPOS by default (columns 1 and 3), multiword ranges
    (``3-4``) and empty nodes (``8.1``) skipped.

    Example:
        >>> parse_conll("-DOCSTART- O\\n\\nJohn B-PER\\nlives O\\n\\n# a comment\\nParis B-LOC\\n")
        [Sentence(tokens=['John', 'lives'], tags=['B-PER', 'O']), Sentence(tokens=['Paris'], tags=['B-LOC'])]
        >>> rows = [["1-2", "don't"], ["1", "do", "do", "AUX"], ["1.1", "x", "x", "X"], ["2", "n't", "not", "PART"]]
        >>> parse_conll("".join("\\t".join(r + ["_"] * (10 - len(r))) + "\\n" for r in rows))
        [Sentence(tokens=['do', "n't"], tags=['AUX', 'PART'])]
    """
    if format not in ("auto", "conll", "conllu"):
        raise ValueError(f"Expected format to be one of ['auto', 'conll', 'conllu']. Received: format={format!r}")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")  # any mix of line ends
    if format == "conllu" or (format == "auto" and _is_conllu(name, lines)):
        return _parse_conllu(lines, name, 1 if token_column is None else token_column,
                             3 if tag_column is None else tag_column)  # fmt: skip
    token_column = 0 if token_column is None else token_column
    tag_column = -1 if tag_column is None else tag_column
    first = next((i for i, line in enumerate(lines) if line.strip() and not line.startswith(("#", "-DOCSTART-"))), None)
    if first is None:  # every token starts with '#': only a tab-separated file can say which lines are rows
        first = next((i for i, line in enumerate(lines) if line.startswith("#") and "\t" in line), None)
    if first is None:
        raise ValueError(f"{name}: no sentences found; expected tokens, one a line, a blank line between sentences.")
    separator = "\t" if "\t" in lines[first] else None
    width = len(_columns(lines[first], separator))
    for option, column in (("token_column", token_column), ("tag_column", tag_column)):
        if not -width <= column < width:
            raise ValueError(
                f"{name}: expected {option} within the {width} columns of line {first + 1}. Received: {option}={column}"
            )
    has_tags = width > 1
    sentences: list[Sentence] = []
    tokens: list[str] = []
    tags: list[str] = []

    def close():
        if tokens:
            sentences.append(Sentence(tokens.copy(), tags.copy() if has_tags else None))
            tokens.clear()
            tags.clear()

    for number, line in enumerate(lines, start=1):
        if not line.strip():
            close()
            continue
        if line.startswith("-DOCSTART-"):
            close()
            continue
        cols = _columns(line, separator)
        if line.startswith("#") and not tokens and len(cols) != width:
            continue  # a comment before a sentence
        if len(cols) != width:
            raise ValueError(
                f"{name}, line {number}: expected {width} columns (as on line {first + 1}), found {len(cols)}: "
                f"{line.rstrip()[:80]!r}"
            )
        _check_cells(cols, token_column, tag_column if has_tags else None, name, number, line)
        tokens.append(cols[token_column])
        if has_tags:
            tags.append(cols[tag_column])
    close()
    return sentences


def _check_cells(cols: list[str], token_column: int, tag_column: int | None, name: str, number: int, line: str):
    """A ValueError naming the line where the token (or the tag) is an empty cell."""
    for what, column in (("token", token_column), ("tag", tag_column)):
        if column is not None and not cols[column].strip():
            received = line.rstrip("\r\n")[:80]
            raise ValueError(f"{name}, line {number}: expected a {what}, found an empty cell. Received: {received!r}")


def _columns(line: str, separator: str | None) -> list[str]:
    line = line.rstrip("\r\n")
    return line.split("\t") if separator == "\t" else line.split()


def _parse_conllu(lines: list[str], name: str, token_column: int, tag_column: int) -> list[Sentence]:
    for option, column in (("token_column", token_column), ("tag_column", tag_column)):
        if not -10 <= column < 10:
            raise ValueError(f"{name}: expected {option} within the 10 CoNLL-U columns. Received: {option}={column}")
    sentences, tokens, tags = [], [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            if tokens:
                sentences.append(Sentence(tokens, tags))
                tokens, tags = [], []
            continue
        if line.startswith("#"):
            continue
        cols = line.rstrip("\r").split("\t")
        if len(cols) != 10:
            raise ValueError(
                f"{name}, line {number}: expected 10 tab-separated CoNLL-U columns, found {len(cols)}: {line[:80]!r}"
            )
        if "-" in cols[0] or "." in cols[0]:
            continue  # a multiword token's range, or an empty node
        _check_cells(cols, token_column, tag_column, name, number, line)
        tokens.append(cols[token_column])
        tags.append(cols[tag_column])
    if tokens:
        sentences.append(Sentence(tokens, tags))
    if not sentences:
        raise ValueError(f"{name}: no sentences found in this CoNLL-U file.")
    return sentences


def read_conll(
    path: str | Path, token_column: int | None = None, tag_column: int | None = None, format: str = "auto"
) -> list[Sentence]:
    """Sentences of a CoNLL(-U) file; see :func:`parse_conll` for the format and options.

    Errors name the file and line: a line with the wrong number of columns, an empty file, bytes
    that are not UTF-8 (with their byte offset).

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "x.conll"
        >>> _ = path.write_text("The DET\\ncat NOUN\\n", encoding="utf-8")
        >>> read_conll(path)
        [Sentence(tokens=['The', 'cat'], tags=['DET', 'NOUN'])]
    """
    return parse_conll(read_text(path), str(path), token_column, tag_column, format)


def write_conll(sentences: Iterable[Sentence], path: str | Path) -> Path:
    """Write ``token<TAB>tag`` lines (just the token for untagged sentences), a blank line after each.

    Example:
        >>> import tempfile
        >>> path = write_conll([Sentence(["Hi", "!"], ["INTJ", "PUNCT"])], Path(tempfile.mkdtemp()) / "o.conll")
        >>> read_conll(path)
        [Sentence(tokens=['Hi', '!'], tags=['INTJ', 'PUNCT'])]
    """
    lines = []
    for tokens, tags in sentences:
        for i, token in enumerate(tokens):
            if not token or any(c.isspace() for c in token):
                raise ValueError(f"Expected tokens without whitespace for CoNLL output. Received: {token!r}")
            lines.append(token if tags is None else f"{token}\t{tags[i]}")
        lines.append("")
    path = Path(path)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def tokenize(text: str) -> list[str]:
    """Split plain text into tokens roughly as the English Web Treebank does (words, ``n't``,
    clitics such as ``'s``, each punctuation mark alone).

    Example:
        >>> tokenize("I don't like Mr. Smith's cat, really!")
        ['I', 'do', "n't", 'like', 'Mr', '.', 'Smith', "'s", 'cat', ',', 'really', '!']
    """
    return re.findall(r"\w+(?=n't)|n't|\w+(?:[-']\w+)*(?<!'s)|'\w+|[^\w\s]", text)


# --------------------------------------------------------------------------------------------- data sets
@dataclass
class TagData:
    """Train, validation and test sentences, and a sentence saying where they come from."""

    train: list[Sentence]
    val: list[Sentence]
    test: list[Sentence]
    description: str


def load_ud_en_ewt() -> TagData:
    """The shipped UD English EWT (UPOS; data/ud/NOTICE.md): official train, dev (validation), test splits."""
    train, val, test = (read_conll(UD_DIR / f"en_ewt-{split}.tsv.xz") for split in ("train", "dev", "test"))
    how = "UD English EWT (commit of 2025-05-10), UPOS: official train / dev (validation) / test"
    return TagData(train, val, test, how)


_FIRST = ["Maria", "John", "Aisha", "Kenji", "Olga", "Pedro", "Fatima", "Liam", "Chen", "Amara", "Noah", "Sofia",
          "Ivan", "Priya", "Lucas", "Yuki", "Omar", "Elena", "David", "Zara", "Mateo", "Hana", "Samuel", "Leila",
          "Jordan", "Florence", "Victoria", "Paris", "Sydney", "Austin"]  # fmt: skip
_LAST = ["Garcia", "Smith", "Khan", "Tanaka", "Petrova", "Silva", "Hassan", "Murphy", "Wang", "Okafor", "Cohen",
         "Rossi", "Novak", "Sharma", "Martin", "Sato", "Haddad", "Popescu", "Brown", "Ali", "Lopez", "Kim", "Jensen",
         "Moreau", "Washington", "Lincoln", "Jackson", "Kent"]  # fmt: skip
_LOC = ["London", "Paris", "Nairobi", "Lima", "Oslo", "Hanoi", "Cairo", "Toronto", "Madrid", "Jakarta", "Denver",
        "Jordan", "Kenya", "Peru", "Norway", "Vietnam", "Egypt", "Canada", "Spain", "Chile", "New York",
        "Buenos Aires", "Rio de Janeiro", "Hong Kong", "South Africa", "Sydney", "Austin", "Victoria", "Florence",
        "Washington", "Lincoln", "Jackson", "Kent", "Georgia", "Salt Lake City"]  # fmt: skip
_ORG = ["Acme Corp", "Globex", "Initech", "Umbrella Labs", "Stark Industries", "Wayne Enterprises", "Hooli",
        "Northwind Traders", "Bank of Avalon", "the United Nations", "Red Cross", "Oxfam", "Pied Piper",
        "Vandelay Industries", "Cyberdyne Systems", "Tyrell Corporation", "Soylent", "Massive Dynamic",
        "Aperture Science", "Oceanic Airlines", "University of Lagos", "Blue Harbor Bank", "Zenith Motors",
        "Nakatomi Trading", "Gringotts", "Kent Foods", "Jackson Media", "Lincoln Health"]  # fmt: skip
_TEMPLATES = [
    "{PER} flew to {LOC} on Monday .", "{PER} works for {ORG} .", "{ORG} opened an office in {LOC} .",
    "yesterday {PER} met {PER} in {LOC} .", "the new chief of {ORG} is {PER} .",
    "shares of {ORG} fell after {PER} resigned .", "{PER} was born in {LOC} .", "{LOC} is far from {LOC} .",
    "{PER} said that {ORG} will hire more people in {LOC} .", "we visited {LOC} last summer .",
    "according to {PER} , {ORG} is doing well .", "{ORG} and {ORG} signed a deal in {LOC} .",
    "nothing much happened today .", "the weather in {LOC} was cold .", "{PER} thanked {PER} for the help .",
    "I sent the report to {PER} at {ORG} .", "Did {PER} move to {LOC} ?", "{ORG} hired {PER} last year .",
    "the trip from {LOC} to {LOC} took ten hours .", "Ask {PER} about the meeting .",
    "{PER} from {ORG} will speak in {LOC} tomorrow .", "prices rose again this week .",
]  # fmt: skip
_TYPES = {"PER": None, "LOC": _LOC, "ORG": _ORG}


def synthetic_ner(n_train: int = 2000, n_val: int = 300, n_test: int = 500, seed: int = 0) -> TagData:
    """A **generated** named-entity corpus with BIO tags (PER, LOC, ORG), to exercise entity F1.

    Sentences fill templates (``"{PER} flew to {LOC} on Monday ."``) with names.  A quarter of each
    name list is held out of training and validation and used only in test sentences (half of their
    names), so a tagger must read context and capitalisation; some names are both people and
    places (Jordan, Paris, Washington), so the word alone is not enough either.  The same seed
    gives the same corpus.

    Example:
        >>> data = synthetic_ner(3, 1, 1, seed=0)
        >>> len(data.train), all(len(s.tokens) == len(s.tags) for s in data.train)
        (3, True)
    """
    rng = random.Random(seed)
    pools = {}
    for kind, names in (("FIRST", _FIRST), ("LAST", _LAST), ("LOC", _LOC), ("ORG", _ORG)):
        names = sorted(names)
        rng.shuffle(names)
        held = len(names) // 4
        pools[kind] = (names[held:], names[:held])  # (seen, held out)

    def name(kind: str, held_out: bool) -> str:
        def pick(k):
            seen, held = pools[k]
            return rng.choice(held if held_out and rng.random() < 0.5 else seen)

        if kind == "PER":
            return pick("FIRST") + (" " + pick("LAST") if rng.random() < 0.6 else "")
        return pick(kind)

    def sentence(held_out: bool) -> Sentence:
        tokens, tags = [], []
        for piece in rng.choice(_TEMPLATES).split():
            kind = piece[1:-1] if piece.startswith("{") else None
            if kind is None:
                tokens.append(piece)
                tags.append("O")
                continue
            words = name(kind, held_out).split()
            if words[0] == "the":  # "the United Nations": the article stays outside the entity
                tokens.append(words.pop(0))
                tags.append("O")
            tokens += words
            tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(words) - 1)
        return Sentence(tokens, tags)

    train = [sentence(False) for _ in range(n_train)]
    val = [sentence(False) for _ in range(n_val)]
    test = [sentence(True) for _ in range(n_test)]
    return TagData(train, val, test, f"synthetic-ner (GENERATED template sentences, seed {seed}; "
                                     "test sentences use held-out names half the time)")  # fmt: skip


def load_dataset(name: str, seed: int = 0) -> TagData:
    """A named data set: ``"ud-en-ewt"`` or ``"synthetic-ner"``."""
    if name == "ud-en-ewt":
        return load_ud_en_ewt()
    if name == "synthetic-ner":
        return synthetic_ner(seed=seed)
    raise ValueError(f"Expected dataset to be one of {list(DATASETS)}. Received: dataset={name!r}")


def split_by_position(sentences: list[Sentence], name: str) -> tuple[list[Sentence], ...]:
    """First 80 % of the sentences for training, next 10 % validation, last 10 % test."""
    n = len(sentences)
    if n < 10:
        raise ValueError(f"{name}: {n} sentences are too few to split 80/10/10; give at least 10 (or --dev/--test).")
    a, b = int(n * 0.8), int(n * 0.9)
    return sentences[:a], sentences[a:b], sentences[b:]


# --------------------------------------------------------------------------------------------- encoding
def is_entity_tagging(tags: Iterable[str]) -> bool:
    """True when every tag is ``O`` or ``B-``/``I-``/``E-``/``S-``/``L-``/``U-`` plus a type (BIO, IOBES).

    Example:
        >>> is_entity_tagging(["O", "B-PER", "I-PER"]), is_entity_tagging(["NOUN", "VERB"])
        (True, False)
    """
    tags = set(tags)
    return bool(tags - {"O"}) and all(t == "O" or re.fullmatch(r"[BIESLU]-.+", t) for t in tags)


def _char_form(word: str) -> str:
    return word if len(word) <= MAX_WORD_CHARS else word[: MAX_WORD_CHARS // 2] + word[-MAX_WORD_CHARS // 2 :]


@dataclass
class TagVocab:
    """Ids of words (rare ones share ``<unk>``), characters and tags.

    Example:
        >>> v = TagVocab.build([Sentence(["a", "a", "b"], ["X", "X", "Y"])], min_word_count=2)
        >>> v.words.encode(["a", "b"]), v.tags
        ([1, 0], ['X', 'Y'])
    """

    words: Vocabulary
    chars: Vocabulary
    tags: list[str]
    tag_ids: dict[str, int] = field(init=False)

    def __post_init__(self):
        self.tag_ids = {t: i for i, t in enumerate(self.tags)}

    @classmethod
    def build(cls, train: Sequence[Sentence], extra_tags: Iterable[str] = (), min_word_count: int = 2) -> TagVocab:
        tokens = [t for s in train for t in s.tokens]
        words = Vocabulary.from_text(tokens, min_count=min_word_count)
        chars = Vocabulary.from_text(c for t in tokens for c in _char_form(t))
        tags = sorted({t for s in train for t in s.tags} | set(extra_tags))
        return cls(words, chars, tags)

    def to_json(self) -> str:
        return json.dumps({"words": self.words.itos[1:], "chars": self.chars.itos[1:], "tags": self.tags},
                          ensure_ascii=False)  # fmt: skip

    @classmethod
    def from_json(cls, text: str) -> TagVocab:
        d = json.loads(text)
        return cls(Vocabulary(d["words"]), Vocabulary(d["chars"]), d["tags"])


class TagBatch(NamedTuple):
    """A padded batch of sentences; the characters are those of its distinct words only."""

    words: Tensor  # (B, T) word ids, 0 past each length
    lengths: Tensor  # (B,) tokens per sentence
    tags: Tensor  # (B, T) tag ids, 0 past each length
    chars: Tensor  # (U, W) character ids of the U distinct words of the batch, 0 past each word's length
    char_lengths: Tensor  # (U,)
    word_index: Tensor  # (B, T) row of `chars` that spells each token (0 past each length)


def make_batch(vocab: TagVocab, sentences: Sequence[Sequence[str]], tags: Sequence[Sequence[str]] | None = None):
    """Encode token lists (and tag lists) as a :class:`TagBatch`.

    Example:
        >>> v = TagVocab.build([Sentence(["a", "bc"], ["X", "Y"])], min_word_count=1)
        >>> b = make_batch(v, [["a", "bc"], ["bc"]], [["X", "Y"], ["Y"]])
        >>> b.words.tolist(), b.lengths.tolist(), b.chars.shape, b.word_index.tolist()
        ([[1, 2], [2, 0]], [2, 1], torch.Size([2, 2]), [[0, 1], [1, 0]])
    """
    if not sentences or any(len(s) == 0 for s in sentences):
        raise ValueError(f"Expected non-empty sentences. Received lengths: {[len(s) for s in sentences]}")
    T = max(len(s) for s in sentences)

    def padded(rows: list[list[int]], width: int) -> Tensor:
        return torch.tensor([row + [0] * (width - len(row)) for row in rows], dtype=torch.long)

    distinct: dict[str, int] = {}
    words = padded([vocab.words.encode(tokens) for tokens in sentences], T)  # (B, T)
    word_index = padded([[distinct.setdefault(t, len(distinct)) for t in tokens] for tokens in sentences], T)
    tag_rows = [[] for _ in sentences]
    if tags is not None:
        for b, row in enumerate(tags):
            unknown = [t for t in row if t not in vocab.tag_ids]
            if unknown:
                raise ValueError(f"Tag {unknown[0]!r} is not among the model's tags {vocab.tags}.")
            tag_rows[b] = [vocab.tag_ids[t] for t in row]
    tag_ids = padded(tag_rows, T)  # (B, T)
    spelled = [vocab.chars.encode(_char_form(w)) for w in distinct]
    chars = padded(spelled, max(len(s) for s in spelled))  # (U, W)
    char_lengths = torch.tensor([len(s) for s in spelled])
    lengths = torch.tensor([len(s) for s in sentences])
    return TagBatch(words, lengths, tag_ids, chars, char_lengths, word_index)


def batches(vocab: TagVocab, sentences: Sequence[Sentence], batch_size: int) -> list[TagBatch]:
    """Sentences sorted by length and cut into batches (little padding); the order of batches is
    shuffled each epoch by the loader."""
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i].tokens))
    out = []
    for start in range(0, len(order), batch_size):
        chosen = [sentences[i] for i in order[start : start + batch_size]]
        out.append(make_batch(vocab, [s.tokens for s in chosen], [s.tags for s in chosen]))
    return out


def batch_loader(items: list[TagBatch], shuffle: bool, seed: int):
    from torch.utils.data import DataLoader

    from ..data.batches import EpochSampler

    return DataLoader(items, batch_size=None, sampler=EpochSampler(len(items), shuffle=shuffle, seed=seed))


# --------------------------------------------------------------------------------------------- model
class Tagger(nn.Module):
    """Word embedding (+ character BiLSTM features) -> BiLSTM -> linear emissions (-> CRF).

    Args:
        vocab_size, char_vocab_size, num_tags: sizes of the word, character and tag inventories.
        embedding_dim: word embedding size ``E``.
        char_dim, char_hidden: character embedding size and hidden units per direction of the
            character BiLSTM; ``char_hidden=0`` turns character features off.
        cell, hidden_size, num_layers: the sentence BiLSTM (any cell of ``rnnkit.CELLS``), ``H`` per direction.
        dropout: on the word features and on the BiLSTM outputs.
        crf: decode with a linear-chain CRF (else each token's argmax).

    Shapes: ``emissions(batch)`` is ``(B, T, K)``; ``predict(batch)`` gives ``B`` lists of tag ids,
    each as long as its sentence.

    Example:
        >>> v = TagVocab.build([Sentence(["a", "b"], ["X", "Y"])], min_word_count=1)
        >>> model = Tagger(len(v.words), len(v.chars), len(v.tags), embedding_dim=4, char_dim=3, char_hidden=2,
        ...                hidden_size=5, crf=True)
        >>> batch = make_batch(v, [["a", "b", "a"], ["b"]], [["X", "Y", "X"], ["Y"]])
        >>> model.emissions(batch).shape, [len(p) for p in model.predict(batch)]
        (torch.Size([2, 3, 2]), [3, 1])
    """

    def __init__(
        self,
        vocab_size: int,
        char_vocab_size: int,
        num_tags: int,
        embedding_dim: int = 100,
        char_dim: int = 30,
        char_hidden: int = 50,
        cell: str = "lstm",
        hidden_size: int = 128,
        num_layers: int = 1,
        dropout: float = 0.33,
        crf: bool = True,
    ):
        super().__init__()
        self.config = dict(vocab_size=vocab_size, char_vocab_size=char_vocab_size, num_tags=num_tags,
                           embedding_dim=embedding_dim, char_dim=char_dim, char_hidden=char_hidden, cell=cell,
                           hidden_size=hidden_size, num_layers=num_layers, dropout=dropout, crf=crf)  # fmt: skip
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        features = embedding_dim
        if char_hidden > 0:
            self.char_embedding = nn.Embedding(char_vocab_size, char_dim)
            self.char_rnn = Recurrent(cell, char_dim, char_hidden, bidirectional=True)
            features += 2 * char_hidden
        self.dropout = nn.Dropout(dropout)
        self.rnn = Recurrent(cell, features, hidden_size, num_layers=num_layers, bidirectional=True,
                             dropout=dropout if num_layers > 1 else 0.0)  # fmt: skip
        self.output = nn.Linear(2 * hidden_size, num_tags)
        self.crf = LinearChainCRF(num_tags) if crf else None

    def word_features(self, batch: TagBatch) -> Tensor:
        """``(B, T, E [+ 2 * char_hidden])``: each token's embedding and its spelling's BiLSTM summary."""
        x = self.embedding(batch.words)  # (B, T, E)
        if self.config["char_hidden"] > 0:
            c = self.char_embedding(batch.chars)  # (U, W, C)
            _, state = self.char_rnn(c, lengths=batch.char_lengths)
            h = state[0] if isinstance(state, tuple) else state  # (2, U, Hc): forward at the last letter,
            spelling = torch.cat([h[0], h[1]], dim=-1)  # (U, 2Hc)       backward at the first
            x = torch.cat([x, spelling[batch.word_index]], dim=-1)  # (B, T, E + 2Hc)
        return x

    def emissions(self, batch: TagBatch) -> Tensor:
        """Scores per token and tag, ``(B, T, K)`` (meaningless past each sentence's length)."""
        x = self.dropout(self.word_features(batch))
        h, _ = self.rnn(x, lengths=batch.lengths)  # (B, T, 2H), zero past each length
        return self.output(self.dropout(h))  # (B, T, K)

    def loss(self, batch: TagBatch, state=None):
        """Mean negative log-likelihood per token: the CRF's sentence NLL summed over the batch
        and divided by its tokens, or per-token cross-entropy over the valid tokens."""
        from ..train import LossOutput

        scores = self.emissions(batch)  # (B, T, K)
        count = int(batch.lengths.sum())
        if self.crf is not None:
            nll = self.crf.neg_log_likelihood(scores, batch.tags, batch.lengths)  # (B,)
            return LossOutput(nll.sum() / count, count)
        mask = torch.arange(scores.shape[1], device=scores.device)[None, :] < batch.lengths.to(scores.device)[:, None]
        return LossOutput(nn.functional.cross_entropy(scores[mask], batch.tags[mask]), count)

    @torch.no_grad()
    def predict(self, batch: TagBatch) -> list[list[int]]:
        """The tag ids of each sentence: the CRF's Viterbi path, or each token's argmax."""
        scores = self.emissions(batch)
        lengths = batch.lengths.tolist()
        if self.crf is not None:
            return self.crf.decode(scores, batch.lengths)
        best = scores.argmax(-1).tolist()
        return [row[:n] for row, n in zip(best, lengths)]


def tag_sentences(model: Tagger, vocab: TagVocab, sentences: Sequence[Sequence[str]], batch_size: int = 256):
    """Tags (strings) for token lists, in their order; sentences are batched by length.

    Example:
        >>> v = TagVocab.build([Sentence(["a"], ["X"])], min_word_count=1)
        >>> tag_sentences(Tagger(len(v.words), len(v.chars), 1, 4, 3, 2, hidden_size=3), v, [["a", "a"], ["b"]])
        [['X', 'X'], ['X']]
    """
    model.eval()
    device = next(model.parameters()).device
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    result: list[list[str]] = [[] for _ in sentences]
    for start in range(0, len(order), batch_size):
        chosen = order[start : start + batch_size]
        batch = make_batch(vocab, [sentences[i] for i in chosen])
        batch = TagBatch(*(t.to(device) for t in batch))
        for i, ids in zip(chosen, model.predict(batch)):
            result[i] = [vocab.tags[j] for j in ids]
    return result


# --------------------------------------------------------------------------------------------- baseline, metrics
class MostFrequentTag:
    """The baseline: each word's most frequent training tag; unseen words get the most frequent tag
    overall (ties go to the alphabetically first tag).

    Example:
        >>> mft = MostFrequentTag([Sentence(["the", "can", "can"], ["DET", "AUX", "NOUN"]),
        ...                        Sentence(["can", "it"], ["AUX", "PRON"])])
        >>> mft.predict(["the", "can", "rust"])
        ['DET', 'AUX', 'AUX']
    """

    def __init__(self, train: Iterable[Sentence]):
        per_word: dict[str, Counter] = defaultdict(Counter)
        overall: Counter = Counter()
        for tokens, tags in train:
            for token, tag in zip(tokens, tags):
                per_word[token][tag] += 1
                overall[tag] += 1
        if not overall:
            raise ValueError("Expected tagged training sentences for the most-frequent-tag baseline. Received none.")
        self.default = _most_frequent(overall)
        self.lexicon = {word: _most_frequent(counts) for word, counts in per_word.items()}

    def predict(self, tokens: Sequence[str]) -> list[str]:
        return [self.lexicon.get(t, self.default) for t in tokens]


def _most_frequent(counts: Counter) -> str:
    return min(counts, key=lambda tag: (-counts[tag], tag))


def tagging_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]], entities: bool) -> dict:
    """Token accuracy; for entity tags (BIO/IOBES) entity precision, recall and F1 (seqeval, CoNLL
    style) and F1 per entity type; otherwise macro F1 over tags and F1 per tag.

    Example:
        >>> s = tagging_scores([["DET", "NOUN"]], [["DET", "VERB"]], entities=False)
        >>> s["accuracy"], round(s["macro_f1"], 3), s["per_tag_f1"]["DET"]
        (0.5, 0.333, 1.0)
    """
    if len(gold) != len(predicted) or any(len(g) != len(p) for g, p in zip(gold, predicted)):
        raise ValueError("Expected predicted tags aligned with the gold tags (same sentences, same lengths).")
    pairs = [(g, p) for gs, ps in zip(gold, predicted) for g, p in zip(gs, ps)]
    if not pairs:
        raise ValueError("Expected at least one token to score. Received none.")
    scores = {"accuracy": sum(g == p for g, p in pairs) / len(pairs), "tokens": len(pairs)}
    if entities:
        try:
            from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
        except ImportError as error:
            raise ImportError("Entity scores need seqeval: pip install seqeval (or rnnkit[tasks]).") from error

        gold, predicted = [list(s) for s in gold], [list(s) for s in predicted]
        scores["entity_precision"] = float(precision_score(gold, predicted, zero_division=0))
        scores["entity_recall"] = float(recall_score(gold, predicted, zero_division=0))
        scores["entity_f1"] = float(f1_score(gold, predicted, zero_division=0))
        report = classification_report(gold, predicted, output_dict=True, zero_division=0)
        scores["per_tag_f1"] = {k: float(v["f1-score"]) for k, v in report.items() if " avg" not in k}
        return scores
    true_pos, gold_count, pred_count = Counter(), Counter(), Counter()
    for g, p in pairs:
        gold_count[g] += 1
        pred_count[p] += 1
        true_pos[g] += g == p
    per_tag = {}
    for tag in sorted(set(gold_count) | set(pred_count)):
        denominator = gold_count[tag] + pred_count[tag]
        per_tag[tag] = 2 * true_pos[tag] / denominator  # F1 = 2TP / (2TP + FP + FN)
    scores["macro_f1"] = sum(per_tag.values()) / len(per_tag)
    scores["per_tag_f1"] = per_tag
    return scores


# --------------------------------------------------------------------------------------------- plots
def plot_tag_f1(model_f1: dict, baseline_f1: dict, path: str | Path, title: str = "F1 per tag (test)") -> Path:
    """Bars of F1 per tag (or entity type): the model beside the most-frequent-tag baseline.

    Example:
        >>> import tempfile
        >>> plot_tag_f1({"A": 0.9, "B": 0.5}, {"A": 0.8, "B": 0.1}, Path(tempfile.mkdtemp()) / "f1.png").is_file()
        True
    """
    import numpy as np

    from ..plots import _pyplot, _save

    plt = _pyplot()
    tags = sorted(set(model_f1) | set(baseline_f1))
    x = np.arange(len(tags))
    fig, ax = plt.subplots(figsize=(max(5, 0.55 * len(tags) + 2), 4), dpi=100)
    ax.bar(x - 0.2, [model_f1.get(t, 0.0) for t in tags], 0.4, label="model", color="tab:blue")
    ax.bar(x + 0.2, [baseline_f1.get(t, 0.0) for t in tags], 0.4, label="most frequent tag", color="tab:gray")
    ax.set_xticks(x, tags, rotation=45, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("F1")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return _save(fig, path)


def plot_confusion(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]], path: str | Path,
                   title: str = "tag confusion (test; rows: gold, normalised)") -> Path:  # fmt: skip
    """A confusion matrix of tags, each gold row normalised to sum to 1, counts in the cells.

    Example:
        >>> import tempfile
        >>> plot_confusion([["A", "B"]], [["A", "A"]], Path(tempfile.mkdtemp()) / "c.png").is_file()
        True
    """
    import numpy as np

    from ..plots import _pyplot, _save

    plt = _pyplot()
    tags = sorted({t for s in gold for t in s} | {t for s in predicted for t in s})
    index = {t: i for i, t in enumerate(tags)}
    counts = np.zeros((len(tags), len(tags)), dtype=np.int64)
    for gs, ps in zip(gold, predicted):
        for g, p in zip(gs, ps):
            counts[index[g], index[p]] += 1
    rates = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    size = max(4, 0.45 * len(tags) + 2)
    fig, ax = plt.subplots(figsize=(size, size), dpi=100)
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    if len(tags) <= 25:
        for i in range(len(tags)):
            for j in range(len(tags)):
                if counts[i, j]:
                    ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=6,
                            color="white" if rates[i, j] > 0.5 else "black")  # fmt: skip
    ax.set_xticks(range(len(tags)), tags, rotation=90)
    ax.set_yticks(range(len(tags)), tags)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(title)
    fig.tight_layout()
    return _save(fig, path)


# --------------------------------------------------------------------------------------------- train, use
@dataclass
class TagRun:
    run_dir: Path
    model: Tagger
    vocab: TagVocab
    report: dict


def _check_tagged(sentences: list[Sentence], what: str) -> None:
    if not sentences:
        raise ValueError(f"Expected at least one {what} sentence. Received none.")
    if any(s.tags is None for s in sentences):
        raise ValueError(f"Expected {what} sentences with a tag column (token first, tag last). Received tokens only.")


def train(
    data: str | Path | None = None,
    *,
    dataset: str | None = None,
    dev: str | Path | None = None,
    test: str | Path | None = None,
    token_column: int | None = None,
    tag_column: int | None = None,
    crf: bool = True,
    char_features: bool = True,
    cell: str = "lstm",
    hidden_size: int = 128,
    num_layers: int = 1,
    embedding_dim: int = 100,
    char_hidden: int = 50,
    dropout: float = 0.33,
    min_word_count: int = 2,
    batch_size: int = 32,
    epochs: int = 10,
    learning_rate: float = 2e-3,
    max_train_sentences: int = 0,
    device: str = "auto",
    seed: int = 0,
    run_dir: str | Path | None = None,
    runs_dir: str | Path = "runs",
    progress: bool = True,
) -> TagRun:
    """Train a tagger, evaluate it on the test split beside the most-frequent-tag baseline.

    Data: ``data`` a CoNLL(-U) file (split 80/10/10 by position unless ``dev`` and ``test`` files
    are given), or ``dataset`` one of :data:`DATASETS`.  ``max_train_sentences`` > 0 keeps only
    the first that many training sentences (for quick runs).  The model is picked by validation
    loss; the test split is scored once, at the end.

    Writes into the run directory: ``config.json``, ``vocab.json``, checkpoints, ``report.json``
    (validation and test scores, baseline scores, sizes), ``test_predictions.conll`` (token, gold,
    predicted), ``plots/loss.png``, ``plots/tag_f1.png``, ``plots/confusion.png``.
    """
    from ..train import Splits, TrainConfig, fit, load_weights, new_run_dir

    if (data is None) == (dataset is None):
        raise ValueError("Expected exactly one of data (a CoNLL file) or dataset "
                         f"(one of {list(DATASETS)}). Received: data={data!r}, dataset={dataset!r}")  # fmt: skip
    if dataset is not None:
        splits = load_dataset(dataset, seed=seed)
        source = dataset
    else:
        sentences = read_conll(data, token_column, tag_column)
        if (dev is None) != (test is None):
            raise ValueError("Expected both --dev and --test files, or neither (then the data is split 80/10/10).")
        if dev is None:
            parts = split_by_position(sentences, str(data))
            how = "by position: first 80% train, next 10% validation, last 10% test"
        else:
            parts = (sentences, read_conll(dev, token_column, tag_column), read_conll(test, token_column, tag_column))
            how = "given files: train / dev (validation) / test"
        splits = TagData(*parts, f"{data}: {how}")
        source = str(data)
    for part, what in ((splits.train, "training"), (splits.val, "validation"), (splits.test, "test")):
        _check_tagged(part, what)
    if max_train_sentences > 0:
        splits.train = splits.train[:max_train_sentences]
    vocab = TagVocab.build(splits.train, extra_tags=(t for s in splits.val for t in s.tags),
                           min_word_count=min_word_count)  # fmt: skip
    entities = is_entity_tagging(vocab.tags)

    config = TrainConfig(task="tag", epochs=epochs, learning_rate=learning_rate, device=device, seed=seed,
                         runs_dir=str(runs_dir), progress=progress)  # fmt: skip
    run_dir = Path(run_dir) if run_dir else new_run_dir("tag", config.runs_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "vocab.json").write_text(vocab.to_json(), encoding="utf-8")
    torch.manual_seed(seed)
    model = Tagger(len(vocab.words), len(vocab.chars), len(vocab.tags), embedding_dim=embedding_dim,
                   char_hidden=char_hidden if char_features else 0, cell=cell, hidden_size=hidden_size,
                   num_layers=num_layers, dropout=dropout, crf=crf)  # fmt: skip
    loaders = Splits(batch_loader(batches(vocab, splits.train, batch_size), True, seed),
                     batch_loader(batches(vocab, splits.val, 256), False, seed), unit="tokens")  # fmt: skip
    meta = {"data": source, "split": splits.description, "entities": entities}
    result = fit(model, loaders, config, run_dir=run_dir, meta=meta)
    load_weights(model, run_dir, "best")
    model.eval()

    baseline = MostFrequentTag(splits.train)
    report = {"run_dir": str(run_dir), "data": source, "split": splits.description,
              "scheme": "entities (BIO/IOBES): entity F1 by seqeval" if entities else "tags: accuracy, macro F1",
              "best_epoch": result.best_epoch, "epochs": result.epochs, "stop_reason": result.stop_reason,
              "sentences": {"train": len(splits.train), "val": len(splits.val), "test": len(splits.test)},
              "tokens": {k: sum(len(s.tokens) for s in v) for k, v in
                         (("train", splits.train), ("val", splits.val), ("test", splits.test))}}  # fmt: skip
    test_predicted = None
    for name, part in (("val", splits.val), ("test", splits.test)):
        gold = [s.tags for s in part]
        predicted = tag_sentences(model, vocab, [s.tokens for s in part])
        report[name] = tagging_scores(gold, predicted, entities)
        report[f"baseline_{name}"] = tagging_scores(gold, [baseline.predict(s.tokens) for s in part], entities)
        test_predicted = predicted
    lines = []
    for s, predicted in zip(splits.test, test_predicted):
        lines += [f"{t}\t{g}\t{p}" for t, g, p in zip(s.tokens, s.tags, predicted)] + [""]
    (run_dir / "test_predictions.conll").write_text("\n".join(lines) + "\n", encoding="utf-8")
    plots = run_dir / "plots"
    plots.mkdir(exist_ok=True)
    plot_tag_f1(report["test"]["per_tag_f1"], report["baseline_test"]["per_tag_f1"], plots / "tag_f1.png",
                title=f"F1 per {'entity type' if entities else 'tag'}, test split")  # fmt: skip
    plot_confusion([s.tags for s in splits.test], test_predicted, plots / "confusion.png")
    (run_dir / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    return TagRun(run_dir, model, vocab, report)


def load_run(run_dir: str | Path, device: str = "cpu") -> TagRun:
    """A trained tagging run's best model and vocabularies."""
    from ..train import load_weights, read_run_config

    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    if not (run_dir / "vocab.json").is_file() or "num_tags" not in (config.get("model") or {}):
        raise ValueError(f"{str(run_dir)!r} is not a tagging run (no vocab.json or tagger config).")
    vocab = TagVocab.from_json((run_dir / "vocab.json").read_text(encoding="utf-8"))
    model = load_weights(Tagger(**config["model"]), run_dir, "best").to(device).eval()
    report_path = run_dir / "report.json"
    report = json.loads(report_path.read_text(encoding="utf-8")) if report_path.is_file() else {}
    return TagRun(run_dir, model, vocab, report)


def predict(run_dir: str | Path, sentences: Sequence[Sequence[str]], device: str = "cpu") -> list[list[str]]:
    """Tags for token lists with a trained run's best model."""
    run = load_run(run_dir, device)
    if not sentences or any(len(s) == 0 for s in sentences):
        raise ValueError("Expected at least one sentence, each with at least one token.")
    return tag_sentences(run.model, run.vocab, sentences)
