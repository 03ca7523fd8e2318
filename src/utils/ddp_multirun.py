"""DDP inside a Hydra multirun: the extra ranks of a job run that job alone, and the next job starts afresh.

Lightning starts ranks > 0 by re-running the command line, ``sys.argv`` plus ``hydra.run.dir=<hydra.run.dir>``
(lightning_fabric ``_hydra_subprocess_cmd``). In a multirun, ``sys.argv`` is the whole sweep (``--multirun
seed=0,1``), so each extra rank launches the whole sweep again; and after the first job, the process group and
the ``LOCAL_RANK``/``WORLD_SIZE`` variables Lightning leaves behind make rank 0's next job join that stray sweep
instead of launching its own ranks. A plain grid happens to pair up job by job; any difference between the two
walks (a failed job, a sweeper that draws its trials) pairs ranks of different jobs (lightning-hydra-template
#393 and #226). While a multirun job trains, this presents the job's own overrides as the command line, in
RUN mode, with ``hydra.run.dir`` at the job's output directory; afterwards it tears the process group down
and restores the variables.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import torch.distributed as dist
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import read_write

#: What Lightning's subprocess launcher sets in the launching process's environment.
_DDP_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


@contextmanager
def ddp_ranks_run_this_job() -> Iterator[None]:
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        yield
        return
    hydra_cfg = HydraConfig.get()
    # Hydra sets a fresh HydraConfig for every job, so run.dir needs no restoring.
    with read_write(hydra_cfg.run):
        hydra_cfg.run.dir = hydra_cfg.runtime.output_dir
    saved_argv = sys.argv
    saved_env = {name: os.environ.get(name) for name in _DDP_VARIABLES}
    sys.argv = [sys.argv[0], *hydra_cfg.overrides.task, "hydra.mode=RUN"]
    try:
        yield
    finally:
        sys.argv = saved_argv
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
