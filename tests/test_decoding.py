"""Decoding: constrained poems are well-formed by construction; incremental state is exact."""

from __future__ import annotations

import random

import pytest
import torch

from rnnkit.data.vocab import Vocabulary
from rnnkit.decoding import PoemForm, SamplingOptions, beam_search, is_hanzi, sample
from rnnkit.language_model import LanguageModel

HANZI = "春花秋月山水风云日夜江河天地人心"


@pytest.fixture
def vocab():
    return Vocabulary(list(HANZI + "，。\n") + ["x"])  # a non-hanzi symbol that must never appear in a line


@pytest.fixture
def model(vocab):
    torch.manual_seed(0)
    return LanguageModel(len(vocab), embedding_dim=8, hidden_size=16, num_layers=2, cell="gru")


def assert_well_formed(poem: str, chars: int, lines: int, heads: str | None):
    rows = poem.split("\n")
    assert len(rows) == lines, poem
    for k, row in enumerate(rows):
        assert len(row) == chars + 1, poem
        assert all(is_hanzi(c) for c in row[:chars]), poem
        assert row[-1] == ("，" if k % 2 == 0 else "。"), poem
        if heads:
            assert row[0] == heads[k], poem


def test_two_hundred_random_draws_are_all_well_formed(vocab, model):
    rng = random.Random(0)
    drawn = 0
    while drawn < 200:
        chars, lines = rng.choice([5, 7]), rng.choice([4, 8])
        heads = "".join(rng.choice(HANZI) for _ in range(rng.choice([2, 4]))) if rng.random() < 0.5 else None
        options = SamplingOptions(
            temperature=rng.uniform(0.3, 1.5), top_k=rng.choice([0, 3, 50]), top_p=rng.choice([1.0, 0.9, 0.5]),
            repetition_penalty=rng.choice([1.0, 1.3]),
        )  # fmt: skip
        form = PoemForm(vocab, chars, lines, heads=heads)
        ids = sample(model, PoemForm.start(vocab), form, num=20, options=options)
        for row in ids:
            assert_well_formed(form.render(vocab, row), chars, len(heads) if heads else lines, heads)
        drawn += len(ids)


def test_given_first_line_is_kept_and_the_rest_follows_the_form(vocab, model):
    form = PoemForm(vocab, 5, 4, first_line="春花秋月山")
    for row in sample(model, PoemForm.start(vocab), form, num=5):
        poem = form.render(vocab, row)
        assert poem.startswith("春花秋月山，")
        assert_well_formed(poem, 5, 4, None)


def test_incremental_steps_give_the_same_logits_as_the_full_prefix(model):
    tokens = torch.randint(0, model.config["vocab_size"], (3, 9))
    model.eval()
    full, _ = model(tokens)
    state, stepped = None, []
    for t in range(tokens.shape[1]):
        logits, state = model.step(tokens[:, t], state)
        stepped.append(logits)
    torch.testing.assert_close(torch.stack(stepped, 1), full, atol=1e-6, rtol=1e-5)


def test_unknown_acrostic_head_is_named(vocab):
    with pytest.raises(ValueError, match="'冬' never seen"):
        PoemForm(vocab, 7, heads="春冬秋月")
    with pytest.raises(ValueError, match="'x' never seen"):  # known to the model but not a hanzi
        PoemForm(vocab, 7, heads="春x")


def test_bad_form_and_options_are_refused(vocab):
    with pytest.raises(ValueError, match=r"chars_per_line one of \{5, 7\}"):
        PoemForm(vocab, 6)
    with pytest.raises(ValueError, match="first line of 5"):
        PoemForm(vocab, 5, first_line="春花")
    with pytest.raises(ValueError, match="top_p in"):
        SamplingOptions(top_p=0)
    with pytest.raises(ValueError, match="no '。'"):
        PoemForm(Vocabulary(list("春花，\n")), 5)


def test_same_seed_gives_the_same_poems(vocab, model):
    form = PoemForm(vocab, 7, 4, heads="春花秋月")
    draws = [
        sample(model, PoemForm.start(vocab), form, num=4, generator=torch.Generator().manual_seed(s)) for s in (1, 1, 2)
    ]
    assert torch.equal(draws[0], draws[1]) and not torch.equal(draws[0], draws[2])


@torch.no_grad()
def sequence_log_prob(model, prefix, ids):
    tokens = torch.tensor([prefix + ids.tolist()])
    logits, _ = model.eval()(tokens)
    log_probs = torch.log_softmax(logits[0, len(prefix) - 1 : -1], -1)
    return float(log_probs.gather(1, ids[:, None]).sum())


def test_beam_search_is_well_formed_scores_right_and_beats_greedy(vocab, model):
    form = PoemForm(vocab, 5, 4, heads="春花秋月")
    prefix = PoemForm.start(vocab)
    greedy = sample(model, prefix, form, options=SamplingOptions(temperature=0))[0]
    beam1, _ = beam_search(model, prefix, form, beam_size=1)
    assert torch.equal(beam1, greedy)  # a beam of one is greedy decoding
    best, score = beam_search(model, prefix, form, beam_size=8)
    assert_well_formed(form.render(vocab, best), 5, 4, "春花秋月")
    assert score == pytest.approx(sequence_log_prob(model, prefix, best), abs=1e-4)  # its score is its log-prob
    assert score >= sequence_log_prob(model, prefix, greedy) - 1e-6
