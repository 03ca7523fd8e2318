"""Which checkpoint a run resumes from: ``ckpt_path=<file>``, ``ckpt_path=last`` (the newest ``last.ckpt`` of the same
model and data), or, in a requeued SLURM job, the newest checkpoint in its own run directory."""
from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from src.callbacks.config_in_checkpoint import ConfigInCheckpoint
from src.utils.errors import ConfigError

LAST = "last"
#: What every checkpoint `python -m src.run` writes holds: Lightning's own keys and the run's config.
CHECKPOINT_KEYS = ("state_dict", "pytorch-lightning_version", ConfigInCheckpoint.KEY)


def load_checkpoint(ckpt_path: str | Path) -> dict[str, Any]:
    """The checkpoint at ``ckpt_path`` (an existing file), tensors memory-mapped on CPU; ConfigError when it
    is not one that `python -m src.run` wrote.

    Loaded with ``weights_only=True``, as Lightning loads it: a file that would need arbitrary unpickling
    is refused rather than run.
    """
    def refuse(reason: str) -> ConfigError:
        return ConfigError(f"ckpt_path={ckpt_path} is not a checkpoint written by `python -m src.run` ({reason}). "
                           f"Pass <run dir>/checkpoints/last.ckpt or best-*.ckpt.")

    if Path(ckpt_path).stat().st_size == 0:
        raise refuse("the file is empty")
    if not zipfile.is_zipfile(ckpt_path):
        raise refuse("not a file torch.save wrote, or cut short")
    try:
        checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError:
        raise refuse("it holds objects other than tensors and plain containers") from None
    except (RuntimeError, OSError, EOFError) as error:
        raise refuse(f"torch.load failed: {(str(error).strip().splitlines() or [type(error).__name__])[0]}") from None
    if not isinstance(checkpoint, dict):
        raise refuse(f"it holds a {type(checkpoint).__name__}, not a dict")
    missing = [key for key in CHECKPOINT_KEYS if key not in checkpoint]
    if missing:
        raise refuse(f"no {', '.join(missing)} in it")
    return checkpoint


def resolve_ckpt_path(ckpt_path: str | None, runs_dir: Path, run_name: str, run_dir: Path | None = None) -> Path | None:
    """The checkpoint to resume from, or None for a fresh run.

    ``ckpt_path=last`` picks the most recently written ``<run>/checkpoints/last.ckpt`` among the run
    directories in ``runs_dir`` named ``*_<run_name>`` (the default layout, ``<date>_<time>_<model>_<data>``).
    Lightning's own ``ckpt_path="last"`` looks only in the new run's directory, which holds nothing yet.
    The file is checked to be a checkpoint here, so a wrong one stops the run before anything is built.

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
        newest = max(found, key=lambda p: p.stat().st_mtime)
        load_checkpoint(newest)
        return newest
    if not Path(ckpt_path).is_file():
        raise ConfigError(f"ckpt_path={ckpt_path} does not exist. Pass a checkpoint file, "
                          f"e.g. <run dir>/checkpoints/last.ckpt, or ckpt_path=last for the newest run of this model and data.")
    load_checkpoint(ckpt_path)
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
