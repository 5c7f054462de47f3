"""Batches for language models: a long stream cut into chunks (truncated BPTT), or whole
sequences padded to the longest in the batch (with their lengths).

Both read token ids lazily from an array (a memory-mapped corpus stays on disk).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

PAD = -1  # target id of padding (the language model's loss skips it)


class StreamChunks(Dataset):
    """A token stream split into ``batch_size`` parallel streams, served as consecutive chunks.

    Item i is ``(inputs (B, L), targets (B, L))``: positions ``i*L .. i*L+L-1`` of every
    stream, targets shifted by one.  Consecutive items continue the same streams, so a
    model may carry its state from one to the next (truncated BPTT).

    Example:
        >>> chunks = StreamChunks(np.arange(21), batch_size=2, chunk_length=4)
        >>> len(chunks), chunks[0][0].tolist(), chunks[0][1].tolist()
        (3, [[0, 1, 2, 3], [10, 11, 12, 13]], [[1, 2, 3, 4], [11, 12, 13, 14]])
        >>> chunks[2][0].tolist()  # the last chunk is shorter
        [[8, 9], [18, 19]]
    """

    def __init__(self, tokens: np.ndarray, batch_size: int, chunk_length: int):
        if batch_size < 1 or chunk_length < 1:
            raise ValueError(f"Expected batch_size >= 1 and chunk_length >= 1. Received: {batch_size}, {chunk_length}")
        self.per_stream = (len(tokens) - 1) // batch_size
        if self.per_stream < 1:
            raise ValueError(
                f"A stream of {len(tokens)} tokens is too short for {batch_size} parallel streams: "
                f"it needs at least {batch_size + 1} tokens. Use a smaller batch size or more text."
            )
        self.tokens, self.batch_size, self.chunk_length = tokens, batch_size, chunk_length

    def __len__(self) -> int:
        return -(-self.per_stream // self.chunk_length)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        start = i * self.chunk_length
        length = min(self.chunk_length, self.per_stream - start)
        starts = [b * self.per_stream + start for b in range(self.batch_size)]
        rows = np.stack([self.tokens[s : s + length + 1] for s in starts]).astype(np.int64)  # (B, L + 1)
        rows = torch.from_numpy(rows)
        return rows[:, :-1], rows[:, 1:]


def stream_loader(tokens: np.ndarray, batch_size: int, chunk_length: int) -> DataLoader:
    """A DataLoader of ``StreamChunks`` in order (never shuffled: the state flows between chunks)."""
    return DataLoader(StreamChunks(tokens, batch_size, chunk_length), batch_size=None, shuffle=False)


class EpochSampler(Sampler):
    """Indices 0..n-1, shuffled with ``seed + epoch`` (Lightning calls ``set_epoch``), so a
    resumed run sees the same order as an uninterrupted one."""

    def __init__(self, n: int, shuffle: bool = True, seed: int = 0):
        self.n, self.shuffle, self.seed, self.epoch = n, shuffle, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        if not self.shuffle:
            return iter(range(self.n))
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(self.n, generator=generator).tolist())


def pad_sequences(sequences: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sequences of ids (each at least 2 long) -> (inputs (B, T), targets (B, T), lengths (B,)).

    inputs are each sequence but its last id, targets each but its first; padding is 0 in
    inputs and ``PAD`` in targets.

    Example:
        >>> x, y, n = pad_sequences([[5, 6, 7], [8, 9]])
        >>> x.tolist(), y.tolist(), n.tolist()
        ([[5, 6], [8, 0]], [[6, 7], [9, -1]], [2, 1])
    """
    lengths = torch.tensor([len(s) - 1 for s in sequences])
    if int(lengths.min()) < 1:
        raise ValueError("Every sequence needs at least 2 ids (an input and a target).")
    inputs = torch.zeros(len(sequences), int(lengths.max()), dtype=torch.long)
    targets = torch.full_like(inputs, PAD)
    for b, s in enumerate(sequences):
        ids = torch.as_tensor(s, dtype=torch.long)
        inputs[b, : len(s) - 1] = ids[:-1]
        targets[b, : len(s) - 1] = ids[1:]
    return inputs, targets, lengths


def sequence_loader(sequences: Sequence[Sequence[int]], batch_size: int, shuffle: bool = True, seed: int = 0):
    """Batches of whole sequences, padded, with lengths; reshuffled every epoch (reproducibly)."""
    return DataLoader(
        list(sequences), batch_size=batch_size, sampler=EpochSampler(len(sequences), shuffle, seed),
        collate_fn=pad_sequences,
    )  # fmt: skip
