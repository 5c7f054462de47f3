"""Peak memory of one training step (forward + backward) of every cell, beside ``torch.nn.LSTM``'s.

    rnnkit bench memory --size large     # a table: peak MB above the inputs and weights, ratio to nn.LSTM

Each measurement runs in a fresh Python process (the high-water mark of a process only rises):
build the layer and the input, run one tiny forward+backward so that every library is loaded,
read the resident set size, run one forward+backward at the benchmark size, and report the
process's peak resident size (``ru_maxrss``) minus the size read before.  That is the memory the
step itself needed at its worst: saved activations, gradients and workspaces, as the operating
system saw it.  Sizes as in ``rnnkit.bench.cells``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, dataclass

from .cells import BUILTIN_CELLS, SIZES


@dataclass
class MemoryRow:
    cell: str
    backend: str
    size: str
    peak_mb: float
    ratio: float  # to torch.nn.LSTM's peak, measured in the same run


def _rss_kb() -> int:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def measure(cell: str, backend: str, size: str) -> float:
    """Peak MB of one forward+backward, in this process (call it in a fresh one: see ``peak_mb``)."""
    import resource

    import torch

    from ..layers import Recurrent

    T, B, I, H = SIZES[size]
    torch.manual_seed(0)
    if cell == "torch.nn.LSTM":
        layer = torch.nn.LSTM(I, H)
    else:
        layer = Recurrent(cell, I, H, batch_first=False, backend=backend)
    tiny = torch.randn(3, 2, I, requires_grad=True)
    layer(tiny)[0].sum().backward()  # load every library and kernel first
    layer.zero_grad(set_to_none=True)
    x = torch.randn(T, B, I, requires_grad=True)
    before = _rss_kb()
    layer(x)[0].sum().backward()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux
    return max(peak - before, 0) / 1024


def peak_mb(cell: str, backend: str, size: str) -> float:
    """``measure`` in a fresh Python process."""
    code = f"from rnnkit.bench.memory import measure; print(measure({cell!r}, {backend!r}, {size!r}))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"measuring {cell} ({backend}) failed: {result.stderr.strip().splitlines()[-1:]}")
    return float(result.stdout.strip().splitlines()[-1])


def run(size: str = "large", cells: list[str] | None = None, backends: list[str] | None = None) -> list[MemoryRow]:
    """Peak MB of each cell and backend at ``size``; the first row is ``torch.nn.LSTM``.

    Only Linux (``/proc``) is supported.
    """
    from .cells import backends_for

    if size not in SIZES:
        raise ValueError(f"Expected size one of {sorted(SIZES)}. Received: size={size!r}")
    if not sys.platform.startswith("linux"):
        raise ValueError("rnnkit bench memory reads /proc and runs on Linux only.")
    reference = peak_mb("torch.nn.LSTM", "torch", size)
    rows = [MemoryRow("torch.nn.LSTM", "torch", size, reference, 1.0)]
    for cell in cells or BUILTIN_CELLS:
        for backend in backends_for(cell):
            if backend == "reference" or (backends is not None and backend not in backends):
                continue
            mb = peak_mb(cell, backend, size)
            rows.append(MemoryRow(cell, backend, size, mb, mb / reference))
    return rows


def as_json(rows: list[MemoryRow]) -> str:
    return json.dumps([asdict(r) for r in rows])
