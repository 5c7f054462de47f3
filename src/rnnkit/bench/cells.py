"""Speed of every cell and backend against ``torch.nn.LSTM`` on the same sizes, in the same run.

    rnnkit bench cells --size medium            # a table
    rnnkit bench cells --size small --json      # JSON rows, one per cell and backend:
        {"cell", "backend", "size", "fwd_ms", "fwdbwd_ms", "ratio_fwdbwd", "ratio_fwd"}

One layer, one direction, float32, no lengths; forward+backward is ``out.sum().backward()``
through inputs and weights.  The ratio is ``fwdbwd_ms / fwdbwd_ms of torch.nn.LSTM``.
"""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass

import torch

from ..cells import CELLS
from ..layers import Recurrent
from .timing import median_ms

# (T, B, I, H)
SIZES = {
    "small": (200, 16, 32, 64),
    "medium": (100, 64, 128, 256),
    "large": (100, 128, 256, 512),
}
BUILTIN_CELLS = ("rnn_tanh", "rnn_relu", "lstm", "lstm_peephole", "lstm_cifg", "gru", "gru_v1", "lstm_layernorm")


@dataclass
class Row:
    cell: str
    backend: str
    size: str
    fwd_ms: float
    fwdbwd_ms: float
    ratio_fwdbwd: float
    ratio_fwd: float


def _time_module(module: torch.nn.Module, x: torch.Tensor, repeats: int) -> tuple[float, float]:
    def forward():
        with torch.no_grad():
            module(x)

    def forward_backward():
        module.zero_grad(set_to_none=True)
        x.grad = None
        out = module(x)[0]
        out.sum().backward()

    return median_ms(forward, repeats, warmup=2), median_ms(forward_backward, repeats, warmup=2)


def backends_for(cell: str) -> list[str]:
    layer = Recurrent(cell, 2, 2, backend="auto")
    names = ["native"] if layer.backend == "native" else []
    if CELLS[cell].has_backward():
        names.append("fused")
    return names + ["reference"]


def run(
    size: str = "medium",
    cells: list[str] | None = None,
    backends: list[str] | None = None,
    repeats: int = 5,
    seed: int = 0,
    progress=None,
) -> list[Row]:
    """Time each cell and backend at ``size``; the first row is ``torch.nn.LSTM`` itself."""
    if size not in SIZES:
        raise ValueError(f"Expected size one of {sorted(SIZES)}. Received: size={size!r}")
    T, B, I, H = SIZES[size]
    torch.manual_seed(seed)
    x = torch.randn(T, B, I, requires_grad=True)
    reference = torch.nn.LSTM(I, H)
    ref_fwd, ref_fwdbwd = _time_module(reference, x, repeats)
    rows = [Row("torch.nn.LSTM", "torch", size, ref_fwd, ref_fwdbwd, 1.0, 1.0)]
    jobs = [(c, b) for c in (cells or BUILTIN_CELLS) for b in backends_for(c) if backends is None or b in backends]
    for cell, backend in jobs:
        layer = Recurrent(cell, I, H, batch_first=False, backend=backend)
        fwd, fwdbwd = _time_module(layer, x, repeats)
        rows.append(Row(cell, backend, size, fwd, fwdbwd, fwdbwd / ref_fwdbwd, fwd / ref_fwd))
        if progress is not None:
            progress(rows[-1])
    return rows


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"


def as_json_rows(rows: list[Row]) -> list[dict]:
    return [asdict(r) for r in rows]
