"""Test-only callbacks that real ``python -m src.run`` runs load with ``+callbacks.<name>._target_=fault_helpers.…``
(the ``fault_env`` fixture puts this directory on PYTHONPATH): hold a run at a known batch for a signal, record what
each DDP rank drew, break one rank on purpose."""
from __future__ import annotations

import time
from pathlib import Path

import pytorch_lightning as pl
import torch


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


class RecordRankDraws(pl.Callback):
    """Per rank, into ``dirpath``: ``init_rank<r>.pt``, the model's weights as built (before DDP synchronises
    them), and ``latents_rank<r>.pt``, the codes InfoGAN drew from the training RNG for its first batch."""

    def __init__(self, dirpath: str):
        self.dirpath = Path(dirpath)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.dirpath.mkdir(parents=True, exist_ok=True)
        rank = trainer.global_rank
        torch.save({k: v.detach().clone() for k, v in pl_module.state_dict().items()}, self.dirpath / f"init_rank{rank}.pt")
        original = pl_module.sample_codes
        latents = self.dirpath / f"latents_rank{rank}.pt"

        def recording(n, generator=None):
            if generator is not None:  # an evaluation draw, not the training stream
                return original(n, generator)
            codes = original(n)
            if not latents.exists():
                torch.save(codes, latents)
            return codes

        pl_module.sample_codes = recording


class NaNImagesOnRank(pl.Callback):
    """Turns the real images of one training batch into NaNs on one rank only: a real NaN loss on that rank."""

    def __init__(self, rank: int = 1, batch: int = 1):
        self.rank, self.batch = rank, batch

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int) -> None:
        if trainer.global_rank == self.rank and batch_idx == self.batch:
            batch["image"].fill_(float("nan"))
