"""Checkpoints that are either complete or absent: a killed run or a full disk never leaves half a file."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.plugins.io import TorchCheckpointIO


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes ``<path>.tmp``, fsyncs it, then renames over ``path`` (rename is atomic on POSIX).

    Lightning's own IO streams the bytes straight into the final file name; an interruption then leaves
    a truncated checkpoint where ``last.ckpt`` should be.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        try:
            with open(tmp, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException as error:
            tmp.unlink(missing_ok=True)
            if not isinstance(error, OSError):
                raise
            raise OSError(
                f"Could not write checkpoint {path}: {error}. The previous checkpoint is intact; free disk space "
                f"or point paths.log_dir elsewhere, then resume with ckpt_path=<its path>."
            ) from error
