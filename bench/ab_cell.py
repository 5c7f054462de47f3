"""Paired A/B of one cell's fused speed: the cell's file at a git revision against the working tree.

    python bench/ab_cell.py lstm_layernorm                 # HEAD's cell file against yours, medium, 30 rounds
    python bench/ab_cell.py lstm --rev HEAD~3 --size large --rounds 40

On a busy 2-core machine one `rnnkit bench cells` run moves by ±10-20%, more than most single changes
to a cell. This script times, in one process and in alternation, `torch.nn.LSTM`, the cell as it was
at ``--rev`` and the cell as it is now, each a warm forward+backward of ``out.sum()`` on the fused
engine, and prints the median over rounds of each round's ratios (each round's own `nn.LSTM` run is
the reference). Only the cell's own module (``src/rnnkit/cells/<module>.py``) comes from the revision;
``cells/base.py``, the engine and the products are the working tree's for both sides, so a change
there needs another comparison (toggle it in one process).

It first checks that both give the same outputs and gradients (printing the largest differences).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

import torch

from rnnkit.bench.cells import SIZES, timed_calls
from rnnkit.cells import CELLS, register
from rnnkit.layers import Recurrent

REPO = Path(__file__).resolve().parent.parent


def cell_at_revision(cell: str, rev: str) -> str:
    """Register the cell class from ``rev``'s copy of its module under a new name; return that name."""
    module_name = CELLS[cell].__module__  # rnnkit.cells.lstm
    path = f"src/{module_name.replace('.', '/')}.py"
    source = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=REPO, capture_output=True, text=True, check=False)
    if source.returncode != 0:
        raise SystemExit(f"git show {rev}:{path} failed: {source.stderr.strip()}")
    module = types.ModuleType(f"{module_name}_at_{abs(hash(rev))}")
    module.__package__ = "rnnkit.cells"
    sys.modules[module.__name__] = module
    exec(compile(source.stdout, f"{rev}:{path}", "exec"), module.__dict__)
    old = next(v for v in vars(module).values() if isinstance(v, type) and getattr(v, "name", None) == cell)
    name = f"{cell}@{rev}"
    register(old, name)
    return name


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cell", choices=sorted(CELLS))
    parser.add_argument("--rev", default="HEAD")
    parser.add_argument("--size", default="medium", help=f"one of {sorted(SIZES)} or T,B,I,H")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    T, B, I, H = SIZES[args.size] if args.size in SIZES else (int(v) for v in args.size.split(","))
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    old_name = cell_at_revision(args.cell, args.rev)
    x = torch.randn(B, T, I, requires_grad=True)
    layers = {
        "nn.LSTM": torch.nn.LSTM(I, H, batch_first=True),
        args.rev: Recurrent(old_name, I, H, backend="fused"),
        "working tree": Recurrent(args.cell, I, H, backend="fused"),
    }
    layers[args.rev].load_state_dict(layers["working tree"].state_dict())

    compared = (args.rev, "working tree")
    outputs = [layers[key](x)[0] for key in compared]
    grads = [torch.autograd.grad(out.sum(), [x, *layers[key].parameters()]) for out, key in zip(outputs, compared)]
    out_diff = (outputs[0] - outputs[1]).abs().max().item()
    grad_diff = max((a - b).abs().max().item() for a, b in zip(*grads))
    print(f"{args.cell} {args.rev} vs working tree, T={T} B={B} I={I} H={H}, {args.threads} threads")
    print(f"largest difference: output {out_diff:.3g}, gradients {grad_diff:.3g}")

    runs = {key: timed_calls(layer, x)[1] for key, layer in layers.items()}  # forward+backward
    for run in runs.values():
        run()
    times: dict[str, list[float]] = {key: [] for key in runs}
    for _ in range(args.rounds):
        for key, run in runs.items():
            start = time.perf_counter()
            run()
            times[key].append(time.perf_counter() - start)
    reference = times["nn.LSTM"]
    result = {
        "old_over_lstm": statistics.median(o / r for o, r in zip(times[args.rev], reference)),
        "new_over_lstm": statistics.median(n / r for n, r in zip(times["working tree"], reference)),
        "new_over_old": statistics.median(n / o for n, o in zip(times["working tree"], times[args.rev])),
    }
    medians = ", ".join(f"{key} {statistics.median(values) * 1e3:.1f} ms" for key, values in times.items())
    print(f"medians over {args.rounds} rounds: {medians}")
    print(
        f"per-round ratios (median): {args.rev} / nn.LSTM {result['old_over_lstm']:.3f}, "
        f"working tree / nn.LSTM {result['new_over_lstm']:.3f}, working tree / {args.rev} {result['new_over_old']:.3f}"
    )
    return result


if __name__ == "__main__":
    main()
