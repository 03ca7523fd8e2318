"""``last.ckpt`` at the end of every training epoch, whatever the validation schedule, and at SIGTERM.

Lightning 2.6.6's ``ModelCheckpoint(save_top_k=0, save_last=True)`` writes ``last.ckpt`` only when another
checkpoint was saved at the same step (its ``on_train_epoch_end``), so a run killed between validations had none.
On SIGTERM Lightning stops at the next batch boundary and exits 0 without a checkpoint, which a scheduler reads
as success. Here SIGTERM writes ``last.ckpt`` at the current step, mid-epoch if need be (the stateful training
loader makes that resume exact), prints how to resume and exits with 143 (128 + SIGTERM).
"""
from __future__ import annotations

import shlex
import signal
import sys
from typing import Any

import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.trainer.states import TrainerFn
from pytorch_lightning.utilities.exceptions import SIGTERMException

SIGTERM_EXIT_CODE = 128 + signal.SIGTERM


class LastCheckpoint(ModelCheckpoint):
    def __init__(self, dirpath: str, **kwargs: Any):
        super().__init__(dirpath=dirpath, save_top_k=0, save_last=True, save_on_train_epoch_end=True, **kwargs)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        # Only SIGTERM: Lightning raises it between batches, so the state is whole. Any other exception may stop
        # a step halfway (G updated, D not) or come from a diverged model, and must not replace a good last.ckpt.
        if not isinstance(exception, SIGTERMException) or trainer.state.fn != TrainerFn.FITTING or trainer.sanity_checking:
            return
        if trainer.global_step > 0 and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        exception.code = SIGTERM_EXIT_CODE  # the exception ends the process; its code is the exit status
        if not trainer.is_global_zero:
            return
        where = f"step {trainer.global_step} (epoch {trainer.current_epoch})"
        if self.last_model_path:
            print(f"\nStopped by SIGTERM at {where}; saved {self.last_model_path}. Resume with: "
                  f"{resume_command(self.last_model_path)}", file=sys.stderr, flush=True)
        else:
            print(f"\nStopped by SIGTERM at {where}, before any training step: nothing to resume, start again.",
                  file=sys.stderr, flush=True)


def resume_command(ckpt_path: str) -> str:
    """This run's command line with ``ckpt_path=<ckpt_path>`` in place of any earlier ``ckpt_path``."""
    args = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else sys.argv[1:]
    args = [a for a in args if a.lstrip("+~").split("=", 1)[0] != "ckpt_path"] + [f"ckpt_path={ckpt_path}"]
    return shlex.join(["python", "-m", "src.run", *args])
