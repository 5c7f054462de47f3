"""The reference engine: a plain Python loop over the cell's ``step``, differentiated by autograd.

Slow and obviously right; every other engine is checked against it.
"""

from __future__ import annotations

from torch import Tensor

from ..cells.base import Cell, Params
from .packing import run_steps


def run_reference(
    cell: Cell,
    x: Tensor,
    batch_sizes: list[int],
    state: tuple[Tensor, ...],
    params: dict[str, Tensor],
    mask: Tensor | None = None,
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Run one layer-direction over packed input.

    Args:
        x: (N, I) packed input; batch_sizes: rows per time step (non-increasing).
        state: initial state, a tuple of (B, H); params: base name -> tensor.  Without
            ``weight_ih``, ``x`` is the input projection already, (N, G*H) with its biases.
        mask: (B, H) variational recurrent dropout mask or None.
    Returns:
        output (N, H) packed hidden states, final state tuple of (B, H).
    """
    p = Params(params)
    x_proj = x if p.weight_ih is None else cell.input_projection(x, p)  # (N, G*H), one GEMM for all steps
    output, final, _ = run_steps(cell, x_proj, batch_sizes, state, p, mask, keep=False)  # autograd keeps its own
    return output, final
