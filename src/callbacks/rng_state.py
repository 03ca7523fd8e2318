"""Keeps the random number generators in checkpoints, so a resumed run draws what an uninterrupted one would.

Lightning saves model, optimizer and loop state but not the RNGs; without them a resume re-seeds from
``cfg.seed`` and the latents, shuffles and dropout masks after the resume point differ. Each rank restores
the state it saved (all ranks write it; rank 0's file is what is kept, so under DDP only rank 0 is exact).
"""
from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch


class RNGStateInCheckpoint(pl.Callback):
    KEY = "ganzoo_rng_state"

    def __init__(self, seed: int):
        self.seed = seed

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]) -> None:
        numpy_state = np.random.get_state()
        checkpoint[self.KEY] = {
            "python": random.getstate(),
            # Lightning loads checkpoints with weights_only=True: plain lists, not ndarrays.
            "numpy": [numpy_state[0], numpy_state[1].tolist(), *numpy_state[2:]],
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get(self.KEY)
        if state is None:
            return
        random.setstate(_as_tuple(state["python"]))
        kind, keys, *rest = state["numpy"]
        np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), *rest))
        torch.set_rng_state(state["torch"].cpu())
        if state["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(value):
    """random.setstate needs tuples; a checkpoint round trip may turn them into lists."""
    return tuple(_as_tuple(v) for v in value) if isinstance(value, (list, tuple)) else value
