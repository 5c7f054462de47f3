#!/usr/bin/env bash
# The demo, set-up included: bash scripts/demo.sh
#   1. acrostic poems from the shipped poetry model, then every cell on the adding problem
#   2. the noisy-sine forecast (RMSE beside the naive forecast, plots written under runs/)
#   3. two sequence structures: digits read row by row (many-to-one) and dates rewritten with attention
#      (seq2seq), each beside its baseline; `rnnkit tag|caption|music demo` run the others
#   4. seeing inside: gradient flow of untrained cells (runs/diagnose/gradient_flow.png), and the gates
#      and hidden units of the shipped poetry model (runs/inside/: heatmaps, units.html)
# `rnnkit cells` lists the cells and the backend each runs on.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/rnnkit demo "$@"
.venv/bin/rnnkit forecast demo --no-progress
.venv/bin/rnnkit classify demo --no-progress
.venv/bin/rnnkit seq2seq demo --no-progress
.venv/bin/rnnkit diagnose gradients --cells rnn_tanh,lstm,gru --T 100 --hidden 32 --out runs/diagnose
.venv/bin/rnnkit diagnose inside --out runs/inside
