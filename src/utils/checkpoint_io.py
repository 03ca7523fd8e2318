"""Checkpoints that are either complete or absent: a killed run or a full disk never leaves half a file."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pytorch_lightning.plugins.io import TorchCheckpointIO

from src.utils.atomic import save_atomically


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's IO streams the bytes straight into the final file name, so an interruption leaves a truncated
    ``last.ckpt``; this one writes through :func:`save_atomically` and raises :class:`WriteError` on failure."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        path = Path(path)
        resume = f"ckpt_path={path}" if path.is_file() else "ckpt_path=<an earlier checkpoint>"
        save_atomically(checkpoint, path,
                        fix=f"free disk space or point paths.log_dir elsewhere, then resume with {resume}")
