"""fit's grad_norms.csv: one row per optimizer step, equal to a plain loop's norms, consistent with metrics.csv."""

from __future__ import annotations

import copy
import csv

import pytest
import torch
from torch import nn

from rnnkit.train import LossOutput, Splits, TrainConfig, fit


class Regression(nn.Module):
    """y = w x + b by mean squared error."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 1)

    def loss(self, batch, state=None):
        x, y = batch
        return LossOutput(((self.linear(x).squeeze(-1) - y) ** 2).mean(), len(x))


def regression_data() -> Splits:  # 8 batches of 32
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 3, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5]) + 0.3 + 0.05 * torch.randn(256, generator=g)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32)
    return Splits(loader, loader)


def quiet(**kwargs) -> TrainConfig:
    return TrainConfig(progress=False, **kwargs)


def _rows(path):
    return list(csv.DictReader(path.open()))


def test_grad_norms_equal_a_plain_sgd_loop_with_clip_grad_norm_step_by_step(tmp_path):
    clip = 1.5  # the regression's gradient starts near 3 and falls under 1.5: some steps clipped, some not
    model = Regression()
    reference = copy.deepcopy(model)
    config = quiet(epochs=2, optimizer="sgd", learning_rate=0.05, scheduler="none", clip_norm=clip)
    data = regression_data()
    result = fit(model, data, config, run_dir=tmp_path)

    optimizer = torch.optim.SGD(reference.parameters(), lr=0.05, momentum=config.momentum)
    expected = []
    for epoch in (1, 2):
        for batch in data.train:
            optimizer.zero_grad()
            reference.loss(batch).loss.backward()
            grads = [p.grad for p in reference.parameters()]
            before = torch.nn.utils.get_total_norm(grads).item()
            torch.nn.utils.clip_grad_norm_(reference.parameters(), clip)
            after = torch.nn.utils.get_total_norm(grads).item()  # measured on the rescaled gradients
            expected.append((len(expected) + 1, epoch, before, after, before > clip))
            optimizer.step()

    rows = _rows(tmp_path / "grad_norms.csv")
    assert [(int(r["step"]), int(r["epoch"])) for r in rows] == [e[:2] for e in expected]
    assert [float(r["grad_norm"]) for r in rows] == pytest.approx([e[2] for e in expected], rel=1e-5)
    assert [float(r["grad_norm_clipped"]) for r in rows] == pytest.approx([e[3] for e in expected], rel=1e-5)
    assert [r["clipped"] == "1" for r in rows] == [e[4] for e in expected]
    assert 0 < sum(e[4] for e in expected) < len(expected)  # the check saw both kinds of step
    assert all(float(r["grad_norm_clipped"]) <= min(float(r["grad_norm"]), clip + 1e-6) for r in rows)
    for metric in result.metrics:  # the per-step rows sum up to metrics.csv's per-epoch columns
        part = [r for r in rows if int(r["epoch"]) == metric["epoch"]]
        assert int(part[-1]["step"]) == metric["step"]
        assert sum(r["clipped"] == "1" for r in part) / len(part) == pytest.approx(metric["clipped_fraction"])
        assert sum(float(r["grad_norm"]) for r in part) / len(part) == pytest.approx(metric["grad_norm"])
    assert (tmp_path / "plots" / "grad_norms.png").stat().st_size > 1000


def test_resume_drops_grad_norm_rows_written_after_the_checkpoint_as_it_does_metrics_rows(tmp_path):
    data = regression_data()  # 8 steps an epoch
    fit(Regression(), data, quiet(epochs=2, clip_norm=0), run_dir=tmp_path)
    # the run died after writing epoch 3's rows but before its checkpoint
    with open(tmp_path / "grad_norms.csv", "a") as f:
        f.write("17,3,9.0,9.0,0\n")
    metrics = _rows(tmp_path / "metrics.csv")
    with open(tmp_path / "metrics.csv", "a", newline="") as f:
        csv.DictWriter(f, fieldnames=list(metrics[0])).writerow({**metrics[-1], "epoch": 3})

    fit(Regression(), data, quiet(epochs=3, clip_norm=0), resume=tmp_path)
    rows = _rows(tmp_path / "grad_norms.csv")
    assert [int(r["step"]) for r in rows] == list(range(1, 25))
    assert [int(r["epoch"]) for r in rows] == [1] * 8 + [2] * 8 + [3] * 8
    assert float(rows[16]["grad_norm"]) != 9.0 and not any(r["clipped"] == "1" for r in rows)  # clip_norm=0: off
    assert [int(r["epoch"]) for r in _rows(tmp_path / "metrics.csv")] == [1, 2, 3]
