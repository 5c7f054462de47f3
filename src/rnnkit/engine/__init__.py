"""Engines run one cell over time on packed input: ``reference`` (autograd over a Python loop),
``fused`` (hand-written BPTT) and ``native`` (torch's built-in LSTM/GRU/RNN kernels)."""

from .fused import run_fused
from .native import run_native
from .packing import reverse_index
from .reference import run_reference

ENGINES = {"reference": run_reference, "fused": run_fused}

__all__ = ["ENGINES", "run_fused", "run_native", "run_reference", "reverse_index"]
