"""Decoding: constrained poems are well-formed by construction; incremental state is exact."""

from __future__ import annotations

import random

import pytest
import torch

from rnnkit.data.vocab import Vocabulary
from rnnkit.decoding import PoemForm, SamplingOptions, beam_search, is_hanzi, rhyme_group, sample
from rnnkit.language_model import LanguageModel

HANZI = "春花秋月山水风云日夜江河天地人心"


@pytest.fixture
def vocab():
    return Vocabulary(list(HANZI + "，。\n") + ["x"])  # a non-hanzi symbol that must never appear in a line


@pytest.fixture
def model(vocab):
    torch.manual_seed(0)
    return LanguageModel(len(vocab), embedding_dim=8, hidden_size=16, num_layers=2, cell="gru")


def assert_well_formed(poem: str, chars: int, lines: int, heads: str | None, rhyme: bool = False):
    rows = poem.split("\n")
    if rhyme:  # lines 2, 4, 6, 8 end in characters of one rhyme group
        assert len({rhyme_group(row[chars - 1]) for row in rows[1::2]}) == 1, poem
        assert rhyme_group(rows[1][chars - 1]) is not None, poem
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
        rhyme = rng.random() < 0.5
        form = PoemForm(vocab, chars, lines, heads=heads, rhyme=rhyme)
        ids = sample(model, PoemForm.start(vocab), form, num=20, options=options)
        for row in ids:
            assert_well_formed(form.render(vocab, row), chars, len(heads) if heads else lines, heads, rhyme)
        drawn += len(ids)


def test_given_first_line_is_kept_and_the_rest_follows_the_form(vocab, model):
    form = PoemForm(vocab, 5, 4, first_line="春花秋月山")
    for row in sample(model, PoemForm.start(vocab), form, num=5):
        poem = form.render(vocab, row)
        assert poem.startswith("春花秋月山，")
        assert_well_formed(poem, 5, 4, None)


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


def test_rhyme_holds_in_beam_search_and_rhyme_groups_follow_the_modern_rhyme_book(vocab, model):
    form = PoemForm(vocab, 7, 8, rhyme=True)
    best, _ = beam_search(model, PoemForm.start(vocab), form, beam_size=4)
    assert_well_formed(form.render(vocab, best), 7, 8, None, rhyme=True)
    assert rhyme_group("光") == rhyme_group("乡") == "唐" and rhyme_group("中") == rhyme_group("明") == "庚"
    assert rhyme_group("诗") == "支" != rhyme_group("衣") == "齐" and rhyme_group("，") is None


def test_draws_follow_the_tempered_top_k_top_p_distribution():
    from rnnkit.decoding import choose_tokens

    logits = torch.log(torch.tensor([[0.5, 0.25, 0.15, 0.07, 0.03]])).repeat(20000, 1)
    g = torch.Generator().manual_seed(0)
    # plain: the distribution itself
    counts = torch.bincount(choose_tokens(logits, SamplingOptions(), generator=g), minlength=5) / 20000
    torch.testing.assert_close(counts, torch.tensor([0.5, 0.25, 0.15, 0.07, 0.03]), atol=0.012, rtol=0)
    # top-k 2 at temperature 0.5: p ∝ (0.5^2, 0.25^2) = (0.8, 0.2)
    counts = torch.bincount(choose_tokens(logits, SamplingOptions(temperature=0.5, top_k=2), generator=g), minlength=5)
    torch.testing.assert_close(counts / 20000, torch.tensor([0.8, 0.2, 0, 0, 0]), atol=0.012, rtol=0)
    # top-p 0.7: the smallest set reaching 0.7 is {0, 1} (0.75), renormalised to (2/3, 1/3)
    counts = torch.bincount(choose_tokens(logits, SamplingOptions(top_k=5, top_p=0.7), generator=g), minlength=5)
    torch.testing.assert_close(counts / 20000, torch.tensor([2 / 3, 1 / 3, 0, 0, 0]), atol=0.012, rtol=0)
