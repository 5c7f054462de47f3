# Doctests run over src/ (pyproject: --doctest-modules); the CLI entry module runs on import.
collect_ignore = ["src/rnnkit/__main__.py"]
