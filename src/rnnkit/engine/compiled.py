"""The compiled engine: the fused engine's BPTT with its time loops in C++ (``rnnkit/csrc/loops.cpp``).

Same four parts as ``fused`` (DESIGN.md, "Engine"); only the per-step work moves:

Forward:  1. x_proj = x @ W_ih^T + b for all N rows: one GEMM (here, in Python).
          2. ONE C++ call runs every step: one GEMM for h @ W_hh^T, then one loop over the rows
             of the step for all the cell's pointwise math (SIMD over units).
Backward: 3. ONE C++ call runs every step in reverse: the pointwise backward in one loop, one
             GEMM for the gradient to h_{t-1}.

The loops are parallel over sequences: each thread runs a block of whole sequences through all
the steps, with its own rows' per-step GEMMs single-threaded (float32 on oneDNN's brgemm
micro-kernel where torch has it, ``ops.brgemm_enabled()``), so there is one parallel region per
call, not one per step.
          4. dX, dW_ih, dW_hh, the biases and the extra parameters (peepholes, layer-norm gains)
             as single GEMMs or reductions over all N rows (here, in Python).

Where autograd records nothing (inference), steps 1 and 2 run a run of whole steps at a time
(``packing.run_in_chunks``): at most about 64 MB of input projection at once instead of all N
rows, and nothing kept for a backward.

The extension is built on first use with torch.utils.cpp_extension (g++ and ninja) and cached
under ``~/.cache/rnnkit`` (or ``$RNNKIT_CACHE``), keyed by the source, the torch version and the
CPU's vector extensions (it is built for this machine's CPU and never shipped).  ``rnnkit loops``
builds it ahead of time.  Where it cannot be built (no compiler), ``load_loops`` warns once and
returns None, and layers fall back to the ``fused`` engine's Python loops.

It runs CPU tensors in float32 and float64; anything else (a GPU, half precision) runs the
``fused`` engine.  The float32 sigmoid and tanh use a vectorisable exp accurate to about 1e-7.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..cells.base import Cell, Params
from ..cells.cifg import CIFGLSTM
from ..cells.gru import GRU, GRUv1
from ..cells.layernorm_lstm import EPS, LayerNormLSTM
from ..cells.lstm import LSTM
from ..cells.peephole import PeepholeLSTM
from ..cells.rnn import RNN, ReLURNN
from ..gemm import matmul, onednn_available, onednn_min_macs
from . import workspace
from .fused import (
    input_gradient,
    is_projected,
    needs_backward,
    parameter_grads,
    projection_row_bytes,
    refuse_double_backward,
    run_fused,
    without_autocast,
)
from .packing import run_in_chunks

SOURCE = Path(__file__).resolve().parent.parent / "csrc" / "loops.cpp"
# compiler flags per CPU capability that torch detected (torch.backends.cpu.get_cpu_capability())
VECTOR_FLAGS = {
    "AVX512": ["-mavx2", "-mfma", "-mavx512f", "-mavx512dq", "-mavx512vl", "-mavx512bw"],
    "AVX2": ["-mavx2", "-mfma"],
}
DTYPES = (torch.float32, torch.float64)

_lock = threading.Lock()
_state: dict[str, Any] = {"ops": None, "error": None, "tried": False}


# ---------------------------------------------------------------------------------------- building


def _capability() -> str:
    try:
        return torch.backends.cpu.get_cpu_capability()
    except (AttributeError, RuntimeError):
        return "DEFAULT"


def build_flags() -> list[str]:
    """The compiler flags: optimised, OpenMP for the row loops, no floating-point traps (which would keep
    the pointwise loops scalar; NaN still propagates, unlike -ffast-math), this CPU's vector extensions."""
    return ["-O3", "-fopenmp", "-fno-trapping-math", "-fno-math-errno", *VECTOR_FLAGS.get(_capability(), [])]


def build_name() -> str:
    """The extension's name: a hash of the source, the flags and the torch version (the cache key)."""
    key = hashlib.sha256(SOURCE.read_bytes())
    key.update(" ".join([*build_flags(), torch.__version__, sys.version.split()[0]]).encode())
    return f"rnnkit_loops_{key.hexdigest()[:16]}"


def cache_dir() -> Path:
    root = os.environ.get("RNNKIT_CACHE") or Path.home() / ".cache" / "rnnkit"
    return Path(root) / "loops"


def load_loops(verbose: bool = False) -> Any:
    """The compiled loops (``torch.ops.rnnkit_loops``), built on first call; None if they cannot be built.

    A failed build warns once with the reason (``loops_error()`` returns it) and is not retried in
    this process.

    Example:
        >>> ops = load_loops()
        >>> ops is None or hasattr(ops, "lstm_forward")
        True
    """
    with _lock:
        if _state["tried"]:
            return _state["ops"]
        _state["tried"] = True
        if os.environ.get("RNNKIT_NO_LOOPS"):
            _state["error"] = "RNNKIT_NO_LOOPS is set"
            return None
        try:
            _state["ops"] = _build(verbose)
        except Exception as error:  # any failure: no compiler, no ninja, a compile error
            reason = str(error).strip().splitlines()
            _state["error"] = f"{type(error).__name__}: {reason[-1] if reason else ''}"[:500]
            warnings.warn(
                f"rnnkit: the compiled time loops could not be built ({_state['error']}). Cells that torch has "
                "no kernel for run the fused engine's Python loops instead, slower at small sizes. "
                "`rnnkit loops` shows the build; it needs g++ and ninja.",
                RuntimeWarning,
                stacklevel=2,
            )
        return _state["ops"]


def direct_blas() -> bool:
    """Whether the loops call libtorch's BLAS directly (else ATen's addmm, a few microseconds more per step)."""
    ops = load_loops()
    return ops is not None and bool(ops.direct_blas())


def loops_error() -> str | None:
    """Why the compiled loops are not available (None when they are, or were never tried)."""
    return _state["error"]


def _build(verbose: bool) -> Any:
    from torch.utils.cpp_extension import load

    # ninja from PyPI lives beside this Python; the build finds it on PATH
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    name = build_name()
    directory = cache_dir() / name
    directory.mkdir(parents=True, exist_ok=True)
    load(name=name, sources=[str(SOURCE)], extra_cflags=build_flags(), extra_ldflags=["-fopenmp"],
         build_directory=str(directory), is_python_module=False, verbose=verbose)  # fmt: skip
    ops = torch.ops.rnnkit_loops
    ops.use_onednn(onednn_available(), onednn_min_macs())  # float32 per-step GEMMs: oneDNN where it is faster
    return ops


# ---------------------------------------------------------------------------------------- layout helpers


def _equal(sizes: list[int]) -> bool:
    return sizes[0] == sizes[-1]


def previous_rows(initial: Tensor, rows: Tensor, sizes: list[int]) -> Tensor:
    """(N, H): for every packed row, the state of the same sequence one step earlier
    (``initial`` for step 0).  ``rows`` is (N, H) in packed order."""
    B = sizes[0]
    if _equal(sizes):
        return torch.cat([initial, rows[: rows.shape[0] - B]])
    pieces, offset = [initial], 0
    for t in range(1, len(sizes)):
        pieces.append(rows[offset : offset + sizes[t]])
        offset += sizes[t - 1]
    return torch.cat(pieces)


def mask_rows(mask: Tensor | None, sizes: list[int]) -> Tensor | None:
    """(N, H): each packed row's recurrent dropout mask (the mask is per sequence, the same every step)."""
    if mask is None:
        return None
    if _equal(sizes):
        return mask.repeat(len(sizes), 1)
    return torch.cat([mask[:b] for b in sizes])


def recurrent_weight_grad(grad: Tensor, h0: Tensor, hs: Tensor, sizes: list[int], mask: Tensor | None) -> Tensor:
    """dL/dW for a weight applied to h_rec: ``grad^T @ h_rec`` over all N rows, (G*H, N) @ (N, H).

    With full batches and no dropout mask, h_rec is h0 and then hs shifted by one step, so two GEMMs
    on views do it without copying h_rec into an (N, H) matrix.
    """
    B = sizes[0]
    if mask is not None or not _equal(sizes):
        return grad.t() @ _recurrent_inputs(h0, hs, sizes, mask)
    return torch.addmm(grad[:B].t() @ h0, grad[B:].t(), hs[: hs.shape[0] - B])


def _recurrent_inputs(h0: Tensor, hs: Tensor, sizes: list[int], mask: Tensor | None) -> Tensor:
    """(N, H): h_rec of every row, the input of W_hh: the previous hidden state times its dropout mask."""
    h_prev = previous_rows(h0, hs, sizes)
    masks = mask_rows(mask, sizes)
    return h_prev if masks is None else h_prev * masks


# ---------------------------------------------------------------------------------------- kernels
# One class per cell family: what to hand the C++ loops and how to turn their results into the
# gradients of the parameters.  ``forward`` returns (output (N, H), final state, saved tensors);
# ``backward`` returns (grad_x_proj (N, G*H), grad_h_proj (N, G*H) or None, grad_state, extra grads).


class LSTMKernel:
    variants = {LSTM: 0, PeepholeLSTM: 1, CIFGLSTM: 2}

    def forward(self, ops, cell: Cell, x_proj: Tensor, bias, sizes: list[int], state, p: Params, mask):
        h0, c0 = state
        hs, cs, h_final, c_final = ops.lstm_forward(
            x_proj, bias, sizes, h0, c0, p.weight_hh, p.weight_peephole, mask, self.variants[type(cell)]
        )  # x_proj now holds the gate activations
        return hs, (h_final, c_final), (x_proj, hs, cs)

    def backward(self, ops, cell, grad_out, grad_final, saved, p, mask, sizes, state):
        gates, hs, cs = saved
        grad_gates, grad_peephole, grad_h0, grad_c0 = ops.lstm_backward(
            grad_out, *grad_final, gates, cs, state[1], sizes, p.weight_hh, p.weight_peephole, mask,
            self.variants[type(cell)], workspace.empty(gates.shape, gates),
        )  # fmt: skip  # the peephole gradient is summed over rows inside the loop
        extra = {} if p.weight_peephole is None else {"weight_peephole": grad_peephole}
        return grad_gates, None, (grad_h0, grad_c0), extra

    def weight_hh_grad(self, grad_h_proj, saved, sizes, state, mask):
        return recurrent_weight_grad(grad_h_proj, state[0], saved[1], sizes, mask)


class RNNKernel:
    def forward(self, ops, cell, x_proj, bias, sizes, state, p, mask):
        hs, h_final = ops.rnn_forward(x_proj, bias, sizes, state[0], p.weight_hh, mask, cell.activation_name == "relu")
        return hs, (h_final,), (hs,)

    def backward(self, ops, cell, grad_out, grad_final, saved, p, mask, sizes, state):
        grad_z, grad_h0 = ops.rnn_backward(grad_out, grad_final[0], saved[0], sizes, p.weight_hh, mask,
                                           cell.activation_name == "relu")  # fmt: skip
        return grad_z, None, (grad_h0,), {}

    def weight_hh_grad(self, grad_h_proj, saved, sizes, state, mask):
        return recurrent_weight_grad(grad_h_proj, state[0], saved[0], sizes, mask)


class GRUKernel:
    def forward(self, ops, cell, x_proj, bias, sizes, state, p, mask):
        hs, h_n, h_final = ops.gru_forward(x_proj, bias, sizes, state[0], p.weight_hh, p.bias_hh, mask)
        return hs, (h_final,), (x_proj, hs, h_n)

    def backward(self, ops, cell, grad_out, grad_final, saved, p, mask, sizes, state):
        gates, hs, h_n = saved
        grad_x_proj, grad_h_proj, grad_h0 = ops.gru_backward(
            grad_out, grad_final[0], gates, hs, h_n, state[0], sizes, p.weight_hh, mask,
            workspace.empty(gates.shape, gates), workspace.empty(gates.shape, gates),
        )  # fmt: skip
        return grad_x_proj, grad_h_proj, (grad_h0,), {}

    def weight_hh_grad(self, grad_h_proj, saved, sizes, state, mask):
        return recurrent_weight_grad(grad_h_proj, state[0], saved[1], sizes, mask)


class GRUv1Kernel:
    def forward(self, ops, cell, x_proj, bias, sizes, state, p, mask):
        hs, reset_h, h_final = ops.gru_v1_forward(x_proj, bias, sizes, state[0], p.weight_hh, mask)
        return hs, (h_final,), (x_proj, hs, reset_h)

    def backward(self, ops, cell, grad_out, grad_final, saved, p, mask, sizes, state):
        gates, hs, _ = saved
        grad_x_proj, grad_h0 = ops.gru_v1_backward(grad_out, grad_final[0], gates, hs, state[0], sizes, p.weight_hh,
                                                   mask, workspace.empty(gates.shape, gates))  # fmt: skip
        return grad_x_proj, None, (grad_h0,), {}

    def weight_hh_grad(self, grad_h_proj, saved, sizes, state, mask):
        """W_hr, W_hz multiply h_rec; W_hn multiplies r ⊙ h_rec: two GEMMs over all rows."""
        H = grad_h_proj.shape[1] // 3
        grad_w_rz = recurrent_weight_grad(grad_h_proj[:, : 2 * H], state[0], saved[1], sizes, mask)
        return torch.cat((grad_w_rz, grad_h_proj[:, 2 * H :].t() @ saved[2]))


class LayerNormLSTMKernel:
    def forward(self, ops, cell, x_proj, bias, sizes, state, p, mask):  # no bias: layer norm's β takes its place
        h0, c0 = state
        hs, cs, gate_stats, cell_stats, h_final, c_final = ops.layernorm_lstm_forward(
            x_proj, sizes, h0, c0, p.weight_hh, p.ln_gates_weight, p.ln_gates_bias, p.ln_cell_weight, p.ln_cell_bias,
            mask, EPS,
        )  # fmt: skip  # x_proj now holds the normalised pre-activations â
        return hs, (h_final, c_final), (x_proj, hs, cs, gate_stats, cell_stats)

    def backward(self, ops, cell, grad_out, grad_final, saved, p, mask, sizes, state):
        a_hat, hs, cs, gate_stats, cell_stats = saved
        grad_a, *sums, grad_h0, grad_c0 = ops.layernorm_lstm_backward(
            grad_out, *grad_final, a_hat, cs, state[1], gate_stats, cell_stats, sizes, p.weight_hh,
            p.ln_gates_weight, p.ln_gates_bias, p.ln_cell_weight, p.ln_cell_bias, mask,
            workspace.empty(a_hat.shape, a_hat),
        )  # fmt: skip  # the gains' and biases' gradients are summed over rows inside the loop
        names = ("ln_gates_weight", "ln_gates_bias", "ln_cell_weight", "ln_cell_bias")
        return grad_a, None, (grad_h0, grad_c0), dict(zip(names, sums))

    def weight_hh_grad(self, grad_h_proj, saved, sizes, state, mask):
        return recurrent_weight_grad(grad_h_proj, state[0], saved[1], sizes, mask)


KERNELS: dict[type[Cell], Any] = {
    LSTM: LSTMKernel(), PeepholeLSTM: LSTMKernel(), CIFGLSTM: LSTMKernel(), RNN: RNNKernel(), ReLURNN: RNNKernel(),
    GRU: GRUKernel(), GRUv1: GRUv1Kernel(), LayerNormLSTM: LayerNormLSTMKernel(),
}  # fmt: skip


def input_projection(cell: Cell, x: Tensor, p: Params) -> tuple[Tensor, Tensor | None]:
    """Step 1 without its bias: (x @ W_ih^T (N, G*H), the bias the loops add to each row (G*H,) or None).

    The bias is ``b_ih + b_hh`` where the cell folds ``b_hh`` in, ``b_ih`` for the GRU; adding it in the
    loops saves writing a broadcast (N, G*H) copy of it before the GEMM.
    """
    shape = (x.shape[0], p.weight_ih.shape[0])  # (N, G*H)
    # a kept buffer takes the product by mm (oneDNN's op cannot write into it); a small one, oneDNN where faster
    x_proj = matmul(x, p.weight_ih.t(), out=workspace.empty(shape, x) if workspace.keeps(shape, x) else None)
    if p.bias_ih is None:
        return x_proj, None
    return x_proj, p.bias_ih + p.bias_hh if cell.fold_recurrent_bias else p.bias_ih


def has_kernel(cell: Cell) -> bool:
    """Whether this exact cell class has compiled loops (a subclass with other equations has not)."""
    return type(cell) in KERNELS


# ---------------------------------------------------------------------------------------- the engine


class CompiledRecurrence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, ops, cell: Cell, batch_sizes: list[int], names: list[str], mask, x, num_state: int, *tensors):
        state = tuple(s.contiguous() for s in tensors[:num_state])
        params = dict(zip(names, tensors[num_state:]))
        out, final, saved = forward_compiled(ops, cell, Params(params), x, batch_sizes, state, mask)
        projected = is_projected(params)
        ctx.ops, ctx.cell, ctx.kernel, ctx.mask = ops, cell, KERNELS[type(cell)], mask
        ctx.batch_sizes, ctx.names = batch_sizes, names
        ctx.num_state, ctx.num_saved = num_state, len(saved)
        ctx.save_for_backward(None if projected else x, *state, *tensors[num_state:], *saved)
        return (out, *final)

    @staticmethod
    @without_autocast
    def backward(ctx, grad_output: Tensor, *grad_final: Tensor):
        refuse_double_backward("compiled")
        cell, kernel, sizes, mask = ctx.cell, ctx.kernel, ctx.batch_sizes, ctx.mask
        x, *rest = ctx.saved_tensors
        state = tuple(rest[: ctx.num_state])
        param_tensors = rest[ctx.num_state : len(rest) - ctx.num_saved]
        saved = tuple(rest[len(rest) - ctx.num_saved :])
        p = Params(dict(zip(ctx.names, param_tensors)))
        grad_final = tuple(torch.zeros_like(s) if g is None else g.contiguous() for g, s in zip(grad_final, state))
        if grad_output is None:
            grad_output = torch.zeros(sum(sizes), cell.hidden_size, dtype=state[0].dtype)
        grad_x_proj, grad_h_proj, grad_state, extra = kernel.backward(
            ctx.ops, cell, grad_output.contiguous(), grad_final, saved, p, mask, sizes, state
        )
        grad_h_proj = grad_x_proj if grad_h_proj is None else grad_h_proj
        grad_weight_hh = kernel.weight_hh_grad(grad_h_proj, saved, sizes, state, mask)
        grads = parameter_grads(grad_x_proj, grad_h_proj, x, grad_weight_hh, extra)
        grad_x = input_gradient(grad_x_proj, p) if ctx.needs_input_grad[5] else None
        return (None, None, None, None, None, grad_x, None, *grad_state, *(grads[name] for name in ctx.names))


def compiled_blocker(cell: Cell, x: Tensor | None = None) -> str | None:
    """Why the compiled loops cannot run this cell (on this input); None when they can."""
    if not has_kernel(cell):
        return f"no compiled loops for {type(cell).__name__}"
    if x is not None and (x.device.type != "cpu" or x.dtype not in DTYPES):
        return f"the compiled loops run float32/float64 CPU tensors, not {x.dtype} on {x.device.type}"
    if load_loops() is None:
        return f"the compiled loops could not be built ({loops_error()})"
    return None


def run_compiled(
    cell: Cell,
    x: Tensor,
    batch_sizes: list[int],
    state: tuple[Tensor, ...],
    params: dict[str, Tensor],
    mask: Tensor | None = None,
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Same contract as :func:`rnnkit.engine.fused.run_fused`, with the time loops compiled.

    Falls back to ``run_fused`` where the loops cannot run (a GPU tensor, half precision, no build).
    """
    if compiled_blocker(cell, x) is not None:
        return run_fused(cell, x, batch_sizes, state, params, mask)
    ops = load_loops()
    mask = None if mask is None else mask.contiguous()
    if not needs_backward(x, *state, *params.values()):  # inference: a run of whole steps at a time
        p = Params(params)

        def run(x_chunk, sizes, state_chunk, mask_chunk):
            output, final, _ = forward_compiled(ops, cell, p, x_chunk, sizes, state_chunk, mask_chunk)
            return output, final

        with torch.no_grad():
            return run_in_chunks(run, x, batch_sizes, state, mask, projection_row_bytes(cell, x, params))
    names = list(params)
    out, *final = CompiledRecurrence.apply(ops, cell, batch_sizes, names, mask, x, len(state), *state, *params.values())
    return out, tuple(final)


def forward_compiled(
    ops, cell: Cell, p: Params, x: Tensor, sizes: list[int], state: tuple[Tensor, ...], mask: Tensor | None
) -> tuple[Tensor, tuple[Tensor, ...], tuple[Tensor, ...]]:
    """Steps 1 and 2 of packed ``x``: (output (N, H), final state, what the backward loops need)."""
    if p.weight_ih is None:  # the caller did step 1, biases included; the loops overwrite their copy
        x_proj, bias = workspace.empty(x.shape, x).copy_(x), None
    else:
        x_proj, bias = input_projection(cell, x, p)  # (N, G*H), handed over to the loops
    state = tuple(s.contiguous() for s in state)
    return KERNELS[type(cell)].forward(ops, cell, x_proj, bias, sizes, state, p, mask)


def step_compiled(
    cell: Cell, x: Tensor, state: tuple[Tensor, ...], params: dict[str, Tensor], mask: Tensor | None = None
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """One time step without autograd, for generation: x (B, I) -> (h (B, H), new state).

    The input GEMM, then the compiled loop over a single step of B rows; the caller checks
    ``compiled_blocker`` and runs under ``torch.no_grad()``.
    """
    out, final, _ = forward_compiled(load_loops(), cell, Params(params), x, [x.shape[0]], state, mask)
    return out, final
