"""Gradient norms of a training run: per-epoch summary, plot, and `rnnkit diagnose training --run`."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from rnnkit.commands.diagnose import app
from rnnkit.diagnostics.training import grad_norm_summary, plot_grad_norms, read_grad_norms

# two epochs of three steps, clip norm 2: steps 1, 2 and 4 clipped
CSV = """step,epoch,grad_norm,grad_norm_clipped,clipped
1,1,8.0,1.99999975,1
2,1,4.0,1.9999995,1
3,1,1.0,1.0,0
4,2,3.0,1.99999933,1
5,2,0.5,0.5,0
6,2,0.25,0.25,0
"""


@pytest.fixture
def run_dir(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"train": {"clip_norm": 2.0}}))
    (tmp_path / "grad_norms.csv").write_text(CSV)
    return tmp_path


def test_summary_per_epoch_has_mean_max_and_fraction_clipped(run_dir):
    rows = read_grad_norms(run_dir)
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6] and rows[0]["clipped"] is True
    summary = grad_norm_summary(rows)
    assert [s["epoch"] for s in summary] == [1, 2] and [s["steps"] for s in summary] == [3, 3]
    assert [s["mean_norm"] for s in summary] == pytest.approx([13 / 3, 3.75 / 3])
    assert [s["max_norm"] for s in summary] == [8.0, 3.0]
    assert [s["clipped_fraction"] for s in summary] == pytest.approx([2 / 3, 1 / 3])


def test_plot_is_written_and_an_empty_run_or_a_missing_file_is_a_clear_error(run_dir, tmp_path):
    assert plot_grad_norms(read_grad_norms(run_dir), tmp_path / "p" / "g.png", 2.0).stat().st_size > 1000
    with pytest.raises(ValueError, match="at least one row"):
        plot_grad_norms([], tmp_path / "empty.png")
    with pytest.raises(ValueError, match="grad_norms.csv"):
        read_grad_norms(tmp_path / "nowhere")


def test_diagnose_training_prints_the_per_epoch_table_and_redraws_the_plot(run_dir):
    result = CliRunner().invoke(app, ["training", "--run", str(run_dir)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "6 steps, clip norm 2" in " ".join(result.output.split())  # the title wraps to the table's width
    lines = [line for line in result.output.splitlines() if "│" in line]
    epoch_1 = next(line for line in lines if line.split("│")[1].strip() == "1")
    assert [c.strip() for c in epoch_1.split("│")[1:-1]] == ["1", "3", "4.333", "8", "66.7%"]
    assert (run_dir / "plots" / "grad_norms.png").stat().st_size > 1000
