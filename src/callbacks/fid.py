"""FID and KID against real training images at every validation (``val/fid``, ``val/kid``, ``val/kid_std``).

Sharding: each rank extracts features for its share of the real reference images (once per dataset,
resolution and sample count, then cached on disk) and generates its share of the fakes; torchmetrics sums
the statistics across ranks, so the numbers equal a single-process run on the same images.
"""
from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import Subset

from src.metrics.fid import InceptionMetrics, cached_features, weights_identity
from src.metrics.inception import resolve_inception_weights


def shard_size(total: int, rank: int, world_size: int) -> int:
    """How many of ``total`` items rank ``rank`` handles when items i ≡ rank (mod world_size) are its own."""
    return len(range(rank, total, world_size))


class FIDCallback(pl.Callback):
    """Args:
    num_fake_cpu / num_fake_gpu: generated images per evaluation, on CPU / on an accelerator.
    num_real_cpu / num_real_gpu: real reference images (a fixed subset of the training split).
    batch_size: images per Inception forward pass and per generator call.
    kid_subsets, kid_subset_size: KID's subsampling (the subset size shrinks to the sample count).
    weights_path: FID Inception weights; default: torch-fidelity's cache, else converted offline.
    cache_dir: where converted weights and real-image features are cached.
    """

    def __init__(
        self,
        num_fake_cpu: int = 500,
        num_fake_gpu: int = 10000,
        num_real_cpu: int = 500,
        num_real_gpu: int = 10000,
        batch_size: int = 50,
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        weights_path: str | None = None,
        cache_dir: str | Path | None = None,
    ):
        self.num_fake = {"cpu": num_fake_cpu, "accelerator": num_fake_gpu}
        self.num_real = {"cpu": num_real_cpu, "accelerator": num_real_gpu}
        self.batch_size = batch_size
        self.kid = {"kid_subsets": kid_subsets, "kid_subset_size": kid_subset_size}
        self.weights_path = weights_path
        self.cache_dir = cache_dir
        self.metrics: InceptionMetrics | None = None
        self._weights: Path | None = None
        self._real: Tensor | None = None

    def _budget(self, counts: dict[str, int], device: torch.device) -> int:
        return counts["cpu" if device.type == "cpu" else "accelerator"]

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # Resolve (and if needed convert) the weights up front: a missing weights file fails before training.
        self._weights = resolve_inception_weights(self.weights_path, self.cache_dir)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        if self.metrics is None:
            self.metrics = InceptionMetrics(weights_path=self._weights, cache_dir=self.cache_dir,
                                            batch_size=self.batch_size, **self.kid)
        metrics = self.metrics.to(pl_module.device)
        rank, world = trainer.global_rank, trainer.world_size
        metrics.reset()
        real = self._real_features(trainer, pl_module)
        metrics.update(real[rank::world], real=True)
        num_fake = self._budget(self.num_fake, pl_module.device)
        for images in pl_module.sample_batches(shard_size(num_fake, rank, world), self.batch_size):
            metrics.update(metrics.extract(images), real=False)
        scores = metrics.compute()  # a collective: every rank gets the same values
        pl_module.log_dict({f"val/{name}": value for name, value in scores.items()}, sync_dist=True)
        # FID is biased in N: both sample counts go with every number.
        pl_module.log_dict({"val/fid_n": float(num_fake), "val/fid_n_real": float(len(real))}, sync_dist=True)

    def _real_features(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> Tensor:
        """All ranks get the full N×2048 real features (from the disk cache, else computed sharded)."""
        if self._real is None:
            datamodule = trainer.datamodule
            n = self._budget(self.num_real, pl_module.device)
            key = {
                "dataset": datamodule.name,
                "fingerprint": datamodule.fingerprint(),
                "image_shape": list(datamodule.image_shape),
                "n": n,
                "weights": weights_identity(self._weights),
            }
            reference = datamodule.reference_dataset(n)
            self._real = cached_features(self.cache_dir, key, lambda: self._extract_sharded(trainer, reference))
        return self._real

    def _extract_sharded(self, trainer: pl.Trainer, reference) -> Tensor:
        rank, world = trainer.global_rank, trainer.world_size
        mine = Subset(reference, range(rank, len(reference), world))
        features = self.metrics.extract_dataset(mine)
        if world == 1:
            return features
        # Pad to equal shards for all_gather, then interleave back: item i*world + r lives on rank r at row i.
        rows = shard_size(len(reference), 0, world)
        padded = torch.zeros(rows, features.shape[1], device=features.device)
        padded[: len(features)] = features
        gathered = trainer.strategy.all_gather(padded)  # world × rows × 2048
        return gathered.transpose(0, 1).reshape(-1, features.shape[1])[: len(reference)]
