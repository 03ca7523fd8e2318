"""Stores the run's resolved config in every checkpoint, so a checkpoint alone can rebuild its model."""
from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf


class ConfigInCheckpoint(pl.Callback):
    KEY = "ganzoo_config"

    def __init__(self, config: DictConfig):
        self.config = OmegaConf.to_container(config, resolve=True)

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint[self.KEY] = self.config
