"""Command-line options shared by the commands that generate text (same names, help and defaults)."""

from __future__ import annotations

from typing import Annotated

import typer

Temperature = Annotated[float, typer.Option(help="< 1 safer, > 1 wilder; 0 greedy.")]
TopK = Annotated[int, typer.Option(help="Sample among the k most likely (0: all).")]
TopP = Annotated[float, typer.Option(help="Sample within the smallest set of probability p.")]
RepetitionPenalty = Annotated[float, typer.Option(help="> 1 discourages repeats.")]
Seed = Annotated[int | None, typer.Option(help="Random seed (same seed, same output).")]
Num = Annotated[int, typer.Option(help="How many to write (one batch).")]
