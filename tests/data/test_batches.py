"""Batching for language models: stream chunks for truncated BPTT, padded whole sequences."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.data.batches import PAD, EpochSampler, StreamChunks, pad_sequences, sequence_loader


@settings(max_examples=50, deadline=None)
@given(n=st.integers(2, 300), batch=st.integers(1, 8), length=st.integers(1, 40))
def test_stream_chunks_cover_each_stream_once_in_order_with_targets_shifted_by_one(n, batch, length):
    tokens = np.arange(n)
    if (n - 1) // batch < 1:
        with pytest.raises(ValueError, match="too short"):
            StreamChunks(tokens, batch, length)
        return
    chunks = StreamChunks(tokens, batch, length)
    inputs = torch.cat([chunks[i][0] for i in range(len(chunks))], dim=1)  # (B, per_stream)
    targets = torch.cat([chunks[i][1] for i in range(len(chunks))], dim=1)
    per = chunks.per_stream
    expected = torch.arange(batch * per).view(batch, per)
    assert torch.equal(inputs, expected) and torch.equal(targets, expected + 1)


def test_padded_batches_mark_padding_in_targets_only_and_give_lengths():
    x, y, n = pad_sequences([[1, 2, 3, 4], [5, 6]])
    assert x.tolist() == [[1, 2, 3], [5, 0, 0]]
    assert y.tolist() == [[2, 3, 4], [6, PAD, PAD]]
    assert n.tolist() == [3, 1]
    with pytest.raises(ValueError, match="at least 2 ids"):
        pad_sequences([[1]])


def test_epoch_sampler_reshuffles_each_epoch_reproducibly():
    a, b = EpochSampler(50, seed=1), EpochSampler(50, seed=1)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first and sorted(a) == list(range(50))
    b.set_epoch(1)
    assert list(a) == list(b)
    assert list(EpochSampler(5, shuffle=False)) == [0, 1, 2, 3, 4]


def test_sequence_loader_yields_padded_batches():
    batches = list(sequence_loader([[1, 2, 3]] * 5, batch_size=2, shuffle=False))
    assert [len(b[2]) for b in batches] == [2, 2, 1]


def test_chunks_of_a_memory_mapped_stream_hand_pages_back_and_read_the_same(tmp_path, monkeypatch):
    import rnnkit.data.batches as batches

    path = tmp_path / "tokens.bin"
    np.arange(10_001, dtype=np.uint16).tofile(path)
    mapped = np.memmap(path, dtype=np.uint16, mode="r")
    assert batches.release_pages(mapped[100:]) and not batches.release_pages(np.arange(5))
    monkeypatch.setattr(batches, "RELEASE_EVERY", 2)  # hand pages back every other chunk
    released = []
    monkeypatch.setattr(batches, "release_pages", lambda tokens: released.append(tokens) or True)
    on_disk, in_memory = StreamChunks(mapped, 4, 50), StreamChunks(np.arange(10_001), 4, 50)
    for i in range(len(on_disk)):
        (x, y), (x_ref, y_ref) = on_disk[i], in_memory[i]
        assert torch.equal(x, x_ref) and torch.equal(y, y_ref)
    assert len(released) == 2 * (len(on_disk) // 2) and released[0] is mapped  # both views, every other chunk
