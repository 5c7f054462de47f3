"""Chinese poems: loading, normalising, and the regular forms (5/7 characters, 4/8 lines).

Sources: the JSON of the chinese-poetry collection (a list of ``{"title", "author",
"paragraphs"}``), plain text with one poem per line, a directory of either, and the regular
Tang poems that ship with rnnkit (``load_tang()``; see ``poetry/NOTICE.md`` for source and licence).

A poem is kept as its lines without punctuation; ``Poem.text()`` puts '，' after odd lines and
'。' after even ones, the form every regular poem is rendered in for training and generation.
"""

from __future__ import annotations

import json
import lzma
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .corpus import read_chunks, text_files

SHIPPED_TANG = Path(__file__).parent / "poetry" / "tang_regular.jsonl.xz"
LINE_BREAKS = "，。？！；：、,.?!;:"
_BRACKETED = re.compile(r"[（(［\[〔【｛{《][^）)］\]〕】｝}》]*[）)］\]〕】｝}》]")  # notes like （一作…）
_NOT_KEPT = re.compile(f"[^\u3400-\u4dbf\u4e00-\u9fff{re.escape(LINE_BREAKS)}]")


@dataclass
class Poem:
    """One poem: its lines without punctuation.

    Example:
        >>> Poem(["床前明月光", "疑是地上霜"], title="静夜思").text()
        '床前明月光，疑是地上霜。'
    """

    lines: list[str]
    title: str = ""
    author: str = ""
    meta: dict = field(default_factory=dict, repr=False)

    def text(self) -> str:
        """The lines with '，' after odd lines and '。' after even lines."""
        return "".join(line + ("，" if k % 2 == 0 else "。") for k, line in enumerate(self.lines))


def normalise(text: str, simplified: bool = False) -> str:
    """Drop bracketed notes and every symbol but CJK ideographs and punctuation; optionally
    convert traditional to simplified characters (needs ``opencc-python-reimplemented``).

    >>> normalise("床前明月光（一作看月光），疑是地上霜。*")
    '床前明月光，疑是地上霜。'
    """
    text = _NOT_KEPT.sub("", _BRACKETED.sub("", text))
    return to_simplified(text) if simplified else text


def to_simplified(text: str) -> str:
    """Traditional -> simplified characters with OpenCC's t2s tables (pure Python, offline)."""
    try:
        from opencc import OpenCC
    except ImportError:
        raise ValueError(
            "Converting to simplified characters needs the package opencc-python-reimplemented "
            "(pip install 'rnnkit[poetry]')."
        ) from None
    return OpenCC("t2s").convert(text)


def split_lines(text: str) -> list[str]:
    """Lines of a normalised poem: the runs between punctuation marks."""
    return [line for line in re.split(f"[{re.escape(LINE_BREAKS)}]", text) if line]


def poem_form(poem: Poem) -> tuple[int, int] | None:
    """``(characters per line, number of lines)`` when every line has the same length, else None."""
    lengths = {len(line) for line in poem.lines}
    return (lengths.pop(), len(poem.lines)) if len(lengths) == 1 else None


def filter_form(poems: Iterable[Poem], chars: Iterable[int] = (5, 7), lines: Iterable[int] = (4, 8)) -> list[Poem]:
    """The regular poems: ``chars`` characters in every line and ``lines`` lines."""
    chars, lines = set(chars), set(lines)
    return [p for p in poems if (form := poem_form(p)) and form[0] in chars and form[1] in lines]


def _read(path: Path) -> str:
    text = "".join(read_chunks(path))
    if not text.strip():
        raise ValueError(f"{str(path)!r} is empty.")
    return text


def _from_json(path: Path, simplified: bool) -> list[Poem]:
    try:
        data = json.loads(_read(path))
    except json.JSONDecodeError as error:
        raise ValueError(f"{str(path)!r} is not valid JSON: {error.msg} at line {error.lineno}.") from None
    records = data if isinstance(data, list) else [data]
    poems = []
    for record in records:
        if not isinstance(record, dict) or not isinstance(record.get("paragraphs"), list):
            raise ValueError(f"{str(path)!r}: expected poems as objects with a 'paragraphs' list.")
        body = normalise("".join(str(p) for p in record["paragraphs"]), simplified)
        title, author = (normalise(str(record.get(k, "")), simplified) for k in ("title", "author"))
        if lines := split_lines(body):
            poems.append(Poem(lines, title, author))
    return poems


def _from_text(path: Path, simplified: bool) -> list[Poem]:
    poems = []
    for row in _read(path).splitlines():
        if lines := split_lines(normalise(row, simplified)):
            poems.append(Poem(lines))
    return poems


def load_poems(path: str | Path, simplified: bool = False) -> list[Poem]:
    """Poems from a chinese-poetry JSON file, a text file (one poem per line), or a directory
    of ``.json``/``.txt`` files.  Errors name the file: empty, not UTF-8, not valid JSON.

    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "p.txt"
    >>> _ = f.write_text("春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。\\n", encoding="utf-8")
    >>> load_poems(f)[0].lines
    ['春眠不觉晓', '处处闻啼鸟', '夜来风雨声', '花落知多少']
    """
    path = Path(path)
    files = [f for f in text_files(path) if f.suffix.lower() in (".json", ".txt")] if path.is_dir() else [path]
    if not files:
        raise ValueError(f"No .json or .txt files under {str(path)!r}.")
    if not files[0].exists():
        raise ValueError(f"No such file or directory: {str(path)!r}.")
    poems = []
    for f in files:
        poems += _from_json(f, simplified) if f.suffix.lower() == ".json" else _from_text(f, simplified)
    if not poems:
        raise ValueError(f"No poems found in {str(path)!r}.")
    return poems


def load_tang() -> list[Poem]:
    """The regular Tang poems that ship with rnnkit (simplified characters, duplicates removed)."""
    with lzma.open(SHIPPED_TANG, "rt", encoding="utf-8") as f:
        return [Poem(r["lines"], r["title"], r["author"]) for r in map(json.loads, f)]
