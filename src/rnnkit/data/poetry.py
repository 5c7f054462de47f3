"""Chinese poems: loading, normalising, and the regular forms (5/7 characters, 4/8 lines).

Sources: the JSON of the chinese-poetry collection (a list of ``{"title", "author",
"paragraphs"}``), plain text with one poem per line, a directory of either, and the regular
Tang poems that ship with rnnkit (``load_tang()``; see ``poetry/NOTICE.md`` for source and licence).

A poem is kept as its lines without punctuation: a line is the run of characters between two
punctuation marks (，。？！；：、 and their ASCII forms) or paragraph breaks. ``Poem.text()``
puts '，' after odd lines and '。' after even ones, the form every regular poem is rendered in
for training and generation, whatever marks the source used.

Normalisation (``normalise``), written for the editorial marks of the chinese-poetry texts:

- notes in （…） (…) 〔…〕 【…】 〖…〗 go with their content (nested ones too), and so do
  footnote marks like [一] or [二二];
- text in [...] or ［...］ is an editor's supplied character and stays, without the brackets;
- a character missing from the source or from Unicode (□, ●, a ``{…}`` description of its
  parts, an ideographic description sequence like ⿰亻丸, a private-use code point) becomes □,
  so lines keep their length, and a poem with one has no regular form (``poem_form`` is None);
- every other symbol (quotes, title marks 《》, digits, Latin letters, spaces) is dropped;
  CJK ideographs of every Unicode block are kept.
"""

from __future__ import annotations

import functools
import json
import lzma
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .corpus import read_chunks, text_files

SHIPPED_TANG = Path(__file__).parent / "poetry" / "tang_regular.jsonl.xz"
LINE_BREAKS = "，。？！；：、,.?!;:\n"
MISSING = "□"  # a character lost from the source

_IDEOGRAPHS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U000323af"
_LOST = re.compile(r"\{[^{}]*\}|[\u2ff0-\u2fff].{2}|[●\ue000-\uf8ff]")
_OPEN, _CLOSE, _NUMERALS = "（(〔【〖", "）)〕】〗", "一二三四五六七八九十〇○"
_NOTE = re.compile(f"[{_OPEN}][^{_OPEN}{_CLOSE}]*[{_CLOSE}]|[\\[［][{_NUMERALS}]+[\\]］]")
_NOT_KEPT = re.compile(f"[^{_IDEOGRAPHS}{MISSING}{re.escape(LINE_BREAKS)}]")
_LINE_BREAK = re.compile(f"[{re.escape(LINE_BREAKS)}]")
_SURROGATE = re.compile("[\ud800-\udfff]")  # half of a UTF-16 pair, alone (a JSON escape like "\\ud800"): no text


@dataclass
class Poem:
    """One poem: its lines without punctuation, with title and author when known.

    Example:
        >>> Poem(["床前明月光", "疑是地上霜"], title="静夜思").text()
        '床前明月光，疑是地上霜。'
    """

    lines: list[str]
    title: str = ""
    author: str = ""

    def text(self) -> str:
        """The lines with '，' after odd lines and '。' after even lines."""
        return "".join(line + ("，" if k % 2 == 0 else "。") for k, line in enumerate(self.lines))


def normalise(text: str, simplified: bool = False) -> str:
    """Notes and symbols removed, lost characters as □ (rules in the module docstring);
    optionally traditional characters converted to simplified (needs ``opencc-python-reimplemented``).

    Example:
        >>> normalise("床前明月光（一作看月光），疑是地上霜。*")
        '床前明月光，疑是地上霜。'
        >>> normalise("[爽]節在重九[一]，童子解吟《長恨曲》。{艹/尔}")
        '爽節在重九，童子解吟長恨曲。□'
    """
    text = _NOT_KEPT.sub("", _without_notes(_LOST.sub(MISSING, text)))
    return to_simplified(text) if simplified else text


def _without_notes(text: str) -> str:
    for _ in range(4):  # innermost notes first, until none is left: a few passes for the usual nesting
        if (stripped := _NOTE.sub("", text)) == text:
            return text
        text = stripped
    return _without_deep_notes(text)


def _without_deep_notes(text: str) -> str:
    """What removing the innermost notes again and again leaves, in one pass with a stack (deep nesting
    would take a pass per level).  A note or footnote mark can only end at the character just read,
    since what is kept before it holds none."""
    kept: list[str] = []
    brackets: list[int] = []  # positions in kept of the note brackets, opening or closing
    numerals: list[int] = []  # numerals[i]: the run of footnote numerals that ends at kept[i]
    for char in text:
        run = numerals[-1] if numerals else 0
        if char in _CLOSE and brackets and kept[brackets[-1]] in _OPEN:
            start = brackets.pop()  # a note: its opening bracket and everything after it go
        elif char in "]］" and run and len(kept) > run and kept[-1 - run] in "[［":
            start = len(kept) - 1 - run  # a footnote mark like [一]
        else:
            if char in _OPEN or char in _CLOSE:
                brackets.append(len(kept))
            numerals.append(run + 1 if char in _NUMERALS else 0)
            kept.append(char)
            continue
        del kept[start:], numerals[start:]
    return "".join(kept)


@functools.lru_cache(maxsize=1)
def _converter():
    try:
        from opencc import OpenCC
    except ImportError:
        raise ValueError(
            "Converting to simplified characters needs the package opencc-python-reimplemented "
            "(pip install 'rnnkit[poetry]')."
        ) from None
    return OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Traditional -> simplified characters with OpenCC's t2s tables (pure Python, offline).

    Example:
        >>> to_simplified("風雲無")
        '风云无'
    """
    return _converter().convert(text)


def split_lines(text: str) -> list[str]:
    """Lines of a normalised poem: the runs between punctuation marks and line breaks.

    Example:
        >>> split_lines("春眠不觉晓，处处闻啼鸟。\\n夜来风雨声，花落知多少")
        ['春眠不觉晓', '处处闻啼鸟', '夜来风雨声', '花落知多少']
    """
    return [line for line in _LINE_BREAK.split(text) if line]


def poem_form(poem: Poem) -> tuple[int, int] | None:
    """``(characters per line, number of lines)`` when every line has the same length and no
    character is missing (□), else None.

    Example:
        >>> poem_form(Poem(["床前明月光", "疑是地上霜", "举头望明月", "低头思故乡"]))
        (5, 4)
        >>> poem_form(Poem(["床前明月光", "疑是地上"])) is None, poem_form(Poem(["床前明月□"])) is None
        (True, True)
    """
    lengths = {len(line) for line in poem.lines}
    if len(lengths) != 1 or any(MISSING in line for line in poem.lines):
        return None
    return lengths.pop(), len(poem.lines)


def filter_form(poems: Iterable[Poem], chars: Iterable[int] = (5, 7), lines: Iterable[int] = (4, 8)) -> list[Poem]:
    """The regular poems: ``chars`` characters in every line and ``lines`` lines.

    Example:
        >>> quatrain, couplet = Poem(["床前明月光", "疑是地上霜"] * 2), Poem(["床前明月光", "疑是地上霜"])
        >>> filter_form([quatrain, couplet]) == [quatrain], filter_form([quatrain], chars=(7,))
        (True, [])
    """
    chars, lines = set(chars), set(lines)
    return [p for p in poems if (form := poem_form(p)) and form[0] in chars and form[1] in lines]


def _read(path: Path) -> str:
    text = "".join(read_chunks(path))
    if not text.strip():
        raise ValueError(f"{str(path)!r} is empty.")
    return text


def _records(path: Path) -> list[dict] | None:
    """The poem objects of a chinese-poetry JSON file, or None when it holds something else."""
    try:
        data = json.loads(_read(path))
    except json.JSONDecodeError as error:
        raise ValueError(f"{str(path)!r} is not valid JSON: {error.msg} at line {error.lineno}.") from None
    except RecursionError:
        raise ValueError(f"{str(path)!r} is not poems: its JSON is nested too deeply to read.") from None
    records = data if isinstance(data, list) else [data]
    if all(isinstance(r, dict) and isinstance(r.get("paragraphs"), list) for r in records):
        return records
    return None


def _from_json(records: list[dict], simplified: bool) -> list[Poem]:
    poems = []
    for record in records:
        # paragraph breaks are line breaks; a note that runs on into the next paragraph still goes whole
        lines = split_lines(normalise("\n".join(str(p) for p in record["paragraphs"]), simplified))
        # title and author as given, less notes and runs of white space
        title, author = (" ".join(_without_notes(_SURROGATE.sub("", str(record.get(k) or ""))).split())
                         for k in ("title", "author"))  # fmt: skip
        if simplified:
            title, author = to_simplified(title), to_simplified(author)
        if lines:
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
    of ``.json``/``.txt`` files (recursively, in sorted order; JSON files that hold something
    other than poems, like the collection's ``authors.tang.json``, are skipped there).

    Errors are ``ValueError`` naming the file: empty, not UTF-8 (with the byte offset), not valid
    JSON, not poems, or no poems at all.

    Example:
        >>> import tempfile, pathlib
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "p.txt"
        >>> _ = f.write_text("春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。\\n", encoding="utf-8")
        >>> load_poems(f)[0].lines
        ['春眠不觉晓', '处处闻啼鸟', '夜来风雨声', '花落知多少']
    """
    path = Path(path)
    in_directory = path.is_dir()
    files = [f for f in text_files(path) if f.suffix.lower() in (".json", ".txt")] if in_directory else [path]
    if not files:
        raise ValueError(f"No .json or .txt files under {str(path)!r}.")
    if not files[0].exists():
        raise ValueError(f"No such file or directory: {str(path)!r}.")
    poems = []
    for f in files:
        if f.suffix.lower() != ".json":
            poems += _from_text(f, simplified)
        elif (records := _records(f)) is not None:
            poems += _from_json(records, simplified)
        elif not in_directory:
            raise ValueError(f"{str(f)!r}: expected a list of poems, objects with a 'paragraphs' list.")
    if not poems:
        raise ValueError(f"No poems found in {str(path)!r}.")
    return poems


def load_tang() -> list[Poem]:
    """The regular Tang poems that ship with rnnkit (simplified characters, duplicates removed).

    Example:
        >>> poems = load_tang()
        >>> len(poems) > 30000, {poem_form(p) for p in poems} == {(5, 4), (5, 8), (7, 4), (7, 8)}
        (True, True)
    """
    with lzma.open(SHIPPED_TANG, "rt", encoding="utf-8") as f:
        return [Poem(r["lines"], r["title"], r["author"]) for r in map(json.loads, f)]
