"""The shared GAN LightningModule: what every family has in common.

A family subclass implements ``training_step`` (its own update rule, through :meth:`GANModule.step`),
``configure_optimizers``, :meth:`sample` (how to draw fakes for FID) and :meth:`visualizations`
(the grids worth looking at). Metrics are namespaced ``train/…`` and ``val/…``.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import ClassVar

import pytorch_lightning as pl
import torch
from torch import Tensor


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite; training stops before the weights are overwritten with NaNs."""


class GANModule(pl.LightningModule, ABC):
    """Base of every GAN family: manual optimisation, sampling for metrics and grids, loss checks."""

    #: The kinds of data (``GANDataModule.kind``) this family can train on.
    data_kinds: ClassVar[tuple[str, ...]] = ("image",)

    def __init__(self) -> None:
        super().__init__()
        # GANs alternate several optimizers per batch; Lightning's automatic loop assumes one loss.
        self.automatic_optimization = False

    @abstractmethod
    def sample(self, n: int) -> Tensor:
        """n fresh fakes, N×C×H×W in [-1, 1], on this module's device (used for FID)."""

    @abstractmethod
    def visualizations(self) -> dict[str, tuple[Tensor, int]]:
        """Grids to save and log: name → (images N×C×H×W in [-1, 1], images per row)."""

    def step(self, optimizer: torch.optim.Optimizer, loss: Tensor) -> None:
        """One optimizer step on ``loss``, gradients confined to that optimizer's parameters."""
        self.toggle_optimizer(optimizer)
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        optimizer.step()
        self.untoggle_optimizer(optimizer)

    def check_finite(self, losses: dict[str, Tensor]) -> None:
        """Stop with a clear message when a loss is NaN/inf (checkpoints written so far stay valid)."""
        bad = {name: value.item() for name, value in losses.items() if not math.isfinite(value.item())}
        if bad:
            raise NonFiniteLossError(
                f"Non-finite loss at epoch {self.current_epoch}, batch {self.trainer.fit_loop.total_batch_idx}: "
                f"{bad}. The weights before this step are in the last checkpoint. Usual fixes: lower the "
                f"learning rates (model.optimizer_g.lr / model.optimizer_d.lr), check the data for NaNs, "
                f"or resume from the last checkpoint with another seed."
            )

    @torch.no_grad()
    def sample_batches(self, n: int, batch_size: int):
        """Yield ``n`` samples in chunks of at most ``batch_size`` (keeps memory flat for large N)."""
        for start in range(0, n, batch_size):
            yield self.sample(min(batch_size, n - start))
