"""A full disk (a patched write raising ENOSPC) is one clear error, and the previous file is kept."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from rnnkit.train import CheckpointError, LossOutput, Splits, TrainConfig, fit, load_checkpoint, save_checkpoint
from rnnkit.train import checkpoints as checkpoints_module
from rnnkit.train.checkpoints import DiskFullError, write_atomic
from rnnkit.train.loop import read_metrics


def full_disk(write, code=errno.ENOSPC):
    """``write``, except that the disk fills up halfway through: half the bytes land, then OSError(code)."""

    def write_half(tmp: Path) -> None:
        write(tmp)
        tmp.write_bytes(tmp.read_bytes()[: tmp.stat().st_size // 2])
        raise OSError(code, os.strerror(code), str(tmp))

    return write_half


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob("*.tmp-*"))


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT], ids=["ENOSPC", "EDQUOT"])
def test_a_full_disk_while_writing_is_one_clear_error_and_keeps_the_previous_file(tmp_path, code):
    path = tmp_path / "last.ckpt"
    save_checkpoint({"epoch": 1, "w": torch.ones(3)}, path)
    before = path.read_bytes()
    with pytest.raises(DiskFullError) as caught:
        write_atomic(path, full_disk(lambda tmp: torch.save({"epoch": 2, "w": torch.zeros(3)}, tmp), code))
    message = str(caught.value)
    assert str(path) in message and "no space left on device" in message and "keeps its previous content" in message
    assert isinstance(caught.value, CheckpointError) and isinstance(caught.value, OSError)
    assert isinstance(caught.value.__cause__, OSError) and caught.value.__cause__.errno == code
    assert path.read_bytes() == before and load_checkpoint(path)["epoch"] == 1
    assert leftovers(tmp_path) == []


def test_a_full_disk_at_fsync_or_for_a_new_file_says_so_and_other_os_errors_pass_through(tmp_path, monkeypatch):
    def no_space(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as patch:
        patch.setattr(checkpoints_module.os, "fsync", no_space)  # the data fit in the page cache, not on the disk
        with pytest.raises(DiskFullError, match=r"new\.txt: no space left on device\. new\.txt was not created"):
            write_atomic(tmp_path / "new.txt", lambda tmp: tmp.write_text("data"))
    assert not (tmp_path / "new.txt").exists() and leftovers(tmp_path) == []

    def denied(tmp):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp))

    with pytest.raises(PermissionError) as caught:
        write_atomic(tmp_path / "other.txt", denied)
    assert not isinstance(caught.value, DiskFullError)


def test_saving_a_checkpoint_on_a_full_disk_through_torch_save_keeps_the_previous_one(tmp_path, monkeypatch):
    path = tmp_path / "c.ckpt"
    save_checkpoint({"epoch": 1, "w": torch.ones(3)}, path)
    before = path.read_bytes()
    real_save = torch.save
    monkeypatch.setattr(torch, "save", lambda obj, f, *a, **k: full_disk(lambda tmp: real_save(obj, tmp))(Path(f)))
    with pytest.raises(DiskFullError, match="no space left on device"):
        save_checkpoint({"epoch": 2, "w": torch.zeros(3)}, path)
    assert path.read_bytes() == before and leftovers(tmp_path) == []


class Mean(nn.Module):
    """Learns the mean of its data."""

    def __init__(self):
        super().__init__()
        self.mu = nn.Parameter(torch.zeros(1))

    def loss(self, batch, state=None):
        (x,) = batch
        return LossOutput(((x - self.mu) ** 2).mean(), len(x))


def test_fit_stops_with_the_clear_error_when_the_disk_fills_at_the_second_checkpoint(tmp_path, monkeypatch):
    from rnnkit.train import loop

    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.full((32,), 3.0)), batch_size=8)
    last = tmp_path / "checkpoints" / "last.ckpt"
    seen = {"writes": 0, "before": b""}

    def write_atomic_on_a_filling_disk(path, write):
        if Path(path).name == "last.ckpt":
            seen["writes"] += 1
            if seen["writes"] == 2:
                seen["before"] = last.read_bytes()
                write = full_disk(write)
        return write_atomic(path, write)

    monkeypatch.setattr(loop, "write_atomic", write_atomic_on_a_filling_disk)
    config = TrainConfig(epochs=3, learning_rate=0.1, progress=False)
    expected = re.escape(f"Could not write {last}: no space left on device. last.ckpt keeps its previous content")
    with pytest.raises(DiskFullError, match=expected):
        fit(Mean(), Splits(data, data), config, run_dir=tmp_path)
    assert last.read_bytes() == seen["before"]
    assert load_checkpoint(last)["callbacks"]["RunKeeper"]["epochs_done"] == 1
    assert leftovers(tmp_path) == []

    monkeypatch.setattr(loop, "write_atomic", write_atomic)  # space freed: the run resumes from epoch 1
    result = fit(Mean(), Splits(data, data), config, resume=tmp_path)
    assert result.epochs == 3 and [int(r["epoch"]) for r in read_metrics(tmp_path / "metrics.csv")] == [1, 2, 3]
