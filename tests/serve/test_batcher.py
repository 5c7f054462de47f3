"""Batching: per-row generators in ``decoding.sample``, ``BatchedForm``, and the ``Batcher`` queue."""

from __future__ import annotations

import asyncio

import pytest
import torch

from rnnkit.data.vocab import Vocabulary
from rnnkit.decoding import FreeText, PoemForm, SamplingOptions, sample
from rnnkit.language_model import LanguageModel
from rnnkit.serve.batcher import BatchedForm, Batcher, Job, run_jobs
from rnnkit.tasks.poetry import load_model


@pytest.fixture(scope="module")
def tiny():
    vocab = Vocabulary.from_text("abcdefgh \n")
    torch.manual_seed(0)
    return LanguageModel(vocab_size=len(vocab), embedding_dim=8, hidden_size=16, num_layers=1, cell="gru"), vocab


@pytest.mark.parametrize(
    "options", [SamplingOptions(), SamplingOptions(0.7, top_k=4, top_p=0.8, repetition_penalty=1.3)]
)
def test_rows_sharing_a_generator_draw_what_they_draw_alone(tiny, options):
    model, vocab = tiny
    form, prefix = FreeText(vocab, 12), vocab.encode("ab")
    a, b = torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)
    together = sample(model, prefix, form, num=3, options=options, generator=[a, a, b])
    first = sample(model, prefix, form, num=2, options=options, generator=torch.Generator().manual_seed(1))
    second = sample(model, prefix, form, num=1, options=options, generator=torch.Generator().manual_seed(2))
    assert torch.equal(together, torch.cat([first, second]))
    unseeded = sample(model, prefix, form, num=2, options=options, generator=[None, None])
    assert unseeded.shape == (2, 12)
    with pytest.raises(ValueError, match="one generator per row"):
        sample(model, prefix, form, num=3, generator=[a, b])


def test_a_batched_form_gives_each_row_its_own_heads_and_needs_one_length():
    vocab = load_model().vocab
    spring, river = PoemForm(vocab, 5, heads="春花秋月"), PoemForm(vocab, 5, heads="江山如画")
    both = BatchedForm([(spring, 2), (river, 1)])
    assert both.rows == 3 and both.length == spring.length
    for t in range(both.length):
        mask = both.allowed(t)
        assert torch.equal(mask[0], spring.allowed(t)) and torch.equal(mask[2], river.allowed(t))
    with pytest.raises(ValueError, match="one length"):
        BatchedForm([(spring, 1), (PoemForm(vocab, 7, heads="春花秋月"), 1)])
    assert BatchedForm([(spring, 1), (PoemForm(vocab, 7, num_lines=3), 1)]).length == 24  # 4 x 6 = 3 x 8


def test_the_batcher_runs_compatible_jobs_together_and_others_apart(tiny):
    model, vocab = tiny
    batcher = Batcher(model, vocab, max_batch=4, max_wait_ms=200)
    free = FreeText(vocab, 5)

    def job(num, seed, temperature=1.0):
        return Job(free, vocab.encode("a"), num, SamplingOptions(temperature), seed)

    async def go():
        jobs = [job(1, 0), job(2, 1), job(2, 2), job(1, 3, temperature=0.5)]  # the third would make 5 rows
        try:
            return await asyncio.gather(*(batcher.submit(j) for j in jobs))
        finally:
            await batcher.close()

    texts = asyncio.run(go())
    assert [len(t) for t in texts] == [1, 2, 2, 1] and all(len(s) == 5 for t in texts for s in t)
    assert batcher.stats() == {"batches": 3, "requests": 4, "rows": 6, "requests_per_batch": {"1": 2, "2": 1},
                               "max_requests_per_batch": 2}  # fmt: skip
    assert texts[1] == run_jobs(model, vocab, [job(2, 1)])[0]  # the same texts as alone
    with pytest.raises(ValueError, match="max_batch"):
        Batcher(model, vocab, max_batch=0)


class LogProbabilities(torch.nn.Module):
    """A model's steps as log-probabilities, all < 0, as the adaptive softmax of the poetry model gives them."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def step(self, token, state=None):
        logits, state = self.model.step(token, state)
        return logits.log_softmax(-1), state


def test_a_vanishing_temperature_is_greedy_not_an_overflow(tiny):
    model, vocab = LogProbabilities(tiny[0]), tiny[1]
    form, prefix = FreeText(vocab, 8), vocab.encode("ab")
    greedy = sample(model, prefix, form, num=1, options=SamplingOptions(temperature=0))
    for temperature in (1e-40, 5e-324):  # logits / T would be -inf for every token, and argmax <unk>
        drawn = sample(model, prefix, form, num=1, options=SamplingOptions(temperature=temperature))
        assert torch.equal(drawn, greedy) and 0 not in drawn
