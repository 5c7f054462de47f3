"""The fused engine: backpropagation through time written by hand (DESIGN.md, "Engine").

Forward:  1. x_proj = x @ W_ih^T + b for all N rows: one GEMM.
          2. per step: the cell's ``step`` (one addmm for h @ W_hh^T, then pointwise ops),
             keeping what ``step_backward`` needs. In a call of 16 steps or more the cells reorder
             W_hh for oneDNN's matmul once, not at every step (``cells.base.step_weight``).
Backward: 3. per step, last to first: the cell's ``step_backward`` (pointwise ops and one
             matmul for the gradient to h_{t-1}).
          4. dX, dW_ih, dW_hh and the biases as single GEMMs / sums over all N rows.

Where autograd records nothing (``torch.no_grad()``, inference mode, no input requiring a
gradient), steps 1 and 2 run alone, keep nothing for a backward, and project the input a run of
whole steps at a time (``packing.run_in_chunks``, at most about 64 MB of projection each): the
memory of a forward is then about its output, not every step's gates and all steps' projection.

It is a ``torch.autograd.Function``; asking it for a graph of its gradient (double backward,
``create_graph=True``) raises a clear error: use ``backend="reference"`` for that.

Every engine also takes step 1 done already: given parameters without ``weight_ih`` (the layer
projected the input itself, in bfloat16 under autocast), ``x`` is the projection (N, G*H) with
its biases, the engine runs steps 2 and 3 and returns dL/dx = dL/d(x_proj).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import Tensor

from ..cells.base import Cell, Params
from ..gemm import matmul
from . import workspace
from .packing import run_in_chunks, run_steps


def refuse_double_backward(engine: str) -> None:
    """The hand-written backward passes give first derivatives only (no graph of the gradient)."""
    if torch.is_grad_enabled():
        raise RuntimeError(
            f"The {engine} engine's backward is hand-written and gives first derivatives only; "
            "create_graph=True (double backward) needs backend='reference'."
        )


def without_autocast(backward: Callable) -> Callable:
    """A hand-written backward run in the dtype of its forward, with autocast off: ``.backward()``
    called inside an autocast region would otherwise run its matmuls in bfloat16 (autograd runs a
    CPU backward in the caller's thread, autocast state included)."""

    @functools.wraps(backward)
    def run(ctx, *grads: Tensor | None):
        device_type = next(g for g in grads if g is not None).device.type
        with torch.autocast(device_type, enabled=False):
            return backward(ctx, *grads)

    return run


REORDER_MIN_STEPS = 16  # a reorder of W_hh costs about 150 µs at medium; each step's product saves about 25


def reorder_step_weights(p: Params, batch_sizes: list[int]) -> None:
    """Ask the cells to reorder their step weights for oneDNN once for this call
    (:func:`rnnkit.cells.base.step_weight`), laid out for its batch, when it has enough steps to repay
    the reorder: not for a generation step of length 1."""
    if len(batch_sizes) >= REORDER_MIN_STEPS:
        p.reorder_rows = batch_sizes[0]


def is_projected(params: dict) -> bool:
    """Whether the caller did step 1: no ``weight_ih`` among the parameters, the input is ``x_proj``."""
    return "weight_ih" not in params


def parameter_grads(grad_x_proj: Tensor, grad_h_proj: Tensor, x: Tensor, grad_weight_hh: Tensor, extra: dict) -> dict:
    """Step 4: the weight and bias gradients as single GEMMs and sums over all N rows.

    grad_x_proj, grad_h_proj (N, G*H): dL/d(x W_ih^T + b_ih) and dL/d(h W_hh^T + b_hh); x (N, I),
    or None when the caller did step 1 (then its own autograd gives dW_ih and db_ih). Where both are one
    tensor (a cell whose ``b_hh`` is added beside ``b_ih``), the two bias gradients are one sum over the N
    rows, taken once (at the large benchmark size a (12800, 2048) column sum costs about 6 ms) and handed
    back for both: autograd gives each parameter its own copy of a gradient that two of them share.
    """
    grad_bias_hh = grad_h_proj.sum(0)
    grads = {"weight_hh": grad_weight_hh, "bias_hh": grad_bias_hh, **extra}
    if x is not None:
        grad_bias_ih = grad_bias_hh if grad_x_proj is grad_h_proj else grad_x_proj.sum(0)
        grads.update(weight_ih=grad_x_proj.t() @ x, bias_ih=grad_bias_ih)
    return grads


def input_gradient(grad_x_proj: Tensor, p: Params) -> Tensor:
    """dL/dx: ``grad_x_proj @ W_ih`` (N, I), or dL/d(x_proj) itself when the input was the projection."""
    return grad_x_proj if p.weight_ih is None else matmul(grad_x_proj, p.weight_ih)


def forward_steps(
    cell: Cell, x: Tensor, batch_sizes: list[int], state: tuple[Tensor, ...], params: dict, mask, keep: bool
):
    """Steps 1 and 2: ``(output (N, H), final state, each step's saved tensors, or [] without keep)``."""
    p = Params(params)
    reorder_step_weights(p, batch_sizes)
    x_proj = x if is_projected(params) else cell.input_projection(x, p)  # (N, G*H)
    return run_steps(cell, x_proj, batch_sizes, state, p, mask, keep=keep)


def projection_row_bytes(cell: Cell, x: Tensor, params: dict) -> int:
    """Bytes of one row of step 1's projection, G*H numbers; 0 where the caller projected the input."""
    return 0 if is_projected(params) else cell.num_gates * cell.hidden_size * x.element_size()


def needs_backward(*tensors: Tensor) -> bool:
    """Whether autograd will record this call: grad mode on and some input requiring a gradient.
    Where not (inference, ``torch.no_grad()``), the engines keep nothing for a backward."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


class FusedRecurrence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, cell: Cell, batch_sizes: list[int], names: list[str], mask, x, num_state: int, *tensors):
        state, params = tuple(tensors[:num_state]), dict(zip(names, tensors[num_state:]))
        output, final, saved = forward_steps(cell, x, batch_sizes, state, params, mask, keep=True)
        projected = is_projected(params)
        ctx.cell, ctx.batch_sizes, ctx.names, ctx.mask, ctx.num_state = cell, batch_sizes, names, mask, num_state
        ctx.steps = saved
        ctx.save_for_backward(None if projected else x, *tensors[num_state:])
        return (output, *final)

    @staticmethod
    @without_autocast
    def backward(ctx, grad_output: Tensor, *grad_final: Tensor):
        refuse_double_backward("fused")
        cell, batch_sizes, mask, steps = ctx.cell, ctx.batch_sizes, ctx.mask, ctx.steps
        x, *param_tensors = ctx.saved_tensors
        params = dict(zip(ctx.names, param_tensors))
        p = Params(params)
        B, H = batch_sizes[0], cell.hidden_size
        reorder_step_weights(p, batch_sizes)
        grad_final = [grad_output.new_zeros(B, H) if g is None else g for g in grad_final]
        grad_outputs = grad_output.split(batch_sizes)

        grad_x_proj = workspace.empty((grad_output.shape[0], cell.num_gates * H), grad_output)  # (N, G*H)
        grad_x_proj_steps = grad_x_proj.split(batch_sizes)
        grads_h_proj, grads_extra = [], {}
        rows = batch_sizes[-1]
        grad_state = tuple(g[:rows] for g in grad_final)
        for t in range(len(batch_sizes) - 1, -1, -1):
            b = batch_sizes[t]
            if b > rows:  # sequences whose last step is t: their final-state gradient enters here
                grad_state = tuple(torch.cat((g, g_final[rows:b])) for g, g_final in zip(grad_state, grad_final))
                rows = b
            grad_state = (grad_state[0] + grad_outputs[t], *grad_state[1:])
            out = grad_x_proj_steps[t]
            grad_x_proj_t, grad_h_proj, grad_state, grad_extra = cell.step_backward(
                grad_state, steps[t], p, None if mask is None else mask[:b], out=out
            )
            if grad_x_proj_t.data_ptr() != out.data_ptr():
                out.copy_(grad_x_proj_t)
            grads_h_proj.append(grad_h_proj)
            for name, g in grad_extra.items():
                grads_extra[name] = g if name not in grads_extra else grads_extra[name] + g

        # The weight gradients: single GEMMs over all N rows, in forward (packed) order.
        grad_h_proj = grad_x_proj if grads_h_proj[0] is None else torch.cat(grads_h_proj[::-1])
        grads = parameter_grads(grad_x_proj, grad_h_proj, x, cell.weight_hh_grad(grad_h_proj, steps), grads_extra)
        grad_x = input_gradient(grad_x_proj, p) if ctx.needs_input_grad[4] else None
        return (None, None, None, None, grad_x, None, *grad_state, *(grads[name] for name in ctx.names))


def run_fused(
    cell: Cell,
    x: Tensor,
    batch_sizes: list[int],
    state: tuple[Tensor, ...],
    params: dict[str, Tensor],
    mask: Tensor | None = None,
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Same contract as :func:`rnnkit.engine.reference.run_reference`, with hand-written BPTT."""
    if not cell.has_backward():
        raise ValueError(
            f"Cell {cell.name!r} has no step_backward, so the fused engine cannot run it. "
            "Use backend='reference' (or 'auto')."
        )
    if not needs_backward(x, *state, *params.values()):  # inference: no step's tensors are kept

        def run(x_chunk, sizes, state_chunk, mask_chunk):
            output, final, _ = forward_steps(cell, x_chunk, sizes, state_chunk, params, mask_chunk, keep=False)
            return output, final

        with torch.no_grad():  # as inside FusedRecurrence.forward: the steps' in-place paths
            return run_in_chunks(run, x, batch_sizes, state, mask, projection_row_bytes(cell, x, params))
    names = list(params)
    out, *final = FusedRecurrence.apply(cell, batch_sizes, names, mask, x, len(state), *state, *params.values())
    return out, tuple(final)
