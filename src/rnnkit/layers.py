"""``Recurrent``: any cell, stacked, in one or both directions, over sequences of any lengths.

The layer owns the parameters (named like PyTorch's: ``weight_ih_l0``, ``bias_hh_l1_reverse``)
and decides how to run them: torch's own kernels when they compute exactly this network,
else our engines.  It does no arithmetic of its own beyond dropout between layers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from .cells import Cell, get_cell_class
from .engine import ENGINES, reverse_index, run_native
from .engine.compiled import compiled_blocker, has_kernel, step_compiled

BACKENDS = ("auto", "native", "compiled", "fused", "reference")
StateArg = Tensor | tuple[Tensor, ...] | None


def autocast_dtype(device_type: str) -> torch.dtype | None:
    """The dtype autocast runs matrix products in on this device type, or None outside autocast.

    Example:
        >>> with torch.autocast("cpu", dtype=torch.bfloat16):
        ...     autocast_dtype("cpu")
        torch.bfloat16
        >>> autocast_dtype("cpu") is None
        True
    """
    return torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) else None


def autocast_engine(engine: Callable, device_type: str) -> Callable:
    """``engine`` as it runs under autocast: step 1, ``x W_ih^T``, is an ordinary autocast matmul (in
    bfloat16 or float16, so are its gradients dX and dW_ih), cast back to the parameters' dtype with
    the biases added there; the engine then runs steps 2-4 on that projection with autocast off, in
    the parameters' dtype (float32).  Same contract as the engine: x (N, I) packed, state tuple of
    (B, H), returns (output (N, H), final state).

    Example:
        >>> from rnnkit.cells import LSTM
        >>> from rnnkit.engine import run_fused
        >>> layer = Recurrent("lstm", 4, 8)
        >>> state = (torch.zeros(2, 8), torch.zeros(2, 8))
        >>> with torch.autocast("cpu", dtype=torch.bfloat16):
        ...     out, _ = autocast_engine(run_fused, "cpu")(LSTM(8), torch.randn(6, 4), [2, 2, 2], state,
        ...                                                  layer.layer_parameters(0))
        >>> out.shape, out.dtype
        (torch.Size([6, 8]), torch.float32)
    """

    def run(cell: Cell, x: Tensor, batch_sizes: list[int], state, params: dict[str, Tensor], mask=None):
        if type(cell).input_projection is not Cell.input_projection:  # a cell with its own step 1: all of it
            with torch.autocast(device_type, enabled=False):  # in the parameters' dtype
                return engine(cell, x, batch_sizes, state, params, mask)
        weight_ih, bias_ih, bias_hh = params["weight_ih"], params.get("bias_ih"), params.get("bias_hh")
        x_proj = (x @ weight_ih.t()).to(weight_ih.dtype)  # (N, G*H); the GEMM in the autocast dtype
        input_side = {"weight_ih"}
        if bias_ih is not None:
            folded = cell.fold_recurrent_bias
            x_proj = x_proj + (bias_ih + bias_hh if folded else bias_ih)
            input_side |= {"bias_ih", "bias_hh"} if folded else {"bias_ih"}
        rest = {name: tensor for name, tensor in params.items() if name not in input_side}
        with torch.autocast(device_type, enabled=False):
            return engine(cell, x_proj, batch_sizes, state, rest, mask)

    return run


class Recurrent(nn.Module):
    r"""A recurrent layer: ``num_layers`` stacked cells, each optionally bidirectional.

    With the same weights, ``Recurrent("lstm", ...)`` computes exactly what ``torch.nn.LSTM``
    does (and loads its ``state_dict``); likewise ``gru`` and ``rnn_tanh``/``rnn_relu``.  Every
    cell of :data:`rnnkit.CELLS` runs the same way; each cell's equations are in its docstring.
    The init differs in one place: LSTM-family cells start with forget-gate bias 1.0.

    Args:
        cell: a name from ``rnnkit.CELLS`` (``"lstm"``, ``"gru"``, ``"lstm_peephole"``, ...) or a
            :class:`rnnkit.cells.Cell` subclass.
        input_size: features per time step, ``I``.
        hidden_size: units per direction, ``H``.
        num_layers: stacked layers ``L``; layer k+1 reads layer k's output.
        bidirectional: add a reverse direction per layer (``D = 2``); outputs are concatenated.
        batch_first: input and output are ``(B, T, F)`` (default) instead of ``(T, B, F)``.
        dropout: dropout on the outputs of every layer but the last (as torch).
        recurrent_dropout: variational dropout on ``h`` where it enters the recurrence, one mask
            per sequence for all steps (Gal & Ghahramani 2016).
        backend: ``"auto"``, ``"native"``, ``"compiled"``, ``"fused"`` or ``"reference"``.
        **cell_options: passed to the cell, e.g. ``forget_bias=1.0``, ``recurrent_init="orthogonal"``,
            ``chrono_init=T_max`` (forget biases spread for dependencies up to T_max steps, Tallec &
            Ollivier 2018), ``activation="relu"`` for the plain RNN.

    ``backend="auto"`` uses ``native`` (torch's kernels, cuDNN on a GPU) when all hold:
        1. the cell is ``lstm``, ``gru``, ``rnn_tanh`` or ``rnn_relu``;
        2. ``recurrent_dropout == 0``.
    Otherwise ``compiled`` (hand-written BPTT with the time loops in C++, for the cells of
    rnnkit when the extension builds), else ``fused`` (the same BPTT with Python loops) when the
    cell has ``step_backward``, else ``reference``.  ``compiled`` runs CPU float32/float64
    tensors; on a GPU it runs the ``fused`` loops.  :meth:`explain` says which runs and why.

    Mixed precision: under ``torch.autocast`` (bfloat16 on a CPU, bfloat16 or float16 on a GPU)
    ``native`` is torch's kernel under autocast's own rules.  The other engines run the input
    projection ``x W_ih^T`` and its gradients (dX, dW_ih: the big GEMMs over all T*B rows) in the
    autocast dtype, and the time loop, its state and ``W_hh`` in the parameters' dtype (float32):
    the output is float32 and the parameters and their gradients stay float32.  The input may be
    in the autocast dtype.

    Shapes (batch_first=True):
        x: ``(B, T, I)`` or a ``PackedSequence``; lengths: ``(B,)`` integers in ``1..T``.
        state: ``(L*D, B, H)`` for single-state cells, ``(h, c)`` of that shape for LSTMs.
        output: ``(B, T, D*H)``, zero past each sequence's length (a ``PackedSequence`` for one).

    Example:
        >>> layer = Recurrent("lstm", input_size=8, hidden_size=16, num_layers=2, bidirectional=True)
        >>> out, (h, c) = layer(torch.randn(3, 5, 8), lengths=torch.tensor([5, 2, 4]))
        >>> out.shape, h.shape
        (torch.Size([3, 5, 32]), torch.Size([4, 3, 16]))
    """

    def __init__(
        self,
        cell: str | type[Cell],
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        batch_first: bool = True,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        backend: str = "auto",
        **cell_options: Any,
    ):
        super().__init__()
        cell_class = get_cell_class(cell) if isinstance(cell, str) else cell
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"Expected {name} a positive integer. Received: {name}={value!r}")
        for name, value in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not 0.0 <= value < 1.0:
                raise ValueError(f"Expected {name} in [0, 1). Received: {name}={value!r}")
        if backend not in BACKENDS:
            raise ValueError(f"Expected backend one of {set(BACKENDS)}. Received: backend={backend!r}")
        self.cell = cell_class(hidden_size, **cell_options)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bidirectional, self.batch_first = bidirectional, batch_first
        self.num_directions = 2 if bidirectional else 1
        self.dropout, self.recurrent_dropout = float(dropout), float(recurrent_dropout)
        self.backend = self._resolve_backend(backend)

        self._param_names: list[dict[str, str]] = []  # per layer-direction: base name -> attribute name
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * self.num_directions
            for direction in range(self.num_directions):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                names = {}
                for base, shape in self.cell.parameter_shapes(layer_input).items():
                    self.register_parameter(base + suffix, nn.Parameter(torch.empty(shape)))
                    names[base] = base + suffix
                self._param_names.append(names)
        self.reset_parameters()

    # ------------------------------------------------------------------ set-up
    def reset_parameters(self) -> None:
        """Re-initialise every layer-direction with the cell's initialisation."""
        for names in self._param_names:
            self.cell.reset_parameters({base: getattr(self, attr) for base, attr in names.items()})

    def _native_blocker(self) -> str | None:
        """Why torch's built-in kernels cannot compute this network exactly (None: they can)."""
        if self.cell.native_mode is None:
            return f"torch has no built-in {self.cell.name!r} cell"
        if self.recurrent_dropout > 0:
            return "torch's kernels have no recurrent dropout"
        return None

    def _resolve_backend(self, backend: str) -> str:
        blocker = self._native_blocker()
        if backend == "auto":
            if blocker is None:
                return "native"
            if compiled_blocker(self.cell) is None:
                return "compiled"
            return "fused" if self.cell.has_backward() else "reference"
        if backend == "native" and blocker is not None:
            raise ValueError(f"backend='native' cannot run this layer: {blocker}. Use backend='auto' or 'fused'.")
        if backend == "compiled" and not has_kernel(self.cell):
            raise ValueError(
                f"backend='compiled' has loops for rnnkit's own cells only, not {type(self.cell).__name__}. "
                "Use 'fused' or 'auto'."
            )
        if backend == "fused" and not self.cell.has_backward():
            raise ValueError(f"backend='fused' needs {type(self.cell).__name__}.step_backward. Use 'reference'.")
        return backend

    def explain(self) -> str:
        """One line: which backend runs and why (and, under autocast, in which precision)."""
        line = self._explain_backend()
        device_type = self.weight_ih_l0.device.type
        if self.backend != "native" and torch.is_autocast_enabled(device_type):
            dtype = str(torch.get_autocast_dtype(device_type)).removeprefix("torch.")
            line += f"; under autocast: the input projection and its gradients in {dtype}, the loop in float32"
        return line

    def _explain_backend(self) -> str:
        blocker = self._native_blocker()
        if self.backend == "native":
            return f"native: torch's {self.cell.native_mode} kernel computes exactly this layer (cuDNN on a GPU)"
        if self.backend == "compiled":
            why = blocker or "chosen explicitly"
            loops = compiled_blocker(self.cell)
            if loops is not None:
                return f"compiled, running the fused engine's Python loops because {loops} ({why})"
            return (
                "compiled: hand-written BPTT, one C++ call per direction for all time steps (per step one GEMM "
                "and one fused pointwise loop; each thread runs a block of whole sequences), single-GEMM "
                f"projections and weight gradients ({why}); GPU tensors run the fused loops"
            )
        if self.backend == "fused":
            why = blocker or "chosen explicitly"
            if self.cell.has_backward() and has_kernel(self.cell) and compiled_blocker(self.cell) is not None:
                why += f"; not compiled: {compiled_blocker(self.cell)}"
            return f"fused: hand-written BPTT with single-GEMM projections and weight gradients ({why})"
        why = "chosen explicitly" if self.cell.has_backward() else f"{self.cell.name!r} has no step_backward"
        return f"reference: autograd over a Python loop of the cell's step ({why})"

    def extra_repr(self) -> str:
        return (
            f"{self.cell.name!r}, {self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
            f"bidirectional={self.bidirectional}, batch_first={self.batch_first}, backend={self.backend!r}"
        )

    def layer_parameters(self, layer: int, direction: int = 0) -> dict[str, Tensor]:
        """One layer-direction's parameters by base name (``weight_ih``, ...)."""
        names = self._param_names[layer * self.num_directions + direction]
        return {base: getattr(self, attr) for base, attr in names.items()}

    # ------------------------------------------------------------------ forward
    def forward(
        self, x: Tensor | PackedSequence, state: StateArg = None, lengths: Tensor | None = None
    ) -> tuple[Tensor | PackedSequence, StateArg]:
        """Run the layer.  See the class docstring for shapes.  Returns ``(output, final_state)``."""
        packed_input = isinstance(x, PackedSequence)
        if packed_input:
            if lengths is not None:
                raise ValueError("Pass either a PackedSequence or lengths, not both.")
            data, batch_sizes, sorted_idx, unsorted_idx = x
            self._check_features(data.shape[-1], "PackedSequence data (N, I)")
            T, B = len(batch_sizes), int(batch_sizes[0])
        else:
            x = self._check_input(x)
            if self.batch_first:
                x = x.transpose(0, 1)  # (T, B, I)
            T, B = x.shape[0], x.shape[1]
            if lengths is not None:
                lengths = self._check_lengths(lengths, T, B)
            if lengths is None or bool((lengths == T).all()):
                data, batch_sizes, sorted_idx, unsorted_idx = x.reshape(T * B, -1), None, None, None
            else:
                data, batch_sizes, sorted_idx, unsorted_idx = pack_padded_sequence(x, lengths, enforce_sorted=False)

        state = self._check_state(state, B, data)
        if sorted_idx is not None:
            state = tuple(s.index_select(1, sorted_idx) for s in state)

        if self.backend == "native":
            out, final = self._forward_native(data, batch_sizes, state, T, B)
        else:
            sizes = [B] * T if batch_sizes is None else batch_sizes.tolist()
            out, final = self._forward_engine(data, sizes, state)

        if unsorted_idx is not None:
            final = tuple(s.index_select(1, unsorted_idx) for s in final)
        final_state = final if len(final) > 1 else final[0]
        if packed_input:
            return PackedSequence(out, batch_sizes, sorted_idx, unsorted_idx), final_state
        if batch_sizes is None:
            out = out.reshape(T, B, -1)
        else:
            out, _ = pad_packed_sequence(PackedSequence(out, batch_sizes, sorted_idx, unsorted_idx), total_length=T)
        return (out.transpose(0, 1) if self.batch_first else out), final_state

    def step(self, x: Tensor, state: StateArg = None) -> tuple[Tensor, StateArg]:
        """One time step through every layer, for generation: x (B, I) -> (output (B, H), final state).

        The same numbers as ``forward`` on a sequence of length 1 (up to float rounding), without
        its packing and per-call set-up: under ``torch.no_grad()``, for CPU float tensors, each
        layer is one input GEMM and one call of the compiled loop (``explain()``'s engine
        otherwise).  State as in ``forward``; unidirectional layers only.

        Example:
            >>> layer = Recurrent("lstm", 8, 16, num_layers=2).eval()
            >>> with torch.no_grad():
            ...     out, (h, c) = layer.step(torch.randn(3, 8))
            >>> out.shape, h.shape
            (torch.Size([3, 16]), torch.Size([2, 3, 16]))
        """
        if self.bidirectional:
            raise ValueError("step() runs one time step forward; a bidirectional layer needs the whole sequence.")
        if not isinstance(x, Tensor) or x.dim() != 2:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"Expected x of shape (B, I) with I={self.input_size}. Received {shape}.")
        if torch.is_grad_enabled() or torch.is_autocast_enabled(x.device.type) or compiled_blocker(self.cell, x):
            out, final = self.forward(x.unsqueeze(1 if self.batch_first else 0), state)
            return out.squeeze(1 if self.batch_first else 0), final
        self._check_features(x.shape[-1], f"shape {tuple(x.shape)}")
        B = x.shape[0]
        state = self._check_state(state, B, x)
        finals: list[list[Tensor]] = [[] for _ in state]
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout > 0 and self.training:
                x = nn.functional.dropout(x, self.dropout, True)
            out, final = step_compiled(
                self.cell, x, tuple(s[layer] for s in state), self.layer_parameters(layer), self._recurrent_mask(B, x)
            )
            for pieces, f in zip(finals, final):
                pieces.append(f)
            x = out
        final_state = tuple(torch.stack(pieces) for pieces in finals)
        return x, final_state if len(final_state) > 1 else final_state[0]

    def _forward_native(self, data, batch_sizes, state, T, B):
        flat = [w for names in self._param_names for w in (getattr(self, names[k]) for k in names)]
        x = data if batch_sizes is not None else data.view(T, B, -1)
        out, final = run_native(
            self.cell.native_mode, x, batch_sizes, state, flat,
            self.num_layers, self.dropout, self.training, self.bidirectional,
        )  # fmt: skip
        return (out if batch_sizes is not None else out.reshape(T * B, -1)), final

    def _forward_engine(self, data: Tensor, batch_sizes: list[int], state: tuple[Tensor, ...]):
        engine = ENGINES[self.backend]
        autocast = torch.is_autocast_enabled(data.device.type)
        if autocast:  # the recurrence runs in the parameters' dtype; only step 1 follows autocast
            dtype = self.weight_ih_l0.dtype
            engine = autocast_engine(engine, data.device.type)
            data, state = data.to(dtype), tuple(s.to(dtype) for s in state)
        B, D = batch_sizes[0], self.num_directions
        reverse = reverse_index(batch_sizes, data.device) if self.bidirectional else None
        finals: list[list[Tensor]] = [[] for _ in state]
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout > 0 and self.training:
                data = nn.functional.dropout(data, self.dropout, True)
            outputs = []
            for direction in range(D):
                index = layer * D + direction
                x = data if direction == 0 else data.index_select(0, reverse)
                mask = self._recurrent_mask(B, data)
                out, final = engine(
                    self.cell,
                    x,
                    batch_sizes,
                    tuple(s[index] for s in state),
                    self.layer_parameters(layer, direction),
                    mask,
                )
                outputs.append(out if direction == 0 else out.index_select(0, reverse))
                for pieces, f in zip(finals, final):
                    pieces.append(f)
            data = outputs[0] if D == 1 else torch.cat(outputs, 1)  # (N, D*H)
        return data, tuple(torch.stack(pieces) for pieces in finals)

    def _recurrent_mask(self, B: int, like: Tensor) -> Tensor | None:
        if not (self.training and self.recurrent_dropout > 0):
            return None
        keep = 1.0 - self.recurrent_dropout
        return torch.bernoulli(torch.full((B, self.hidden_size), keep, dtype=like.dtype, device=like.device)) / keep

    # ------------------------------------------------------------------ input checks
    def _check_features(self, features: int, what: str) -> None:
        if features != self.input_size:
            raise ValueError(
                f"Expected input of shape {self._input_shape()} with I={self.input_size} features. "
                f"Received {what} with {features} features."
            )

    def _input_shape(self) -> str:
        return "(B, T, I)" if self.batch_first else "(T, B, I)"

    def _check_input(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor):
            raise TypeError(f"Expected a Tensor or PackedSequence. Received: {type(x).__name__}")
        if x.dim() != 3:
            raise ValueError(
                f"Expected input of shape {self._input_shape()} with I={self.input_size}. "
                f"Received shape {tuple(x.shape)}."
            )
        self._check_features(x.shape[-1], f"shape {tuple(x.shape)}")
        weight = self.weight_ih_l0
        if x.device == weight.device and x.dtype == autocast_dtype(x.device.type):
            x = x.to(weight.dtype)  # under autocast, as torch's modules, take its dtype too
        if x.dtype != weight.dtype or x.device != weight.device:
            raise ValueError(
                f"Expected input of dtype {weight.dtype} on {weight.device}, like the layer's weights. "
                f"Received {x.dtype} on {x.device}: convert one of them (layer.to(x) or x.to(...))."
            )
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise ValueError(f"Expected a non-empty input of shape {self._input_shape()}. Received {tuple(x.shape)}.")
        return x

    @staticmethod
    def _check_lengths(lengths: Tensor, T: int, B: int) -> Tensor:
        lengths = torch.as_tensor(lengths)
        if lengths.dim() != 1 or lengths.shape[0] != B or lengths.is_floating_point():
            raise ValueError(
                f"Expected lengths of shape ({B},), integers, one per sequence. "
                f"Received shape {tuple(lengths.shape)}, dtype {lengths.dtype}."
            )
        lengths = lengths.to("cpu", torch.long)
        if bool((lengths < 1).any()) or bool((lengths > T).any()):
            raise ValueError(f"Expected every length in 1..T={T}. Received lengths={lengths.tolist()}.")
        return lengths

    def _check_state(self, state: StateArg, B: int, like: Tensor) -> tuple[Tensor, ...]:
        expected = (self.num_layers * self.num_directions, B, self.hidden_size)
        n = len(self.cell.state_names)
        if state is None:
            return tuple(torch.zeros(expected, dtype=like.dtype, device=like.device) for _ in range(n))
        tensors = (state,) if isinstance(state, Tensor) else tuple(state)
        form = "a (h, c) tuple" if n == 2 else "a tensor h"
        if len(tensors) != n or any(not isinstance(s, Tensor) or tuple(s.shape) != expected for s in tensors):
            shapes = [tuple(s.shape) if isinstance(s, Tensor) else type(s).__name__ for s in tensors]
            raise ValueError(f"Expected state as {form} of shape (L*D, B, H) = {expected}. Received shapes {shapes}.")
        return tensors
