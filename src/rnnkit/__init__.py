"""rnnkit: recurrent neural networks on PyTorch, every cell written out and fast.

>>> import torch, rnnkit
>>> layer = rnnkit.Recurrent("gru", input_size=4, hidden_size=8)
>>> out, h = layer(torch.randn(2, 7, 4))
>>> tuple(out.shape), tuple(h.shape)
((2, 7, 8), (1, 2, 8))
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import cells
from .cells import CELLS, Cell
from .layers import Recurrent

__all__ = ["CELLS", "Cell", "Recurrent", "cells", "__version__"]
