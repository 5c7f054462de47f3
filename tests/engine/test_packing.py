import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.nn.utils.rnn import pack_padded_sequence

from rnnkit.engine import reverse_index


@given(st.lists(st.integers(1, 6), min_size=1, max_size=5))
def test_reverse_index_reverses_each_sequence_within_its_length(lengths):
    T, B = max(lengths), len(lengths)
    x = torch.arange(T * B, dtype=torch.float64).view(B, T, 1)  # a distinct value per cell
    packed = pack_padded_sequence(x, torch.tensor(lengths), batch_first=True, enforce_sorted=False)
    brute = torch.zeros_like(x)
    for j, n in enumerate(lengths):
        brute[j, :n] = x[j, :n].flip(0)
    expected = pack_padded_sequence(brute, torch.tensor(lengths), batch_first=True, enforce_sorted=False)
    index = reverse_index(packed.batch_sizes.tolist())
    assert torch.equal(packed.data[index], expected.data)
    assert torch.equal(index[index], torch.arange(len(index)))  # its own inverse
