"""Engines run one cell over time on packed input: ``reference`` (autograd over a Python loop),
``fused`` (hand-written BPTT), ``compiled`` (the same BPTT with its time loops in C++) and
``native`` (torch's built-in LSTM/GRU/RNN kernels)."""

from .compiled import run_compiled
from .fused import run_fused
from .native import run_native
from .packing import reverse_index
from .reference import run_reference

ENGINES = {"reference": run_reference, "fused": run_fused, "compiled": run_compiled}

__all__ = ["ENGINES", "run_compiled", "run_fused", "run_native", "run_reference", "reverse_index"]
