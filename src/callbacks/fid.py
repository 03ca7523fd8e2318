"""FID and KID for each of the model's evaluation streams, at every validation.

For every stream the model names (:class:`src.models.base.EvalStream`) it logs ``val/fid/<stream>``,
``val/kid/<stream>``, ``val/kid_std/<stream>`` and the sample counts ``val/fid_n/<stream>`` (fakes) and
``val/fid_n_real/<stream>``; the primary (first) stream's values are logged again without the suffix
(``val/fid``, ``val/kid``, ``val/kid_std``, ``val/fid_n``, ``val/fid_n_real``), which checkpoints and sweeps use.

Randomness: evaluation runs inside ``torch.random.fork_rng``, so it never moves the training RNG (a resumed run
draws what an uninterrupted one would, whenever validation runs). The fakes come in fixed chunks of
``batch_size``; chunk c draws from its own generator, seeded by (``seed``, stream, c), and is made by rank
c mod world size. So the fakes are the same images whatever the world size and however often validation runs,
and FID under DDP equals FID in one process. Every rank evaluates rank 0's buffers (e.g. batch-norm statistics,
which drift apart per rank when they are not synchronised).

Real images: each rank extracts features for its share of a stream's real reference set (a fixed subset of a split,
``GANDataModule.eval_subset``, average-pooled to the set's ``size`` when it names one), once per dataset, split,
domain, resolution, size and sample count, then cached on disk;
torchmetrics sums the statistics across ranks.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
import torch.distributed as dist
from pytorch_lightning.utilities import move_data_to_device
from torch import Tensor
from torch.utils.data import Dataset, Subset, default_collate

from src.data.dict_dataset import ImagesOf
from src.metrics.fid import InceptionMetrics, cached_features, weights_identity
from src.metrics.inception import resolve_inception_weights
from src.models.base import EvalStream, GANModule, RealSet


def shard_size(total: int, rank: int, world_size: int) -> int:
    """How many of ``total`` items rank ``rank`` handles when items i ≡ rank (mod world_size) are its own."""
    return len(range(rank, total, world_size))


def chunk_seed(seed: int, stream: str, chunk: int) -> int:
    """The seed of one chunk of a stream's fakes: a function of the three, not of the rank or the world size."""
    return int(np.random.SeedSequence([seed, *stream.encode(), chunk]).generate_state(1)[0])


class FIDCallback(pl.Callback):
    """Args:
    num_fake_cpu / num_fake_gpu: fakes per stream and evaluation, on CPU / on an accelerator (a stream made from
        held-out inputs makes one fake per input, at most this many).
    num_real_cpu / num_real_gpu: real reference images per stream (a fixed subset of its split).
    batch_size: images per Inception forward pass, per generator call and per chunk of fakes.
    kid_subsets, kid_subset_size: KID's subsampling (the subset size shrinks to the sample count).
    weights_path: FID Inception weights; default: torch-fidelity's cache, else converted offline.
    cache_dir: where converted weights and real-image features are cached.
    seed: seeds the evaluation fakes (not the training seed: every run is scored on the same latents).
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
        seed: int = 0,
    ):
        self.num_fake = {"cpu": num_fake_cpu, "accelerator": num_fake_gpu}
        self.num_real = {"cpu": num_real_cpu, "accelerator": num_real_gpu}
        self.batch_size = batch_size
        self.kid = {"kid_subsets": kid_subsets, "kid_subset_size": kid_subset_size}
        self.weights_path = weights_path
        self.cache_dir = cache_dir
        self.seed = seed
        self.metrics: InceptionMetrics | None = None
        self._weights: Path | None = None
        self._real: dict[RealSet, Tensor] = {}

    def _budget(self, counts: dict[str, int], device: torch.device) -> int:
        return counts["cpu" if device.type == "cpu" else "accelerator"]

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # Resolve (and if needed convert) the weights up front: a missing weights file fails before training.
        self._weights = resolve_inception_weights(self.weights_path, self.cache_dir)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: GANModule) -> None:
        if trainer.sanity_checking:
            return
        device = pl_module.device
        with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
            if self.metrics is None:
                self.metrics = InceptionMetrics(weights_path=self._weights, cache_dir=self.cache_dir,
                                                batch_size=self.batch_size, **self.kid)
            _broadcast_buffers(pl_module)
            for position, stream in enumerate(pl_module.evaluation_streams()):
                scores = self.score(trainer, pl_module, stream)
                pl_module.log_dict({f"val/{name}/{stream.name}": value for name, value in scores.items()},
                                   sync_dist=True)
                if position == 0:
                    pl_module.log_dict({f"val/{name}": value for name, value in scores.items()}, sync_dist=True)

    def score(self, trainer: pl.Trainer, pl_module: GANModule, stream: EvalStream) -> dict[str, float]:
        """FID, KID (and its std over subsets) of one stream, with both sample counts; the same on every rank."""
        metrics = self.metrics.to(pl_module.device)
        rank, world = trainer.global_rank, trainer.world_size
        metrics.reset()
        real = self._real_features(trainer, pl_module, stream.real)
        metrics.update(real[rank::world], real=True)
        for fakes in self._fakes(trainer, pl_module, stream):
            metrics.update(metrics.extract(fakes), real=False)
        # FID is biased in N: both sample counts go with every number.
        num_fake = self._num_fakes(trainer, pl_module, stream)
        return {**metrics.compute(), "fid_n": float(num_fake), "fid_n_real": float(len(real))}

    def _inputs(self, trainer: pl.Trainer, pl_module: GANModule, stream: EvalStream) -> Dataset:
        return trainer.datamodule.eval_subset(stream.inputs.split, self._budget(self.num_fake, pl_module.device))

    def _num_fakes(self, trainer: pl.Trainer, pl_module: GANModule, stream: EvalStream) -> int:
        if stream.inputs is None:
            return self._budget(self.num_fake, pl_module.device)
        return len(self._inputs(trainer, pl_module, stream))

    @torch.no_grad()
    def _fakes(self, trainer: pl.Trainer, pl_module: GANModule, stream: EvalStream) -> Iterator[Tensor]:
        """This rank's chunks of the stream's fakes: chunk c is made by rank c mod world, from its own generator."""
        device, rank, world = pl_module.device, trainer.global_rank, trainer.world_size
        total = self._num_fakes(trainer, pl_module, stream)
        inputs = self._inputs(trainer, pl_module, stream) if stream.inputs is not None else None
        for chunk in range(rank, -(-total // self.batch_size), world):
            start, stop = chunk * self.batch_size, min(total, (chunk + 1) * self.batch_size)
            generator = torch.Generator(device).manual_seed(chunk_seed(self.seed, stream.name, chunk))
            if inputs is None:
                yield stream.make(stop - start, generator)
            else:
                batch = default_collate([inputs[i] for i in range(start, stop)])
                yield stream.make(move_data_to_device(batch, device), generator)

    def _real_features(self, trainer: pl.Trainer, pl_module: GANModule, real: RealSet) -> Tensor:
        """All ranks get the full N×2048 features of a real set (from the disk cache, else computed sharded)."""
        if real not in self._real:
            datamodule = trainer.datamodule
            n = self._budget(self.num_real, pl_module.device)
            key = {
                "dataset": datamodule.name,
                "fingerprint": datamodule.fingerprint(),  # holds the image shape and the data settings
                "split": real.split,
                "domain": real.domain,
                "n": n,
                "weights": weights_identity(self._weights),
            }
            if real.size is not None:  # only then: the keys of full-size sets stay what they were
                key["size"] = real.size
            reference = ImagesOf(datamodule.eval_subset(real.split, n), real.domain or "image", size=real.size)
            # Rank 0 decides hit or miss and hands the features to every rank (ranks need not share a disk).
            self._real[real] = cached_features(self.cache_dir, key, lambda: self._extract_sharded(trainer, reference),
                                               broadcast=lambda obj: trainer.strategy.broadcast(obj, src=0),
                                               is_writer=trainer.is_global_zero)
        return self._real[real]

    def _extract_sharded(self, trainer: pl.Trainer, reference: Dataset) -> Tensor:
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


def _broadcast_buffers(module: torch.nn.Module) -> None:
    """Rank 0's buffers on every rank, so that every rank's share of the fakes comes from the same network."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)
