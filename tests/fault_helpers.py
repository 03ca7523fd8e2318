"""Test-only callbacks for tests/test_faults.py, loaded into real runs with ``+callbacks.<name>._target_=...``
(the test puts this directory on PYTHONPATH)."""
from __future__ import annotations

import time

import pytorch_lightning as pl


class SlowBatches(pl.Callback):
    """Sleeps after each training batch and says which batch finished, so a test can signal a run between
    batches reliably: the timing of a tiny run is otherwise milliseconds."""

    def __init__(self, seconds: float = 0.5):
        self.seconds = seconds

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx: int) -> None:
        print(f"\nfinished epoch={trainer.current_epoch} batch={batch_idx} step={trainer.global_step}", flush=True)
        time.sleep(self.seconds)
