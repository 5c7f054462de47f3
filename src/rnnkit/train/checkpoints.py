"""Run directories and checkpoint files: written atomically, read back with clear errors.

A checkpoint is written to a temporary file in the same directory, flushed to disk, then
renamed over the old one (``os.replace`` is atomic on POSIX and Windows), so a crash at any
moment leaves either the previous checkpoint or the new one, never half of one; a disk that
fills up gives ``DiskFullError`` and keeps the previous file.  Checkpoints load with
``weights_only=True`` (tensors and plain Python values only, no code runs on load) after every
member's CRC-32 is checked, so a truncated, corrupted or tampered file is a ``CheckpointError``.
"""

from __future__ import annotations

import errno
import glob
import os
import re
import shutil
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import torch


class CheckpointError(ValueError):
    """A checkpoint file that is missing, truncated, tampered with or not rnnkit's."""


class DiskFullError(CheckpointError, OSError):
    """A file of the run could not be written for lack of space (or quota); the previous one is kept."""


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

    If ``write`` fails (a kill, an error), ``path`` keeps its previous content and the
    temporary file is removed; a full disk (or quota) raises ``DiskFullError`` naming ``path``.
    Temporary files of ``path`` left by processes that were killed are removed first.

    Example:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "x.txt"
        >>> _ = write_atomic(p, lambda tmp: tmp.write_text("ok"))
        >>> p.read_text()
        'ok'
    """
    path = Path(path)
    _remove_stale_tmp_files(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        tmp.unlink(missing_ok=True)
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            kept = "keeps its previous content" if path.exists() else "was not created"
            quota = " (disk quota exceeded)" if error.errno == errno.EDQUOT else ""
            raise DiskFullError(
                f"Could not write {path}: no space left on device{quota}. {path.name} {kept}; free some space "
                f"and resume the run. ({error})"
            ) from error
        raise
    _fsync_dir(path.parent)
    return path


def _remove_stale_tmp_files(path: Path) -> None:
    """Remove ``.<name>.tmp-<pid>`` files of ``path`` whose writer is no longer running (killed mid-write)."""
    if os.name != "posix" or not path.parent.is_dir():  # os.kill(pid, 0) would terminate the process on Windows
        return
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[1]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except OSError:  # alive, owned by another user
            pass


def copy_atomic(source: str | Path, path: str | Path) -> Path:
    """Copy ``source`` to ``path`` atomically (``path`` is never half-written)."""
    return write_atomic(path, lambda tmp: shutil.copyfile(source, tmp))


def save_checkpoint(checkpoint: dict, path: str | Path) -> Path:
    """``torch.save`` a checkpoint dict atomically."""
    return write_atomic(path, lambda tmp: torch.save(checkpoint, tmp))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint onto ``map_location`` (CPU by default, whatever device it was saved from).

    Raises ``CheckpointError`` with the path and the reason for a missing, truncated or
    corrupted file (every member's CRC-32 is checked first), or one that holds more than
    tensors and plain values (nothing in it runs: ``weights_only=True``).

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
    damage = _archive_damage(path)
    if damage:
        raise CheckpointError(f"{path} is not a readable checkpoint (truncated or corrupt: {damage}).")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises RuntimeError, UnpicklingError, EOFError, zipfile errors...
        text = str(error).strip()
        reason = text.splitlines()[0] if text else type(error).__name__
        if "weights_only" in text or "Unsupported global" in text:
            found = re.search(r"GLOBAL ([\w.]+)", text)
            what = f"it holds {found.group(1)}" if found else reason[:200]
            raise CheckpointError(
                f"{path} holds objects other than tensors and plain values; refusing to load it ({what})."
            ) from None
        raise CheckpointError(f"{path} is not a readable checkpoint (truncated or corrupt: {reason[:200]}).") from None
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{path} is not an rnnkit checkpoint (it holds a {type(checkpoint).__name__}).")
    return checkpoint


def _archive_damage(path: Path) -> str:
    """What is wrong with the zip archive ``torch.save`` wrote ("" when nothing): torch.load does not
    check the members' CRC-32, so a flipped byte in a tensor would otherwise load as a wrong weight."""
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.infolist():
                if member.CRC == 0 and member.file_size:  # saved with torch.serialization.set_crc32_options(False)
                    continue
                with archive.open(member) as data:  # reading to the end checks the CRC-32
                    while data.read(1 << 20):
                        pass
    except zipfile.BadZipFile as error:
        return "not a zip archive" if "not a zip file" in str(error) else str(error)
    except (EOFError, OSError, ValueError, NotImplementedError) as error:
        return str(error) or type(error).__name__
    return ""
