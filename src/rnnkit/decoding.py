"""Generating from a language model: sampling, beam search, and constraints as logit masks.

Generation is incremental: one ``model.step`` per token, carrying the recurrent state, never
re-reading the prefix.  A constraint says, before each step, which tokens are allowed; the
others get logit -inf, so what comes out is well-formed by construction (nothing is filtered
afterwards).

    form = PoemForm(vocab, chars_per_line=7, num_lines=4, heads="春花秋月")
    ids = sample(model, form.start(vocab), form, num=3, options=SamplingOptions(temperature=0.8))
    poems = [form.render(vocab, row) for row in ids]
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import torch
from torch import Tensor

from .data.vocab import Vocabulary

POEM_SEPARATOR = "\n"  # poems are separated (and started) by a newline in training text
COMMA, FULL_STOP = "，", "。"
GREEDY_BELOW = 1e-30  # a temperature under this is greedy: logits / T would overflow float32 to -inf everywhere


def is_hanzi(char: str) -> bool:
    """True for CJK ideographs (the characters a Chinese poem line is made of)."""
    return len(char) == 1 and unicodedata.name(char, "").startswith("CJK UNIFIED IDEOGRAPH")


# The 14 rhyme groups of 中华新韵 (the modern rhyme book), by Mandarin final; 支 is "i" after
# zh ch sh r z c s.  Tang poets rhymed by Middle Chinese readings (平水韵), so this is the
# modern ear's rhyme, as most readers hear the poems today.
RHYME_GROUPS = {
    "麻": ("a", "ia", "ua"), "波": ("o", "e", "uo"), "皆": ("ie", "ve", "üe"), "开": ("ai", "uai"),
    "微": ("ei", "uei"), "豪": ("ao", "iao"), "尤": ("ou", "iou"), "寒": ("an", "ian", "uan", "van", "üan"),
    "文": ("en", "in", "uen", "vn", "ün"), "唐": ("ang", "iang", "uang"),
    "庚": ("eng", "ing", "ueng", "ong", "iong"), "齐": ("i", "er", "v", "ü"), "支": (), "姑": ("u",),
}  # fmt: skip
_GROUP_OF_FINAL = {final: name for name, finals in RHYME_GROUPS.items() for final in finals}
_RETROFLEX_AND_DENTAL = {"zh", "ch", "sh", "r", "z", "c", "s"}


def rhyme_group(char: str) -> str | None:
    """The 中华新韵 rhyme group of a character's (most common) Mandarin reading, or None.

    Example:
        >>> [rhyme_group(c) for c in "光霜乡月诗衣"]
        ['唐', '唐', '唐', '皆', '支', '齐']
    """
    try:
        from pypinyin import Style, pinyin
    except ImportError as error:  # pragma: no cover - pypinyin ships with the [poetry] extra
        raise ValueError("Rhyme needs the pypinyin package: pip install 'rnnkit[poetry]'.") from error
    if not is_hanzi(char):
        return None
    final = pinyin(char, style=Style.FINALS, strict=True)[0][0]
    if final == "i" and pinyin(char, style=Style.INITIALS, strict=True)[0][0] in _RETROFLEX_AND_DENTAL:
        return "支"
    return _GROUP_OF_FINAL.get(final)


@dataclass
class SamplingOptions:
    """How to pick each token from the allowed ones.

    temperature: divides the logits (< 1 sharper, > 1 flatter); 0 (or under 1e-30) means greedy (argmax).
    top_k: keep the k most likely tokens (0: all).  top_p: keep the smallest set whose
    probability reaches p (1.0: all).  repetition_penalty: > 1 makes tokens already in the
    sequence less likely (CTRL, Keskar et al. 2019).
    """

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    repetition_penalty: float = 1.0

    def __post_init__(self):
        if self.temperature < 0:
            raise ValueError(f"Expected temperature >= 0. Received: temperature={self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"Expected top_k >= 0. Received: top_k={self.top_k}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"Expected top_p in (0, 1]. Received: top_p={self.top_p}")
        if self.repetition_penalty < 1:
            raise ValueError(
                f"Expected repetition_penalty >= 1. Received: repetition_penalty={self.repetition_penalty}"
            )


class PoemForm:
    """A regular poem as a constraint: ``num_lines`` lines of ``chars_per_line`` hanzi, odd lines
    ending in '，' and even lines in '。'; with ``heads``, line k starts with ``heads[k]``
    (acrostic, 藏头诗) and the number of lines follows the heads.

    With ``rhyme=True`` the even lines rhyme: the last character of line 2 may be any with a
    known rhyme group, and lines 4, 6, 8 end in a character of the same group (``rhyme_group``).
    That choice depends on what each row wrote, so ``allowed(t, history)`` is then (B, V).

    Step t of the poem is position t % (L + 1) of line t // (L + 1), with L = chars_per_line.
    """

    def __init__(
        self, vocab: Vocabulary, chars_per_line: int = 5, num_lines: int = 4, heads: str | None = None,
        first_line: str | None = None, rhyme: bool = False,
    ):  # fmt: skip
        if chars_per_line not in (5, 7):
            raise ValueError(f"Expected chars_per_line one of {{5, 7}}. Received: {chars_per_line!r}")
        if heads:
            num_lines = len(heads)
        if num_lines < 1:
            raise ValueError(f"Expected at least one line. Received: num_lines={num_lines!r}")
        for needed in (COMMA, FULL_STOP, POEM_SEPARATOR):
            if needed not in vocab:
                raise ValueError(f"The vocabulary has no {needed!r}: it was not trained on poems in this format.")
        unknown = [c for c in (heads or "") if c not in vocab or not is_hanzi(c)]
        if unknown:
            raise ValueError(f"Acrostic head character(s) {''.join(unknown)!r} never seen by the model; choose others.")
        self.chars_per_line, self.num_lines, self.heads = chars_per_line, num_lines, heads
        self.length = num_lines * (chars_per_line + 1)
        self.forced: list[int] = []
        if first_line is not None:
            if len(first_line) != chars_per_line or not all(c in vocab and is_hanzi(c) for c in first_line):
                raise ValueError(
                    f"Expected a first line of {chars_per_line} characters the model knows. Received: {first_line!r}"
                )
            if heads and first_line[0] != heads[0]:
                raise ValueError(f"The first line {first_line!r} does not start with the head {heads[0]!r}.")
            self.forced = vocab.encode(first_line + COMMA)
        V = len(vocab)
        self._hanzi = torch.tensor([i > 0 and is_hanzi(s) for i, s in enumerate(vocab.itos)])
        self._only = {s: torch.nn.functional.one_hot(torch.tensor(vocab.id(s)), V).bool() for s in (COMMA, FULL_STOP)}
        self._heads = [torch.nn.functional.one_hot(torch.tensor(vocab.id(c)), V).bool() for c in (heads or "")]
        self.rhyme = rhyme
        if rhyme:
            names = list(RHYME_GROUPS)
            group = torch.tensor([names.index(g) if (g := rhyme_group(s)) else -1 for s in vocab.itos])  # (V,)
            self._group_of_token = group
            self._group_masks = torch.stack([group == k for k in range(len(names))])  # (G, V)
            self._rhymable = self._hanzi & (group >= 0)

    def allowed(self, t: int, history: Tensor | None = None) -> Tensor:
        """Bool mask of the tokens allowed at step t: (V,), or (B, V) for the rhyming steps,
        which look at ``history`` (B, t), the tokens each row has written so far."""
        line, position = divmod(t, self.chars_per_line + 1)
        if t < len(self.forced):
            return torch.nn.functional.one_hot(torch.tensor(self.forced[t]), len(self._hanzi)).bool()
        if position == self.chars_per_line:
            return self._only[COMMA if line % 2 == 0 else FULL_STOP]
        if position == 0 and self.heads:
            return self._heads[line]
        if self.rhyme and line % 2 == 1 and position == self.chars_per_line - 1:
            if line == 1:
                return self._rhymable  # line 2 sets the rhyme
            if history is None:
                raise ValueError("PoemForm(rhyme=True).allowed needs the history of each row at rhyming steps.")
            rhyme_token = history[:, 2 * (self.chars_per_line + 1) - 2]  # (B,) last character of line 2
            return self._group_masks[self._group_of_token[rhyme_token]] & self._hanzi  # (B, V)
        return self._hanzi

    @staticmethod
    def start(vocab: Vocabulary) -> list[int]:
        """The prefix every poem is generated after: the poem separator."""
        return [vocab.id(POEM_SEPARATOR)]

    def render(self, vocab: Vocabulary, ids: Tensor | list[int]) -> str:
        """Token ids of one poem -> its text, one line per row."""
        text = vocab.decode(ids.tolist() if isinstance(ids, Tensor) else ids)
        step = self.chars_per_line + 1
        return "\n".join(text[i : i + step] for i in range(0, len(text), step))


class FreeText:
    """No form: ``length`` tokens, any symbol of the vocabulary but ``<unk>``."""

    def __init__(self, vocab: Vocabulary, length: int):
        if length < 1:
            raise ValueError(f"Expected length >= 1. Received: length={length}")
        self.length = length
        self._allowed = torch.ones(len(vocab), dtype=torch.bool)
        self._allowed[0] = False  # <unk> is not text

    def allowed(self, t: int, history: Tensor | None = None) -> Tensor:
        return self._allowed

    def render(self, vocab: Vocabulary, ids: Tensor | list[int]) -> str:
        return vocab.decode(ids.tolist() if isinstance(ids, Tensor) else ids)


Generators = torch.Generator | list[torch.Generator | None] | None


def choose_tokens(
    logits: Tensor, options: SamplingOptions, history: Tensor | None = None, generator: Generators = None
) -> Tensor:
    """Pick one token per row of (B, V) logits (disallowed ones already -inf): repetition
    penalty on the tokens in ``history`` (B, t), then greedy, or temperature, top-k, top-p and
    a draw.  Top-p works inside the top-k candidates, so no step sorts the whole vocabulary
    unless top-p is asked for without top-k.  ``generator``: one for the batch, or a list of B,
    one per row (see ``sample``)."""
    if options.repetition_penalty != 1.0 and history is not None and history.numel():
        seen = logits.gather(1, history)  # (B, t)
        penalty = options.repetition_penalty
        logits = logits.scatter(1, history, torch.where(seen > 0, seen / penalty, seen * penalty))
    if options.temperature < GREEDY_BELOW:
        return logits.argmax(-1)
    if not options.top_k and options.top_p == 1.0:
        return _draw(logits / options.temperature, generator)
    k = min(options.top_k or logits.shape[-1], logits.shape[-1])
    values, candidates = torch.topk(logits, k, dim=-1)  # (B, k), most likely first
    values = values / options.temperature  # temperature keeps the order: scale only the candidates
    if options.top_p < 1.0:
        probs = torch.softmax(values, -1)
        values = values.masked_fill(probs.cumsum(-1) - probs >= options.top_p, float("-inf"))  # keep the one crossing p
    return candidates.gather(1, _draw(values, generator)[:, None]).squeeze(1)


def _draw(scores: Tensor, generator: Generators) -> Tensor:
    """One index per row of (B, n) unnormalised log-probabilities (-inf: never), by the
    Gumbel-max trick: argmax(scores + G) with G = -log(E), E ~ Exponential(1), is a draw from
    softmax(scores).  Three cheap kernels instead of softmax + multinomial.

    With a list of generators, each run of consecutive rows sharing one generator draws its
    noise as one (rows, n) block from it: the draws a request alone in ``sample`` would get."""
    if isinstance(generator, list):
        noise = torch.cat([torch.empty(stop - start, scores.shape[1], dtype=scores.dtype).exponential_(generator=g)
                           for g, start, stop in row_blocks(generator)])  # fmt: skip
    else:
        noise = torch.empty_like(scores).exponential_(generator=generator)
    return (scores - noise.log_()).argmax(-1)


def row_blocks(generators: list) -> list[tuple]:
    """Runs of consecutive rows sharing one generator (the same object): (generator, start, stop).

    Example:
        >>> a, b = torch.Generator(), torch.Generator()
        >>> [(g is a, start, stop) for g, start, stop in row_blocks([a, a, b, None])]
        [(True, 0, 2), (False, 2, 3), (False, 3, 4)]
    """
    blocks: list[tuple] = []
    for row, g in enumerate(generators):
        if blocks and blocks[-1][0] is g and g is not None:
            blocks[-1] = (g, blocks[-1][1], row + 1)
        else:
            blocks.append((g, row, row + 1))
    return blocks


@torch.no_grad()
def sample(
    model,
    prefix: list[int],
    form: PoemForm | FreeText,
    num: int = 1,
    options: SamplingOptions | None = None,
    generator: Generators = None,
) -> Tensor:
    """Draw ``num`` sequences of ``form.length`` tokens after ``prefix``, in one batch.

    ``model.step(token (B,), state) -> (logits (B, V), state)``.  Returns ids (num, length).
    ``generator``: one for the whole batch, or a list of ``num``, one per row; consecutive rows
    holding the same generator draw together, as ``sample`` with that generator and that many
    rows would, so requests batched together each get what they would get alone.
    """
    if isinstance(generator, list) and len(generator) != num:
        raise ValueError(f"Expected one generator per row, {num}. Received: {len(generator)} generators")
    options = options or SamplingOptions()
    was_training = model.training
    model.eval()
    state = None
    for token in prefix:
        logits, state = model.step(torch.full((num,), token, dtype=torch.long), state)
    out = torch.empty(num, form.length, dtype=torch.long)
    for t in range(form.length):
        masked = logits.float().masked_fill(~form.allowed(t, out[:, :t]), float("-inf"))
        token = choose_tokens(masked, options, out[:, :t], generator)
        out[:, t] = token
        if t + 1 < form.length:  # no step after the last token
            logits, state = model.step(token, state)
    model.train(was_training)
    return out


@torch.no_grad()
def beam_search(model, prefix: list[int], form: PoemForm, beam_size: int = 4) -> tuple[Tensor, float]:
    """The most likely sequence under the constraint, approximately: ``beam_size`` hypotheses
    are kept after each step.  Every hypothesis has the same length, so scores are plain
    log-probabilities.  Returns (ids (length,), log-probability)."""
    if beam_size < 1:
        raise ValueError(f"Expected beam_size >= 1. Received: beam_size={beam_size}")
    was_training = model.training
    model.eval()
    state = None
    for token in prefix:
        logits, state = model.step(torch.tensor([token]), state)
    scores = torch.zeros(1)  # (K,)
    sequences = torch.empty(1, 0, dtype=torch.long)  # (K, t)
    for t in range(form.length):
        allowed = form.allowed(t, sequences)  # (V,) or (K, V)
        log_probs = torch.log_softmax(logits.float(), -1).masked_fill(~allowed, float("-inf"))  # (K, V)
        total = (scores[:, None] + log_probs).view(-1)  # (K * V,)
        k = min(beam_size, int(torch.isfinite(total).sum()))
        scores, flat = torch.topk(total, k)
        beam, token = flat // log_probs.shape[1], flat % log_probs.shape[1]
        sequences = torch.cat((sequences[beam], token[:, None]), 1)
        state = tuple(s[:, beam] for s in state) if isinstance(state, tuple) else state[:, beam]
        logits, state = model.step(token, state)
    model.train(was_training)
    return sequences[0], float(scores[0])
