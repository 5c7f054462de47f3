"""Truncated, corrupted or tampered checkpoints: one clear CheckpointError, and no code runs on load.

Through ``load_checkpoint``, ``fit(resume=...)``, ``rnnkit text generate --run`` (checkpoints/best.ckpt)
and ``rnnkit poetry generate --model`` (model.safetensors).  The truncated resume of
tests/train/test_fit.py (test_resume_refuses_a_truncated_checkpoint_with_a_clear_error) is not repeated.
"""

from __future__ import annotations

import io
import os
import pickle
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from rnnkit.train import CheckpointError, load_checkpoint


class Payload:
    """Unpickling it runs ``os.mkdir(marker)``: the proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


class Plain:
    """An ordinary class instance: not a tensor or a plain value either."""


def clear_error(path: Path, match: str) -> CheckpointError:
    with pytest.raises(CheckpointError, match=match) as caught:
        load_checkpoint(path)
    error = caught.value
    assert str(path) in str(error)
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)  # no pickle traceback
    return error


def replace_member(path: Path, name: str, data: bytes) -> None:
    """Rewrite the zip archive with member ``.../name`` replaced (CRC-32s recomputed: a deliberate edit)."""
    original = path.read_bytes()
    with zipfile.ZipFile(io.BytesIO(original)) as old, zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as new:
        for info in old.infolist():
            new.writestr(info, data if info.filename.endswith("/" + name) else old.read(info))


def largest_tensor_offset(path: Path) -> int:
    """The file offset of the middle of the largest tensor's bytes."""
    with zipfile.ZipFile(path) as archive:
        info = max((i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    header = path.read_bytes()[info.header_offset : info.header_offset + 30]
    name_length, extra_length = int.from_bytes(header[26:28], "little"), int.from_bytes(header[28:30], "little")
    return info.header_offset + 30 + name_length + extra_length + info.file_size // 2


@pytest.mark.parametrize("size", [0, 1, 100, "half", "all but one"])
def test_a_truncated_checkpoint_is_a_clear_error(finished_run, size):
    path = finished_run / "checkpoints" / "last.ckpt"
    data = path.read_bytes()
    keep = {"half": len(data) // 2, "all but one": len(data) - 1}.get(size, size)
    path.write_bytes(data[:keep])
    clear_error(path, r"is not a readable checkpoint \(truncated or corrupt: not a zip archive\)")


@pytest.mark.parametrize("where", ["middle of the file", "middle of the largest tensor"])
def test_a_flipped_byte_is_a_clear_error_not_a_silently_different_weight(finished_run, where):
    path = finished_run / "checkpoints" / "last.ckpt"
    data = bytearray(path.read_bytes())
    offset = len(data) // 2 if where == "middle of the file" else largest_tensor_offset(path)
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
    clear_error(path, r"is not a readable checkpoint \(truncated or corrupt: Bad CRC-32 for file '")


def test_a_checkpoint_saved_without_checksums_still_loads(tmp_path):
    path = tmp_path / "c.ckpt"
    previous = torch.serialization.get_crc32_options()
    torch.serialization.set_crc32_options(False)
    try:
        torch.save({"epoch": 1, "w": torch.arange(4.0)}, path)
    finally:
        torch.serialization.set_crc32_options(previous)
    with zipfile.ZipFile(path) as archive:
        assert {info.CRC for info in archive.infolist() if info.file_size} == {0}
    assert torch.equal(load_checkpoint(path)["w"], torch.arange(4.0))


def test_a_member_replaced_with_code_or_with_the_wrong_size_is_refused(finished_run, tmp_path):
    marker = tmp_path / "code-ran"
    path = finished_run / "checkpoints" / "last.ckpt"
    replace_member(path, "data.pkl", pickle.dumps({"epoch": 0, "state_dict": Payload(marker)}, protocol=2))
    clear_error(path, r"holds objects other than tensors and plain values; refusing to load it \(it holds \w+\.mkdir")
    assert not marker.exists()

    path = finished_run / "checkpoints" / "best.ckpt"
    replace_member(path, "data/0", b"\0" * 3)  # a tensor's bytes, too few of them
    clear_error(path, r"is not a readable checkpoint \(truncated or corrupt: record size \(3 bytes\)")


@pytest.mark.parametrize("payload", ["reduce to os.mkdir", "class instance", "os.system itself"])
def test_a_checkpoint_holding_arbitrary_objects_is_refused_and_runs_no_code(finished_run, tmp_path, payload, runner):
    marker = tmp_path / "code-ran"
    path = finished_run / "checkpoints" / "last.ckpt"
    checkpoint = load_checkpoint(path)
    checkpoint["hyper_parameters"] = {"reduce to os.mkdir": Payload(marker), "class instance": Plain(),
                                      "os.system itself": os.system}[payload]  # fmt: skip
    torch.save(checkpoint, path)
    held = {"reduce to os.mkdir": "posix.mkdir", "class instance": "Plain", "os.system itself": "posix.system"}
    clear_error(path, rf"refusing to load it \(it holds [\w.]*{held[payload]}\)")
    with pytest.raises(CheckpointError, match="refusing to load it"):
        runner.main(finished_run, resume=True, epochs=2, train_tokens=400)
    assert not marker.exists()
    if payload == "reduce to os.mkdir":  # the payload is live: an unsafe load would have run it
        torch.load(path, weights_only=False)
        assert marker.is_dir()


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """``rnnkit ARGS`` in this process, through the real entry point and its error handling."""
    from rnnkit import cli

    monkeypatch.setattr(sys, "argv", ["rnnkit", *args])
    code = 0
    try:
        cli.main()
    except SystemExit as done:
        code = done.code or 0
    out, err = capsys.readouterr()
    return code, out, err


def test_text_generate_names_a_spoiled_checkpoint_in_one_line(finished_run, tmp_path, monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, "text", "generate", "--run", str(finished_run), "--length", "5")
    assert code == 0 and len(out.strip()) >= 5  # the run is sound: it generates
    marker = tmp_path / "code-ran"
    best = finished_run / "checkpoints" / "best.ckpt"
    checkpoint = load_checkpoint(best)
    best.write_bytes(best.read_bytes()[:1000])
    code, _, err = run_cli(monkeypatch, capsys, "text", "generate", "--run", str(finished_run))
    assert code == 2 and "Traceback" not in err
    assert err.splitlines()[0] == f"rnnkit: error: {best} is not a readable checkpoint (truncated or corrupt: " + (
        "not a zip archive)."
    )
    checkpoint["state_dict"]["payload"] = Payload(marker)
    torch.save(checkpoint, best)
    code, _, err = run_cli(monkeypatch, capsys, "text", "generate", "--run", str(finished_run))
    assert code == 2 and "refusing to load it (it holds posix.mkdir)" in err and not marker.exists()


def test_poetry_generate_names_a_truncated_model_file_in_one_line(finished_run, monkeypatch, capsys):
    weights = finished_run / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    code, _, err = run_cli(monkeypatch, capsys, "poetry", "generate", "--model", str(finished_run))
    assert code == 2 and "Traceback" not in err
    assert err.splitlines()[0].startswith(f"rnnkit: error: {weights} is not a readable weights file (truncated or")
