"""Speed of every cell and backend against ``torch.nn.LSTM`` on the same sizes, in the same run.

    rnnkit bench cells --size medium            # a table
    rnnkit bench cells --size small --json      # JSON rows, one per cell and backend:
        {"cell", "backend", "size", "fwd_ms", "fwdbwd_ms", "ratio_fwdbwd", "ratio_fwd"}

One layer, one direction, float32, no lengths; forward+backward is ``out.sum().backward()``
through inputs and weights.  Each cell's repeats alternate with ``torch.nn.LSTM``'s, and the
ratio is the cell's median over the median of those neighbouring ``torch.nn.LSTM`` runs; the
first row shows ``torch.nn.LSTM``'s median over the whole run.
"""

from __future__ import annotations

import platform
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from ..cells import CELLS
from ..engine.compiled import compiled_blocker
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


def timed_calls(module: torch.nn.Module, x: torch.Tensor) -> tuple[Callable[[], None], Callable[[], None]]:
    """(forward, forward+backward) of a recurrent ``module`` on ``x`` (B, T, I) as zero-argument callables;
    the second runs ``out.sum().backward()`` through ``x`` and the weights, gradients reset first.

    >>> forward, forward_backward = timed_calls(torch.nn.LSTM(3, 4, batch_first=True), torch.randn(2, 5, 3))
    >>> forward_backward()
    """

    def forward():
        with torch.no_grad():
            module(x)

    def forward_backward():
        module.zero_grad(set_to_none=True)
        x.grad = None
        module(x)[0].sum().backward()

    return forward, forward_backward


def _time_against(reference: torch.nn.Module, module: torch.nn.Module, x: torch.Tensor, repeats: int):
    """Median times of ``module`` and of ``reference``, taken in alternation so that both see
    the same machine state (a 2-core VM drifts by 20% over a minute)."""
    ref_calls, calls = timed_calls(reference, x), timed_calls(module, x)
    times = {key: [] for key in ("fwd", "fwdbwd", "ref_fwd", "ref_fwdbwd")}
    for _ in range(repeats):
        times["ref_fwd"].append(median_ms(ref_calls[0], 1, warmup=1))
        times["fwd"].append(median_ms(calls[0], 1, warmup=1))
        times["ref_fwdbwd"].append(median_ms(ref_calls[1], 1, warmup=1))
        times["fwdbwd"].append(median_ms(calls[1], 1, warmup=1))
    return {key: statistics.median(values) for key, values in times.items()}


def backends_for(cell: str) -> list[str]:
    layer = Recurrent(cell, 2, 2, backend="auto")
    names = ["native"] if layer.backend == "native" else []
    if compiled_blocker(layer.cell) is None:
        names.append("compiled")
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
    jobs = [(c, b) for c in (cells or BUILTIN_CELLS) for b in backends_for(c) if backends is None or b in backends]
    rows, ref_fwd, ref_fwdbwd = [], [], []
    for cell, backend in jobs:
        layer = Recurrent(cell, I, H, batch_first=False, backend=backend)
        t = _time_against(reference, layer, x, repeats)
        ref_fwd.append(t["ref_fwd"])
        ref_fwdbwd.append(t["ref_fwdbwd"])
        rows.append(
            Row(cell, backend, size, t["fwd"], t["fwdbwd"], t["fwdbwd"] / t["ref_fwdbwd"], t["fwd"] / t["ref_fwd"])
        )
        if progress is not None:
            progress(rows[-1])
    reference_row = Row(
        "torch.nn.LSTM", "torch", size, statistics.median(ref_fwd), statistics.median(ref_fwdbwd), 1.0, 1.0
    )
    return [reference_row, *rows]


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"


def as_json_rows(rows: list[Row]) -> list[dict]:
    return [asdict(r) for r in rows]
