"""Run directories and checkpoint files: written atomically, read back with clear errors.

A checkpoint is written to a temporary file in the same directory, flushed to disk, then
renamed over the old one (``os.replace`` is atomic on POSIX and Windows), so a crash at any
moment leaves either the previous checkpoint or the new one, never half of one.  Checkpoints
load with ``weights_only=True``: tensors and plain Python values only, no code runs on load.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import torch


class CheckpointError(ValueError):
    """A checkpoint file that is missing, truncated, tampered with or not rnnkit's."""


def new_run_dir(task: str, runs_dir: str | Path = "runs") -> Path:
    """Create ``runs_dir/<task>-<yyyymmdd-hhmmss>/`` (with a suffix if that exists) and return it.

    Example:
        >>> import tempfile
        >>> new_run_dir("poetry", tempfile.mkdtemp()).name.startswith("poetry-")
        True
    """
    base = Path(runs_dir) / f"{task}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, n = base, 1
    while True:
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            n += 1
            path = base.with_name(f"{base.name}-{n}")


def _fsync_dir(directory: Path) -> None:
    if os.name == "posix":
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_atomic(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)``, flush it to disk, then rename it to ``path``.

    If ``write`` fails (disk full, a kill), ``path`` keeps its previous content and the
    temporary file is removed.

    Example:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "x.txt"
        >>> _ = write_atomic(p, lambda tmp: tmp.write_text("ok"))
        >>> p.read_text()
        'ok'
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def copy_atomic(source: str | Path, path: str | Path) -> Path:
    """Copy ``source`` to ``path`` atomically (``path`` is never half-written)."""
    return write_atomic(path, lambda tmp: shutil.copyfile(source, tmp))


def save_checkpoint(checkpoint: dict, path: str | Path) -> Path:
    """``torch.save`` a checkpoint dict atomically."""
    return write_atomic(path, lambda tmp: torch.save(checkpoint, tmp))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint onto ``map_location`` (CPU by default, whatever device it was saved from).

    Raises ``CheckpointError`` with the path and the reason for a missing, truncated or
    tampered file, or one that holds more than tensors and plain values.

    Example:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "c.ckpt"
        >>> _ = save_checkpoint({"epoch": 3, "w": torch.ones(2)}, p)
        >>> load_checkpoint(p)["epoch"]
        3
        >>> _ = p.write_bytes(p.read_bytes()[:100])
        >>> load_checkpoint(p)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        rnnkit.train.checkpoints.CheckpointError: ...c.ckpt is not a readable checkpoint (truncated or corrupt...
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"No checkpoint at {path}.")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises RuntimeError, UnpicklingError, EOFError, zipfile errors...
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if "weights_only" in str(error) or "Unsupported global" in str(error):
            raise CheckpointError(
                f"{path} holds objects other than tensors and plain values; refusing to load it ({reason[:200]})."
            ) from None
        raise CheckpointError(f"{path} is not a readable checkpoint (truncated or corrupt: {reason[:200]}).") from None
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{path} is not an rnnkit checkpoint (it holds a {type(checkpoint).__name__}).")
    return checkpoint
