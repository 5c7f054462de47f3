"""Shared by the fault tests: the small resumable run of tests/train, and no plots (tested elsewhere)."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

RUNNER = Path(__file__).resolve().parents[1] / "train" / "resumable_run.py"


def _load_runner():
    spec = importlib.util.spec_from_file_location("resumable_run", RUNNER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


resumable_run = _load_runner()


@pytest.fixture(scope="session")
def runner():
    """tests/train/resumable_run.py as a module: ``main(run_dir, resume=..., epochs=..., ...)``."""
    return resumable_run


@pytest.fixture(autouse=True)
def _no_plots(monkeypatch):
    """fit() draws two PNGs at the end of a run: two thirds of a tiny run's time, and not what is tested here."""
    import rnnkit.diagnostics.training
    import rnnkit.plots

    monkeypatch.setattr(rnnkit.plots, "plot_loss_curve", lambda *args, **kwargs: None)
    monkeypatch.setattr(rnnkit.diagnostics.training, "plot_grad_norms", lambda *args, **kwargs: None)


@pytest.fixture(scope="session")
def _finished_run(tmp_path_factory) -> Path:
    import rnnkit.diagnostics.training
    import rnnkit.plots
    from rnnkit.data.vocab import Vocabulary

    plots = rnnkit.plots.plot_loss_curve, rnnkit.diagnostics.training.plot_grad_norms
    resumable_run.skip_plots()
    try:
        run_dir = tmp_path_factory.mktemp("finished") / "run"
        resumable_run.main(run_dir, epochs=1, train_tokens=400)
    finally:
        rnnkit.plots.plot_loss_curve, rnnkit.diagnostics.training.plot_grad_norms = plots
    vocab = Vocabulary("abcdefghij")  # the runner's 11 token ids as characters: what `rnnkit text generate` reads
    (run_dir / "vocab.json").write_text(vocab.to_json(), encoding="utf-8")
    return run_dir


@pytest.fixture
def finished_run(_finished_run, tmp_path) -> Path:
    """A copy of a finished one-epoch language-model run (config, vocab, checkpoints, model.safetensors) to spoil."""
    return Path(shutil.copytree(_finished_run, tmp_path / "run"))
