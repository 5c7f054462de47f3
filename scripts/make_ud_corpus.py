"""Write the compact UD English EWT POS corpus that rnnkit ships (``src/rnnkit/data/ud/``).

Reads a git clone (a bare one will do) of https://github.com/UniversalDependencies/UD_English-EWT
and writes, for each of the official train/dev/test splits, ``word<TAB>UPOS`` lines with a blank
line between sentences, xz-compressed:

    src/rnnkit/data/ud/en_ewt-{train,dev,test}.tsv.xz

The official ``en_ewt-ud-train.conllu`` is stored in Git LFS upstream; when it is not there, the
training split is rebuilt exactly as the treebank's own ``not-to-release/tools/build.py`` does:
the per-document files ``not-to-release/sources/*`` concatenated in the order of
``not-to-release/file-lists/files.train``.  For dev and test the rebuilt text is checked to equal
the released files byte for byte, so the train rebuild is trusted the same way.

Only syntactic words are kept (rows whose ID is an integer): multiword-token ranges (``3-4``)
and empty nodes (``8.1``) are left out, as in UD POS-tagging evaluations.  The output is the
same bytes every time (xz preset 9e, no timestamps).

    .venv/bin/python scripts/make_ud_corpus.py [PATH_TO_UD_English-EWT_GIT_DIR]
"""

from __future__ import annotations

import lzma
import subprocess
import sys
from pathlib import Path

DEFAULT_REPO = "/work/.mirror/UniversalDependencies+UD_English-EWT/repo"
OUT = Path(__file__).resolve().parents[1] / "src" / "rnnkit" / "data" / "ud"


def git_show(repo: str, path: str) -> str | None:
    done = subprocess.run(["git", "-C", repo, "show", f"HEAD:{path}"], capture_output=True)
    if done.returncode != 0:
        return None
    return done.stdout.decode("utf-8")


def rebuild(repo: str, split: str) -> str:
    """The split as the treebank's build.py makes it from per-document sources."""
    files = git_show(repo, f"not-to-release/file-lists/files.{split}")
    if files is None:
        raise SystemExit(f"{repo}: no not-to-release/file-lists/files.{split}")
    parts = []
    for name in files.split():
        text = git_show(repo, f"not-to-release/sources/{name}")
        if text is None:
            raise SystemExit(f"{repo}: source file {name} is missing")
        parts.append(text)
    return "".join(parts)


def released_or_rebuilt(repo: str, split: str) -> tuple[str, str]:
    text = git_show(repo, f"en_ewt-ud-{split}.conllu")
    if text is not None and text.startswith("#"):
        rebuilt = rebuild(repo, split)
        if rebuilt != text:
            raise SystemExit(f"rebuilt {split} differs from the released en_ewt-ud-{split}.conllu")
        return text, "released file (equal to the rebuild from sources)"
    return rebuild(repo, split), "rebuilt from not-to-release/sources (released file not present)"


def word_upos(conllu: str) -> tuple[str, int, int]:
    """``word<TAB>UPOS`` lines, a blank line after each sentence; also (sentences, words)."""
    lines, sentences, words, open_sentence = [], 0, 0, False
    for line in conllu.splitlines():
        if not line.strip():
            if open_sentence:
                lines.append("")
                sentences += 1
            open_sentence = False
            continue
        if line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) != 10:
            raise SystemExit(f"unexpected CoNLL-U row: {line!r}")
        if not cols[0].isdigit():  # 3-4 multiword range or 8.1 empty node
            continue
        lines.append(f"{cols[1]}\t{cols[3]}")
        words += 1
        open_sentence = True
    if open_sentence:
        lines.append("")
        sentences += 1
    return "\n".join(lines) + "\n", sentences, words


def main() -> None:
    repo = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_REPO
    commit = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    OUT.mkdir(parents=True, exist_ok=True)
    total = 0
    for split in ("train", "dev", "test"):
        conllu, how = released_or_rebuilt(repo, split)
        text, sentences, words = word_upos(conllu)
        data = lzma.compress(text.encode("utf-8"), format=lzma.FORMAT_XZ, preset=9 | lzma.PRESET_EXTREME)
        path = OUT / f"en_ewt-{split}.tsv.xz"
        path.write_bytes(data)
        total += len(data)
        print(f"{split}: {sentences} sentences, {words} words, {len(data):,} bytes -> {path.name} ({how})")
    print(f"commit {commit}; {total:,} bytes in all")


if __name__ == "__main__":
    main()
