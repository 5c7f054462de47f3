"""What every cell is: a gate layout, its parameters, one step forward and the same step backward.

A cell never loops over time; an engine (``rnnkit.engine``) does.  The engine hands a cell
the input projection of one time step, ``x_proj = x_t @ W_ih^T + b`` (computed for all steps
in one GEMM), the previous state and the parameters, and the cell returns the new state and
what its backward step needs.  ``step_backward`` is the same equations differentiated by
hand: backpropagation through time, one step at a time.

Conventions (shapes):
    B  rows active at this step (sequences are sorted by length, longest first)
    H  hidden size, G  number of gate chunks (LSTM 4, GRU 3, RNN 1)
    x_proj (B, G*H)   state: tuple of (B, H)   mask: (B, H) or None (variational recurrent dropout)
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, NamedTuple

import torch
from torch import Tensor

from ..gemm import Prepacked, matmul, prepack

State = tuple[Tensor, ...]


class Params:
    """Attribute access to one layer-direction's parameters: ``p.weight_hh``, ``p.bias_ih``.

    Missing optional parameters (``bias_ih`` of a cell without biases) read as ``None``.
    """

    def __init__(self, tensors: dict[str, Tensor | None]):
        self.__dict__.update(tensors)

    def __getattr__(self, name: str) -> None:  # only called when the attribute is absent
        if name.startswith("__"):
            raise AttributeError(name)
        return None


def step_weight(p: Params, name: str, weight: Tensor) -> Tensor | Prepacked:
    """A right-hand side that every step of one engine call multiplies by: ``W_hh^T`` (H, G*H), ``W_hh``
    or their blocks. Where the engine asks for it (``p.reorder_rows``, the call's batch: the fused engine
    sets it for calls of enough steps to repay a reorder), it is reordered for oneDNN's matmul at the
    first step (:func:`rnnkit.gemm.prepack`) and kept on ``p`` under ``name`` for the other steps; ``p``
    lives for one call, so an optimizer's update is never missed. Otherwise, and where oneDNN does not
    run the product (float64, autograd through the weight, a small product), ``weight`` itself.

    >>> p = Params({"weight_hh": torch.randn(1024, 256)})
    >>> p.reorder_rows = 64
    >>> step_weight(p, "W_hh^T", p.weight_hh.t()) is step_weight(p, "W_hh^T", p.weight_hh.t())
    True
    """
    if p.reorder_rows is None:
        return weight
    kept = p.__dict__.setdefault("_step_weights", {})
    if name not in kept:
        kept[name] = prepack(weight, p.reorder_rows)
    return kept[name]


class GateScales(NamedTuple):
    """Per-column scales of :func:`activate_gates_`, each (G*H,)."""

    k: Tensor  # 1 for a σ gate, 2 for a tanh chunk
    k_squared: Tensor


class Cell:
    """Base class of all cells.  Subclasses set the class attributes and write the equations.

    Class attributes:
        name: registry name (``"lstm"``).
        gates: names of the gate chunks, in the row order of ``weight_ih``/``weight_hh``; a cell
            with a ``"forget_gate"`` takes the option ``forget_bias`` (default 1.0).
        state_names: names of the state tensors; the first is always the hidden state ``h``.
        native_mode: torch's name for the identical built-in cell (``"LSTM"``), or None.
        uses_bias: whether the cell has ``bias_ih``/``bias_hh``.
        fold_recurrent_bias: ``bias_hh`` is added once to the input projection of all steps
            instead of in every step (exact whenever ``b_hh`` is only ever added to ``W_hh h``).
    """

    name: ClassVar[str] = ""
    gates: ClassVar[tuple[str, ...]] = ()
    state_names: ClassVar[tuple[str, ...]] = ("hidden",)
    native_mode: ClassVar[str | None] = None
    uses_bias: ClassVar[bool] = True
    fold_recurrent_bias: ClassVar[bool] = True
    Saved: ClassVar[type] = NamedTuple  # per-cell NamedTuple with at least the field ``h_rec``

    def __init__(
        self,
        hidden_size: int,
        *,
        recurrent_init: str = "uniform",
        forget_bias: float | None = None,
        chrono_init: int | None = None,
        **options: Any,
    ):
        if recurrent_init not in ("uniform", "orthogonal"):
            raise ValueError(
                "Expected recurrent_init one of {'uniform', 'orthogonal'}. "
                f"Received: recurrent_init={recurrent_init!r}"
            )
        if options:
            raise TypeError(f"{type(self).__name__} got unknown options {sorted(options)}")
        if forget_bias is not None and "forget_gate" not in self.gates:
            raise ValueError(f"forget_bias applies to cells with a forget gate; {self.name!r} has gates {self.gates}.")
        if chrono_init is not None:
            if "forget_gate" not in self.gates:
                raise ValueError(
                    f"chrono_init applies to cells with a forget gate; {self.name!r} has gates {self.gates}."
                )
            if forget_bias is not None:
                raise ValueError("Expected forget_bias or chrono_init, not both: chrono_init sets the forget bias.")
            if isinstance(chrono_init, bool) or not isinstance(chrono_init, int) or chrono_init < 3:
                raise ValueError(
                    "Expected chrono_init as the longest dependency in steps, an integer of at least 3. "
                    f"Received: chrono_init={chrono_init!r}"
                )
        self.hidden_size = hidden_size
        self.recurrent_init = recurrent_init
        self.forget_bias = 1.0 if forget_bias is None else float(forget_bias)
        self.chrono_init = chrono_init

    # ------------------------------------------------------------------ parameters
    @property
    def num_gates(self) -> int:
        return len(self.gates)

    def extra_parameters(self) -> dict[str, tuple[int, ...]]:
        """Parameters beyond ``weight_ih, weight_hh, bias_ih, bias_hh``: name -> shape."""
        return {}

    def parameter_shapes(self, input_size: int) -> dict[str, tuple[int, ...]]:
        """All parameter shapes of one layer-direction, with PyTorch's base names."""
        gh = self.num_gates * self.hidden_size
        shapes = {"weight_ih": (gh, input_size), "weight_hh": (gh, self.hidden_size)}
        if self.uses_bias:
            shapes.update(bias_ih=(gh,), bias_hh=(gh,))
        shapes.update(self.extra_parameters())
        return shapes

    @torch.no_grad()
    def reset_parameters(self, params: dict[str, Tensor]) -> None:
        """PyTorch's default init, U(-1/sqrt(H), 1/sqrt(H)) for every tensor; optional
        orthogonal recurrent blocks; a cell with a forget gate starts it open (Gers et al. 2000,
        Jozefowicz et al. 2015): total bias ``forget_bias`` (in ``bias_ih``, ``bias_hh`` zero)."""
        H = self.hidden_size
        bound = 1.0 / math.sqrt(H)
        for tensor in params.values():
            tensor.uniform_(-bound, bound)
        if self.recurrent_init == "orthogonal":
            for block in params["weight_hh"].split(H, 0):  # one (H, H) block per gate
                torch.nn.init.orthogonal_(block)
        if self.uses_bias:
            for gate, bias in self.initial_gate_biases().items():
                rows = slice(self.gates.index(gate) * H, (self.gates.index(gate) + 1) * H)
                params["bias_ih"][rows] = bias
                params["bias_hh"][rows] = 0.0

    def initial_gate_biases(self) -> dict[str, Tensor]:
        """The gates whose bias starts at a set value: gate name -> (H,) bias.

        * ``forget_bias`` b: the forget gate starts at σ(b) (b = 1 keeps about 73% of the cell
          state per step: a memory of a few steps).
        * ``chrono_init`` T_max (Tallec & Ollivier 2018, "Can recurrent neural networks warp
          time?"): forget bias ``log(u)`` with ``u ~ U(1, T_max - 1)`` per unit, so the units'
          characteristic forgetting times 1/(1 - f) ≈ u spread over 1..T_max; the input gate's
          bias is its negative (an open forget gate writes little).  Drawn from torch's RNG.
        """
        H = self.hidden_size
        if "forget_gate" not in self.gates:
            return {}
        if self.chrono_init is None:
            return {"forget_gate": torch.full((H,), self.forget_bias)}
        forget = torch.empty(H).uniform_(1.0, self.chrono_init - 1).log()  # (H,)
        biases = {"forget_gate": forget}
        if "input_gate" in self.gates:
            biases["input_gate"] = -forget
        return biases

    # ------------------------------------------------------------------ the engine's interface
    def input_projection(self, x: Tensor, p: Params) -> Tensor:
        """``x @ W_ih^T + b_ih (+ b_hh when folded)`` for all N rows at once: (N, I) -> (N, G*H)."""
        if p.bias_ih is None:
            return matmul(x, p.weight_ih.t())
        bias = p.bias_ih + p.bias_hh if self.fold_recurrent_bias else p.bias_ih
        return matmul(x, p.weight_ih.t(), bias)

    def gate_preactivations(self, x_proj: Tensor, h_rec: Tensor, p: Params) -> Tensor:
        """``x_proj + h_rec @ W_hh^T`` as one GEMM (for cells whose ``b_hh`` is folded)."""
        return matmul(h_rec, step_weight(p, "W_hh^T", p.weight_hh.t()), x_proj)

    def recurrent_projection(self, h_rec: Tensor, p: Params) -> Tensor:
        """``h @ W_hh^T`` (plus ``b_hh`` unless it was folded into the input projection)."""
        weight = step_weight(p, "W_hh^T", p.weight_hh.t())
        if p.bias_hh is None or self.fold_recurrent_bias:
            return matmul(h_rec, weight)
        return matmul(h_rec, weight, p.bias_hh)

    def hidden_gradient(self, grad_h_proj: Tensor, p: Params, mask: Tensor | None) -> Tensor:
        """dL/dh_{t-1} through the recurrent GEMM: ``grad_h_proj @ W_hh`` (B, G*H) @ (G*H, H),
        times the dropout mask."""
        weight = step_weight(p, "W_hh", p.weight_hh)
        return self.recurrent_input_backward(matmul(grad_h_proj, weight), mask)

    @staticmethod
    def recurrent_input(h_prev: Tensor, mask: Tensor | None) -> Tensor:
        """The previous hidden state as the recurrence sees it (variational dropout, Gal 2016)."""
        return h_prev if mask is None else h_prev * mask

    @staticmethod
    def recurrent_input_backward(grad_h_rec: Tensor, mask: Tensor | None) -> Tensor:
        return grad_h_rec if mask is None else grad_h_rec * mask

    def step(self, x_proj: Tensor, state: State, p: Params, mask: Tensor | None = None) -> tuple[State, Any]:
        """One time step: ``(x_proj (B, G*H), state) -> (new_state, saved)``."""
        raise NotImplementedError

    def step_backward(
        self, grad_state: State, saved: Any, p: Params, mask: Tensor | None = None, out: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None, State, dict[str, Tensor]]:
        """The step backwards.  Given dL/d(new_state) returns
        ``(grad_x_proj (B, G*H), grad_h_proj (B, G*H) or None if equal to grad_x_proj,
        grad_prev_state, grads of extra parameters summed over the batch)``.

        ``out``, when given, is the (B, G*H) slice of the engine's buffer for all steps'
        ``grad_x_proj``: a cell may write there (``torch.cat(..., out=out)``) to save a copy.

        A cell without ``step_backward`` still works with the ``reference`` engine.
        """
        raise NotImplementedError

    def gate_scales(self, like: Tensor) -> GateScales:
        """The scales k for :func:`activate_gates_` over all gate chunks, in order: k = 1 for a σ
        gate, 2 for the tanh ``cell_candidate``; (G*H,) each, in the dtype and on the device of
        ``like``, made once."""
        key = (like.dtype, like.device)
        cache = self.__dict__.setdefault("_gate_scales", {})
        if key not in cache:
            k = torch.tensor([2.0 if gate == "cell_candidate" else 1.0 for gate in self.gates], dtype=like.dtype)
            k = k.repeat_interleave(self.hidden_size).to(like.device)  # (G*H,)
            cache[key] = GateScales(k, k * k)
        return cache[key]

    def weight_hh_grad(self, grad_h_proj: Tensor, saved: list[Any]) -> Tensor:
        """dL/dW_hh as one GEMM over all N rows: ``G_h^T @ h_rec``, (G*H, N) @ (N, H)."""
        h_rec = torch.cat([s.h_rec for s in saved])  # (N, H)
        return grad_h_proj.t() @ h_rec

    @classmethod
    def has_backward(cls) -> bool:
        return cls.step_backward is not Cell.step_backward

    def __repr__(self) -> str:
        return f"{type(self).__name__}(hidden_size={self.hidden_size})"


def sigmoid_grad(grad: Tensor, s: Tensor, out: Tensor | None = None) -> Tensor:
    """``grad ⊙ σ'(z)``, with σ'(z) = s ⊙ (1 - s) written from the output s = σ(z) (one kernel,
    written into ``out`` when given)."""
    if out is None:
        return torch.ops.aten.sigmoid_backward(grad, s)
    return torch.ops.aten.sigmoid_backward.grad_input(grad, s, grad_input=out)


def activate_gates_(z: Tensor, scales: GateScales) -> Tensor:
    """σ(k z) in place of the gate pre-activations ``z`` (B, G*H), returned: every gate in one
    sigmoid kernel.  For a σ gate (k = 1) that is the gate itself; for a tanh chunk (k = 2) it is
    the s of ``tanh(z) = 2σ(2z) - 1``, and the cell takes ``2s - 1``.

    One sigmoid over all G*H columns costs less than three strided sigmoids and a tanh: torch's
    CPU tanh kernel is the slow one (39 µs against 11 µs for sigmoid on (64, 256), AVX-512).  In
    float32, 2σ(2z) - 1 is within 2e-7 of torch.tanh.  ``z`` must be a tensor no one else needs
    (the fresh output of the gate GEMM).

    >>> from rnnkit import CELLS
    >>> cell = CELLS["lstm"](hidden_size=1)
    >>> s = activate_gates_(torch.tensor([[0.0, 0.0, 1.0, 0.0]]), cell.gate_scales(torch.zeros(1)))
    >>> round(2 * s[0, 2].item() - 1, 6) == round(math.tanh(1.0), 6)
    True
    """
    return torch.sigmoid_(z.mul_(scales.k))


def tanh_from_sigmoid(z: Tensor) -> Tensor:
    """``tanh(z)`` as ``2σ(2z) - 1`` on the CPU, ``torch.tanh`` elsewhere (a fresh tensor; ``z`` is not
    changed; autograd goes through it).

    torch's CPU tanh kernel is the slow one of the two: on (64, 256) float32 with 2 threads (AVX-512)
    it took 35 µs contiguous and 75 µs on a column slice of a (64, 1024) gate block, where these four
    kernels take about 20-30 µs either way. In float32 the two agree within 2e-7. Without autograd it
    allocates one tensor, not three: three had raised the fused engine's peak memory at the large
    benchmark size by 15-26 MB (the freed two left a hole in the heap each step). On a GPU, where a
    step's small kernels cost their launch more than their arithmetic, one tanh kernel beats three.

    >>> z = torch.linspace(-5, 5, 11)
    >>> torch.allclose(tanh_from_sigmoid(z), torch.tanh(z), atol=1e-6)
    True
    """
    if z.device.type != "cpu":
        return torch.tanh(z)
    s = torch.sigmoid_(z * 2)  # one fresh tensor; in place from here on where autograd does not need σ(2z)
    return (s.mul(2) if torch.is_grad_enabled() else s.mul_(2)).sub_(1)


def activate_gates_backward(grad: Tensor, s: Tensor, scales: GateScales, out: Tensor | None = None) -> Tensor:
    """dL/dz for :func:`activate_gates_`, given ``grad`` (B, G*H): dL/d(gate) for the σ gates and
    dL/d(2s - 1) for the tanh chunks.  Both are ``grad ⊙ k² s (1 - s)`` (for a tanh chunk,
    d(2σ(2z) - 1)/dz = 4σ'(2z)); written into ``out`` when given."""
    return sigmoid_grad(grad, s, out=out).mul_(scales.k_squared)


def tanh_grad(grad: Tensor, t: Tensor, out: Tensor | None = None) -> Tensor:
    """``grad ⊙ tanh'(z)``, with tanh'(z) = 1 - t² written from the output t = tanh(z) (one kernel,
    written into ``out`` when given)."""
    if out is None:
        return torch.ops.aten.tanh_backward(grad, t)
    return torch.ops.aten.tanh_backward.grad_input(grad, t, grad_input=out)
