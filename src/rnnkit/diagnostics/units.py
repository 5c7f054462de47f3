r"""Hidden units of a character language model: what single units track, shown on the text.

Karpathy, Johnson & Fei-Fei (2015) found LSTM units that count the position in a line or
switch on inside quotes.  :func:`unit_activations` runs a ``LanguageModel`` over a text and
keeps the top layer's hidden state (or cell state) at every character; :func:`feature_tracks`
computes features of the text (position in the line, inside brackets, ...); :func:`find_units`
ranks the units by their correlation with each feature; :func:`units_html` colours the text by
a unit's activation, one self-contained HTML page.

A step's activation is the state *after* reading that character, so every feature is the
feature of the text read so far: the line position resets to 0 at the line break itself.
"""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

FEATURES = {
    "line_position": "position in the line (characters since the line break)",
    "chars_to_line_end": "characters left to the end of the line",
    "line_number": "line number (line breaks before)",
    "line_parity": "odd or even line",
    "in_brackets": "inside brackets ( ) （ ） [ ] 「 」 《 》 ...",
    "in_quotes": "inside quotes \" \" “ ” ‘ ’ ' '",
    "after_punctuation": "just read a punctuation mark",
}
VERSE_BREAKS = "\n，。？！；：、"  # a line of Chinese verse ends at its punctuation mark
BRACKETS = {
    "(": ")",
    "[": "]",
    "{": "}",
    "（": "）",
    "［": "］",
    "「": "」",
    "『": "』",
    "《": "》",
    "〈": "〉",
    "【": "】",
}
QUOTES = {"“": "”", "‘": "’", "«": "»"}  # opener -> closer; the straight quotes " and ' toggle


def encode_texts(texts: str | Sequence[str], vocab) -> tuple[Tensor, Tensor]:
    """Texts as a padded (B, T) id tensor and their (B,) lengths; a character the vocabulary
    lacks is a ``ValueError`` naming a few.

    Example:
        >>> from rnnkit.data.vocab import Vocabulary
        >>> ids, lengths = encode_texts(["abc", "a"], Vocabulary.from_text("abc"))
        >>> ids.shape, lengths.tolist()
        (torch.Size([2, 3]), [3, 1])
    """
    texts = [texts] if isinstance(texts, str) else list(texts)
    if not texts or any(not t for t in texts):
        raise ValueError(f"Expected one or more non-empty texts. Received lengths {[len(t) for t in texts]}.")
    unknown = sorted({c for text in texts for c in text if c not in vocab})
    if unknown:
        shown = "".join(unknown[:12]) + ("..." if len(unknown) > 12 else "")
        raise ValueError(
            f"Expected text in the model's vocabulary ({len(vocab) - 1} characters). "
            f"Received {len(unknown)} characters it never saw: {shown!r}"
        )
    lengths = torch.tensor([len(t) for t in texts])
    ids = torch.zeros(len(texts), int(lengths.max()), dtype=torch.long)
    for b, text in enumerate(texts):
        ids[b, : len(text)] = torch.tensor(vocab.encode(text))
    return ids, lengths


@torch.no_grad()
def unit_activations(model, text: str | Sequence[str], vocab, which: str = "hidden") -> tuple[str, Tensor]:
    """The top layer's hidden state (``which="hidden"``) or cell state (``"cell"``) after each character.

    Args:
        model: a ``rnnkit.LanguageModel`` (run as in eval mode).
        text: one text, or several run separately from the zero state (as the poetry model
            reads each poem) and joined.
        vocab: the model's ``Vocabulary``.

    Returns:
        ``(chars, activations)``: the joined text (T characters) and (T, H) float32 activations.

    Example:
        >>> from rnnkit.data.vocab import Vocabulary
        >>> from rnnkit.language_model import LanguageModel
        >>> vocab = Vocabulary.from_text("ab\\n")
        >>> chars, acts = unit_activations(LanguageModel(len(vocab), 4, 8, num_layers=1), ["\\nab", "\\nba"], vocab)
        >>> chars == "\\nab\\nba", acts.shape
        (True, torch.Size([6, 8]))
    """
    from .gates import run_cell

    if which not in ("hidden", "cell"):
        raise ValueError(f"Expected which one of {{'hidden', 'cell'}}. Received: which={which!r}")
    if which == "cell" and "cell_state" not in model.rnn.cell.state_names:
        raise ValueError(
            f"Expected a cell with a cell state (LSTM family) for which='cell'. Received: {model.rnn.cell.name!r}"
        )
    texts = [text] if isinstance(text, str) else list(text)
    ids, lengths = encode_texts(texts, vocab)
    weight = model.embedding.weight
    x = model.embedding(ids.to(weight.device))  # (B, T, E); no dropout
    if which == "hidden":
        training = model.rnn.training
        model.rnn.eval()
        try:
            states, _ = model.rnn(x, lengths=lengths)  # (B, T, H): the layer's own forward
        finally:
            model.rnn.train(training)
    else:
        states = run_cell(model.rnn, x, lengths).cell_state[-1]  # (B, T, H)
    rows = [states[b, : int(n)] for b, n in enumerate(lengths)]
    return "".join(texts), torch.cat(rows).float().cpu()


def _segment_tracks(text: str, line_breaks: str) -> dict[str, list[float]]:
    T = len(text)
    position, number, parity = [0.0] * T, [0.0] * T, [0.0] * T
    since, lines = 0, 0
    for t, c in enumerate(text):
        if c in line_breaks:
            since = 0
        else:
            since += 1
        position[t], number[t], parity[t] = since, lines, lines % 2
        if c in line_breaks:
            lines += 1  # the break belongs to the line it ends
    to_end, left = [0.0] * T, 0
    for t in range(T - 1, -1, -1):
        left = 0 if text[t] in line_breaks else left + 1
        to_end[t] = left
    brackets, quotes = [0.0] * T, [0.0] * T
    depth, open_quotes = 0, []
    closers = set(BRACKETS.values())
    for t, c in enumerate(text):
        if c in BRACKETS:
            depth += 1
        elif c in closers:
            depth = max(depth - 1, 0)
        apostrophe = c == "'" and 0 < t < T - 1 and text[t - 1].isalnum() and text[t + 1].isalnum()
        if open_quotes and c == QUOTES.get(open_quotes[-1], open_quotes[-1]) and not apostrophe:
            open_quotes.pop()
        elif c in QUOTES or (c in "\"'" and not apostrophe):
            open_quotes.append(c)
        brackets[t], quotes[t] = float(depth > 0), float(bool(open_quotes))
    punctuation = [float(unicodedata.category(c).startswith("P")) for c in text]
    return {
        "line_position": position, "chars_to_line_end": to_end, "line_number": number, "line_parity": parity,
        "in_brackets": brackets, "in_quotes": quotes, "after_punctuation": punctuation,
    }  # fmt: skip


def feature_tracks(
    text: str | Sequence[str], kinds: str | Sequence[str] | None = None, line_breaks: str = "\n"
) -> dict[str, Tensor]:
    """Features of a text, one value per character (the text read up to and including it).

    Args:
        text: one text, or several (each starts afresh: line 0, no open bracket), joined.
        kinds: names from :data:`FEATURES` (one or several); default all.
        line_breaks: the characters that end a line: ``"\\n"``, or :data:`VERSE_BREAKS` for
            Chinese verse, whose lines end at ``，`` and ``。``.

    Returns:
        name -> (T,) float64 tensor:
        ``line_position`` characters since the last line break (0 at the break),
        ``chars_to_line_end`` characters until the next break (0 at it),
        ``line_number`` breaks before this character, ``line_parity`` that mod 2,
        ``in_brackets`` / ``in_quotes`` 1 inside a pair (from the opener to just before the
        closer; ``'`` between letters is an apostrophe), ``after_punctuation`` 1 on a
        punctuation mark (Unicode category P*).

    Example:
        >>> tracks = feature_tracks('ab "c"\\nd', ["line_position", "in_quotes"])
        >>> tracks["line_position"].tolist(), tracks["in_quotes"].tolist()
        ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.0, 1.0], [0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    """
    kinds = list(FEATURES) if kinds is None else [kinds] if isinstance(kinds, str) else list(kinds)
    unknown = [k for k in kinds if k not in FEATURES]
    if unknown:
        raise ValueError(f"Expected features from {list(FEATURES)}. Received: {unknown}")
    texts = [text] if isinstance(text, str) else list(text)
    joined: dict[str, list[float]] = {k: [] for k in kinds}
    for segment in texts:
        tracks = _segment_tracks(segment, line_breaks)
        for k in kinds:
            joined[k].extend(tracks[k])
    return {k: torch.tensor(v, dtype=torch.float64) for k, v in joined.items()}


@dataclass(frozen=True)
class UnitMatch:
    """A unit and its Pearson correlation with a feature over a text."""

    feature: str
    unit: int
    correlation: float

    def describe(self) -> str:
        return f"unit {self.unit}: {FEATURES.get(self.feature, self.feature)} (r = {self.correlation:+.2f})"


def correlations(activations: Tensor, feature: Tensor) -> Tensor:
    """(H,) Pearson correlation of each unit's activation (T, H) with a feature (T,); 0 for a constant unit."""
    a = activations.double() - activations.double().mean(0)  # (T, H)
    f = feature.double() - feature.double().mean()  # (T,)
    norms = a.norm(dim=0) * f.norm()  # (H,)
    return torch.where(norms > 0, (f @ a) / norms.clamp(min=1e-300), torch.zeros_like(norms))


def find_units(activations: Tensor, features: dict[str, Tensor], top_k: int = 3) -> dict[str, list[UnitMatch]]:
    """Per feature, the ``top_k`` units whose activation correlates most with it (by |Pearson r|).

    Args:
        activations: (T, H) one row per character.
        features: name -> (T,) values, as :func:`feature_tracks` gives.
        top_k: units per feature.

    Returns:
        name -> matches, strongest first; a feature constant over the text (no brackets in a
        poem) has no correlation and is left out.

    Example:
        >>> acts = torch.randn(50, 8)
        >>> position = torch.arange(50.0) % 10
        >>> acts[:, 3] = position / 10
        >>> find_units(acts, {"line_position": position}, top_k=1)["line_position"][0].unit
        3
    """
    if activations.dim() != 2:
        raise ValueError(f"Expected activations of shape (T, H). Received: {tuple(activations.shape)}")
    matches = {}
    for name, values in features.items():
        if values.shape != (activations.shape[0],):
            raise ValueError(
                f"Expected feature {name!r} of shape (T,) = ({activations.shape[0]},). Received: {tuple(values.shape)}"
            )
        if len(values) < 2 or float(values.double().std()) == 0.0:
            continue  # constant: no correlation
        r = correlations(activations, values)
        best = r.abs().argsort(descending=True)[:top_k]
        matches[name] = [UnitMatch(name, int(u), float(r[u])) for u in best]
    return matches


def _colour(value: float, low: float, high: float) -> str:
    """Blue (low) - white (middle) - red (high), as #rrggbb."""
    s = 2.0 * (min(max(value, low), high) - low) / (high - low) - 1.0  # -1..1
    end = (178, 24, 43) if s > 0 else (33, 102, 172)
    rgb = [round(255 + (e - 255) * abs(s)) for e in end]
    return "#" + "".join(f"{c:02x}" for c in rgb)


_PAGE = """<!DOCTYPE html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 64em; margin: 2em auto; padding: 0 1em; color: #222; }}
h2 {{ font-size: 1.05em; margin: 1.6em 0 0.4em; }}
.text {{ white-space: pre-wrap; font-size: 1.2em; line-height: 1.8; font-family: serif; }}
.text span {{ padding: 0.1em 0; }}
.legend span {{ padding: 0.1em 0.6em; }}
</style>
</head>
<body>
<h1>{title}</h1>
{intro}
<p class="legend">colour scale: {legend}</p>
{sections}
</body>
</html>
"""


def coloured_text_html(
    chars: str,
    rows: Sequence[tuple[str, Tensor]],
    path: str | Path,
    title: str,
    value_range: tuple[float, float] = (-1.0, 1.0),
    intro: str = "",
) -> Path:
    """A self-contained HTML page: the text once per row, each character's background coloured
    by the row's (T,) values, blue (``value_range[0]``) - white - red (``value_range[1]``).

    ``rows``: ``(header, values)`` pairs; headers, intro and text are escaped.  Each character
    is one ``<span>`` whose tooltip is its value; a newline shows as ``↵`` and breaks the line.
    """
    low, high = value_range
    if not low < high:
        raise ValueError(f"Expected value_range (low, high) with low < high. Received: {value_range}")
    sections = []
    for header, values in rows:
        values = values.detach().reshape(-1).tolist()
        if len(values) != len(chars):
            raise ValueError(
                f"Expected {len(chars)} values for row {header!r}, one per character. Received: {len(values)}"
            )
        spans = "".join(
            f'<span style="background:{_colour(v, low, high)}" title="{v:+.2f}">'
            f"{'↵' + chr(10) if c == chr(10) else html.escape(c)}</span>"
            for c, v in zip(chars, values)
        )
        sections.append(f'<section>\n<h2>{html.escape(header)}</h2>\n<div class="text">{spans}</div>\n</section>')
    middle = (low + high) / 2
    legend = " ".join(
        f'<span style="background:{_colour(v, low, high)}">{v:+.2g}</span>' for v in (low, (low + middle) / 2, middle,
                                                                                       (middle + high) / 2, high)
    )  # fmt: skip
    cjk = any("\u3400" <= c <= "\u9fff" for c in chars)
    page = _PAGE.format(
        lang="zh" if cjk else "en", title=html.escape(title), intro=f"<p>{html.escape(intro)}</p>" if intro else "",
        legend=legend, sections="\n".join(sections),
    )  # fmt: skip
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


def units_html(
    chars: str,
    activations: Tensor,
    units: Sequence[int | UnitMatch],
    path: str | Path,
    title: str = "hidden units",
    intro: str = "",
) -> Path:
    """The text once per unit, each character coloured by the unit's activation there (tanh
    range: -1 blue, 0 white, +1 red), under a header naming the feature the unit tracks and
    its correlation.  One self-contained HTML file (no scripts, no external assets); returns its path.

    Args:
        chars: the text (T characters).
        activations: (T, H), as :func:`unit_activations` gives.
        units: unit indices, or :class:`UnitMatch` es from :func:`find_units`.

    Example:
        >>> import tempfile
        >>> match = UnitMatch("line_position", 2, 0.9)
        >>> p = units_html("a<b\\nc", torch.zeros(5, 4), [match], Path(tempfile.mkdtemp()) / "u.html")
        >>> page = p.read_text(encoding="utf-8")
        >>> "&lt;" in page, page.count(' title="'), "(r = +0.90)" in page  # one span per character
        (True, 5, True)
    """
    if activations.dim() != 2 or activations.shape[0] != len(chars):
        raise ValueError(
            f"Expected activations of shape (T, H) with T={len(chars)} characters. Received: {tuple(activations.shape)}"
        )
    rows = []
    for unit in units:
        index = unit.unit if isinstance(unit, UnitMatch) else int(unit)
        if not 0 <= index < activations.shape[1]:
            raise ValueError(f"Expected units in 0..{activations.shape[1] - 1}. Received: {index}")
        header = unit.describe() if isinstance(unit, UnitMatch) else f"unit {index}"
        rows.append((header, activations[:, index]))
    return coloured_text_html(chars, rows, path, title, (-1.0, 1.0), intro)
