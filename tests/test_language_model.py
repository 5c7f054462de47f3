"""LanguageModel: loss over padded batches, adaptive softmax, incremental steps."""

from __future__ import annotations

import math

import pytest
import torch

from rnnkit.data.batches import pad_sequences
from rnnkit.language_model import LanguageModel


@pytest.mark.parametrize("output", ["softmax", "adaptive"])
def test_loss_of_a_padded_batch_is_the_token_weighted_mean_of_each_sequence_alone(output):
    torch.manual_seed(0)
    model = LanguageModel(vocab_size=40, embedding_dim=8, hidden_size=32, output=output).eval()
    seqs = [[1, 5, 7, 9, 2, 3], [4, 4, 8], [30, 31, 32, 33]]
    together = model.loss(pad_sequences(seqs))
    alone = [model.loss(pad_sequences([s])) for s in seqs]
    assert together.count == sum(len(s) - 1 for s in seqs)
    expected = sum(a.loss.item() * a.count for a in alone) / together.count
    assert together.loss.item() == pytest.approx(expected, rel=1e-5)


def test_adaptive_loss_is_the_negative_log_probability_of_the_scores():
    torch.manual_seed(0)
    model = LanguageModel(vocab_size=50, embedding_dim=8, hidden_size=32, output="adaptive").eval()
    tokens = torch.randint(0, 50, (3, 7))
    scores, _ = model(tokens[:, :-1])  # (B, T, V) log-probabilities
    assert torch.allclose(scores.exp().sum(-1), torch.ones(3, 6), atol=1e-5)
    nll = -scores.gather(-1, tokens[:, 1:, None]).mean()
    assert model.loss((tokens[:, :-1], tokens[:, 1:])).loss.item() == pytest.approx(nll.item(), rel=1e-5)


def test_untrained_full_softmax_loss_is_near_log_vocabulary():
    model = LanguageModel(vocab_size=64, embedding_dim=8, hidden_size=8)
    tokens = torch.randint(0, 64, (4, 9))
    assert abs(model.loss((tokens[:, :-1], tokens[:, 1:])).loss.item() - math.log(64)) < 0.3


def test_unknown_output_layer_lists_the_accepted_ones():
    with pytest.raises(ValueError, match=r"output to be one of \['softmax', 'adaptive'\]"):
        LanguageModel(10, output="hierarchical")


@pytest.mark.parametrize("output", ["softmax", "adaptive"])
def test_incremental_steps_give_the_same_scores_as_the_full_prefix(output):
    torch.manual_seed(0)
    model = LanguageModel(vocab_size=60, embedding_dim=8, hidden_size=32, output=output).eval()
    tokens = torch.randint(0, 60, (3, 11))
    full, _ = model(tokens)
    state, stepped = None, []
    for t in range(tokens.shape[1]):
        scores, state = model.step(tokens[:, t], state)
        stepped.append(scores)
    torch.testing.assert_close(torch.stack(stepped, 1), full, atol=1e-5, rtol=1e-5)
