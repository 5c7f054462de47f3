"""A recurrent language model: embedding -> Recurrent -> output layer over the vocabulary.

scores, state = model(tokens)              # tokens (B, T) -> scores (B, T, V)
scores, state = model.step(token, state)   # token (B,) -> scores (B, V): one step, for generation
out = model.loss(batch, state)             # mean cross-entropy in nats, for rnnkit.train.fit

The output layer is a full softmax (``output="softmax"``), or an adaptive softmax
(``output="adaptive"``, Grave et al. 2017, ``torch.nn.AdaptiveLogSoftmaxWithLoss``): the most
frequent tokens get a full-width head, rarer ones smaller projections, which makes a
several-thousand-character vocabulary (Chinese) several times cheaper to train.  It needs
ids sorted by frequency, as ``Vocabulary.from_text`` and ``encode_corpus`` give.  With it,
the scores are log-probabilities, which sampling treats exactly like logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .data.batches import PAD  # target id of padding positions: never counted in the loss
from .layers import Recurrent
from .train.config import check_choice
from .train.fit import LossOutput

OUTPUTS = ("softmax", "adaptive")


def default_cutoffs(vocab_size: int) -> list[int]:
    """Adaptive-softmax cluster edges: heads of 1/8 and 3/8 of the vocabulary (at least 2 tokens each)."""
    edges = [max(2, vocab_size // 8), max(4, (vocab_size * 3) // 8)]
    return [e for e in edges if e < vocab_size - 1] or [vocab_size // 2]


class LanguageModel(nn.Module):
    """Next-token model over a vocabulary of size ``V``.

    Example:
        >>> model = LanguageModel(vocab_size=10, embedding_dim=8, hidden_size=16)
        >>> scores, state = model(torch.randint(0, 10, (2, 5)))
        >>> tuple(scores.shape)
        (2, 5, 10)
        >>> tokens = torch.randint(0, 10, (2, 6))
        >>> out = model.loss((tokens[:, :-1], tokens[:, 1:]))  # mean nats per token, over 10 tokens
        >>> out.count, out.loss.item() > 0
        (10, True)
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int = 128,
        hidden_size: int = 256,
        num_layers: int = 2,
        cell: str = "lstm",
        dropout: float = 0.0,
        output: str = "softmax",
        cutoffs: list[int] | None = None,
        **layer_options,
    ):
        super().__init__()
        check_choice("output", output, OUTPUTS)
        if output == "adaptive":
            cutoffs = list(cutoffs or default_cutoffs(vocab_size))
        self.config = dict(
            vocab_size=vocab_size, embedding_dim=embedding_dim, hidden_size=hidden_size, num_layers=num_layers,
            cell=cell, dropout=dropout, output=output, cutoffs=cutoffs, **layer_options,
        )  # fmt: skip
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.rnn = Recurrent(cell, embedding_dim, hidden_size, num_layers=num_layers, dropout=dropout, **layer_options)
        self.dropout = nn.Dropout(dropout)
        if output == "adaptive":
            self.head = nn.AdaptiveLogSoftmaxWithLoss(hidden_size, vocab_size, cutoffs, div_value=4.0)
        else:
            self.head = nn.Linear(hidden_size, vocab_size)

    @property
    def vocab_size(self) -> int:
        return self.config["vocab_size"]

    def hidden(self, tokens: Tensor, state=None, lengths: Tensor | None = None):
        """tokens (B, T) -> (last layer's outputs (B, T, H), final state)."""
        if tokens.dim() != 2:
            raise ValueError(f"Expected tokens of shape (B, T). Received shape {tuple(tokens.shape)}.")
        hidden, state = self.rnn(self.dropout(self.embedding(tokens)), state, lengths=lengths)
        return self.dropout(hidden), state

    def scores(self, hidden: Tensor) -> Tensor:
        """(..., H) -> (..., V): logits (softmax) or log-probabilities (adaptive)."""
        if isinstance(self.head, nn.AdaptiveLogSoftmaxWithLoss):
            return self.head.log_prob(hidden.reshape(-1, hidden.shape[-1])).view(*hidden.shape[:-1], -1)
        return self.head(hidden)

    def forward(self, tokens: Tensor, state=None, lengths: Tensor | None = None):
        """tokens (B, T) -> (scores (B, T, V), final state)."""
        hidden, state = self.hidden(tokens, state, lengths)
        return self.scores(hidden), state

    def loss(self, batch, state=None) -> LossOutput:
        """Mean cross-entropy (nats per token) of ``batch = (inputs (B, T), targets (B, T)[, lengths (B,)])``.

        Targets equal to ``PAD`` (-1) are not counted; with lengths, positions past each
        sequence's length must be ``PAD``.
        """
        inputs, targets, *rest = batch
        lengths = rest[0] if rest else None
        hidden, state = self.hidden(inputs, state, lengths)  # (B, T, H)
        keep = targets != PAD  # (B, T)
        count = int(keep.sum())
        if isinstance(self.head, nn.AdaptiveLogSoftmaxWithLoss):
            loss = self.head(hidden[keep], targets[keep]).loss  # only real positions reach the output layer
        else:
            loss = F.cross_entropy(self.head(hidden).flatten(0, 1), targets.flatten(), ignore_index=PAD)
        return LossOutput(loss, count, state)

    @torch.no_grad()
    def step(self, token: Tensor, state=None):
        """One step of generation: token (B,) -> (scores (B, V), new state).  Never re-reads the prefix.

        Runs ``Recurrent.step``: one GEMM and one compiled loop call per layer on the CPU.
        """
        hidden, state = self.rnn.step(self.dropout(self.embedding(token.view(-1))), state)
        return self.scores(self.dropout(hidden)), state
