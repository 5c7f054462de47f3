r"""Gradient flow through time: the norm of dLoss/dh_t for every step t of every layer.

Backpropagation through time multiplies the gradient by one Jacobian dh_t/dh_{t-1} per step
back; when those products shrink (or grow) geometrically, early steps get almost no (or a huge)
learning signal: the vanishing and exploding gradient problems (Hochreiter 1991; Bengio et al.
1994; Pascanu et al. 2013).  :func:`gradient_flow` measures it on a given input:

* the layer is run step by step through its own cell equations (``cell.step`` with the layer's
  parameters, the autograd reference loop), and a zero *probe* ``p_t`` is added to every
  hidden output ``h_t`` of every layer; dLoss/dp_t is then exactly the total derivative
  dLoss/dh_t, through the recurrence *and* through the layers above;
* the loss is ``last``: a readout of the top layer's hidden state at each sequence's last valid
  step, or ``sum``: the readout summed over all valid steps; the readout is a fixed random
  linear map (seeded) unless a ``head`` is given.  The loss is summed over the batch, so each
  sequence's gradient is that of its own loss and does not depend on the batch size;
* ``norms[l, t]`` is the **mean over the batch of the per-sequence L2 norm** ``||dLoss/dh_t||``
  (over the H units), taken over the sequences still running at step t.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

LOSSES = ("last", "sum")


@dataclass
class GradientFlow:
    """What :func:`gradient_flow` measured.

    Attributes:
        cell: the cell's name.
        loss: ``"last"`` or ``"sum"``.
        norms: (L, T) float64, mean over the batch of ``||dLoss/dh_t||_2`` per layer and step.
        ratio: per layer, ``norms[l, 0] / norms[l, T-1]`` (first step over last step).
        decay_per_step: per layer, ``exp(-slope)`` of the least-squares line of ``log norm``
            against t: the factor the gradient norm is multiplied by per step *back* in time
            (0.93 means each earlier step gets 7% less; above 1 means it grows going back).
        singular_values: per layer, ``{"weight_hh": ..., <gate>: ...}``: singular values of
            W_hh (G*H, H) and of each gate's (H, H) block, descending.
        spectral_radius: per layer, ``{<gate>: max |eigenvalue|}`` of each gate's (H, H) block.
        warnings: ``"vanishing ..."`` / ``"exploding ..."`` lines, empty when neither.
    """

    cell: str
    loss: str
    norms: Tensor
    ratio: list[float]
    decay_per_step: list[float]
    singular_values: list[dict[str, Tensor]]
    spectral_radius: list[dict[str, float]]
    warnings: list[str] = field(default_factory=list)

    @property
    def top(self) -> Tensor:
        """(T,) norms of the top layer."""
        return self.norms[-1]

    def largest_singular_value(self, layer: int = -1) -> float:
        """Largest singular value of one layer's whole W_hh."""
        return float(self.singular_values[layer]["weight_hh"][0])


def recurrent_spectra(layer) -> tuple[list[dict[str, Tensor]], list[dict[str, float]]]:
    """Singular values and spectral radii of each layer's recurrent weights W_hh (first direction).

    Returns ``(singular_values, spectral_radius)``, one dict per layer: singular values of the
    whole ``weight_hh`` (G*H, H) under ``"weight_hh"`` and of each gate's (H, H) block under the
    gate's name; the spectral radius (largest |eigenvalue|) of each gate's block.

    Example:
        >>> import rnnkit
        >>> sv, rho = recurrent_spectra(rnnkit.Recurrent("gru", 2, 4))
        >>> sorted(sv[0]), sv[0]["weight_hh"].shape
        (['candidate', 'reset_gate', 'update_gate', 'weight_hh'], torch.Size([4]))
    """
    singular_values, radii = [], []
    H = layer.hidden_size
    for index in range(layer.num_layers):
        W_hh = layer.layer_parameters(index)["weight_hh"].detach().double()  # (G*H, H)
        values = {"weight_hh": torch.linalg.svdvals(W_hh)}
        rho = {}
        for gate, block in zip(layer.cell.gates, W_hh.split(H, 0)):  # (H, H) per gate
            values[gate] = torch.linalg.svdvals(block)
            rho[gate] = float(torch.linalg.eigvals(block).abs().max())
        singular_values.append(values)
        radii.append(rho)
    return singular_values, radii


def step_by_step_input(layer, x: Tensor, lengths: Tensor | None, what: str) -> tuple[Tensor, Tensor, Tensor]:
    """Check and ready the input of a diagnostic that runs ``layer`` one step at a time.

    Returns ``x`` as (B, T, I) in the layer's dtype and device, ``lengths`` (B,) (all T when
    None) and ``valid`` (T, B) bool; a bidirectional layer or a wrongly shaped ``x`` is a
    ``ValueError`` that starts with ``what`` / names the expected shape.

    Example:
        >>> import rnnkit
        >>> x, lengths, valid = step_by_step_input(rnnkit.Recurrent("gru", 3, 4), torch.randn(2, 5, 3), None, "")
        >>> tuple(x.shape), lengths.tolist(), tuple(valid.shape)
        ((2, 5, 3), [5, 5], (5, 2))
    """
    if layer.bidirectional:
        raise ValueError(f"{what} unidirectional layers. Received a bidirectional layer.")
    shape = "(B, T, I)" if layer.batch_first else "(T, B, I)"
    if not isinstance(x, Tensor) or x.dim() != 3 or x.shape[-1] != layer.input_size or 0 in x.shape:
        received = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(
            f"Expected x of shape {shape} with I={layer.input_size}, i.e. {shape.replace('I', str(layer.input_size))}. "
            f"Received: {received}"
        )
    weight = layer.layer_parameters(0)["weight_ih"]
    x = x.to(dtype=weight.dtype, device=weight.device)
    if not layer.batch_first:
        x = x.transpose(0, 1)
    B, T, _ = x.shape  # (B, T, I)
    if lengths is None:
        lengths = torch.full((B,), T, dtype=torch.long)
    lengths = layer._check_lengths(lengths, T, B).to(x.device)
    valid = torch.arange(T, device=x.device).unsqueeze(1) < lengths.unsqueeze(0)  # (T, B)
    return x, lengths, valid


def gradient_flow(
    layer,
    x: Tensor,
    lengths: Tensor | None = None,
    loss: str = "last",
    head: Callable[[Tensor], Tensor] | None = None,
    vanishing_threshold: float = 1e-3,
    exploding_threshold: float = 1e3,
    seed: int = 0,
) -> GradientFlow:
    """Norm of dLoss/dh_t for every time step t of every layer of a ``rnnkit.Recurrent``.

    Args:
        layer: a unidirectional ``rnnkit.Recurrent`` (any cell, any number of layers); it is
            run without dropout (as in eval mode) and its weights are not changed.
        x: (B, T, I) input (``(T, B, I)`` when the layer is not ``batch_first``).
        lengths: (B,) valid steps per sequence, or None for all T.
        loss: ``"last"`` (readout of h at each sequence's last valid step) or ``"sum"``
            (readout summed over all valid steps).
        head: maps the top layer's h (B, H) to a tensor whose sum is the loss; default a fixed
            random linear readout ``h @ w``, w ~ N(0, 1/H) drawn with ``seed``.
        vanishing_threshold / exploding_threshold: a warning when ``norms[l, 0] / norms[l, T-1]``
            is below / above them (for any layer l).
        seed: seeds the default readout.

    Returns:
        a :class:`GradientFlow` with ``norms`` of shape (L, T).

    Example:
        >>> import rnnkit
        >>> flow = gradient_flow(rnnkit.Recurrent("lstm", 3, 8, num_layers=2), torch.randn(4, 20, 3))
        >>> flow.norms.shape, len(flow.decay_per_step)
        (torch.Size([2, 20]), 2)
    """
    if loss not in LOSSES:
        raise ValueError(f"Expected loss one of {set(LOSSES)}. Received: loss={loss!r}")
    x, lengths, valid = step_by_step_input(layer, x, lengths, "gradient_flow measures")
    B, T, _ = x.shape  # (B, T, I)

    if head is None:
        generator = torch.Generator().manual_seed(seed)
        w = torch.randn(layer.hidden_size, generator=generator, dtype=torch.float64) / math.sqrt(layer.hidden_size)
        w = w.to(dtype=x.dtype, device=x.device)

        def head(h: Tensor) -> Tensor:
            return h @ w  # (B,)

    from ..cells.base import Params

    cell, L = layer.cell, layer.num_layers
    params = [Params(layer.layer_parameters(index)) for index in range(L)]
    # probes[l][t]: zeros (B, H) added to h_t of layer l; dLoss/dprobe = dLoss/dh_t
    probes = [[torch.zeros(B, layer.hidden_size, dtype=x.dtype, device=x.device, requires_grad=True)
               for _ in range(T)] for _ in range(L)]  # fmt: skip
    states = [
        tuple(torch.zeros(B, layer.hidden_size, dtype=x.dtype, device=x.device) for _ in cell.state_names)
        for _ in range(L)
    ]
    total = x.new_zeros(())
    with torch.enable_grad():
        for t in range(T):
            inp = x[:, t]  # (B, I)
            keep = valid[t].unsqueeze(1)  # (B, 1): this sequence is still running
            for index in range(L):
                x_proj = cell.input_projection(inp, params[index])  # (B, G*H)
                new_state, _ = cell.step(x_proj, states[index], params[index])
                h_t = new_state[0] + probes[index][t]  # (B, H)
                new_state = (h_t, *new_state[1:])
                states[index] = tuple(torch.where(keep, n, s) for n, s in zip(new_state, states[index]))
                inp = h_t
            if loss == "sum":
                readout = head(inp)  # (B, ...)
                total = total + (readout * _expand(valid[t], readout)).sum()
        if loss == "last":
            total = head(states[-1][0]).sum()  # the top layer's h at each sequence's last valid step
        flat = [p for per_layer in probes for p in per_layer]
        grads = torch.autograd.grad(total, flat, allow_unused=True)

    norms = torch.zeros(L, T, dtype=torch.float64)
    counts = valid.sum(1).clamp(min=1).cpu()  # (T,) running sequences per step
    for k, g in enumerate(grads):
        index, t = divmod(k, T)
        if g is not None:
            per_sequence = g.detach().double().norm(dim=1) * valid[t].double()  # (B,)
            norms[index, t] = per_sequence.sum().cpu() / counts[t]

    ratio = [_safe_ratio(float(n[0]), float(n[-1])) for n in norms]
    decay = [_decay_per_step(n) for n in norms]
    singular_values, radii = recurrent_spectra(layer)
    warnings = []
    for index, r in enumerate(ratio):
        where = f"layer {index}: " if L > 1 else ""
        if r < vanishing_threshold:
            warnings.append(f"vanishing ({where}first/last step norm {r:.2e} < {vanishing_threshold:g})")
        elif r > exploding_threshold:
            warnings.append(f"exploding ({where}first/last step norm {r:.2e} > {exploding_threshold:g})")
    return GradientFlow(cell.name, loss, norms, ratio, decay, singular_values, radii, warnings)


def _expand(mask: Tensor, like: Tensor) -> Tensor:
    """(B,) bool mask shaped to broadcast against the head's output (B, ...)."""
    return mask.to(like.dtype).reshape(-1, *([1] * (like.dim() - 1)))


def _safe_ratio(first: float, last: float) -> float:
    if last == 0.0:
        return math.inf if first > 0 else math.nan
    return first / last


def _decay_per_step(norms: Tensor) -> float:
    """exp(-slope) of the least-squares fit of log norm against t, over the steps with norm > 0."""
    t = torch.arange(len(norms), dtype=torch.float64)
    keep = norms > 0
    if int(keep.sum()) < 2:
        return math.nan
    t, y = t[keep], norms[keep].log()
    slope = ((t - t.mean()) * (y - y.mean())).sum() / ((t - t.mean()) ** 2).sum()
    return math.exp(-float(slope))


def plot_gradient_flow(flows: dict[str, GradientFlow], path: str | Path, title: str | None = None) -> Path:
    """Norm of dLoss/dh_t against t on a log scale, one line per flow (its top layer); returns the PNG path.

    Example:
        >>> import tempfile, rnnkit
        >>> x = torch.randn(2, 10, 3)
        >>> flows = {c: gradient_flow(rnnkit.Recurrent(c, 3, 8), x) for c in ("rnn_tanh", "lstm")}
        >>> plot_gradient_flow(flows, Path(tempfile.mkdtemp()) / "g.png").stat().st_size > 1000
        True
    """
    from ..plots import _pyplot, _save

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    loss = None
    for name, flow in flows.items():
        norms = flow.top.clamp(min=1e-300).numpy()
        steps = range(1, len(norms) + 1)
        label = f"{name}  ({flow.decay_per_step[-1]:.3g}/step back)"
        ax.semilogy(steps, norms, label=label, linewidth=1.6)
        loss = flow.loss
    ax.set_xlabel("time step t")
    ax.set_ylabel(r"mean $\|\partial \mathrm{loss} / \partial h_t\|$")
    where = "at the last step" if loss == "last" else "summed over steps"
    ax.set_title(title or f"gradient flow back through time (loss {where})")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=9)
    fig.tight_layout()
    return _save(fig, path)
