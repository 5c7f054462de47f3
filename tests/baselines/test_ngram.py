import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.baselines.ngram import UNKNOWN, KneserNey, evaluate, unigram_bits_per_char


def test_bigram_probability_matches_the_hand_computed_value():
    # "abab": bigram counts ab:2 ba:1 -> D2 = 1/(1+2*1) = 1/3; continuation counts a:2 b:1 -> D1 = 1/3
    # order 1: P(b) = (1 - 1/3)/3 + (1/3)(2/3)(1/3) = 8/27;  order 2: P(b|a) = (2 - 1/3)/2 + (1/3)(1/2)(8/27)
    model = KneserNey(order=2).fit("abab")
    assert model.prob("b", "a") == pytest.approx(5 / 6 + 4 / 81)
    assert model.prob("b", "") == pytest.approx(8 / 27)


def test_lower_order_counts_distinct_left_neighbours():
    # "abcb": b follows two distinct characters (a, c), c one (b), a none (+1 for the text start):
    # continuation counts b:2 c:1 a:1 -> D1 = 2/(2 + 2*1) = 0.5, V = 4 (a, b, c, unknown)
    # P1(b) = (2 - 0.5)/4 + 0.5 * 3/4 * 1/4
    model = KneserNey(order=2).fit("abcb")
    assert model.prob("b") == pytest.approx(1.5 / 4 + 0.5 * 3 / 4 / 4)


@settings(max_examples=40, deadline=None)
@given(
    text=st.text(alphabet="abcde\n", min_size=1, max_size=60),
    context=st.text(alphabet="abcdexy", max_size=6),
    order=st.integers(1, 5),
)
def test_probabilities_over_the_vocabulary_sum_to_one(text, context, order):
    model = KneserNey(order).fit(text)
    assert UNKNOWN in model.vocabulary
    assert math.fsum(model.prob(c, context) for c in model.vocabulary) == pytest.approx(1.0, abs=1e-9)


def test_unseen_character_gets_the_unknown_probability_and_finite_bits():
    model = KneserNey(3).fit("the cat sat on the mat\n" * 10)
    assert model.prob("Z", "th") == model.prob(UNKNOWN, "th") > 0
    assert math.isfinite(model.bits_per_char("the Zat"))


def test_kneser_ney_beats_unigram_on_structured_text_and_orders_help():
    train = "".join(f"line {i % 7} says {'abc'[i % 3]}\n" for i in range(300))
    test = "".join(f"line {i % 7} says {'abc'[i % 3]}\n" for i in range(300, 330))
    scores = evaluate(train, test, orders=(2, 5))
    assert scores["kneser_ney_5"] < scores["kneser_ney_2"] < scores["unigram"]
    assert scores["unigram"] == pytest.approx(unigram_bits_per_char(train, test))


@pytest.mark.parametrize(
    "call, pattern",
    [
        (lambda: KneserNey(0), "order a positive integer"),
        (lambda: KneserNey(3).fit(""), "non-empty training text"),
        (lambda: KneserNey(3).prob("a"), "before fit"),
        (lambda: KneserNey(3).fit("abc").bits_per_char(""), "non-empty text"),
    ],
)
def test_bad_input_gets_a_clear_error(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()
