"""The command line: version, help, the benchmark's JSON rows, one-line errors with exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

import rnnkit
from rnnkit.cli import app

runner = CliRunner()


def rnnkit_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rnnkit", *args], capture_output=True, text=True, timeout=120)


def test_version_and_help():
    assert runner.invoke(app, ["--version"]).output.strip() == f"rnnkit {rnnkit.__version__}"
    result = runner.invoke(app, ["bench", "cells", "--help"])
    assert result.exit_code == 0 and "--size" in result.output and "Example" in result.output


def test_bench_cells_json_rows_have_the_promised_fields():
    result = runner.invoke(app, ["bench", "cells", "--size", "small", "--cells", "gru_v1", "--repeats", "1", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout[result.stdout.index("[") :])
    assert {"cell", "backend", "size", "fwd_ms", "fwdbwd_ms", "ratio_fwdbwd"} <= set(rows[0])
    assert rows[0]["cell"] == "torch.nn.LSTM" and rows[0]["ratio_fwdbwd"] == 1.0
    assert [(r["cell"], r["backend"]) for r in rows[1:]] == [
        ("gru_v1", "compiled"), ("gru_v1", "fused"), ("gru_v1", "reference"),
    ]  # fmt: skip
    assert all(r["size"] == "small" and r["fwdbwd_ms"] > 0 for r in rows)


def test_bench_memory_measures_each_row_in_its_own_process_beside_nn_lstm():
    result = runner.invoke(app, ["bench", "memory", "--size", "medium", "--cells", "lstm_cifg", "--backends",
                                 "compiled", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout[result.stdout.index("[") :])
    assert [(r["cell"], r["backend"]) for r in rows] == [("torch.nn.LSTM", "torch"), ("lstm_cifg", "compiled")]
    assert rows[0]["ratio"] == 1.0 and rows[0]["peak_mb"] > 5  # T*B*4H floats of gates alone are 26 MB
    assert rows[1]["peak_mb"] > 0 and rows[1]["ratio"] == rows[1]["peak_mb"] / rows[0]["peak_mb"]


def test_bad_option_is_one_line_on_stderr_with_exit_code_2():
    result = rnnkit_cli("bench", "cells", "--size", "huge")
    assert result.returncode == 2
    assert "Expected size one of ['large', 'medium', 'small']. Received: size='huge'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("verbose", [False, True])
def test_a_failure_is_one_line_with_exit_code_1_and_a_traceback_only_on_verbose(monkeypatch, capsys, verbose):
    import rnnkit.cli as cli

    broken = typer.Typer()

    @broken.callback()
    def options(verbose: bool = typer.Option(False, "--verbose")) -> None:
        cli.STATE["verbose"] = verbose

    @broken.command()
    def fail() -> None:
        raise RuntimeError("the disk went away")

    monkeypatch.setattr(cli, "app", broken)
    monkeypatch.setitem(cli.STATE, "verbose", False)
    monkeypatch.setattr("sys.argv", ["rnnkit", *(["--verbose"] if verbose else []), "fail"])
    if verbose:
        with pytest.raises(RuntimeError, match="the disk went away"):
            cli.main()
        return
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 1
    assert capsys.readouterr().err.startswith("rnnkit: error: the disk went away\n")
    from rnnkit.train.checkpoints import DiskFullError

    @broken.command()
    def full() -> None:
        raise DiskFullError("Could not write last.ckpt: no space left on device.")

    monkeypatch.setattr("sys.argv", ["rnnkit", "full"])  # a full disk is no usage error: exit 1
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 1 and "no space left on device" in capsys.readouterr().err
    monkeypatch.setattr("sys.argv", ["rnnkit", "nope"])  # a usage error: click's own message, exit 2
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 2 and "No such command" in capsys.readouterr().err


def test_demo_runs_end_to_end():
    result = runner.invoke(app, ["demo", "--steps", "3"])
    assert result.exit_code == 0, result.output
    assert "lstm_layernorm" in result.output and "0.1667" in result.output


def test_bench_generate_reports_both_loops_per_batch(monkeypatch):
    from rnnkit.bench import generate

    original = generate.run
    monkeypatch.setattr(generate, "run", lambda repeats: original(batches=(1, 4), repeats=1))
    result = runner.invoke(app, ["bench", "generate", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout[result.stdout.index("[") :])
    assert [r["batch"] for r in rows] == [1, 4]
    assert all(r["bare_chars_per_s"] > 0 and r["decode_chars_per_s"] > 0 for r in rows)
    assert all(r["step_speedup"] == pytest.approx(r["bare_chars_per_s"] / r["forward_chars_per_s"]) for r in rows)


def test_bench_fit_times_fit_and_the_plain_loop_on_the_same_epoch(monkeypatch):
    from rnnkit.bench import fit as bench

    monkeypatch.setitem(bench.SIZES, "small", (16, 8, 16, 4, 8, 5))  # vocab, emb, hidden, batch, chunk, chunks
    result = runner.invoke(app, ["bench", "fit", "--size", "small", "--repeats", "1", "--json"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout[result.stdout.index("{") :])
    assert row["plain_tokens_per_s"] > 0 and row["fit_tokens_per_s"] > 0
    assert row["ratio"] == row["fit_tokens_per_s"] / row["plain_tokens_per_s"]


def test_demo_shows_acrostic_poems_from_the_shipped_model():
    result = runner.invoke(app, ["demo", "--steps", "1"])
    assert result.exit_code == 0, result.output
    assert "藏头 春花秋月" in result.output and "bits/char" in result.output


@pytest.mark.parametrize("command", ["classify", "tag", "seq2seq", "caption", "music"])
def test_every_sequence_structure_has_its_command_with_a_demo(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "demo" in result.output and "train" in result.output


def test_a_bad_pair_file_is_one_line_on_stderr_with_exit_code_2(tmp_path):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("Go.\tVa !\nno tab here\n", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "rnnkit", "seq2seq", "train", "--data", str(pairs)],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "line 2: expected 'source<TAB>target'" in result.stderr and "Traceback" not in result.stderr
