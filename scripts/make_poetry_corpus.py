"""Make the shipped corpus src/rnnkit/data/poetry/tang_regular.jsonl.xz from the chinese-poetry package.

    mkdir -p /tmp/cp && cd /tmp/cp && npm pack chinese-poetry@2.0.1 && tar xzf chinese-poetry-2.0.1.tgz
    .venv/bin/python scripts/make_poetry_corpus.py /tmp/cp/package

Reads dist/quantangshi/poet.tang.*.json (traditional characters), normalises each poem, converts
it to simplified characters (OpenCC t2s), keeps the regular ones (all lines of 5 or all of 7
characters; 4 or 8 lines), drops exact duplicate bodies (first kept), and writes one JSON object
per line: {"title", "author", "lines"}.
"""

import json
import lzma
import sys
import time
from pathlib import Path

from rnnkit.data.poetry import SHIPPED_TANG, filter_form, load_poems, to_simplified


def main(package: str) -> None:
    start = time.perf_counter()
    files = sorted((Path(package) / "dist" / "quantangshi").glob("poet.tang.*.json"))
    if not files:
        sys.exit(f"no dist/quantangshi/poet.tang.*.json under {package}")
    poems = [p for f in files for p in load_poems(f)]
    regular_traditional = filter_form(poems)
    # convert all at once (one OpenCC pass), then split back: title, author and lines, one per row
    rows = [row for p in regular_traditional for row in (p.title, p.author, *p.lines)]
    converted = iter(to_simplified("\n".join(rows)).split("\n"))
    simplified = []
    for p in regular_traditional:
        title, author = next(converted), next(converted)
        p.title, p.author, p.lines = title, author, [next(converted) for _ in p.lines]
        simplified.append(p)
    regular = filter_form(simplified)  # a conversion that changed a line's length drops the poem
    seen, kept = set(), []
    for p in regular:
        body = "".join(p.lines)
        if body not in seen:
            seen.add(body)
            kept.append(p)
    SHIPPED_TANG.parent.mkdir(parents=True, exist_ok=True)
    with lzma.open(SHIPPED_TANG, "wt", encoding="utf-8", preset=9) as out:
        for p in kept:
            out.write(json.dumps({"title": p.title, "author": p.author, "lines": p.lines}, ensure_ascii=False) + "\n")
    chars = sum(len(p.text()) for p in kept)
    vocab = {c for p in kept for c in p.text()}
    print(f"read {len(poems)} poems from {len(files)} files; regular {len(regular_traditional)}")
    print(
        f"after conversion {len(regular)}; exact duplicate bodies dropped {len(regular) - len(kept)}; kept {len(kept)}"
    )
    print(f"{chars} characters with punctuation, {len(vocab)} distinct; {SHIPPED_TANG.stat().st_size} bytes")
    print(f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/cp/package")
