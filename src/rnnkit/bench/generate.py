"""Generation speed: characters per second of constrained poem sampling, against a bare loop
of the same model's steps (one ``model.step`` and an argmax per character, no decoding logic).

    rnnkit bench generate            # batch 1 and 64, 7-character quatrains

The overhead of decoding (masks, temperature, top-k/p, sampling) is ``decode_s / bare_s - 1``.
A third loop runs each step as the model's ``forward`` on a length-1 sequence (what ``step`` did
before it had the compiled single step), so ``step_speedup`` is the gain of ``Recurrent.step``.
The model is the shipped poetry model (``rnnkit.poetry.load_model()``).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch

from ..decoding import PoemForm, SamplingOptions, sample


@dataclass
class Row:
    batch: int
    bare_chars_per_s: float
    decode_chars_per_s: float
    overhead: float  # decode time / bare time - 1
    forward_chars_per_s: float  # the bare loop with each step as forward() on a length-1 sequence
    step_speedup: float  # bare_chars_per_s / forward_chars_per_s


def _bare_loop(model, batch: int, length: int) -> None:
    token, state = torch.zeros(batch, dtype=torch.long), None
    for _ in range(length):
        logits, state = model.step(token, state)
        token = logits.argmax(-1)


@torch.no_grad()
def _forward_loop(model, batch: int, length: int) -> None:
    token, state = torch.zeros(batch, dtype=torch.long), None
    for _ in range(length):
        scores, state = model(token.view(-1, 1), state)
        token = scores[:, 0].argmax(-1)


def run(batches=(1, 64), repeats: int = 5, model=None, vocab=None, seed: int = 0) -> list[Row]:
    """Median seconds of bare and decoding loops, alternated, for each batch size."""
    torch.manual_seed(seed)
    if model is None:
        from ..tasks.poetry import load_model

        poetry = load_model()
        model, vocab = poetry.model, poetry.vocab
    model = model.eval()
    form = PoemForm(vocab, chars_per_line=7, num_lines=4, heads=None)
    options = SamplingOptions(temperature=0.8, top_k=50, top_p=0.95, repetition_penalty=1.1)
    rows = []
    for batch in batches:
        prefix = PoemForm.start(vocab)
        bare, decode, forward = [], [], []
        steps = form.length + len(prefix) - 1  # the steps sample() runs
        for _ in range(repeats + 1):  # the first round warms up
            t0 = time.perf_counter()
            _bare_loop(model, batch, steps)
            t1 = time.perf_counter()
            sample(model, prefix, form, num=batch, options=options)
            t2 = time.perf_counter()
            _forward_loop(model, batch, steps)
            t3 = time.perf_counter()
            bare.append(t1 - t0)
            decode.append(t2 - t1)
            forward.append(t3 - t2)
        bare_s, decode_s, forward_s = (statistics.median(v[1:]) for v in (bare, decode, forward))
        chars = batch * form.length
        rows.append(Row(batch, chars / bare_s, chars / decode_s, decode_s / bare_s - 1, chars / forward_s,
                        forward_s / bare_s))  # fmt: skip
    return rows
