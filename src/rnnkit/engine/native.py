"""The native engine: torch's own LSTM/GRU/RNN kernels (cuDNN on a GPU, oneDNN/ATen on CPU).

Used for a whole stack at once when torch has the exact configuration; the weights are ours,
passed in torch's flat order (per layer and direction: w_ih, w_hh, b_ih, b_hh).
"""

from __future__ import annotations

import torch
from torch import Tensor

_KERNELS = {"LSTM": "lstm", "GRU": "gru", "RNN_TANH": "rnn_tanh", "RNN_RELU": "rnn_relu"}


def run_native(
    mode: str,
    x: Tensor,
    batch_sizes: Tensor | None,
    state: tuple[Tensor, ...],
    flat_weights: list[Tensor],
    num_layers: int,
    dropout: float,
    training: bool,
    bidirectional: bool,
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Run torch's kernel.  ``x`` is (T, B, I) when ``batch_sizes`` is None, else packed (N, I).

    ``state`` holds (L*D, B, H) tensors (sorted like the packed rows).  Returns the output,
    (T, B, D*H) or packed (N, D*H), and the final state tuple.
    """
    kernel = getattr(torch._VF, _KERNELS[mode])
    hx = list(state) if mode == "LSTM" else state[0]
    args = (flat_weights, True, num_layers, dropout, training, bidirectional)
    # oneDNN's CPU RNN kernel pays about 2 ms a call to prepare the weights: it wins over whole
    # sequences but is 10x slower for the single steps of generation, which take ATen's path.
    single_step = batch_sizes is None and x.shape[0] == 1 and x.device.type == "cpu"
    onednn = torch.backends.mkldnn.enabled
    if single_step and onednn:
        torch.backends.mkldnn.enabled = False
    try:
        if batch_sizes is None:
            result = kernel(x, hx, *args, False)  # batch_first=False: we hand it (T, B, I)
        else:
            result = kernel(x, batch_sizes, hx, *args)
    finally:
        torch.backends.mkldnn.enabled = onednn
    return result[0], tuple(result[1:])
