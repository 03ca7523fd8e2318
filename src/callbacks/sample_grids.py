"""Sample grids at every validation: PNGs in the run directory and images in the experiment loggers."""
from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.loggers import Logger, TensorBoardLogger, WandbLogger
from pytorch_lightning.utilities import rank_zero_only
from torch import Tensor
from torchvision.utils import save_image

from src.utils.image_grid import image_grid


def logging_step(trainer: pl.Trainer) -> int:
    """The step Lightning gives the loggers for this validation's metrics: its count of training batches, not
    ``global_step`` (which counts both optimizers' steps). Lightning keeps it private; there is no public twin."""
    return trainer.fit_loop.epoch_loop._batches_that_stepped


def log_image(logger: Logger, key: str, grid: Tensor, step: int) -> None:
    """Send one C×H×W grid in [0, 1] to a logger that can show images (others keep the PNG only)."""
    if isinstance(logger, WandbLogger):
        # Lightning's WandbLogger plots everything against `trainer/global_step`, a metric it fills with the step
        # it gives (not W&B's own step, which drops anything logged below one already used); without a step the
        # grid would sit at the last training step logged.
        logger.log_image(key=key, images=[grid], step=step)
    elif isinstance(logger, TensorBoardLogger):
        logger.experiment.add_image(key, grid, global_step=step)


class SampleGrids(pl.Callback):
    """Writes each of the model's ``visualizations()`` as ``<dirpath>/<name>_epoch<E>.png`` (and
    ``<name>_last.png``, always the newest) and logs it under ``samples/<name>``. A visualization is
    ``(images, per_row)`` or ``(images, per_row, labels)`` with a line of text per row, printed under it."""

    def __init__(self, dirpath: str | Path):
        self.dirpath = Path(dirpath)
        self.written: dict[str, Path] = {}

    @rank_zero_only
    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self.dirpath.mkdir(parents=True, exist_ok=True)
        for name, (images, per_row, *labels) in pl_module.visualizations().items():
            grid = image_grid(images, per_row, *labels)  # labels: one line of text per row (T2F's captions)
            path = self.dirpath / f"{name}_epoch{trainer.current_epoch:04d}.png"
            save_image(grid, path)
            save_image(grid, self.dirpath / f"{name}_last.png")
            self.written[name] = path
            for logger in trainer.loggers:
                log_image(logger, f"samples/{name}", grid, logging_step(trainer))
