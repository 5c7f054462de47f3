"""``rnnkit diagnose gradients``: how gradients flow back through time in untrained cells."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Diagnostics of recurrent layers: gradient flow through time.", no_args_is_help=True)


@app.command()
def gradients(
    cells: Annotated[str, typer.Option(help="Comma-separated cells of `rnnkit cells`.")] = "rnn_tanh,lstm,gru",
    T: Annotated[int, typer.Option("--T", help="Time steps of the input.")] = 100,
    hidden: Annotated[int, typer.Option(help="Hidden units.")] = 32,
    layers: Annotated[int, typer.Option(help="Stacked layers (the table shows the top layer).")] = 1,
    batch_size: Annotated[int, typer.Option(help="Sequences averaged over.")] = 16,
    loss: Annotated[str, typer.Option(help="'last': readout of h_T; 'sum': readout summed over all steps.")] = "last",
    vanishing: Annotated[float, typer.Option(help="Warn when norm(t=1)/norm(t=T) is below this.")] = 1e-3,
    exploding: Annotated[float, typer.Option(help="Warn when norm(t=1)/norm(t=T) is above this.")] = 1e3,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same output).")] = 0,
    out: Annotated[Path, typer.Option(help="Directory for gradient_flow.png and gradient_flow.csv.")] = Path(
        "runs/diagnose"
    ),
) -> None:
    """Norm of dLoss/dh_t per time step for each cell's untrained layer on the same random input
    (the adding problem's), with the fitted decay per step and the largest singular value of W_hh.

    Example: rnnkit diagnose gradients --cells rnn_tanh,lstm,gru --T 100 --hidden 32 --out runs/diagnose
    """
    import torch
    from rich.console import Console
    from rich.table import Table

    from ..diagnostics import gradient_flow, plot_gradient_flow
    from ..layers import Recurrent
    from ..tasks.memory import adding_batch

    names = [c.strip() for c in cells.split(",") if c.strip()]
    if not names:
        raise ValueError(f"Expected --cells as a comma-separated list such as rnn_tanh,lstm,gru. Received: {cells!r}")
    if T < 2:
        raise ValueError(f"Expected --T of at least 2 time steps. Received: {T}")
    x, _, _ = adding_batch(batch_size, T, torch.Generator().manual_seed(seed))  # (B, T, 2), all T steps used
    flows = {}
    for name in names:
        torch.manual_seed(seed)
        layer = Recurrent(name, x.shape[-1], hidden, num_layers=layers)
        flows[name] = gradient_flow(
            layer, x, loss=loss, vanishing_threshold=vanishing, exploding_threshold=exploding, seed=seed
        )

    table = Table(title=f"gradient flow, untrained layers, T={T}, H={hidden}, loss={loss}, seed={seed}")
    for column in ("cell", "norm t=1", f"norm t={T}", "ratio", "decay/step", "max σ(W_hh)", "warning"):
        table.add_column(column, justify="left" if column in ("cell", "warning") else "right")
    for name, flow in flows.items():
        norms = flow.top
        table.add_row(
            name, f"{norms[0]:.3g}", f"{norms[-1]:.3g}", f"{flow.ratio[-1]:.3g}", f"{flow.decay_per_step[-1]:.3f}",
            f"{flow.largest_singular_value():.3f}", ", ".join(sorted({w.split()[0] for w in flow.warnings})) or "-",
        )  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    png = plot_gradient_flow(flows, out / "gradient_flow.png")
    csv = out / "gradient_flow.csv"
    with csv.open("w") as f:
        f.write("cell,layer,t,grad_norm\n")
        for name, flow in flows.items():
            for index, row in enumerate(flow.norms.tolist()):
                f.writelines(f"{name},{index},{t + 1},{value:.6e}\n" for t, value in enumerate(row))
    console = Console()
    console.print(table)
    console.print(f"plot: {png}\nnorms per step: {csv}")
