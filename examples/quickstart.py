"""A peephole LSTM, bidirectional and stacked, over a padded batch of variable lengths.

python examples/quickstart.py
"""

import torch

import rnnkit

layer = rnnkit.Recurrent("lstm_peephole", input_size=8, hidden_size=16, num_layers=2, bidirectional=True)
print(layer.explain())

x = torch.randn(4, 10, 8)  # (B, T, I)
lengths = torch.tensor([10, 3, 7, 1])
out, (h, c) = layer(x, lengths=lengths)
print("output", tuple(out.shape), "final h", tuple(h.shape))  # (4, 10, 32), (4, 4, 16)
print("zero past each length:", bool((out[1, 3:] == 0).all()))

out.sum().backward()  # hand-written BPTT
print("grad of weight_hh_l0:", tuple(layer.weight_hh_l0.grad.shape))
