"""Which checkpoint a run resumes from: ``ckpt_path=<file>``, ``ckpt_path=last`` (the newest ``last.ckpt`` of the same
model and data), or, in a requeued SLURM job, the newest checkpoint in its own run directory."""
from __future__ import annotations

import os
from pathlib import Path

from src.utils.errors import ConfigError

LAST = "last"


def resolve_ckpt_path(ckpt_path: str | None, runs_dir: Path, run_name: str, run_dir: Path | None = None) -> Path | None:
    """The checkpoint to resume from, or None for a fresh run.

    ``ckpt_path=last`` picks the most recently written ``<run>/checkpoints/last.ckpt`` among the run
    directories in ``runs_dir`` named ``*_<run_name>`` (the default layout, ``<date>_<time>_<model>_<data>``).
    Lightning's own ``ckpt_path="last"`` looks only in the new run's directory, which holds nothing yet.

    Under SLURM the run directory ``run_dir`` is named after ``$SLURM_JOB_ID`` (conf/hydra/default.yaml), so a job
    requeued by Lightning (on the requeue signal it writes ``hpc_ckpt_<n>.ckpt`` and calls ``scontrol requeue``)
    re-runs the same command into the same directory: see :func:`requeued_checkpoint`.
    """
    if run_dir is not None and (own := requeued_checkpoint(run_dir)) is not None:
        return own
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


def requeued_checkpoint(run_dir: Path) -> Path | None:
    """In a SLURM job whose run directory already holds checkpoints: the newest of them when SLURM requeued the job
    (``SLURM_RESTART_COUNT`` > 0; it wins over the command line's ``ckpt_path``, which the requeued job repeats),
    else a ConfigError rather than overwriting them. None outside SLURM or in a fresh directory."""
    job = os.environ.get("SLURM_JOB_ID")
    found = [p for p in (run_dir / "checkpoints").glob("*.ckpt") if p.name == "last.ckpt" or p.name.startswith("hpc_ckpt_")]
    if not job or not found:
        return None
    newest = max(found, key=lambda p: p.stat().st_mtime)
    if os.environ.get("SLURM_RESTART_COUNT", "0") != "0":
        return newest
    raise ConfigError(f"{run_dir} already holds checkpoints, and SLURM job {job} was not requeued (SLURM_RESTART_COUNT is "
                      f"unset): a second run in the same allocation would overwrite them. Give this run its own "
                      f"directory with hydra.run.dir=<dir>, or continue it with ckpt_path={newest}.")
