"""Command groups of the ``rnnkit`` CLI, one module a task (typer only at import; the work is imported inside)."""
