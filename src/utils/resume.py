"""Which checkpoint ``ckpt_path=`` names: a file, or ``last`` for the newest ``last.ckpt`` of the same model and data."""
from __future__ import annotations

from pathlib import Path

from src.utils.errors import ConfigError

LAST = "last"


def resolve_ckpt_path(ckpt_path: str | None, runs_dir: Path, run_name: str) -> Path | None:
    """The checkpoint to resume from, or None for a fresh run.

    ``ckpt_path=last`` picks the most recently written ``<run>/checkpoints/last.ckpt`` among the run
    directories in ``runs_dir`` named ``*_<run_name>`` (the default layout, ``<date>_<time>_<model>_<data>``).
    Lightning's own ``ckpt_path="last"`` looks only in the new run's directory, which holds nothing yet.
    """
    if not ckpt_path:
        return None
    if ckpt_path == LAST:
        found = [p for p in runs_dir.glob(f"*_{run_name}/checkpoints/last.ckpt") if p.is_file()]
        if not found:
            raise ConfigError(f"ckpt_path=last: no earlier run of {run_name} with checkpoints/last.ckpt under "
                              f"{runs_dir}. Pass a checkpoint file instead, e.g. ckpt_path=<run dir>/checkpoints/last.ckpt.")
        return max(found, key=lambda p: p.stat().st_mtime)
    if not Path(ckpt_path).is_file():
        raise ConfigError(f"ckpt_path={ckpt_path} does not exist. Pass a checkpoint file, "
                          f"e.g. <run dir>/checkpoints/last.ckpt, or ckpt_path=last for the newest run of this model and data.")
    return Path(ckpt_path)
