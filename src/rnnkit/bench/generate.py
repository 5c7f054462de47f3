"""Generation speed: characters per second of constrained poem sampling, against a bare loop
of the same model's steps (one ``model.step`` and an argmax per character, no decoding logic).

    rnnkit bench generate            # batch 1 and 64, 7-character quatrains

The overhead of decoding (masks, temperature, top-k/p, sampling) is ``decode_s / bare_s - 1``.
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


def _bare_loop(model, batch: int, length: int) -> None:
    token, state = torch.zeros(batch, dtype=torch.long), None
    for _ in range(length):
        logits, state = model.step(token, state)
        token = logits.argmax(-1)


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
        bare, decode = [], []
        for _ in range(repeats + 1):  # the first round warms up
            t0 = time.perf_counter()
            _bare_loop(model, batch, form.length + len(prefix) - 1)  # the steps sample() runs
            t1 = time.perf_counter()
            sample(model, prefix, form, num=batch, options=options)
            t2 = time.perf_counter()
            bare.append(t1 - t0)
            decode.append(t2 - t1)
        bare_s, decode_s = statistics.median(bare[1:]), statistics.median(decode[1:])
        chars = batch * form.length
        rows.append(Row(batch, chars / bare_s, chars / decode_s, decode_s / bare_s - 1))
    return rows
