"""Kept scratch buffers: handed out again only when nothing uses them, so that graphs alive at the same time
never share one, and at most MAX_KEPT are kept."""

from __future__ import annotations

import pytest
import torch

import rnnkit
from rnnkit.engine import workspace

pytestmark = pytest.mark.skipif(not workspace.available(), reason="this torch hides storage use counts")

BIG = (workspace.MIN_BYTES // 4 // 1024, 1024)  # float32, exactly MIN_BYTES


def test_a_buffer_in_use_is_not_handed_out_and_a_free_one_is():
    like = torch.zeros(1)
    first = workspace.empty(BIG, like)
    second = workspace.empty(BIG, like)
    assert first.data_ptr() != second.data_ptr()  # first is alive
    view = first[3:]
    address = first.data_ptr()
    del first
    assert workspace.empty(BIG, like).data_ptr() != address  # a view of it is still alive
    del view
    assert workspace.empty(BIG, like).data_ptr() == address
    assert workspace.empty((4, 4), like).numel() == 16  # small ones come from torch's allocator


def test_at_most_max_kept_buffers_are_kept_and_clear_drops_them():
    workspace.clear()
    like = torch.zeros(1)
    held = [workspace.empty(BIG, like) for _ in range(workspace.MAX_KEPT + 2)]
    assert len(workspace._kept) == workspace.MAX_KEPT
    assert len({t.data_ptr() for t in held}) == len(held)  # the forgotten ones are still the caller's
    workspace.clear()
    assert workspace._kept == []


@pytest.mark.parametrize("cell", ["lstm_layernorm", "gru", "lstm_peephole"])
@pytest.mark.parametrize("backend", ["compiled", "fused"])
def test_two_graphs_alive_at_once_get_their_own_buffers(cell, backend):
    """Gate buffers above MIN_BYTES (N=4096 rows of 4H=2048): two forward passes before either backward,
    then both backwards, give the gradients of each pass run alone."""
    torch.manual_seed(0)
    layer = rnnkit.Recurrent(cell, 8, 512, backend=backend)
    xs = [torch.randn(64, 64, 8) for _ in range(2)]

    def grads_of(loss):
        layer.zero_grad()
        loss.backward()
        return [p.grad.clone() for p in layer.parameters()]

    alone = [grads_of(layer(x)[0].square().mean()) for x in xs]
    losses = [layer(x)[0].square().mean() for x in xs]  # both graphs alive
    together = [grads_of(loss) for loss in reversed(losses)][::-1]
    for a, b in zip(alone, together):
        for ga, gb in zip(a, b):
            torch.testing.assert_close(ga, gb, rtol=0, atol=0)


@pytest.mark.parametrize("backend", ["compiled", "fused"])
def test_the_small_benchmark_sizes_gate_buffers_are_kept_from_step_to_step(backend):
    """T=200, B=16, H=64 (the small benchmark size): the (N, 4H) gate buffers are 3.2 MB, above MIN_BYTES,
    so a training loop writes into the same warm buffers every step instead of fresh pages."""
    assert 200 * 16 * 4 * 64 * 4 >= workspace.MIN_BYTES
    workspace.clear()
    layer = rnnkit.Recurrent("lstm", 32, 64, backend=backend)
    x = torch.randn(16, 200, 32)

    def train_step() -> set[int]:
        layer.zero_grad(set_to_none=True)
        layer(x)[0].sum().backward()
        return {kept.base.data_ptr() for kept in workspace._kept}

    first = train_step()
    assert first and train_step() == first == train_step()
