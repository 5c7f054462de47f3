"""The cell zoo: each cell's equations, forward and backward, in one file.

``CELLS`` maps a name to its class; ``register`` adds your own.  A registered cell needs only
``step``; with ``step_backward`` too it also runs on the fast ``fused`` engine.

>>> from rnnkit.cells import CELLS
>>> sorted(CELLS)[:3]
['gru', 'gru_v1', 'lstm']
"""

from __future__ import annotations

from .base import Cell, Params
from .cifg import CIFGLSTM
from .gru import GRU, GRUv1
from .layernorm_lstm import LayerNormLSTM
from .lstm import LSTM
from .peephole import PeepholeLSTM
from .rnn import RNN, ReLURNN

CELLS: dict[str, type[Cell]] = {}


def register(cell_class: type[Cell], name: str | None = None) -> type[Cell]:
    """Add a cell class to ``CELLS`` under ``name`` (default: its ``name`` attribute).

    Usable as a decorator::

        @rnnkit.cells.register
        class MyCell(rnnkit.cells.Cell):
            name = "my_cell"
            gates = ("candidate",)
            def step(self, x_proj, state, p, mask=None): ...
    """
    if not (isinstance(cell_class, type) and issubclass(cell_class, Cell)):
        raise TypeError(f"register() expects a subclass of rnnkit.cells.Cell. Received: {cell_class!r}")
    name = name or cell_class.name
    if not name or not cell_class.gates:
        raise ValueError(f"{cell_class.__name__} needs a non-empty `name` and `gates`.")
    CELLS[name] = cell_class
    return cell_class


for _cell in (RNN, ReLURNN, LSTM, PeepholeLSTM, CIFGLSTM, GRU, GRUv1, LayerNormLSTM):
    register(_cell)


def get_cell_class(name: str) -> type[Cell]:
    """Look a cell up by name, with an error that lists the known names."""
    try:
        return CELLS[name]
    except KeyError:
        raise ValueError(f"Unknown cell {name!r}. Expected one of {sorted(CELLS)}.") from None


__all__ = ["CELLS", "Cell", "Params", "register", "get_cell_class"]
