"""Fuzzed file loaders: whatever bytes a file holds, every loader returns a well-formed result or
raises a ``ValueError`` whose message names the file; never another exception, never a hang.

Inputs: random bytes (invalid UTF-8, NUL bytes, BOMs, UTF-16 and Latin-1 text), empty and
white-space-only files, one line of over a megabyte, and nearly valid files of each format
(CSV with missing or extra cells, non-numbers, NaN and duplicate dates; CoNLL with wrong column
counts and runs of blank lines; pair files without tabs; poetry JSON with wrong types and
missing keys), written with ``\\n``, ``\\r\\n`` and ``\\r`` line ends mixed.

The examples are fixed (``derandomize``) so CI sees the same inputs every run.
``RNNKIT_FUZZ_EXAMPLES=500`` runs that many random (not fixed) inputs per test, for a longer local
fuzz; ``--hypothesis-show-statistics`` counts them.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import lzma
import os
import string
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas  # noqa: F401 — imported here so the first example's deadline is not spent on it
import pytest
import sklearn.model_selection  # noqa: F401 — likewise
from hypothesis import HealthCheck, currently_in_test_context, event, example, given, settings
from hypothesis import strategies as st

from rnnkit.data.corpus import encode_corpus, read_chunks
from rnnkit.data.poetry import LINE_BREAKS, _without_deep_notes, load_poems
from rnnkit.data.sequences import load_csv_data
from rnnkit.data.series import load_series
from rnnkit.tasks.caption import load_features
from rnnkit.tasks.seq2seq import read_pairs
from rnnkit.tasks.tagging import TagVocab, read_conll

FUZZ_EXAMPLES = int(os.environ.get("RNNKIT_FUZZ_EXAMPLES", "0"))


def fuzz(max_examples: int):
    """Settings for one fuzzed loader: ``max_examples`` fixed inputs in CI (``RNNKIT_FUZZ_EXAMPLES`` random ones
    when set), each within a deadline that catches a hang."""
    return settings(
        max_examples=FUZZ_EXAMPLES or max_examples,
        derandomize=not FUZZ_EXAMPLES,
        database=None,
        deadline=timedelta(seconds=3),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@contextlib.contextmanager
def written(data: bytes | str, name: str):
    """A fresh file ``name`` holding ``data`` (str as UTF-8) in its own temporary directory, for one example."""
    with tempfile.TemporaryDirectory(prefix="rnnkit-fuzz-") as directory:
        path = Path(directory) / name
        path.write_bytes(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
        yield path


def result_or_clear_error(load, *paths: Path):
    """``load()``'s result, or None after a ``ValueError`` that names one of ``paths``; anything else fails the test."""
    try:
        result = load()
    except ValueError as error:
        message = str(error)
        assert message.strip(), f"{type(error).__name__} with an empty message"
        assert any(p.name in message for p in paths), f"the message does not name the file: {message!r}"
        for path in paths:
            message = message.replace(repr(str(path)), "FILE").replace(str(path), "FILE")
        outcome(f"a clear error: {message[:40]}")
        return None
    outcome("a result")
    return result


def outcome(name: str) -> None:
    """Count an outcome for ``--hypothesis-show-statistics`` (inside a fuzzed test only)."""
    if currently_in_test_context():
        event(name)


def utf8(value: str) -> bool:
    """Whether ``value`` can be written as UTF-8 (no lone surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# ------------------------------------------------------------------------------------------ strategies
NEWLINES = ("\n", "\r\n", "\r")
BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")

junk_bytes = st.one_of(
    st.binary(max_size=300),  # mostly invalid UTF-8, NUL bytes
    st.text(max_size=120).map(lambda s: s.encode("utf-8")),  # valid UTF-8, any characters
    st.text(max_size=60).map(lambda s: s.encode("utf-16")),  # with its BOM
    st.text(st.characters(max_codepoint=255), max_size=80).map(lambda s: s.encode("latin-1")),
    st.tuples(st.sampled_from(BOMS), st.binary(max_size=60)).map(b"".join),
    st.sampled_from([b"", b"\n", b" \t\r\n \x0b\x0c", b"\xef\xbb\xbf", b"\xef\xbb\xbf\n", b"\x00" * 9, b"\r\r\r"]),
)


def with_newlines(lines: st.SearchStrategy[list[str]]) -> st.SearchStrategy[tuple[list[str], str]]:
    """Lines, and their text joined by a random mix of newlines (the last line with or without one)."""

    @st.composite
    def build(draw):
        rows = draw(lines)
        ends = draw(st.lists(st.sampled_from(NEWLINES), min_size=len(rows), max_size=len(rows)))[:-1]
        ends.append(draw(st.sampled_from(["", *NEWLINES])))  # after the last line
        for k in range(1, len(rows)):
            if ends[k - 1] == "\r" and not rows[k] and ends[k].startswith("\n"):
                ends[k - 1] = "\r\n"  # a \r then an empty line's \n would read as one \r\n
        return rows, "".join(row + end for row, end in zip(rows, ends))

    return build()


def encoded(text: str) -> st.SearchStrategy[bytes]:
    """``text`` as UTF-8, with or without a BOM."""
    return st.sampled_from([b"", BOMS[0]]).map(lambda bom: bom + text.encode("utf-8", "surrogatepass"))


@st.composite
def mutated(draw, rows: list[list[str]], bad_cells: st.SearchStrategy[str], separator: str = ",") -> str:
    """A table with up to three mutations: a bad cell, a cell dropped or added, a row dropped, duplicated or
    blank; joined by ``separator`` and a random mix of newlines."""
    rows = [list(row) for row in rows]
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(rows) - 1))
        j = draw(st.integers(0, len(rows[i])))
        change = draw(st.sampled_from(["cell", "cell", "drop cell", "add cell", "drop row", "repeat row", "blank"]))
        if change == "cell" and j < len(rows[i]):
            rows[i][j] = draw(bad_cells)
        elif change == "drop cell" and rows[i]:
            del rows[i][min(j, len(rows[i]) - 1)]
        elif change == "add cell":
            rows[i].insert(j, draw(bad_cells))
        elif change == "drop row" and len(rows) > 1:
            del rows[i]
        elif change == "repeat row":
            rows.insert(i, rows[i])
        elif change == "blank":
            rows.insert(i, [])
    lines = [separator.join(row) for row in rows]
    ends = draw(st.lists(st.sampled_from(NEWLINES), min_size=len(lines), max_size=len(lines)))
    return "".join(line + end for line, end in zip(lines, ends))


words = st.text(string.ascii_letters + "éü春眠'-.,!?", min_size=1, max_size=8)
cells = st.one_of(
    words,
    st.sampled_from(
        ["", " ", "\t", "\x00", "<unk>", "#", "-DOCSTART-", "O", "B-PER", "１", "\u3000", "\x85", "\u2028"]
    ),
    st.text(max_size=6),
)

# ------------------------------------------------------------------------------------------ text corpus


def check_corpus(raw: bytes, name: str = "fuzz-input.txt"):
    with written(raw, name) as path:
        corpus = result_or_clear_error(lambda: encode_corpus(path, path.parent / "encoded"), path)
        if corpus is not None:  # the token array spells the file's text, less a leading BOM
            text = raw.decode("utf-8").removeprefix("\ufeff")
            assert len(corpus) == len(text) > 0 and corpus.vocab.decode(corpus.tokens) == text
        return corpus


@fuzz(60)
@given(raw=junk_bytes)
@example(raw=b"ab\xe9cd")
@example(raw="\ufeff".encode())
def test_text_corpus_reads_any_bytes_or_names_the_file(raw):
    check_corpus(raw)


@fuzz(40)
@given(text=st.text(max_size=30), chunk=st.integers(1, 5))
@example(text="\ufeffab", chunk=1)
@example(text="\ufeff\ufeffab", chunk=2)
def test_chunked_text_equals_whole_text_less_one_leading_bom(text, chunk):
    with written(text, "fuzz-input.txt") as path:
        assert "".join(read_chunks(path, chunk_bytes=chunk)) == text.removeprefix("\ufeff")


# ------------------------------------------------------------------------------------------ poetry

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
poem_text = st.text(st.sampled_from("春眠不觉晓处处闻啼鸟，。？！,.\n（）()[]一□{}⿰亻丸 a1《》\ue000"), max_size=24)
poem_records = st.fixed_dictionaries(
    {},
    optional={
        "paragraphs": st.one_of(st.lists(st.one_of(poem_text, json_values), max_size=4), json_values),
        "title": st.one_of(poem_text, json_values),
        "author": st.one_of(poem_text, json_values),
    },
)
poetry_json = st.one_of(
    st.lists(st.one_of(poem_records, json_values), max_size=4).map(json.dumps),
    poem_records.map(json.dumps),
    json_values.map(json.dumps),
    st.lists(poem_records, max_size=3).map(lambda r: json.dumps(r, ensure_ascii=False)[:-1]),  # cut short
)


def check_poems(raw: bytes, name: str):
    with written(raw, name) as path:
        poems = result_or_clear_error(lambda: load_poems(path), path)
        for poem in poems or []:
            assert poem.lines and all(line and not set(line) & set(LINE_BREAKS) for line in poem.lines)
            assert isinstance(poem.title, str) and isinstance(poem.author, str)
            assert all(map(utf8, [*poem.lines, poem.title, poem.author]))
        return poems


@fuzz(40)
@given(raw=junk_bytes, name=st.sampled_from(["fuzz-input.txt", "fuzz-input.json"]))
def test_poetry_reads_any_bytes_or_names_the_file(raw, name):
    check_poems(raw, name)


@fuzz(60)
@given(raw=poetry_json.flatmap(encoded))
@example(raw=b"[" * 100_000)  # nested deeper than the JSON parser's recursion limit
@example(raw=b'[{"paragraphs": ["\\u6625\\ud800"], "title": "\\udfff"}]')  # lone surrogates, escaped
def test_poetry_json_with_wrong_types_or_missing_keys(raw):
    check_poems(raw, "fuzz-input.json")


@fuzz(30)
@given(poems=with_newlines(st.lists(poem_text, max_size=8)))
def test_poetry_text_reads_the_same_with_any_newlines(poems):
    rows, text = poems
    mixed = check_poems(text.encode("utf-8"), "fuzz-input.txt")
    plain = check_poems("\n".join(rows).encode("utf-8"), "fuzz-input.txt")
    assert mixed == plain


@fuzz(40)
@given(text=st.text(st.sampled_from("（）()〔〕【】〖〗[]［］一二〇春x"), max_size=40))
@example(text="[一（x）]（[二]）(（春）〔〕")
def test_notes_go_like_innermost_first_until_none_is_left(text):
    """One stack pass gives what removing the innermost notes again and again gives."""
    import re

    note = re.compile(r"[（(〔【〖][^（(〔【〖）)〕】〗]*[）)〕】〗]|[\[［][一二三四五六七八九十〇○]+[\]］]")
    expected = text
    while (stripped := note.sub("", expected)) != expected:
        expected = stripped
    assert _without_deep_notes(text) == expected


# ------------------------------------------------------------------------------------------ CSV series

date_cells = st.one_of(
    st.dates().map(str),
    st.sampled_from(["2024-01-01", "2024-01-02", "2024-13-01", "1999", "0", "-5", "2024-01-01T00:00:00+01:00",
                     "2024-01-01T00:00:00+05:00", "01/02/2024", "yesterday", "NaT", "2.5"]),
)  # fmt: skip
number_cells = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["", "nan", "NaN", "inf", "-inf", "1e39", "-3.5e38", "1e400", "abc", "1,5", "True", "0x1F", '"']),
)


@st.composite
def series_csv(draw):
    """A daily series with columns date, y and x (in any order, maybe a spare one), then mutated."""
    header = draw(st.permutations(["date", "y", "x", draw(st.sampled_from(["f", "", "y", "date"]))]))
    header = header[: draw(st.integers(3, 4))]
    start, n = draw(st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 1, 1))), draw(st.integers(1, 12))
    numbers = st.floats(-1e6, 1e6).map(repr) | st.integers(-1000, 1000).map(str)
    rows = [[str(start + timedelta(days=k)) if name == "date" else draw(numbers) for name in header] for k in range(n)]
    return draw(mutated([header, *draw(st.permutations(rows))], st.one_of(date_cells, number_cells)))


def check_series(raw: bytes, **options):
    with written(raw, "fuzz-input.csv") as path:
        series = result_or_clear_error(lambda: load_series(path, **options), path)
        if series is not None:
            n = len(series)
            assert n > 0 and series.values.shape == (n, 1) and series.values.dtype == np.float32
            assert series.covariates.shape == (n, len(options.get("covariates", ()))) and len(series.index) == n
            assert np.isfinite(series.table()).all()  # NaN and Inf are an error or filled
            if options.get("time") is not None:
                assert series.index.is_monotonic_increasing and series.index.is_unique
        return series


series_options = st.fixed_dictionaries(
    {"target": st.just("y")},
    optional={"time": st.just("date"), "covariates": st.just(["x"]), "fill": st.sampled_from(["ffill", "drop"])},
)


@fuzz(40)
@given(raw=junk_bytes, options=series_options)
def test_series_csv_reads_any_bytes_or_names_the_file(raw, options):
    check_series(raw, **options)


@fuzz(60)
@given(text=series_csv(), options=series_options)
@example(text="y\n1\n1e39\n", options={"target": "y"})  # finite as float64, Inf as float32
@example(text="date,y\n2024-01-01,1\n2024-01-01,2\n", options={"target": "y", "time": "date"})
@example(text="date,y\n2024-01-01,1\nsoon,2\n", options={"target": "y", "time": "date"})
@example(text="y,x\n1,a\n", options={"target": "y", "covariates": ["x"]})
@example(text="y\nnan\n", options={"target": "y", "fill": "ffill"})
def test_series_csv_with_bad_cells_columns_and_dates(text, options):
    check_series(text.encode("utf-8"), **options)


# ------------------------------------------------------------------------------------------ classify CSV


@st.composite
def classify_csv(draw):
    """Ten to thirty labelled texts or numeric sequences (two or three labels), then mutated."""
    text = draw(st.booleans())
    header = ["label", "text"] if text else ["label", *(f"v{i}" for i in range(draw(st.integers(1, 4))))]
    labels = draw(st.lists(st.sampled_from(["a", "b", "1", "2.0", "yes"]), min_size=2, max_size=3, unique=True))
    values = st.text(string.ascii_lowercase + " ", min_size=1, max_size=12).filter(str.strip) if text else (
        st.floats(-100, 100).map(repr))  # fmt: skip
    rows = [[labels[k % len(labels)], *(draw(values) for _ in header[1:])] for k in range(draw(st.integers(10, 30)))]
    bad = st.one_of(cells, number_cells, st.sampled_from(labels)) if text else st.one_of(number_cells, words)
    return draw(mutated([header, *rows], bad)), text


def check_classify(raw: bytes, text_column: str | None):
    with written(raw, "fuzz-input.csv") as path:
        data = result_or_clear_error(lambda: load_csv_data(path, text_column=text_column, min_count=1), path)
        if data is not None:
            for part in (data.train, data.val, data.test):
                assert len(part) > 0 and len(part.x) == len(part.lengths) == len(part.y)
                assert (part.lengths >= 1).all() and ((part.y >= 0) & (part.y < len(data.classes))).all()
                assert np.isfinite(part.x).all()
        return data


@fuzz(30)
@given(raw=junk_bytes, text_column=st.sampled_from([None, "text"]))
def test_classify_csv_reads_any_bytes_or_names_the_file(raw, text_column):
    check_classify(raw, text_column)


@fuzz(40)
@given(table=classify_csv())
@example(table=("label,v0\n" + "a,1\nb,1e400\n" * 10, False))  # Inf in a feature
@example(table=("label,text\n" + "a,x\n" * 20, True))  # one class
def test_classify_csv_with_bad_cells_and_columns(table):
    text, is_text = table
    check_classify(text.encode("utf-8"), "text" if is_text else None)


# ------------------------------------------------------------------------------------------ tagged corpora

good_conll_line = st.tuples(words, st.sampled_from([" ", "\t"]), st.sampled_from(["NOUN", "B-PER", "O"])).map("".join)
conll_lines = st.one_of(
    good_conll_line,
    good_conll_line,  # twice as likely as each kind of bad line
    st.tuples(words, st.sampled_from([" ", "\t", "  "]), st.sampled_from(["NOUN", "B-PER", "O", ""])).map("".join),
    st.lists(cells, min_size=1, max_size=4).map(" ".join),
    st.lists(cells, min_size=1, max_size=4).map("\t".join),
    st.lists(st.one_of(st.sampled_from(["1", "2", "1-2", "3.1", "_"]), words), min_size=9, max_size=11).map("\t".join),
    st.sampled_from(["", "", " ", "\t", "# sent_id = 1", "-DOCSTART- O", "#\tSYM", "<unk>\tX"]),
)


def check_conll(raw: bytes, name: str = "fuzz-input.conll"):
    with written(raw, name) as path:
        sentences = result_or_clear_error(lambda: read_conll(path), path)
        for tokens, tags in sentences or []:
            assert tokens and all(isinstance(t, str) and t and "\n" not in t and "\r" not in t for t in tokens)
            assert tags is None or (len(tags) == len(tokens) and all(tags))
        if sentences and sentences[0].tags is not None:
            TagVocab.build(sentences, min_word_count=1)  # the sentences can be trained on
        return sentences


@fuzz(40)
@given(raw=junk_bytes, name=st.sampled_from(["fuzz-input.conll", "fuzz-input.conllu", "fuzz-input.gz", "f.xz"]))
@example(raw=b"The DET\n", name="fuzz-input.gz")  # not gzip data
@example(raw=lzma.compress(b"The DET\n")[:-3], name="fuzz-input.xz")  # cut short
def test_conll_reads_any_bytes_or_names_the_file(raw, name):
    check_conll(raw, name)


@fuzz(60)
@given(lines=with_newlines(st.lists(conll_lines, max_size=10)), compress=st.sampled_from(["", ".gz", ".xz"]))
@example(lines=(["\tNOUN"], "\tNOUN\n"), compress="")  # empty token
@example(lines=(["The\t"], "The\t\n"), compress="")  # empty tag
@example(lines=(["<unk> NOUN", "the DET"], "<unk> NOUN\nthe DET\n"), compress="")
@example(lines=(["The DET", "cat NOUN"], "The DET\rcat NOUN\r"), compress="")  # old Mac line ends
@example(lines=(["a O", "", "b O"], "a O\r\r\nb O"), compress="")
def test_conll_with_wrong_columns_and_blank_runs(lines, compress):
    rows, text = lines
    raw = text.encode("utf-8")
    raw = gzip.compress(raw) if compress == ".gz" else lzma.compress(raw) if compress == ".xz" else raw
    mixed = check_conll(raw, "fuzz-input.conll" + compress)
    if mixed is not None:  # the same sentences as with \n line ends
        assert mixed == check_conll("\n".join(rows).encode("utf-8"))


# ------------------------------------------------------------------------------------------ pair files

good_pair_line = st.tuples(words, st.just("\t"), words).map("".join)
pair_lines = st.one_of(
    good_pair_line,
    good_pair_line,
    good_pair_line,  # as likely as the bad lines together
    st.tuples(cells, st.just("\t"), cells, st.sampled_from(["", "\tCC-BY", "\t"])).map("".join),
    cells,
    st.sampled_from(["", " ", "\t", "a\t", "\tb", " \t "]),
)


def check_pairs(raw: bytes):
    with written(raw, "fuzz-input.tsv") as path:
        pairs = result_or_clear_error(lambda: read_pairs(path), path)
        for source, target in pairs or []:
            for value in (source, target):
                assert value and value == value.strip() and "\n" not in value and "\r" not in value
        return pairs


@fuzz(40)
@given(raw=junk_bytes)
def test_pairs_read_any_bytes_or_name_the_file(raw):
    check_pairs(raw)


@fuzz(50)
@given(lines=with_newlines(st.lists(pair_lines, max_size=10)))
@example(lines=(["Go.\tVa !", "Hi.\tSalut !"], "Go.\tVa !\rHi.\tSalut !\r"))  # old Mac line ends
def test_pairs_read_the_same_with_any_newlines(lines):
    rows, text = lines
    mixed = check_pairs(text.encode("utf-8"))
    if mixed is not None:
        assert mixed == check_pairs("\n".join(rows).encode("utf-8"))


# ------------------------------------------------------------------------------------------ caption features


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def filled(shape: tuple, dtype, value: float) -> np.ndarray:
    """An array of ``value`` cast to ``dtype`` (NaN to an int, 1e39 to float32: whatever numpy makes of it)."""
    if dtype == "U2":
        return np.full(shape, "ab")
    with np.errstate(all="ignore"):
        return np.full(shape, value).astype(dtype)


feature_files = st.one_of(
    junk_bytes,
    st.tuples(
        st.sampled_from([(4, 3), (3, 1), (0, 3), (4,), (2, 2, 2), (5, 0), ()]),
        st.sampled_from([np.float64, np.float32, np.float16, np.int8, np.bool_, np.complex64, "M8[D]", "U2"]),
        st.sampled_from([0.0, 1.0, np.nan, np.inf, 1e39]),
    ).map(lambda a: npy_bytes(filled(*a))),
    st.sampled_from([npy_bytes(np.ones((4, 3)))[:-5], npy_bytes(np.ones((4, 3)))[:20], b"PK\x03\x04" + bytes(40)]),
)


def npz_bytes() -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, x=np.ones((4, 3)))
    return buffer.getvalue()


@st.composite
def features_and_captions(draw):
    """Features (N, F) and N lines of captions, then mutated; or junk in either file."""
    n, f = draw(st.integers(3, 8)), draw(st.integers(1, 4))
    features = npy_bytes(np.asarray(draw(st.lists(st.floats(-1e3, 1e3), min_size=n * f, max_size=n * f))).reshape(n, f))
    caption = st.text(string.ascii_lowercase + " ,.'-", min_size=1, max_size=15).filter(
        lambda c: any(map(str.isalpha, c))
    )
    lines = [draw(st.lists(caption, min_size=1, max_size=3)) for _ in range(n)]
    captions = draw(mutated(lines, st.one_of(cells, caption), separator="\t")).encode("utf-8")
    return draw(st.sampled_from([features, draw(feature_files)])), draw(st.sampled_from([captions, draw(junk_bytes)]))


@fuzz(50)
@given(files=features_and_captions())
@example(files=(npy_bytes(np.ones((4, 3))), b"a cat\n\xe9\nb\nc\n"))
@example(files=(npz_bytes(), b"a\nb\nc\nd\n"))
@example(files=(npy_bytes(np.full((3, 2), 1e39)), b"a\nb\nc\n"))
@example(files=(b"PK\x03\x04", b"a\nb\nc\n"))
@example(files=(npy_bytes(np.ones((3, 2), np.complex64)), b"a\nb\nc\n"))
def test_caption_features_and_captions(files):
    features, captions = files
    with written(features, "fuzz-features.npy") as feature_path, written(captions, "fuzz-captions.txt") as path:
        data = result_or_clear_error(lambda: load_features(feature_path, path), feature_path, path)
        if data is not None:
            n = len(data.inputs)
            assert data.inputs.ndim == 2 and data.inputs.dtype == np.float32 and np.isfinite(data.inputs).all()
            assert len(data.captions) == len(data.split) == n >= 3 and set(data.split.tolist()) <= {0, 1, 2}
            assert all(refs and all(refs) for refs in data.captions)


# ------------------------------------------------------------------------------------------ music


@fuzz(15)
@given(raw=junk_bytes, name=st.sampled_from(["fuzz-input.mid", "fuzz-input.abc", "fuzz-input.krn"]))
@example(raw=b"X:1\nT:t\nK:C\nCDEF|\n", name="fuzz-input.abc")
def test_music_files_read_or_name_the_file(raw, name):
    from rnnkit.tasks.music import load_music_dir

    with written(raw, name) as path:
        corpus = result_or_clear_error(lambda: load_music_dir(path.parent), path)
        if corpus is not None:
            assert len(corpus) == 1 and corpus.rolls[0].ndim == 2 and corpus.rolls[0].any()


# ------------------------------------------------------------------------------------------ one huge line

HUGE = 1_500_000  # characters on one line


@pytest.mark.parametrize(
    "loader",
    ["text", "poetry-text", "poetry-notes", "poetry-json", "series", "classify", "conll", "pairs", "captions"],
)
def test_one_line_of_a_megabyte_and_a_half_is_read_in_seconds(loader):
    """A file that is one huge line (or one deeply nested note) is read, or refused, in linear time."""
    start = time.perf_counter()
    if loader == "text":
        check_corpus(("春" * HUGE).encode("utf-8"))
    elif loader == "poetry-text":
        assert len(check_poems(("春眠不觉晓，" * (HUGE // 6)).encode("utf-8"), "fuzz-input.txt")[0].lines) > 1000
    elif loader == "poetry-notes":  # notes nested HUGE/2 deep: removing the innermost first is quadratic
        assert check_poems(("春（" * (HUGE // 4) + "）" * (HUGE // 4)).encode("utf-8"), "f.txt")[0].lines == ["春"]
    elif loader == "poetry-json":
        check_poems(json.dumps([{"paragraphs": ["春" * HUGE]}]).encode("utf-8"), "fuzz-input.json")
    elif loader == "series":
        assert len(check_series(("y,note\n1," + "n" * HUGE + "\n2,\n").encode("utf-8"), target="y")) == 2
        check_series(("y\n1\n" + "1" * HUGE + "\n").encode("utf-8"), target="y")  # a number of 1.5 million digits
    elif loader == "classify":
        check_classify(("label,text\n" + "a,x\nb,y\n" * 10 + "a," + "w " * (HUGE // 2)).encode("utf-8"), "text")
    elif loader == "conll":
        assert len(check_conll(("w " * (HUGE // 2)).encode("utf-8"))[0].tokens) == 1
    elif loader == "pairs":
        assert len(check_pairs(("a" * HUGE + "\tb").encode("utf-8"))[0][0]) == HUGE
    elif loader == "captions":
        with written(npy_bytes(np.ones((3, 2))), "f.npy") as features, written("a\nb\n" + "c " * HUGE, "c.txt") as c:
            assert len(load_features(features, c).captions[2][0]) == 2 * HUGE - 1
    seconds = time.perf_counter() - start
    assert seconds < 15, f"{loader}: {seconds:.1f} s for one huge line"
