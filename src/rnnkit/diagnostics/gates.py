r"""Gate behaviour: what the input, forget and output gates (reset and update for the GRU) do on data.

A gate is a sigmoid in (0, 1) that scales a signal unit by unit.  A forget gate near 1 keeps
the cell state, near 0 wipes it; a gate that sits below 0.1 or above 0.9 most of the time is
*saturated*: it acts as a switch, and its gradient ``σ(1 - σ)`` is small (Karpathy, Johnson &
Fei-Fei 2015, "Visualizing and Understanding Recurrent Networks", measure exactly these
fractions).  :func:`gate_activations` runs a ``rnnkit.Recurrent`` step by step through its own
cell equations (``cell.step`` with the layer's parameters, as ``layer`` itself computes) and
keeps every sigmoid gate the cell saves; :func:`gate_statistics` summarises them per layer and
gate, overall and per time step; the plots show them over time and over a text.

Only the sigmoid gates are kept (the fields of the cell's ``Saved`` tuple named ``*_gate``);
the tanh candidates (``cell_candidate``, ``candidate``) are not gates.  The plain RNN has none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

LOW, HIGH = 0.1, 0.9  # a gate below LOW or above HIGH counts as saturated


def gate_names(cell) -> tuple[str, ...]:
    """The sigmoid gates a cell (class or instance) saves, in its order: its ``Saved`` fields named ``*_gate``.

    Example:
        >>> from rnnkit.cells import CELLS
        >>> gate_names(CELLS["lstm"]), gate_names(CELLS["gru"]), gate_names(CELLS["rnn_tanh"])
        (('input_gate', 'forget_gate', 'output_gate'), ('reset_gate', 'update_gate'), ())
    """
    return tuple(name for name in getattr(cell.Saved, "_fields", ()) if name.endswith("_gate"))


def gated_cells() -> list[str]:
    """Names of the registered cells that have sigmoid gates."""
    from ..cells import CELLS

    return [name for name, cls in CELLS.items() if gate_names(cls)]


@dataclass
class GateActivations:
    """What :func:`gate_activations` recorded; every tensor is (B, T, H), zero past each length.

    Attributes:
        cell: the cell's name.
        gates: per layer, gate name -> (B, T, H) gate values.
        hidden: per layer, (B, T, H) hidden states h_t (the layer's output for the top layer).
        cell_state: per layer, (B, T, H) cell states c_t, or None for cells without one.
        lengths: (B,) valid steps per sequence.
    """

    cell: str
    gates: list[dict[str, Tensor]]
    hidden: list[Tensor]
    cell_state: list[Tensor] | None
    lengths: Tensor

    @property
    def gate_names(self) -> tuple[str, ...]:
        return tuple(self.gates[0])

    @property
    def num_layers(self) -> int:
        return len(self.hidden)

    @property
    def valid(self) -> Tensor:
        """(B, T) bool: step t of sequence b is part of it."""
        T = self.hidden[0].shape[1]
        return torch.arange(T, device=self.lengths.device).unsqueeze(0) < self.lengths.unsqueeze(1)


@torch.no_grad()
def run_cell(layer, x: Tensor, lengths: Tensor | None = None) -> GateActivations:
    """Run a unidirectional ``rnnkit.Recurrent`` step by step with its cell's equations and keep
    every step's gates and states, for any cell (a cell without gates gives empty ``gates`` dicts).

    Shapes as :func:`gate_activations`.  Runs as in eval mode: no dropout.
    """
    from ..cells.base import Params
    from .gradients import step_by_step_input

    x, lengths, valid = step_by_step_input(layer, x, lengths, "Gate activations are recorded for")
    B, T, _ = x.shape  # (B, T, I)

    cell, L, H = layer.cell, layer.num_layers, layer.hidden_size
    names = gate_names(cell)
    has_cell_state = "cell_state" in cell.state_names
    params = [Params(layer.layer_parameters(index)) for index in range(L)]
    states = [tuple(x.new_zeros(B, H) for _ in cell.state_names) for _ in range(L)]
    gates = [{name: x.new_zeros(B, T, H) for name in names} for _ in range(L)]
    hidden = [x.new_zeros(B, T, H) for _ in range(L)]
    cell_state = [x.new_zeros(B, T, H) for _ in range(L)] if has_cell_state else None
    for t in range(T):
        inp = x[:, t]  # (B, I)
        keep = valid[t].unsqueeze(1)  # (B, 1): this sequence is still running
        for index in range(L):
            x_proj = cell.input_projection(inp, params[index])  # (B, G*H)
            new_state, saved = cell.step(x_proj, states[index], params[index])
            states[index] = tuple(torch.where(keep, n, s) for n, s in zip(new_state, states[index]))
            for name in names:
                gates[index][name][:, t] = getattr(saved, name) * keep
            hidden[index][:, t] = new_state[0] * keep
            if cell_state is not None:
                cell_state[index][:, t] = new_state[cell.state_names.index("cell_state")] * keep
            inp = new_state[0]
    return GateActivations(cell.name, gates, hidden, cell_state, lengths)


def gate_activations(layer, x: Tensor, lengths: Tensor | None = None) -> GateActivations:
    """Every sigmoid gate of every layer at every step, from the layer's own cell equations, without grad.

    Args:
        layer: a unidirectional ``rnnkit.Recurrent`` with a gated cell (LSTM family, GRU); its
            weights are used as they are, without dropout.
        x: (B, T, I) input (``(T, B, I)`` when the layer is not ``batch_first``).
        lengths: (B,) valid steps per sequence, or None for all T.

    Returns:
        a :class:`GateActivations`: per layer and gate a (B, T, H) tensor; ``hidden[-1]`` equals
        the layer's output.

    Example:
        >>> import rnnkit
        >>> acts = gate_activations(rnnkit.Recurrent("lstm", 3, 8, num_layers=2), torch.randn(4, 20, 3))
        >>> acts.gate_names, acts.gates[1]["forget_gate"].shape
        (('input_gate', 'forget_gate', 'output_gate'), torch.Size([4, 20, 8]))
    """
    if not gate_names(layer.cell):
        raise ValueError(
            f"Expected a layer with a gated cell, one of {gated_cells()}. "
            f"Received: {layer.cell.name!r}, which has no sigmoid gates."
        )
    return run_cell(layer, x, lengths)


@dataclass
class GateStatistics:
    """Per layer and gate: the mean gate value and the fractions below ``low`` and above ``high``,
    over all valid (sequence, step, unit) entries and per time step.

    Attributes:
        cell: the cell's name.
        gates: gate names, in the order of the second axis.
        mean, frac_low, frac_high: (L, G) float64.
        mean_per_step, frac_low_per_step, frac_high_per_step: (L, G, T) float64, NaN at steps no
            sequence reaches.
        counts: (T,) sequences running at each step.
        low, high: the saturation thresholds.
    """

    cell: str
    gates: tuple[str, ...]
    mean: Tensor
    frac_low: Tensor
    frac_high: Tensor
    mean_per_step: Tensor
    frac_low_per_step: Tensor
    frac_high_per_step: Tensor
    counts: Tensor
    low: float = LOW
    high: float = HIGH

    def rows(self) -> list[dict]:
        """One dict per layer and gate: ``layer, gate, mean, frac_low, frac_high, frac_saturated``."""
        return [
            {
                "layer": index,
                "gate": gate,
                "mean": float(self.mean[index, g]),
                "frac_low": float(self.frac_low[index, g]),
                "frac_high": float(self.frac_high[index, g]),
                "frac_saturated": float(self.frac_low[index, g] + self.frac_high[index, g]),
            }  # fmt: skip
            for index in range(self.mean.shape[0])
            for g, gate in enumerate(self.gates)
        ]

    def write_csv(self, path: str | Path) -> Path:
        """``layer,gate,t,mean,frac_low,frac_high,sequences``: one row per step (``t`` from 1) and an
        ``all`` row per layer and gate with the overall figures."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w") as f:
            f.write("layer,gate,t,mean,frac_low,frac_high,sequences\n")
            for index in range(self.mean.shape[0]):
                for g, gate in enumerate(self.gates):
                    f.write(f"{index},{gate},all,{self.mean[index, g]:.6f},{self.frac_low[index, g]:.6f},"
                            f"{self.frac_high[index, g]:.6f},{int(self.counts.max())}\n")  # fmt: skip
                    for t in range(self.mean_per_step.shape[-1]):
                        f.write(
                            f"{index},{gate},{t + 1},{self.mean_per_step[index, g, t]:.6f},"
                            f"{self.frac_low_per_step[index, g, t]:.6f},{self.frac_high_per_step[index, g, t]:.6f},"
                            f"{int(self.counts[t])}\n"
                        )
        return path


def gate_statistics(activations: GateActivations, low: float = LOW, high: float = HIGH) -> GateStatistics:
    """Mean and saturated fractions (``< low``, ``> high``) of each gate, over the valid steps only.

    Overall figures weigh every valid (sequence, step, unit) entry equally; the per-step ones
    average over the sequences still running at that step.

    Example:
        >>> import rnnkit
        >>> acts = gate_activations(rnnkit.Recurrent("gru", 3, 8), torch.randn(4, 20, 3), torch.tensor([20, 5, 9, 1]))
        >>> stats = gate_statistics(acts)
        >>> stats.gates, stats.mean.shape, stats.mean_per_step.shape, stats.counts[:3].tolist()
        (('reset_gate', 'update_gate'), torch.Size([1, 2]), torch.Size([1, 2, 20]), [4, 3, 3])
    """
    if not 0.0 <= low < high <= 1.0:
        raise ValueError(f"Expected 0 <= low < high <= 1. Received: low={low}, high={high}")
    valid = activations.valid.double()  # (B, T)
    counts = valid.sum(0)  # (T,)
    L, G = activations.num_layers, len(activations.gate_names)
    T = valid.shape[1]
    H = activations.hidden[0].shape[-1]
    sums = torch.zeros(3, L, G, T, dtype=torch.float64)  # mean, low, high: sums over (B, H) per step
    for index, per_layer in enumerate(activations.gates):
        for g, values in enumerate(per_layer.values()):
            values = values.detach().double().cpu()  # (B, T, H)
            mask = valid.unsqueeze(-1)  # (B, T, 1)
            for k, indicator in enumerate((values, (values < low).double(), (values > high).double())):
                sums[k, index, g] = (indicator * mask).sum((0, 2))
    entries = counts * H  # (T,)
    per_step = sums / entries.where(entries > 0, torch.tensor(float("nan")))
    overall = sums.sum(-1) / entries.sum()
    return GateStatistics(
        activations.cell, activations.gate_names, overall[0], overall[1], overall[2],
        per_step[0], per_step[1], per_step[2], counts.long(), low, high,
    )  # fmt: skip


def _row_labels(stats: GateStatistics) -> list[str]:
    L = stats.mean.shape[0]
    return [
        (f"layer {index}: " if L > 1 else "") + gate.replace("_", " ") for index in range(L) for gate in stats.gates
    ]


def plot_gate_heatmaps(
    stats: GateStatistics, path: str | Path, title: str | None = None, xlabel: str = "time step t"
) -> Path:
    """Three heatmaps over time, rows = (layer, gate): the mean gate value, the fraction below
    ``low`` and the fraction above ``high``; colour 0..1.  Returns the PNG path.

    Example:
        >>> import tempfile, rnnkit
        >>> stats = gate_statistics(gate_activations(rnnkit.Recurrent("lstm", 3, 8), torch.randn(4, 12, 3)))
        >>> plot_gate_heatmaps(stats, Path(tempfile.mkdtemp()) / "g.png").stat().st_size > 1000
        True
    """
    from ..plots import _pyplot, _save

    plt = _pyplot()
    labels = _row_labels(stats)
    T = stats.mean_per_step.shape[-1]
    panels = (
        ("mean gate value", stats.mean_per_step, "viridis"),
        (f"fraction < {stats.low:g} (closed)", stats.frac_low_per_step, "Blues"),
        (f"fraction > {stats.high:g} (open)", stats.frac_high_per_step, "Reds"),
    )
    height = 0.9 + 0.32 * len(labels)
    fig, axes = plt.subplots(3, 1, figsize=(min(14, 4 + 0.12 * T), 3 * height + 0.6), dpi=100, sharex=True)
    for ax, (name, values, cmap) in zip(axes, panels):
        grid = values.reshape(len(labels), T).numpy()  # (L*G, T)
        image = ax.imshow(grid, aspect="auto", cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest",
                          extent=(0.5, T + 0.5, len(labels) - 0.5, -0.5))  # fmt: skip
        ax.set_yticks(range(len(labels)), labels, fontsize=9)
        ax.set_title(name, fontsize=10, loc="left")
        fig.colorbar(image, ax=ax, fraction=0.025, pad=0.01)
    axes[-1].set_xlabel(xlabel)
    headline = ", ".join(f"{label} {m:.2f}" for label, m in zip(labels, stats.mean.reshape(-1).tolist()))
    fig.suptitle(title or f"{stats.cell} gates over time (means: {headline})", fontsize=11)
    fig.tight_layout()
    return _save(fig, path)


# stand-ins for line-ending marks when no installed font has the text's glyphs (CJK)
_ASCII_MARKS = {"，": ",", "。": ".", "？": "?", "！": "!", "；": ";", "：": ":", "、": ",", "\n": "↵"}


def _font_with_glyphs(chars: str) -> str | None:
    """Path of an installed font that has every character of ``chars``, or None."""
    from matplotlib import font_manager, ft2font

    needed = {c for c in chars if not c.isspace()}
    for entry in font_manager.fontManager.ttflist:
        if "lastresort" in Path(entry.fname).name.lower():
            continue  # draws a placeholder box for every code point
        try:
            font = ft2font.FT2Font(entry.fname)
        except (OSError, RuntimeError):
            continue
        if all(font.get_char_index(ord(c)) for c in needed):
            return entry.fname
    return None


def plot_gate_trace(
    chars: str,
    values: Tensor,
    path: str | Path,
    units: Sequence[int] | None = None,
    gate: str = "forget_gate",
    line_breaks: str = "\n",
    title: str | None = None,
) -> Path:
    """One gate over a text: per character its mean over the units and the fractions of units
    above ``HIGH`` and below ``LOW``, and a heat strip of a few units under it.  Returns the PNG path.

    Args:
        chars: the text, one character per step (T characters).
        values: (T, H) gate values at each character (after reading it).
        units: the units of the strip; default the 8 that vary most over the text.
        gate: the gate's name, for the labels.
        line_breaks: characters drawn as dotted vertical lines (a verse's ``，。`` too).

    When no installed font has the text's characters (CJK without a CJK font), the x axis is
    labelled at the line breaks only, with ASCII stand-ins (``，`` as ``,``, newline as ``↵``).

    Example:
        >>> import tempfile
        >>> p = plot_gate_trace("ab\\ncd", torch.rand(5, 8), Path(tempfile.mkdtemp()) / "f.png")
        >>> p.stat().st_size > 1000
        True
    """
    from ..plots import _pyplot, _save

    values = values.detach().double().cpu()
    if values.dim() != 2 or values.shape[0] != len(chars):
        raise ValueError(
            f"Expected values of shape (T, H) with T={len(chars)} characters. Received: {tuple(values.shape)}"
        )
    T, H = values.shape
    if units is None:
        units = values.var(0).argsort(descending=True)[: min(8, H)].sort().values.tolist()
    plt = _pyplot()
    fig, (top, strip) = plt.subplots(
        2, 1, figsize=(min(18, 3 + 0.14 * T), 2.6 + 0.28 * len(units)), dpi=100, sharex=True,
        gridspec_kw={"height_ratios": [2.2, 0.3 * max(len(units), 1) + 0.4]},
    )  # fmt: skip
    steps = torch.arange(T).numpy()
    top.plot(steps, values.mean(1).numpy(), color="tab:blue", lw=1.6, label="mean over units")
    top.plot(steps, (values > HIGH).double().mean(1).numpy(), color="tab:red", lw=1, ls="--",
             label=f"fraction of units > {HIGH:g}")  # fmt: skip
    top.plot(steps, (values < LOW).double().mean(1).numpy(), color="navy", lw=1, ls=":",
             label=f"fraction of units < {LOW:g}")  # fmt: skip
    top.set_ylim(0, 1)
    top.set_ylabel(gate.replace("_", " "))
    top.grid(alpha=0.3)
    top.legend(loc="center left", ncol=3, fontsize=8, framealpha=0.8)
    image = strip.imshow(values[:, units].t().numpy(), aspect="auto", cmap="viridis", vmin=0, vmax=1,
                         interpolation="nearest", extent=(-0.5, T - 0.5, len(units) - 0.5, -0.5))  # fmt: skip
    strip.set_yticks(range(len(units)), [f"unit {u}" for u in units], fontsize=8)
    fig.colorbar(image, ax=[top, strip], fraction=0.02, pad=0.01)
    breaks = [t for t, c in enumerate(chars) if c in line_breaks]
    for ax in (top, strip):
        for t in breaks:
            ax.axvline(t, color="gray", lw=0.6, ls=":")
    font = _font_with_glyphs(chars)
    if font is not None and T <= 200:
        from matplotlib.font_manager import FontProperties

        strip.set_xticks(steps, [c if not c.isspace() else _ASCII_MARKS.get(c, "␣") for c in chars],
                         fontproperties=FontProperties(fname=font), fontsize=8)  # fmt: skip
    else:
        strip.set_xticks(breaks, [_ASCII_MARKS.get(chars[t], chars[t]) for t in breaks], fontsize=9)
        strip.set_xlabel("character (ticks: line breaks; the characters are in the HTML page)", fontsize=9)
    top.set_title(title or f"{gate.replace('_', ' ')} over a text, {T} characters", fontsize=11)
    return _save(fig, path)
