"""The packed, length-sorted layout every engine runs on (the layout of ``PackedSequence``).

Sequences are sorted longest first and time step ``t`` holds the first ``batch_sizes[t]`` of
them, so a batch of variable lengths is a batch that shrinks over time: no step of a
finished sequence is computed, and its final state is simply the state it stopped at.

    data         (N, F)   N = sum(batch_sizes), rows of step t at offsets[t] : offsets[t] + batch_sizes[t]
    batch_sizes  list[int], non-increasing, length T
"""

from __future__ import annotations

from collections.abc import Callable

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


# Inference projects the input a run of whole steps at a time: at most about CHUNK_BYTES of projection
# (runs of 16 and 32 MB cost the compiled loops 3-8% at the medium and large benchmark sizes, paired),
# and at least MIN_CHUNK_STEPS steps (a call of fewer repays neither the fused engine's reorder of W_hh
# nor the compiled loops' transposed copy of it).
CHUNK_BYTES = 64 << 20
MIN_CHUNK_STEPS = 16


def step_chunks(
    batch_sizes: list[int], row_bytes: int, chunk_bytes: int | None = None, min_steps: int | None = None
) -> list[list[int]]:
    """The steps in runs of whole steps, in order: each run ends once it has ``min_steps`` steps (default
    ``MIN_CHUNK_STEPS``) and the next step would take it past ``chunk_bytes`` (default ``CHUNK_BYTES``) at
    ``row_bytes`` a row.

    >>> step_chunks([2, 2, 2, 1, 1], row_bytes=8, chunk_bytes=32, min_steps=1)
    [[2, 2], [2, 1, 1]]
    >>> step_chunks([2, 2, 2], row_bytes=8, chunk_bytes=8, min_steps=2)
    [[2, 2], [2]]
    >>> step_chunks([2, 2, 2], row_bytes=0)  # nothing to project: one run
    [[2, 2, 2]]
    """
    limit = CHUNK_BYTES if chunk_bytes is None else chunk_bytes
    least = MIN_CHUNK_STEPS if min_steps is None else min_steps
    chunks, current, rows = [], [], 0
    for b in batch_sizes:
        if len(current) >= least and (rows + b) * row_bytes > limit:
            chunks.append(current)
            current, rows = [], 0
        current.append(b)
        rows += b
    return [*chunks, current] if current else chunks


def run_in_chunks(
    run: Callable,
    x: Tensor,
    batch_sizes: list[int],
    state: tuple[Tensor, ...],
    mask: Tensor | None,
    row_bytes: int,
    chunk_bytes: int | None = None,
    min_steps: int | None = None,
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Inference over packed input a run of whole steps at a time (:func:`step_chunks`), so that the input
    projection, ``row_bytes`` a row, never exists for all N rows at once: at most about 64 MB instead of
    250 MB for T=1000, B=64, H=256 (an LSTM's 4H a row against the output's H). At the benchmark sizes
    (T=100) one run or two: no cost in speed measured (0.96-1.03 of one run at large, paired).

    ``run(x_chunk, sizes, state, mask) -> (output (rows, H), final state)`` runs one chunk from ``state``;
    the state carries over, sequences that end stay behind as in :func:`run_steps`, and the outputs go
    into one (N, H) tensor. Returns ``(output (N, H), final state tuple of (B, H))``; ``chunk_bytes`` and
    ``min_steps`` as in :func:`step_chunks`.

    >>> from rnnkit.cells import CELLS
    >>> from rnnkit.cells.base import Params
    >>> cell, p = CELLS["rnn_tanh"](hidden_size=2), Params({"weight_hh": torch.eye(2)})
    >>> def run(x, sizes, state, mask):  # one chunk: x (rows, H) is already h's input, as x_proj
    ...     out, final, _ = run_steps(cell, x, sizes, state, p, mask, keep=False)
    ...     return out, final
    >>> x, sizes, h0 = torch.randn(5, 2), [2, 2, 1], (torch.zeros(2, 2),)
    >>> whole = run(x, sizes, h0, None)
    >>> runs = run_in_chunks(run, x, sizes, h0, None, row_bytes=8, chunk_bytes=16, min_steps=1)  # a step a run
    >>> torch.allclose(runs[0], whole[0]) and torch.allclose(runs[1][0], whole[1][0])
    True
    """
    chunks = step_chunks(batch_sizes, row_bytes, chunk_bytes, min_steps)
    if len(chunks) == 1:
        return run(x, batch_sizes, state, mask)
    output, finished, start = None, [[] for _ in state], 0
    for sizes in chunks:
        b, rows = sizes[0], sum(sizes)
        if b < state[0].shape[0]:
            state = split_rows(state, b, finished)
        out, state = run(x[start : start + rows], sizes, state, None if mask is None else mask[:b])
        if output is None:
            output = out.new_empty((x.shape[0], out.shape[1]))
        output[start : start + rows] = out
        start += rows
    return output, final_state(state, finished)


def split_rows(state: tuple[Tensor, ...], keep: int, finished: list[list[Tensor]]) -> tuple[Tensor, ...]:
    """Drop the rows ``keep:`` of each state tensor (their sequences just ended), noting them
    in ``finished`` so that the final state can be put together afterwards."""
    for pieces, tensor in zip(finished, state):
        pieces.append(tensor[keep:])
    return tuple(tensor[:keep] for tensor in state)


def final_state(state: tuple[Tensor, ...], finished: list[list[Tensor]]) -> tuple[Tensor, ...]:
    """Rows still running, then the ones that ended, latest-ended first: rows 0..B-1 in order."""
    return tuple(torch.cat([tensor, *reversed(pieces)]) for tensor, pieces in zip(state, finished))
