"""The packed, length-sorted layout every engine runs on (the layout of ``PackedSequence``).

Sequences are sorted longest first and time step ``t`` holds the first ``batch_sizes[t]`` of
them, so a batch of variable lengths is a batch that shrinks over time: no step of a
finished sequence is computed, and its final state is simply the state it stopped at.

    data         (N, F)   N = sum(batch_sizes), rows of step t at offsets[t] : offsets[t] + batch_sizes[t]
    batch_sizes  list[int], non-increasing, length T
"""

from __future__ import annotations

import torch
from torch import Tensor


def reverse_index(batch_sizes: list[int], device: torch.device | str = "cpu") -> Tensor:
    """Row permutation of packed data that reverses every sequence within its own length.

    Row (t, j) of a sequence of length L_j goes to (L_j - 1 - t, j): the backward direction
    then starts at each sequence's own last step.  The permutation is its own inverse.

    >>> reverse_index([2, 2, 1]).tolist()   # lengths 3 and 2, rows a0 b0 a1 b1 a2
    [4, 3, 2, 1, 0]
    """
    sizes = torch.tensor(batch_sizes, dtype=torch.long)
    T, B = len(batch_sizes), batch_sizes[0]
    offsets = torch.cumsum(sizes, 0) - sizes  # (T,) first row of each step
    steps = torch.arange(T).unsqueeze(1)  # (T, 1)
    rows = torch.arange(B).unsqueeze(0)  # (1, B)
    lengths = (sizes.unsqueeze(1) > rows).sum(0)  # (B,) length of each sorted sequence
    valid = steps < lengths  # (T, B), row-major order of the valid cells = packed order
    source_step = (lengths - 1 - steps).clamp(min=0)
    index = offsets[source_step] + rows  # (T, B)
    return index[valid].to(device)


def run_steps(
    cell, x_proj: Tensor, batch_sizes: list[int], state: tuple[Tensor, ...], p, mask: Tensor | None, keep: bool = True
):
    """The forward time loop every engine shares: the cell's ``step`` over packed input projections.

    Returns ``(output (N, H), final state tuple of (B, H), what each step saved for backward)``.
    With ``keep=False`` (no hand-written backward will run) nothing is kept: each step's saved
    tensors are freed at the next step, so the memory is that of the output, not of every step's
    gates (the layer-norm LSTM at T=1000, B=64, H=256: about 1.25 GB otherwise), and the list is empty.

    >>> from rnnkit.cells import CELLS
    >>> from rnnkit.cells.base import Params
    >>> cell = CELLS["rnn_tanh"](hidden_size=4)
    >>> p = Params({"weight_hh": torch.randn(4, 4)})
    >>> out, (h,), saved = run_steps(cell, torch.randn(6, 4), [3, 2, 1], (torch.zeros(3, 4),), p, None, keep=False)
    >>> out.shape, h.shape, saved
    (torch.Size([6, 4]), torch.Size([3, 4]), [])
    """
    outputs, saved, finished = [], [], [[] for _ in state]
    for x_t in x_proj.split(batch_sizes):  # (b_t, G*H)
        b = x_t.shape[0]
        if b < state[0].shape[0]:
            state = split_rows(state, b, finished)
        state, saved_t = cell.step(x_t, state, p, None if mask is None else mask[:b])
        outputs.append(state[0])
        if keep:
            saved.append(saved_t)
    return torch.cat(outputs), final_state(state, finished), saved


def split_rows(state: tuple[Tensor, ...], keep: int, finished: list[list[Tensor]]) -> tuple[Tensor, ...]:
    """Drop the rows ``keep:`` of each state tensor (their sequences just ended), noting them
    in ``finished`` so that the final state can be put together afterwards."""
    for pieces, tensor in zip(finished, state):
        pieces.append(tensor[keep:])
    return tuple(tensor[:keep] for tensor in state)


def final_state(state: tuple[Tensor, ...], finished: list[list[Tensor]]) -> tuple[Tensor, ...]:
    """Rows still running, then the ones that ended, latest-ended first: rows 0..B-1 in order."""
    return tuple(torch.cat([tensor, *reversed(pieces)]) for tensor, pieces in zip(state, finished))
