#!/usr/bin/env bash
# The demo, set-up included: bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/rnnkit cells
.venv/bin/rnnkit demo "$@"
