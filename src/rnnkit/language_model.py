"""A recurrent language model: embedding -> Recurrent -> linear output over the vocabulary.

logits, state = model(tokens)          # tokens (B, T) -> logits (B, T, V)
logits, state = model.step(token, state)   # token (B,) -> logits (B, V): one step, for generation
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .layers import Recurrent


class LanguageModel(nn.Module):
    """Next-token model over a vocabulary of size ``V``.

    Example:
        >>> model = LanguageModel(vocab_size=10, embedding_dim=8, hidden_size=16)
        >>> logits, state = model(torch.randint(0, 10, (2, 5)))
        >>> tuple(logits.shape)
        (2, 5, 10)
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int = 128,
        hidden_size: int = 256,
        num_layers: int = 2,
        cell: str = "lstm",
        dropout: float = 0.0,
        **layer_options,
    ):
        super().__init__()
        self.config = dict(
            vocab_size=vocab_size, embedding_dim=embedding_dim, hidden_size=hidden_size,
            num_layers=num_layers, cell=cell, dropout=dropout, **layer_options,
        )  # fmt: skip
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.rnn = Recurrent(cell, embedding_dim, hidden_size, num_layers=num_layers, dropout=dropout, **layer_options)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, tokens: Tensor, state=None, lengths: Tensor | None = None):
        """tokens (B, T) -> (logits (B, T, V), final state)."""
        if tokens.dim() != 2:
            raise ValueError(f"Expected tokens of shape (B, T). Received shape {tuple(tokens.shape)}.")
        hidden, state = self.rnn(self.dropout(self.embedding(tokens)), state, lengths=lengths)
        return self.head(self.dropout(hidden)), state

    @torch.no_grad()
    def step(self, token: Tensor, state=None):
        """One step of generation: token (B,) -> (logits (B, V), new state).  Never re-reads the prefix."""
        logits, state = self(token.view(-1, 1), state)
        return logits[:, 0], state
