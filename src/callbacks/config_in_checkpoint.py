"""Stores the run's resolved config in every checkpoint, so a checkpoint alone can rebuild its model."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from omegaconf import OmegaConf


class ConfigInCheckpoint(pl.Callback):
    KEY = "ganzoo_config"

    def __init__(self, config_path: str | Path):
        """``config_path``: the resolved config that ``src.run.train`` writes before fitting (it holds what the
        run learnt while building, such as the dataset's image shape, so it cannot come from the composed config)."""
        self.config_path = Path(config_path)
        self.config: dict[str, Any] | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.config = OmegaConf.to_container(OmegaConf.load(self.config_path), resolve=True)

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint[self.KEY] = self.config
