"""FID and KID from one pass of the reference Inception, correct under DDP.

The one documented FID path: images in [-1, 1] → `images_to_uint8` → the reference Inception (`inception.py`:
the standard 2015-12-05 weights, TF1-compatible resize to 299) → float32 N×2048 features → torchmetrics'
`FrechetInceptionDistance` and `KernelInceptionDistance`, which both take those precomputed features through
`FeaturePassthrough`, so each image goes through Inception exactly once. Report N (real and fake) with every number:
FID is biased in N, and the small N of CPU runs gives larger values than the standard 10k/50k.

Real-image features can be cached on disk with `cached_features`, keyed by everything they depend on.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from src.metrics.inception import (
    CONVERTER_VERSION,
    FID_PREPROCESSING,
    build_inception,
    save_atomically,
)
from src.utils.atomic import UNREADABLE_CACHE_ERRORS
from src.utils.hashing import digest, file_digest
from src.utils.paths import cache_root

INCEPTION_FEATURES = 2048


def images_to_uint8(images: Tensor) -> Tensor:
    """Float images in [-1, 1], N×C×H×W with C in {1, 3} → uint8 N×3×H×W in [0, 255] (gray repeated to RGB)."""
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"Expected images N×C×H×W with C = 1 or 3, got shape {tuple(images.shape)}.")
    pixels = torch.round((images.float() + 1) * 127.5).clamp_(0, 255).to(torch.uint8)
    return pixels.expand(-1, 3, -1, -1) if pixels.shape[1] == 1 else pixels


class FeaturePassthrough(nn.Module):
    """Identity "feature extractor" so torchmetrics' FID/KID accept precomputed N×num_features features.

    torchmetrics reads `num_features` instead of probing the module with a dummy image.
    """

    def __init__(self, num_features: int = INCEPTION_FEATURES):
        super().__init__()
        self.num_features = num_features

    def forward(self, features: Tensor) -> Tensor:
        return features


def _num_rows(state: Tensor | list[Tensor]) -> int:
    """Rows held by a list-of-tensors metric state, before (a list) or after (one tensor) a distributed sync."""
    return state.shape[0] if isinstance(state, Tensor) else sum(t.shape[0] for t in state)


class _KID(KernelInceptionDistance):
    """torchmetrics' KID on precomputed features, with three changes.

    - Features are gathered across ranks as one tensor per rank, in rank order (`dist_reduce_fx="cat"`).
      torchmetrics' own list states gather element by element, which needs every rank to have called `update`
      the same number of times.
    - The subset size shrinks to the number of samples held when that is smaller (few samples on CPU), with a warning.
    - Subsets are drawn from a fixed seed with the global RNG state saved and restored: every rank reports the
      same KID, evaluating the same features twice agrees, and training randomness (exact resume) is untouched.
    - A rank that holds no fakes (fewer chunks of fakes than ranks) joins the gather with an empty N×d tensor:
      torchmetrics' own stand-in for an empty list state is 1-d, whose shape the gather cannot match with N×d.
    """

    seed = 0

    def __init__(self, num_features: int, subsets: int, subset_size: int):
        with warnings.catch_warnings():
            # Holding every feature is the design here (10k × 2048 float32 = 80 MB per set); no need to say so.
            warnings.filterwarnings("ignore", message=".*will save all extracted features in buffer.*")
            super().__init__(feature=FeaturePassthrough(num_features), subsets=subsets, subset_size=subset_size)
        self.add_state("real_features", [], dist_reduce_fx="cat")
        self.add_state("fake_features", [], dist_reduce_fx="cat")
        self._num_features = num_features

    def _sync_dist(self, *args, **kwargs) -> None:
        for state in (self.real_features, self.fake_features):
            if isinstance(state, list) and not state:
                state.append(torch.empty(0, self._num_features, device=self.device))
        super()._sync_dist(*args, **kwargs)

    def compute(self) -> tuple[Tensor, Tensor]:
        requested = self.subset_size
        held = min(_num_rows(self.real_features), _num_rows(self.fake_features))
        if held < requested:
            warnings.warn(f"KID subset_size {requested} is more than the {held} samples held (min of real and fake); "
                          f"using subsets of {held}. Raise the sample count for standard KID numbers.", stacklevel=2)
            self.subset_size = held
        try:
            with torch.random.fork_rng(devices=[]):
                torch.random.default_generator.manual_seed(self.seed)
                return super().compute()
        finally:
            self.subset_size = requested


class InceptionMetrics(nn.Module):
    """FID and KID (mean, std over subsets) between real and generated images, sharing Inception features.

    Use: `features = metrics.extract(images)` → `metrics.update(features, real=...)` → `metrics.compute()` →
    `metrics.reset()`. Real features can come from `cached_features` instead of `extract`.

    Distributed contract: every rank calls `update` with its own shard of the real features and its own shard of
    the fake ones (at least one sample of each per rank), and every rank calls `compute()`, which is a collective.
    The result equals one process updated with all features in rank order (FID and full-size KID do not depend
    on order; subsampled KID does, through which samples each seeded subset picks).

    The Inception net is kept out of the registered submodules (a plain attribute set with object.__setattr__), so
    a LightningModule holding this object does not put the frozen 95 MB network into its checkpoints, its
    parameter counts, DDP's buffer broadcasts or precision casts (bf16-true would change the reference features).
    It follows this module's device lazily, in `extract`. The metric states are not persistent either: the
    state_dict of this module is empty.
    """

    def __init__(self, weights_path: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None,
                 kid_subsets: int = 100, kid_subset_size: int = 1000, batch_size: int = 50,
                 inception: nn.Module | None = None, num_features: int = INCEPTION_FEATURES):
        """`inception` (default `build_inception(weights_path, cache_dir)`): uint8 N×3×H×W → N×num_features."""
        super().__init__()
        self.batch_size = batch_size
        self.num_features = num_features
        self.fid = FrechetInceptionDistance(feature=FeaturePassthrough(num_features))
        self.kid = _KID(num_features, kid_subsets, kid_subset_size)
        net = inception if inception is not None else build_inception(weights_path, cache_dir)
        object.__setattr__(self, "_inception", net)

    @property
    def device(self) -> torch.device:
        return self.fid.device

    @torch.no_grad()
    def extract(self, images: Tensor) -> Tensor:
        """Images in [-1, 1], N×C×H×W (C 1 or 3, any size) → float32 N×num_features on this module's device."""
        net = self._inception.to(self.device)
        features = [net(images_to_uint8(chunk).to(self.device)) for chunk in images.split(self.batch_size)]
        return torch.cat(features).float()

    def extract_dataset(self, dataset) -> Tensor:
        """Features of every item's ``"image"`` in a map-style dataset, in order: N×num_features."""
        loader = DataLoader(dataset, batch_size=self.batch_size, shuffle=False)
        return torch.cat([self.extract(batch["image"]) for batch in loader])

    def update(self, features: Tensor, real: bool) -> None:
        """Add N×num_features features (from `extract` or a cache, any device) to the real or the fake set."""
        if features.ndim != 2 or features.shape[1] != self.num_features:
            raise ValueError(f"Expected features N×{self.num_features}, got shape {tuple(features.shape)}; "
                             "pass the output of extract(), not images.")
        features = features.to(self.device, torch.float32)
        self.fid.update(features, real=real)
        self.kid.update(features, real=real)

    def compute(self) -> dict[str, float]:
        """{"fid", "kid", "kid_std"} over everything updated since the last reset, on all ranks."""
        fid = self.fid.compute()
        kid, kid_std = self.kid.compute()
        return {"fid": float(fid), "kid": float(kid), "kid_std": float(kid_std)}

    def reset(self) -> None:
        """Forget both the real and the fake features."""
        self.fid.reset()
        self.kid.reset()


def weights_identity(path: str | os.PathLike) -> str:
    """Identity of a weights file for cache keys: a hash of its whole content, then its size in bytes."""
    return file_digest(path)


def feature_key(key_parts: dict) -> dict:
    """The full key of cached real features: the caller's `key_parts` and what the FID path itself depends on.

    The features also depend on the preprocessing (`FID_PREPROCESSING`), the code that runs it (torchmetrics'
    wrapper, torch-fidelity's network and resize) and, for converted weights, the converter. The weights file
    itself is the caller's to name, as `"weights": weights_identity(path)`.
    """
    if "weights" not in key_parts:
        raise ValueError('The real-feature cache key must name the Inception weights: add '
                         '"weights": weights_identity(path) to key_parts.')
    return {
        "caller": key_parts,
        "fid_path": {
            "preprocessing": FID_PREPROCESSING,
            "torchmetrics": version("torchmetrics"),
            "torch-fidelity": version("torch-fidelity"),
            "converter": CONVERTER_VERSION,
        },
    }


def cached_features(cache_dir: str | os.PathLike | None, key_parts: dict, compute_fn: Callable[[], Tensor],
                    broadcast: Callable[[Any], Any] | None = None, is_writer: bool = True) -> Tensor:
    """Features stored at `<cache_dir>/fid_features/<key>.pt`, from `compute_fn()` on a miss; returned on CPU.

    `cache_dir` defaults to `default_cache_dir()` ($GANZOO_CACHE, else ~/.cache/ganzoo). `key_parts` names what
    the caller's features depend on: the dataset (name and fingerprint), the split and domain, the sample count,
    `"weights": weights_identity(weights)`; `feature_key` adds the rest. The file name is `digest` of the full key.
    Written atomically, so an interrupted run leaves no partial file behind; an unreadable file is a miss.

    Distributed (`broadcast(obj)` returns the writer's `obj` on every rank, e.g.
    `lambda obj: trainer.strategy.broadcast(obj, src=0)`; `is_writer` is true on rank 0 only): rank 0 alone
    decides hit or miss, since each rank deciding from its own filesystem could split them and hang `compute_fn`'s
    collectives. On a hit rank 0 reads the file and broadcasts the features (the other ranks need not see rank
    0's filesystem); on a miss every rank calls `compute_fn` (which may be a collective) and rank 0 writes.
    """
    full_key = feature_key(key_parts)
    path = cache_root(cache_dir) / "fid_features"
    path = path / f"{digest(full_key)}.pt"
    features = _read_features(path) if is_writer else None
    if broadcast is not None:
        features = broadcast(features)
    if features is None:
        features = compute_fn().detach().cpu()
        if is_writer:
            save_atomically({"key": full_key, "features": features}, path)
    return features


def _read_features(path: Path) -> Tensor | None:
    """The features cached at `path`, or None when there are none (a miss)."""
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)["features"]
    except UNREADABLE_CACHE_ERRORS as error:
        # Raising here, on rank 0 alone, would leave the other ranks waiting in the broadcast.
        warnings.warn(f"Cached FID features {path} are unreadable ({type(error).__name__}); computing them again.",
                      stacklevel=3)
        return None
