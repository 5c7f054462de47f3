"""Batches for language models: a long stream cut into chunks (truncated BPTT), or whole
sequences padded to the longest in the batch (with their lengths).

Both read token ids lazily from an array (a memory-mapped corpus stays on disk).
``shard_loader`` gives each process of a data-parallel run its part of every global batch.
"""

from __future__ import annotations

import copy
import mmap
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

PAD = -1  # target id of padding (the language model's loss skips it)
RELEASE_EVERY = 1024  # chunks between hand-backs of a memory-mapped corpus's pages (resident memory stays flat)


def release_pages(tokens: np.ndarray) -> bool:
    """Drop the pages of a memory-mapped array from this process's resident memory.

    The pages are clean (read-only), so nothing is lost: the next read takes them from the
    page cache or the disk again.  Without it, one epoch over a 2 GB ``tokens.bin`` leaves 2 GB
    resident (reclaimable, but counted).  Returns False when ``tokens`` is not memory-mapped.

    Example:
        >>> release_pages(np.arange(3))
        False
    """
    mapping = getattr(tokens, "_mmap", None)  # np.memmap (and its slices) keep their mmap here
    if mapping is None or not hasattr(mmap, "MADV_DONTNEED"):
        return False
    mapping.madvise(mmap.MADV_DONTNEED)
    return True


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
        self.first_stream = 0  # this view serves streams first_stream .. first_stream + batch_size - 1

    def shard(self, rank: int, world_size: int) -> StreamChunks:
        """The streams of process ``rank`` of ``world_size``: rows ``rank*B/W .. (rank+1)*B/W - 1`` of every
        chunk, so each process carries the state of its own rows from chunk to chunk.

        Example:
            >>> chunks = StreamChunks(np.arange(41), batch_size=4, chunk_length=4)
            >>> chunks.shard(1, 2)[0][0].tolist()  # streams 2 and 3 of the four
            [[20, 21, 22, 23], [30, 31, 32, 33]]
        """
        if self.batch_size % world_size:
            raise ValueError(
                f"Expected a batch size divisible by the number of processes ({world_size}): each takes "
                f"an equal share of the parallel streams. Received: batch_size={self.batch_size}"
            )
        part = copy.copy(self)
        part.batch_size = self.batch_size // world_size
        part.first_stream = self.first_stream + rank * part.batch_size
        return part

    def __len__(self) -> int:
        return -(-self.per_stream // self.chunk_length)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        start = i * self.chunk_length
        length = min(self.chunk_length, self.per_stream - start)
        starts = [(self.first_stream + b) * self.per_stream + start for b in range(self.batch_size)]
        rows = np.stack([self.tokens[s : s + length + 1] for s in starts]).astype(np.int64)  # (B, L + 1)
        if i % RELEASE_EVERY == RELEASE_EVERY - 1:
            release_pages(self.tokens)
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


class ShardedBatchSampler(Sampler):
    """Process ``rank``'s part of every global batch: the batches one process would cut from
    ``sampler``'s order, each split into ``world_size`` consecutive parts (``numpy.array_split``:
    equal parts when ``batch_size`` divides evenly, the first parts one longer otherwise).

    ``sampler`` must give the same order in every process (``EpochSampler`` does).  A last
    batch too small to give every process an item is dropped, in every process alike.

    Example:
        >>> [list(ShardedBatchSampler(range(10), 4, rank, 2)) for rank in (0, 1)]
        [[[0, 1], [4, 5], [8]], [[2, 3], [6, 7], [9]]]
    """

    def __init__(self, sampler, batch_size: int, rank: int, world_size: int, drop_last: bool = False):
        if batch_size < world_size:
            raise ValueError(
                f"Expected a global batch size of at least one item per process ({world_size}). "
                f"Received: batch_size={batch_size}"
            )
        self.sampler, self.batch_size, self.rank, self.world_size = sampler, batch_size, rank, world_size
        self.drop_last = drop_last

    def set_epoch(self, epoch: int) -> None:
        if callable(getattr(self.sampler, "set_epoch", None)):
            self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        full, rest = divmod(len(self.sampler), self.batch_size)
        return full + (0 if self.drop_last or rest < self.world_size else 1)

    def __iter__(self) -> Iterator[list[int]]:
        order = list(self.sampler)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            if len(batch) < self.world_size or (self.drop_last and len(batch) < self.batch_size):
                return
            yield np.array_split(np.asarray(batch), self.world_size)[self.rank].tolist()


def shard_loader(loader, rank: int, world_size: int, indivisible: str = "error"):
    """The part of ``loader``'s global batches that process ``rank`` of ``world_size`` trains on.

    A ``stream_loader`` is split by streams (rows), any other map-style ``DataLoader`` by the
    items of each batch (``ShardedBatchSampler``), so that the processes together see the
    batches one process would.  A batch size that ``world_size`` does not divide is an error
    (``indivisible="error"``) or leaves every process the whole loader (``"replicate"``, fine for
    validation: the mean over all processes is then the mean of one).

    Example:
        >>> loader = stream_loader(np.arange(41), batch_size=4, chunk_length=4)
        >>> next(iter(shard_loader(loader, 0, 2)))[0].tolist()
        [[0, 1, 2, 3], [10, 11, 12, 13]]
        >>> len(next(iter(shard_loader(stream_loader(np.arange(41), 1, 4), 1, 2, "replicate")))[0])
        1
    """
    from torch.utils.data import IterableDataset

    if world_size == 1:
        return loader
    if not isinstance(loader, DataLoader) or isinstance(loader.dataset, IterableDataset):
        raise ValueError(
            "Expected a DataLoader over a map-style dataset for data-parallel training (its batches are "
            f"split between the processes). Received: {type(loader).__name__}"
        )
    dataset = loader.dataset
    if isinstance(dataset, StreamChunks):
        if dataset.batch_size % world_size and indivisible == "replicate":
            return loader
        return DataLoader(dataset.shard(rank, world_size), batch_size=None, shuffle=False,
                          num_workers=loader.num_workers)  # fmt: skip
    if loader.batch_size is None:
        raise ValueError(
            "Expected a DataLoader with a batch_size for data-parallel training. Received: batch_size=None"
        )
    if loader.batch_size % world_size:
        if indivisible == "replicate":
            return loader
        raise ValueError(
            f"Expected a batch size divisible by the number of processes ({world_size}): the batch size is the "
            f"global one, split between them. Received: batch_size={loader.batch_size}"
        )
    sampler = ShardedBatchSampler(loader.sampler, loader.batch_size, rank, world_size, loader.drop_last)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=loader.collate_fn, num_workers=loader.num_workers,
                      pin_memory=loader.pin_memory)  # fmt: skip
