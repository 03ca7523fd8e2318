"""Files that are either complete or absent: a killed run or a full disk never leaves half a file behind.

One writer for everything ganzoo saves with ``torch.save`` (checkpoints, converted FID weights, cached real-image
features): write a temporary file beside the target, fsync it, ``os.replace`` it over the target (atomic on POSIX).
"""
from __future__ import annotations

import pickle

import contextlib
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import torch

from src.utils.errors import WriteError


#: What to do about a failed write, unless the caller knows better.
FREE_SPACE = "free disk space, or point paths.cache_dir (caches) or paths.log_dir (runs) elsewhere"


def save_atomically(obj: Any, path: str | os.PathLike, fix: str = FREE_SPACE) -> Path:
    """``torch.save(obj)`` to ``path``: readers see the old file or the whole new one, never a part.

    Concurrent writers (e.g. DDP ranks converting at once) each write their own temporary file; the last
    ``os.replace`` wins and every version is complete. Any failure of the write (torch's zip writer reports a
    full disk or a file-size limit as ``RuntimeError``, the OS as ``OSError``) becomes one :class:`WriteError`
    naming the path, the cause, the free space and ``fix``; the target is untouched and no temporary file is left.
    """
    path = Path(path)
    # A unique name of our own rather than mkstemp, whose 0600 mode would hide a shared cache from other users.
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "xb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        tmp.unlink(missing_ok=True)
        if not isinstance(error, (OSError, RuntimeError)):
            raise
        raise WriteError(_describe(path, error, fix)) from error
    _fsync_directory(path.parent)
    return path


def _describe(path: Path, error: BaseException, fix: str) -> str:
    cause = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
    try:
        free = f"{shutil.disk_usage(path.parent).free / 2**20:.1f} MiB free on that filesystem"
    except OSError:
        free = "free space unknown"
    kept = "the previous file is intact" if path.exists() else "nothing was written"
    return f"Could not write {path} ({type(error).__name__}: {cause}; {free}); {kept}. Fix: {fix}."


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable (without it a power cut can bring back the old entry). Some filesystems
    # cannot open or fsync a directory; the file's data is synced already, so that is no failure.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


#: What torch.load raises on a damaged cache file: a truncated zip fails in a seek (OSError) or in the reader
#: (RuntimeError, EOFError); random bytes in the unpickler (UnpicklingError mostly; for some bytes an IndexError,
#: a KeyError or a UnicodeDecodeError, a ValueError); a stale layout in a lookup or load_state_dict.
UNREADABLE_CACHE_ERRORS = (OSError, RuntimeError, EOFError, KeyError, IndexError, TypeError, ValueError,
                           pickle.UnpicklingError)
