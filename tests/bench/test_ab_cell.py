"""bench/ab_cell.py at a tiny size: a cell's file at a git revision against the working tree, paired."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
in_git = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True).returncode == 0
pytestmark = pytest.mark.skipif(not in_git, reason="needs the git checkout of the repository")


def load_script():
    spec = importlib.util.spec_from_file_location("ab_cell", REPO / "bench" / "ab_cell.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("cell", ["lstm", "lstm_layernorm"])
def test_ab_checks_both_sides_agree_and_prints_paired_ratios(cell, capsys):
    result = load_script().main([cell, "--rev", "HEAD", "--size", "6,3,4,5", "--rounds", "3", "--threads", "1"])
    out = capsys.readouterr().out
    assert set(result) == {"old_over_lstm", "new_over_lstm", "new_over_old"}
    assert all(value > 0 for value in result.values())
    assert "T=6 B=3 I=4 H=5" in out and "per-round ratios (median)" in out
    # the cell file is HEAD's on both sides unless you changed it: report the largest difference found
    assert "largest difference: output" in out


def test_ab_names_the_revision_it_cannot_read():
    with pytest.raises(SystemExit, match="git show no-such-revision"):
        load_script().main(["gru", "--rev", "no-such-revision", "--size", "2,1,2,2", "--rounds", "1"])
