"""``rnnkit diagnose``: gradient flow through time in untrained cells; gates and hidden units of a
trained language model (``gates``, ``units``, and both at once: ``inside``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Diagnostics of recurrent layers: gradient flow through time, gate statistics, hidden units.",
    no_args_is_help=True,
)


@app.command()
def gradients(
    cells: Annotated[str, typer.Option(help="Comma-separated cells of `rnnkit cells` (untrained mode).")] = (
        "rnn_tanh,lstm,gru"
    ),
    T: Annotated[int, typer.Option("--T", help="Time steps of the input.")] = 100,
    hidden: Annotated[int, typer.Option(help="Hidden units (untrained mode).")] = 32,
    layers: Annotated[int, typer.Option(help="Stacked layers (untrained mode; the table shows the top layer).")] = 1,
    batch_size: Annotated[int, typer.Option(help="Sequences averaged over.")] = 16,
    loss: Annotated[str, typer.Option(help="'last': readout of h_T; 'sum': readout summed over all steps.")] = "last",
    run: Annotated[
        Path | None,
        typer.Option(help="A trained text or poetry run (or exported poetry model): measure its own layer and loss."),
    ] = None,
    text: Annotated[
        Path | None, typer.Option(help="With --run: a UTF-8 file to cut the sequences from instead of held-out data.")
    ] = None,
    poems: Annotated[int, typer.Option(help="With --run of a poetry model: held-out poems to cut them from.")] = 400,
    chars: Annotated[int, typer.Option(help="With --run of a text run: held-out characters to cut them from.")] = 20000,
    vanishing: Annotated[float, typer.Option(help="Warn when norm(t=1)/norm(t=T) is below this.")] = 1e-3,
    exploding: Annotated[float, typer.Option(help="Warn when norm(t=1)/norm(t=T) is above this.")] = 1e3,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same output).")] = 0,
    out: Annotated[Path, typer.Option(help="Directory for gradient_flow.png and gradient_flow.csv.")] = Path(
        "runs/diagnose"
    ),
) -> None:
    """Norm of dLoss/dh_t per time step, with the fitted decay per step and the largest singular value of W_hh.

    Untrained mode (no --run): each cell's freshly initialised layer on the same random input (the
    adding problem's), the loss a fixed random readout.  With --run: the trained language model's own
    recurrent layer on --batch-size windows of T+1 characters cut at random (seeded) from held-out
    text (a text run's test split, a poetry model's test poems run together) or from --text; the loss
    is the model's own: the cross-entropy of its next-character prediction after the T-th character
    (its output layer on h_T against the true character), so only --loss last applies.

    Example: rnnkit diagnose gradients --cells rnn_tanh,lstm,gru --T 100 --hidden 32 --out runs/diagnose
    Example: rnnkit diagnose gradients --run runs/text-20250101-120000 --T 200
    """
    import torch

    from ..diagnostics import gradient_flow
    from ..layers import Recurrent
    from ..tasks.memory import adding_batch

    if T < 2:
        raise ValueError(f"Expected --T of at least 2 time steps. Received: {T}")
    if run is not None:
        flows, title = _trained_flows(run, text, poems, chars, T, batch_size, loss, vanishing, exploding, seed)
        _report_flows(flows, title, out, "gradient flow of the next-character loss back through time")
        return
    if text is not None:
        raise ValueError(f"Expected --text together with --run (a trained model reads it). Received: --text {text}")
    names = [c.strip() for c in cells.split(",") if c.strip()]
    if not names:
        raise ValueError(f"Expected --cells as a comma-separated list such as rnn_tanh,lstm,gru. Received: {cells!r}")
    x, _, _ = adding_batch(batch_size, T, torch.Generator().manual_seed(seed))  # (B, T, 2), all T steps used
    flows = {}
    for name in names:
        torch.manual_seed(seed)
        layer = Recurrent(name, x.shape[-1], hidden, num_layers=layers)
        flows[name] = gradient_flow(
            layer, x, loss=loss, vanishing_threshold=vanishing, exploding_threshold=exploding, seed=seed
        )
    _report_flows(flows, f"gradient flow, untrained layers, T={T}, H={hidden}, loss={loss}, seed={seed}", out)


def _trained_flows(run: Path, text: Path | None, poems: int, chars: int, T: int, batch_size: int, loss: str,
                   vanishing: float, exploding: float, seed: int) -> tuple[dict, str]:  # fmt: skip
    """``({name: GradientFlow}, table title)`` of a trained language model's layer under its own last-step loss."""
    import torch
    import torch.nn.functional as F

    from ..diagnostics import gradient_flow

    if loss != "last":
        raise ValueError(
            f"Expected --loss last with --run (the model's loss on the character after the T-th). Received: {loss!r}"
        )
    model, vocab, kind, name = _load_language_model(run)
    texts, source = _texts(kind, run, vocab, text, poems, chars)
    ids = torch.tensor(vocab.encode("".join(texts)), dtype=torch.long)  # one stream: poems (or pieces) in a row
    if len(ids) < T + 1:
        raise ValueError(
            f"Expected at least T+1 = {T + 1} characters to cut windows from. Received: {len(ids)} in {source}; "
            "lower --T or give more --poems/--chars."
        )
    starts = torch.randint(0, len(ids) - T, (batch_size,), generator=torch.Generator().manual_seed(seed))
    windows = ids[starts[:, None] + torch.arange(T + 1)]  # (B, T+1)
    inputs, target = windows[:, :T], windows[:, T]  # (B, T) characters read, (B,) the one to predict next
    model.eval()
    x = model.embedding(inputs).detach()  # (B, T, E): what the recurrent layer reads

    def next_character_loss(h: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(model.scores(h), target, reduction="none")  # (B,) nats

    cell = model.config["cell"]
    flow = gradient_flow(model.rnn, x, head=next_character_loss, vanishing_threshold=vanishing,
                         exploding_threshold=exploding)  # fmt: skip
    label = f"{cell}-{model.config['hidden_size']} ({Path(name).name or name})"
    title = f"gradient flow of {name}: {batch_size} windows of {source}, T={T}, loss: next-character nats"
    return {label: flow}, title


def _report_flows(flows: dict, title: str, out: Path, plot_title: str | None = None) -> None:
    """Print the table of the top layer of each flow; write gradient_flow.png and gradient_flow.csv to ``out``."""
    from rich.console import Console
    from rich.table import Table

    from ..diagnostics import plot_gradient_flow

    T = next(iter(flows.values())).norms.shape[1]
    table = Table(title=title)
    for column in ("cell", "norm t=1", f"norm t={T}", "ratio", "decay/step", "max σ(W_hh)", "warning"):
        table.add_column(column, justify="left" if column in ("cell", "warning") else "right")
    for name, flow in flows.items():
        norms = flow.top
        table.add_row(
            name, f"{norms[0]:.3g}", f"{norms[-1]:.3g}", f"{flow.ratio[-1]:.3g}", f"{flow.decay_per_step[-1]:.3f}",
            f"{flow.largest_singular_value():.3f}", ", ".join(sorted({w.split()[0] for w in flow.warnings})) or "-",
        )  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    png = plot_gradient_flow(flows, out / "gradient_flow.png", plot_title)
    csv = out / "gradient_flow.csv"
    with csv.open("w") as f:
        f.write("cell,layer,t,grad_norm\n")
        for name, flow in flows.items():
            for index, row in enumerate(flow.norms.tolist()):
                f.writelines(f"{name},{index},{t + 1},{value:.6e}\n" for t, value in enumerate(row))
    console = Console()
    console.print(table)
    console.print(f"plot: {png}\nnorms per step: {csv}")


@app.command()
def training(
    run: Annotated[Path, typer.Option(help="A run directory of `fit` (with grad_norms.csv).")],
    out: Annotated[Path | None, typer.Option(help="Where to write grad_norms.png (default: RUN/plots).")] = None,
) -> None:
    """Global gradient norm of a training run per epoch (mean, max, fraction of steps clipped), and
    the per-step plot of the norm before and after clipping with the threshold.

    Example: rnnkit diagnose training --run runs/text-20250101-120000
    """
    from rich.console import Console
    from rich.table import Table

    from ..diagnostics.training import grad_norm_summary, plot_grad_norms, read_grad_norms
    from ..train import read_run_config

    clip_norm = float(read_run_config(run).get("train", {}).get("clip_norm", 0.0))
    rows = read_grad_norms(run)
    if not rows:
        raise ValueError(f"Expected at least one optimizer step in {str(run)!r}/grad_norms.csv. Received none.")
    threshold = f"clip norm {clip_norm:g}" if clip_norm else "no clipping"
    table = Table(title=f"gradient norm: {len(rows)} steps, {threshold}")
    for column in ("epoch", "steps", "mean norm", "max norm", "clipped"):
        table.add_column(column, justify="right")
    for s in grad_norm_summary(rows):
        table.add_row(str(s["epoch"]), str(s["steps"]), f"{s['mean_norm']:.4g}", f"{s['max_norm']:.4g}",
                      f"{s['clipped_fraction']:.1%}")  # fmt: skip
    png = plot_grad_norms(rows, (out or run / "plots") / "grad_norms.png", clip_norm)
    console = Console()
    console.print(table)
    console.print(f"plot: {png}")


RunOption = Annotated[
    Path | None,
    typer.Option(help="A poetry model or run directory, or a text run directory (default: the shipped poetry model)."),
]
TextOption = Annotated[
    Path | None,
    typer.Option(
        help="A UTF-8 file to read instead of the held-out data (poetry models: one poem per line).", exists=True
    ),
]
PoemsOption = Annotated[int, typer.Option(help="Held-out poems to measure on (poetry models).")]
CharsOption = Annotated[int, typer.Option(help="Characters of held-out text to measure on (text models).")]
OutOption = Annotated[Path, typer.Option(help="Directory for the files written.")]


def _load_language_model(run: Path | None):
    """``(model, vocab, kind, name)``: the shipped poetry model, a poetry model/run, or a text run."""
    from ..export import read_language_model

    if run is None:
        from ..tasks.poetry import load_model

        poetry = load_model()
        return poetry.model, poetry.vocab, "poetry", "the shipped poetry model"
    source = read_language_model(run)
    return source.model, source.vocabulary(), source.task, str(run)


def _texts(kind: str, run: Path | None, vocab, text: Path | None, poems: int, chars: int, form: int = 0):
    """``(texts, description)``: sequences run from the zero state each (a poem, or a piece of text).

    Held-out poems with a character outside the model's vocabulary are skipped (a rare character
    seen only in the test split); a ``--text`` file must be all in the vocabulary.
    """
    if poems < 1 or chars < 1:
        raise ValueError(f"Expected --poems and --chars of at least 1. Received: --poems {poems}, --chars {chars}")
    if kind == "poetry":
        from ..decoding import POEM_SEPARATOR

        if text is not None:
            lines = [line.strip() for line in text.read_text(encoding="utf-8").splitlines() if line.strip()]
            return [POEM_SEPARATOR + line for line in lines[:poems]], f"{min(poems, len(lines))} poems of {text}"
        from ..data.poetry import load_tang, poem_form
        from ..tasks.poetry import poem_sequence, split_poems

        test = [p for p in split_poems(load_tang())[2] if all(c in vocab for c in p.text())]
        if form:
            test = [p for p in test if (poem_form(p) or (0,))[0] == form]
        chosen = test[:poems]
        what = f"{form}-character " if form else ""
        # poem_sequence ends with the newline the model predicts last; as input it reads all but that
        return [poem_sequence(p)[:-1] for p in chosen], f"{len(chosen)} held-out {what}poems"
    if text is not None:
        body, source = text.read_text(encoding="utf-8")[:chars], str(text)
    else:
        from ..data.corpus import TokenCorpus

        corpus = TokenCorpus.open(run / "corpus")
        body, source = corpus.vocab.decode(corpus.split()[2][:chars]), "the run's held-out test text"
    pieces = [body[i : i + 256] for i in range(0, len(body), 256)]
    return pieces, f"{len(body)} characters of {source} in pieces of 256"


def _table(title: str, columns: list[str]):
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="left" if column in ("gate", "feature", "layer") else "right")
    return table


def _run_gates(run, text, poems, chars, form, out: Path, console) -> None:
    import torch

    from ..diagnostics.gates import gate_activations, gate_statistics, plot_gate_heatmaps, plot_gate_trace
    from ..diagnostics.units import VERSE_BREAKS, coloured_text_html, encode_texts

    model, vocab, kind, name = _load_language_model(run)
    texts, source = _texts(kind, run, vocab, text, poems, chars, form)
    with torch.no_grad():
        ids, lengths = encode_texts(texts, vocab)
        acts = gate_activations(model.rnn, model.embedding(ids), lengths)
    stats = gate_statistics(acts)
    out.mkdir(parents=True, exist_ok=True)
    csv = stats.write_csv(out / "gate_statistics.csv")
    xlabel = "character of the poem (1: the opening newline)" if kind == "poetry" else "character of the piece"
    heatmaps = plot_gate_heatmaps(
        stats, out / "gate_heatmaps.png", xlabel=xlabel,
        title=f"{acts.cell} gates of {name} over {source}",
    )  # fmt: skip

    # one gate over a short text: the forget gate (the GRU's update gate: how much of h it keeps)
    gate = "forget_gate" if "forget_gate" in acts.gate_names else "update_gate"
    if gate not in acts.gate_names:
        gate = acts.gate_names[0]
    shown = texts[:2] if kind == "poetry" else texts[:1]
    top = acts.gates[-1][gate]  # (B, T, H), top layer
    values = torch.cat([top[b, : len(t)] for b, t in enumerate(shown)])  # (T', H)
    chars_shown = "".join(shown)
    line_breaks = VERSE_BREAKS if kind == "poetry" else "\n"
    units = values.var(0).argsort(descending=True)[:6].sort().values.tolist()
    label = gate.replace("_", " ")
    what = f"{len(shown)} held-out poems" if kind == "poetry" and text is None else f"{len(chars_shown)} characters"
    trace = plot_gate_trace(chars_shown, values, out / f"{gate}_text.png", units=units, gate=gate,
                            line_breaks=line_breaks, title=f"{label} of {name} (top layer) over {what}")  # fmt: skip
    rows = [(f"mean {label} over the {values.shape[1]} units", values.mean(1))]
    rows += [(f"unit {u}", values[:, u]) for u in units]
    page = coloured_text_html(
        chars_shown, rows, out / f"{gate}_text.html", f"{label} of {name}", value_range=(0.0, 1.0),
        intro=f"Each character coloured by the {label} after reading it (top layer): red near 1 (keeps "
        f"the memory), blue near 0 (forgets). The units shown vary most over this text.",
    )  # fmt: skip

    table = _table(
        f"{acts.cell} gates of {name}: {source}",
        ["layer", "gate", "mean", f"< {stats.low:g}", f"> {stats.high:g}", "saturated"],
    )
    for row in stats.rows():
        table.add_row(
            str(row["layer"]), row["gate"], f"{row['mean']:.3f}", f"{row['frac_low']:.1%}",
            f"{row['frac_high']:.1%}", f"{row['frac_saturated']:.1%}",
        )  # fmt: skip
    console.print(table)
    console.print(f"heatmaps: {heatmaps}\n{label} over a text: {trace}, {page}\nstatistics per step: {csv}")


def _run_units(run, text, poems, chars, show, top_k, which, out: Path, console) -> None:
    from ..diagnostics.units import FEATURES, VERSE_BREAKS, feature_tracks, find_units, unit_activations, units_html

    model, vocab, kind, name = _load_language_model(run)
    texts, source = _texts(kind, run, vocab, text, poems, chars)
    chars_all, acts = unit_activations(model, texts, vocab, which)
    line_breaks = VERSE_BREAKS if kind == "poetry" else "\n"
    matches = find_units(acts, feature_tracks(texts, line_breaks=line_breaks), top_k=top_k)

    chosen, seen = [], set()
    for found in matches.values():
        if found[0].unit not in seen:
            chosen.append(found[0])
            seen.add(found[0].unit)
    shown = texts[:show]
    n = sum(len(t) for t in shown)
    out.mkdir(parents=True, exist_ok=True)
    constant = [k for k in FEATURES if k not in matches]
    breaks = "newline and the verse marks ，。" if kind == "poetry" else "newline"
    intro = (
        f"{name}, {'cell state c' if which == 'cell' else 'hidden state h'} of the top layer after each "
        f"character. Units found by their correlation (Pearson r) with each feature over {source}; "
        f"shown on the first {len(shown)} of them. Line breaks: {breaks}."
        + (f" Constant over this text, so not searched: {', '.join(constant)}." if constant else "")
    )
    page = units_html(chars_all[:n], acts[:n], chosen, out / "units.html", f"hidden units of {name}", intro)
    csv = out / "units.csv"
    with csv.open("w") as f:
        f.write("feature,rank,unit,correlation\n")
        for feature, found in matches.items():
            f.writelines(f"{feature},{rank + 1},{m.unit},{m.correlation:.4f}\n" for rank, m in enumerate(found))

    table = _table(f"units of {name} ({which} state) by |r| with each feature, over {source}",
                   ["feature", "unit", "r", "next units (r)"])  # fmt: skip
    for feature, found in matches.items():
        rest = ", ".join(f"{m.unit} ({m.correlation:+.2f})" for m in found[1:])
        table.add_row(feature, str(found[0].unit), f"{found[0].correlation:+.3f}", rest or "-")
    console.print(table)
    if constant:
        console.print(f"constant over this text (not searched): {', '.join(constant)}")
    console.print(f"page: {page}\nunits per feature: {csv}")


@app.command()
def gates(
    run: RunOption = None,
    text: TextOption = None,
    poems: PoemsOption = 300,
    chars: CharsOption = 20000,
    form: Annotated[int, typer.Option(help="Only poems of 5- or 7-character lines (0: all).")] = 0,
    out: OutOption = Path("runs/diagnose"),
) -> None:
    """Gate statistics of a trained language model on held-out data: mean and saturated fractions
    (< 0.1, > 0.9) of each gate per layer, overall and per time step (gate_heatmaps.png,
    gate_statistics.csv), and the forget gate over a short text (forget_gate_text.png/.html).

    Example: rnnkit diagnose gates --poems 300 --out runs/diagnose
    """
    from rich.console import Console

    if form not in (0, 5, 7):
        raise ValueError(f"Expected --form 0, 5 or 7. Received: {form}")
    _run_gates(run, text, poems, chars, form, out, Console())


@app.command()
def units(
    run: RunOption = None,
    text: TextOption = None,
    poems: Annotated[int, typer.Option(help="Held-out poems to search the units on (poetry models).")] = 200,
    chars: CharsOption = 20000,
    show: Annotated[int, typer.Option(help="Poems (or 256-character pieces) shown in units.html.")] = 8,
    top_k: Annotated[int, typer.Option(help="Units listed per feature.")] = 3,
    which: Annotated[str, typer.Option(help="'hidden' (h) or 'cell' (c, LSTM family).")] = "hidden",
    out: OutOption = Path("runs/diagnose"),
) -> None:
    """Hidden units that track features of the text (position in the line, line number, inside
    brackets or quotes, after punctuation): units.html colours the text by each unit found,
    units.csv lists the top units per feature.

    Example: rnnkit diagnose units --poems 200 --show 8 --out runs/diagnose
    """
    from rich.console import Console

    if show < 1 or top_k < 1:
        raise ValueError(f"Expected --show and --top-k of at least 1. Received: --show {show}, --top-k {top_k}")
    _run_units(run, text, poems, chars, show, top_k, which, out, Console())


@app.command()
def inside(
    run: RunOption = None,
    form: Annotated[int, typer.Option(help="Gate statistics on poems of 5- or 7-character lines (0: all).")] = 7,
    out: OutOption = Path("runs/inside"),
) -> None:
    """Gates and hidden units of a language model in one go (the shipped poetry model by default):
    what `gates` and `units` write, with their defaults, into one directory.  The gate statistics
    use poems of one form (--form, default 7), so that step t is the same place in a line of
    every poem; the units are searched on poems of all forms.

    Example: rnnkit diagnose inside --out docs/inside
    """
    from rich.console import Console

    if form not in (0, 5, 7):
        raise ValueError(f"Expected --form 0, 5 or 7. Received: {form}")
    console = Console()
    _run_gates(run, None, 300, 20000, form, out, console)
    _run_units(run, None, 200, 20000, 8, 3, "hidden", out, console)
