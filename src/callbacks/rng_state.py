"""Per-rank training randomness, kept in checkpoints so a resumed run draws what an uninterrupted one would.

Seeding: ``src.run`` seeds every process with ``cfg.seed`` before it builds the model, so the initial weights (and
any fixed latents the model registers) are identical on every rank; Lightning then re-seeds each rank with that
same value, which would make every rank draw the same latents and train on one fake batch ``world_size`` times.
At ``setup`` this callback re-seeds each rank from (seed, rank), so training randomness differs per rank.

Checkpoints: Lightning saves model, optimizer and loop state but not the RNGs. Every rank's Python, NumPy, torch
and CUDA generator states are gathered into the checkpoint (rank 0 writes it) and each rank restores its own.
A checkpoint from another world size cannot restore per-rank streams: the ranks then continue from fresh
streams seeded by (seed, rank, step), and a warning says so.
"""
from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.distributed as dist
from pytorch_lightning.utilities import rank_zero_warn


def rank_seed(seed: int, rank: int, *more: int) -> int:
    """A seed for ``rank`` derived from the run's ``seed``: different per rank, well mixed (NumPy's SeedSequence)."""
    return int(np.random.SeedSequence([seed, rank, *more]).generate_state(1)[0])


def capture() -> dict[str, Any]:
    """This process's RNG states, in types a ``weights_only`` checkpoint load accepts."""
    numpy_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [numpy_state[0], numpy_state[1].tolist(), *numpy_state[2:]],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore(state: dict[str, Any]) -> None:
    random.setstate(_as_tuple(state["python"]))
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


class RNGStateInCheckpoint(pl.Callback):
    KEY = "ganzoo_rng_state"

    def __init__(self, seed: int):
        self.seed = seed

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # After Lightning's own per-process re-seed and before a checkpoint's states are restored.
        if stage == "fit":
            pl.seed_everything(rank_seed(self.seed, trainer.global_rank), workers=True, verbose=False)

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]) -> None:
        # Lightning builds the checkpoint on every rank (rank 0 writes it), so this gather is met by every rank.
        states: list[Any] = [capture()]
        if dist.is_available() and dist.is_initialized() and trainer.world_size > 1:
            states = [None] * trainer.world_size
            dist.all_gather_object(states, capture())
        checkpoint[self.KEY] = {"ranks": states}

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get(self.KEY)
        if saved is None:
            return
        states = saved["ranks"] if "ranks" in saved else [saved]  # checkpoints from before per-rank states
        if len(states) == trainer.world_size:
            restore(states[trainer.global_rank])
            return
        rank_zero_warn(f"The checkpoint holds the RNG states of {len(states)} rank(s) and this run has "
                       f"{trainer.world_size}: each rank continues from a fresh stream seeded by (seed, rank, step), "
                       "so the run does not repeat what an uninterrupted one would have drawn.")
        pl.seed_everything(rank_seed(self.seed, trainer.global_rank, checkpoint.get("global_step", 0)),
                           workers=True, verbose=False)


def _as_tuple(value):
    """random.setstate needs tuples; a checkpoint round trip may turn them into lists."""
    return tuple(_as_tuple(v) for v in value) if isinstance(value, (list, tuple)) else value
