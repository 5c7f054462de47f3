r"""A linear-chain conditional random field over per-token emission scores (Lafferty et al. 2001).

For a sentence of length :math:`n`, emission scores :math:`E \in \mathbb{R}^{n \times K}` (from a
BiLSTM, say) and a tag path :math:`y_1..y_n`, the CRF scores the whole path

.. math::
    s(y) = \pi_{y_1} + \sum_{t=1}^{n} E_{t, y_t} + \sum_{t=2}^{n} A_{y_{t-1}, y_t} + \omega_{y_n}

with start scores :math:`\pi`, transition scores :math:`A` (from row tag to column tag) and end
scores :math:`\omega`, and defines :math:`p(y \mid x) = \exp s(y) / Z`, where the partition
function :math:`Z = \sum_{y'} \exp s(y')` runs over all :math:`K^n` paths.  The forward algorithm
computes :math:`\log Z` in :math:`O(n K^2)`, in log space:

.. math::
    \alpha_1 = \pi + E_1, \qquad
    \alpha_t(j) = \operatorname{logsumexp}_i \big(\alpha_{t-1}(i) + A_{ij}\big) + E_{t, j}, \qquad
    \log Z = \operatorname{logsumexp}_j \big(\alpha_n(j) + \omega_j\big)

and Viterbi decoding is the same recursion with ``max`` in place of ``logsumexp`` plus back
pointers.  Sequences of different lengths share a padded batch: a step past a sequence's length
leaves its :math:`\alpha` (and its Viterbi path) unchanged, so padding never changes a result.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _check(emissions: Tensor, lengths: Tensor | None, num_tags: int) -> Tensor:
    if emissions.dim() != 3 or emissions.shape[-1] != num_tags:
        raise ValueError(f"Expected emissions of shape (B, T, {num_tags}). Received: {tuple(emissions.shape)}")
    B, T, _ = emissions.shape
    if T == 0:
        raise ValueError("Expected at least one time step. Received: emissions with T=0")
    if lengths is None:
        return torch.full((B,), T, dtype=torch.long, device=emissions.device)
    lengths = torch.as_tensor(lengths, device=emissions.device).long()
    if lengths.shape != (B,) or bool((lengths < 1).any()) or bool((lengths > T).any()):
        raise ValueError(f"Expected lengths of shape ({B},) with values in 1..{T}. Received: {lengths.tolist()}")
    return lengths


class LinearChainCRF(nn.Module):
    """A linear-chain CRF with start, transition and end scores; see the module docstring.

    Args:
        num_tags: ``K``, the number of tags.

    Shapes:
        emissions: ``(B, T, K)`` scores per token and tag; tags: ``(B, T)`` integer tags;
        lengths: ``(B,)`` integers in ``1..T`` (``None``: every sequence is ``T`` long).
        Positions past a sequence's length are ignored, whatever they hold.

    Example:
        >>> crf = LinearChainCRF(3)
        >>> emissions, tags = torch.randn(2, 4, 3), torch.tensor([[0, 1, 2, 0], [2, 2, 0, 0]])
        >>> lengths = torch.tensor([4, 2])
        >>> crf.neg_log_likelihood(emissions, tags, lengths).shape
        torch.Size([2])
        >>> [len(path) for path in crf.decode(emissions, lengths)]
        [4, 2]
    """

    def __init__(self, num_tags: int):
        super().__init__()
        if not isinstance(num_tags, int) or num_tags < 1:
            raise ValueError(f"Expected num_tags a positive integer. Received: num_tags={num_tags!r}")
        self.num_tags = num_tags
        self.start_transitions = nn.Parameter(torch.empty(num_tags))  # pi (K,)
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags))  # A (K, K): from row tag to column tag
        self.end_transitions = nn.Parameter(torch.empty(num_tags))  # omega (K,)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for p in (self.start_transitions, self.transitions, self.end_transitions):
            nn.init.uniform_(p, -0.1, 0.1)

    def extra_repr(self) -> str:
        return f"num_tags={self.num_tags}"

    def path_score(self, emissions: Tensor, tags: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``s(y)`` of the given tag paths: ``(B,)``.

        Example:
            >>> crf = LinearChainCRF(2)
            >>> crf.path_score(torch.zeros(1, 3, 2), torch.tensor([[0, 1, 1]])).shape
            torch.Size([1])
        """
        lengths = _check(emissions, lengths, self.num_tags)
        B, T, _ = emissions.shape
        tags = tags.long()
        if tags.shape != (B, T):
            raise ValueError(f"Expected tags of shape ({B}, {T}). Received: {tuple(tags.shape)}")
        steps = torch.arange(T, device=emissions.device)
        mask = (steps[None, :] < lengths[:, None]).to(emissions.dtype)  # (B, T) 1 on valid tokens
        tags = tags.masked_fill(mask == 0, 0)  # any valid index; those positions are masked out below
        emitted = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)  # (B, T) E[t, y_t]
        score = self.start_transitions[tags[:, 0]] + (emitted * mask).sum(1)  # (B,)
        if T > 1:
            moved = self.transitions[tags[:, :-1], tags[:, 1:]]  # (B, T-1) A[y_{t-1}, y_t]
            score = score + (moved * mask[:, 1:]).sum(1)
        last = tags.gather(1, (lengths - 1).unsqueeze(1)).squeeze(1)  # (B,) y_n
        return score + self.end_transitions[last]

    def log_partition(self, emissions: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``log Z`` by the forward algorithm: ``(B,)``.

        Example:
            >>> crf = LinearChainCRF(2)
            >>> with torch.no_grad():  # all scores zero: Z counts the 2**3 paths
            ...     _ = [p.zero_() for p in crf.parameters()]
            >>> round(crf.log_partition(torch.zeros(1, 3, 2)).exp().item(), 4)
            8.0
        """
        lengths = _check(emissions, lengths, self.num_tags)
        T = emissions.shape[1]
        alpha = self.start_transitions + emissions[:, 0]  # (B, K)
        for t in range(1, T):
            # alpha_t(j) = logsumexp_i(alpha_{t-1}(i) + A_ij) + E_tj
            scores = alpha.unsqueeze(2) + self.transitions.unsqueeze(0)  # (B, K, K) [b, i, j]
            new_alpha = torch.logsumexp(scores, dim=1) + emissions[:, t]  # (B, K)
            valid = (t < lengths).unsqueeze(1)  # (B, 1): padded steps keep alpha as it was
            alpha = torch.where(valid, new_alpha, alpha)
        return torch.logsumexp(alpha + self.end_transitions, dim=1)  # (B,)

    def neg_log_likelihood(self, emissions: Tensor, tags: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``-log p(y | x) = log Z - s(y)`` per sequence: ``(B,)``, never negative."""
        return self.log_partition(emissions, lengths) - self.path_score(emissions, tags, lengths)

    def forward(self, emissions: Tensor, tags: Tensor, lengths: Tensor | None = None) -> Tensor:
        """The negative log-likelihood of each sequence, ``(B,)`` (as :meth:`neg_log_likelihood`)."""
        return self.neg_log_likelihood(emissions, tags, lengths)

    @torch.no_grad()
    def decode(self, emissions: Tensor, lengths: Tensor | None = None) -> list[list[int]]:
        """The highest-scoring tag path of each sequence (Viterbi), as lists of their own lengths.

        Example:
            >>> crf = LinearChainCRF(2)
            >>> crf.decode(torch.tensor([[[5.0, 0.0], [0.0, 5.0], [5.0, 0.0]]]))
            [[0, 1, 0]]
        """
        lengths = _check(emissions, lengths, self.num_tags)
        B, T, K = emissions.shape
        identity = torch.arange(K, device=emissions.device).expand(B, K)
        delta = self.start_transitions + emissions[:, 0]  # (B, K) best score of a path ending in each tag
        pointers = []
        for t in range(1, T):
            scores = delta.unsqueeze(2) + self.transitions.unsqueeze(0)  # (B, K, K) [b, i, j]
            best, best_previous = scores.max(dim=1)  # (B, K), (B, K)
            valid = (t < lengths).unsqueeze(1)  # (B, 1)
            delta = torch.where(valid, best + emissions[:, t], delta)
            pointers.append(torch.where(valid, best_previous, identity))  # padded steps point to themselves
        tag = (delta + self.end_transitions).argmax(dim=1)  # (B,) the last tag of each best path
        path = [tag]
        for back in reversed(pointers):
            tag = back.gather(1, tag.unsqueeze(1)).squeeze(1)
            path.append(tag)
        path = torch.stack(path[::-1], dim=1).tolist()  # (B, T); the padded tail repeats the last tag
        return [row[:n] for row, n in zip(path, lengths.tolist())]
