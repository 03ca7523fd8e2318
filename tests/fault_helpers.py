"""Test-only callbacks for tests/test_faults.py, loaded into real runs with ``+callbacks.<name>._target_=...``
(the test puts this directory on PYTHONPATH)."""
from __future__ import annotations

import time

import pytorch_lightning as pl


class PauseAfterBatch(pl.Callback):
    """Prints every finished training batch; after batch ``batch`` of epoch ``epoch`` it says ``paused`` and waits
    (at most ``seconds``) until a SIGTERM has been received, so a test signals the run at a known batch however
    slowly the machine runs. Other signals (SIGUSR1, SIGKILL) do their work during the wait."""

    def __init__(self, epoch: int, batch: int, seconds: float = 120):
        self.epoch, self.batch, self.seconds = epoch, batch, seconds

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx: int) -> None:
        print(f"\nfinished epoch={trainer.current_epoch} batch={batch_idx} step={trainer.global_step}", flush=True)
        if (trainer.current_epoch, batch_idx) != (self.epoch, self.batch):
            return
        print("\nwaiting for a signal", flush=True)
        deadline = time.monotonic() + self.seconds
        while not trainer.received_sigterm and time.monotonic() < deadline:
            time.sleep(0.05)
