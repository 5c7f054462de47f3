"""Make the shipped corpus src/rnnkit/data/poetry/tang_regular.jsonl.xz from the chinese-poetry package.

    mkdir -p /tmp/cp && cd /tmp/cp && npm pack chinese-poetry@2.0.1 && tar xzf chinese-poetry-2.0.1.tgz
    cd - && .venv/bin/python scripts/make_poetry_corpus.py /tmp/cp/package

Reads dist/quantangshi/poet.tang.*.json (traditional characters) with ``load_poems``, which
normalises each poem (notes and symbols removed, lines split at punctuation and paragraph
breaks: the rules are in the docstring of ``rnnkit.data.poetry``); keeps the regular ones (all
lines of 5 or all of 7 characters, none missing; 4 or 8 lines); converts them to simplified
characters (OpenCC t2s, opencc-python-reimplemented); drops exact duplicate bodies (the lines
joined; the first kept, in file order); and writes one JSON object per line: {"title",
"author", "lines"}, lines without punctuation (``Poem.text()`` renders line1，line2。…).
"""

import json
import lzma
import sys
import time
from pathlib import Path

from rnnkit.data.poetry import SHIPPED_TANG, filter_form, load_poems, to_simplified


def main(package: str, out: Path = SHIPPED_TANG) -> None:
    start = time.perf_counter()
    files = sorted((Path(package) / "dist" / "quantangshi").glob("poet.tang.*.json"), key=lambda f: int(f.stem[10:]))
    if not files:
        sys.exit(f"no dist/quantangshi/poet.tang.*.json under {package}")
    records = sum(len(json.loads(f.read_text(encoding="utf-8"))) for f in files)
    poems = [p for f in files for p in load_poems(f)]
    regular_traditional = filter_form(poems)
    # convert all at once (one OpenCC pass), then split back: title, author and lines, one per row
    rows = [row for p in regular_traditional for row in (p.title, p.author, *p.lines)]
    converted = iter(to_simplified("\n".join(rows)).split("\n"))
    for p in regular_traditional:
        p.title, p.author, p.lines = next(converted), next(converted), [next(converted) for _ in p.lines]
    regular = filter_form(regular_traditional)  # a conversion that changed a line's length drops the poem
    seen, kept = set(), []
    for p in regular:
        body = "".join(p.lines)
        if body not in seen:
            seen.add(body)
            kept.append(p)
    out.parent.mkdir(parents=True, exist_ok=True)
    with lzma.open(out, "wt", encoding="utf-8", preset=9 | lzma.PRESET_EXTREME) as f:
        for p in kept:
            f.write(json.dumps({"title": p.title, "author": p.author, "lines": p.lines}, ensure_ascii=False) + "\n")
    chars = sum(len(p.text()) for p in kept)
    vocab = {c for p in kept for c in p.text()}
    forms = {form: sum(len(p.lines) == form[1] and len(p.lines[0]) == form[0] for p in kept) for form in FORMS}
    print(f"read {records} poems from {len(files)} files, {len(poems)} with text; regular {len(regular_traditional)}")
    print(
        f"after conversion {len(regular)}; exact duplicate bodies dropped {len(regular) - len(kept)}; kept {len(kept)}"
    )
    print("forms (characters, lines): " + ", ".join(f"{form} {n}" for form, n in forms.items()))
    print(f"{chars} characters with punctuation, {len(vocab)} distinct; {out} {out.stat().st_size} bytes")
    print(f"{time.perf_counter() - start:.0f} s")


FORMS = [(5, 4), (5, 8), (7, 4), (7, 8)]

if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/cp/package", *(Path(a) for a in sys.argv[2:3]))
