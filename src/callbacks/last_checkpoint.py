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
from collections.abc import Callable
from types import FrameType
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

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Lightning has just installed its SIGTERM handler, and restores the one before it at teardown.
        if trainer.world_size > 1:
            signal.signal(signal.SIGTERM, _once(signal.getsignal(signal.SIGTERM)))

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]) -> None:
        # At an epoch's end the next epoch starts a fresh pass over the data, in a resumed run as in an uninterrupted
        # one: the loader's place in the finished pass must not be restored (with limit_train_batches the pass is
        # unfinished, and the resumed epoch would continue it). The shuffle generator is in the datamodule's state.
        if trainer.fit_loop.epoch_loop.batch_progress.is_last_batch and "loops" in checkpoint:
            checkpoint["loops"]["fit_loop"]["state_dict"].pop("combined_loader", None)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        # Only SIGTERM: Lightning raises it between batches, so the state is whole. Any other exception may stop
        # a step halfway (G updated, D not) or come from a diverged model, and must not replace a good last.ckpt.
        fitting = trainer.state.fn == TrainerFn.FITTING and not trainer.sanity_checking
        if not isinstance(exception, SIGTERMException) or not fitting:
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


def _once(handler: Callable[[int, FrameType | None], Any]) -> Callable[[int, FrameType | None], None]:
    """Under DDP, Lightning 2.6.6's SIGTERM handler broadcasts from rank 0 inside the handler, and rank 0 forwards the
    signal to its child ranks. A scheduler signals every process, so a child gets SIGTERM twice, broadcasts twice
    against rank 0's once, and the ranks hang (measured with trainer=ddp_cpu). Once per process pairs them up."""
    fired = False

    def handle(signum: int, frame: FrameType | None) -> None:
        nonlocal fired
        if not fired:
            fired = True
            handler(signum, frame)

    return handle


def resume_command(ckpt_path: str) -> str:
    """This run's command line with ``ckpt_path=<ckpt_path>`` in place of any earlier ``ckpt_path``."""
    args = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else sys.argv[1:]
    args = [a for a in args if a.lstrip("+~").split("=", 1)[0] != "ckpt_path"] + [f"ckpt_path={ckpt_path}"]
    return shlex.join(["python", "-m", "src.run", *args])
