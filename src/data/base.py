"""The base of every DataModule: splits, loaders, the FID reference subset, the fingerprint."""

import functools
import warnings
from abc import ABC, abstractmethod
from typing import Annotated, Any, ClassVar

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Subset
from torchdata.stateful_dataloader import StatefulDataLoader

from src.utils.arguments import Meaning, checked
from src.utils.errors import ConfigError
from src.utils.hashing import digest

# The settings every DataModule takes, with what can work; subclasses annotate their own arguments with these.
BatchSize = Annotated[int, Meaning("the number of images per batch", at_least=1)]
NumWorkers = Annotated[int, Meaning("DataLoader worker processes, 0 to load in the main process", at_least=0)]
ValSize = Annotated[int, Meaning("the number of held-out validation images", at_least=1)]
ImageSize = Annotated[int, Meaning("the side of the square images, in pixels", at_least=1)]


def seeded_permutation(n: int, seed: int) -> torch.Tensor:
    """A permutation of ``range(n)`` that depends only on ``n`` and ``seed`` (not on global RNG state)."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))


def split_indices(n: int, val_size: int, seed: int, what: str) -> tuple[list[int], list[int]]:
    """(train, val) index lists: ``val_size`` held-out items drawn by ``seed``, the rest for training.

    ``what`` names the data in the error raised when nothing would be left to train on.
    """
    if not 0 < val_size < n:
        raise ConfigError(
            f"{what} has {n} images; val_size={val_size} must be at least 1 and leave some "
            f"for training. Set data.val_size between 1 and {n - 1}."
        )
    order = seeded_permutation(n, seed).tolist()
    return sorted(order[val_size:]), sorted(order[:val_size])


class GANDataModule(pl.LightningDataModule, ABC):
    """Base of every DataModule.

    Subclasses give the image shape, class count and name right after construction
    (models size themselves from them before ``setup``), and build the train and
    validation datasets in :meth:`build_splits`. Items are dicts
    ``{"image": float32 C×H×W in [-1, 1], "label": int64 scalar}``, ``"label"`` only
    where the dataset has labels.

    Args:
        batch_size: images per batch, for training and validation.
        num_workers: DataLoader worker processes (0 loads in the main process).
        val_size: number of held-out images in the validation split.
        seed: seeds the train/val split and the FID reference subset (never the global RNG).
    """

    #: The kinds of data the items carry, the main one first (captioned faces are images too, paired domains are
    #: unpaired ones too); a model declares the kinds it accepts (``GANModule.data_kinds``).
    kinds: ClassVar[tuple[str, ...]] = ("image",)

    @checked
    def __init__(self, batch_size: BatchSize = 64, num_workers: NumWorkers = 0, val_size: ValSize = 1000,
                 seed: int = 0):
        super().__init__()
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.val_size = val_size
        self.seed = seed
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None

    @property
    def kind(self) -> str:
        """The main kind of data the items carry."""
        return self.kinds[0]

    @property
    @abstractmethod
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of every image."""

    @property
    @abstractmethod
    def num_classes(self) -> int | None:
        """Number of label classes, or ``None`` for unlabelled data."""

    @property
    @abstractmethod
    def name(self) -> str:
        """Short dataset name, for logs and run names."""

    @abstractmethod
    def build_splits(self) -> tuple[Dataset, Dataset]:
        """(train, val) datasets of batch-dict items; raises if the data is missing."""

    def source_signature(self) -> Any:
        """What identifies the underlying data beyond the settings (e.g. file sizes and mtimes)."""
        return None

    def fingerprint(self) -> str:
        """Short hash that changes when the data or its preprocessing changes (a cache key)."""
        return digest(
            {
                "name": self.name,
                "image_shape": self.image_shape,
                "val_size": self.val_size,
                "seed": self.seed,
                "source": self.source_signature(),
            }
        )

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set, self.val_set = self.build_splits()

    def train_dataloader(self) -> DataLoader:
        """Shuffled training batches; the last incomplete batch is dropped."""
        self.setup()
        if len(self.train_set) < self.batch_size:
            raise ConfigError(
                f"The {self.name} training split has {len(self.train_set)} images, fewer than "
                f"batch_size={self.batch_size}, so no batch would be drawn. Lower data.batch_size."
            )
        return self._loader(self.train_set, shuffle=True, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        """Held-out images in a fixed order, the last batch kept."""
        self.setup()
        return self._loader(self.val_set, shuffle=False, drop_last=False)

    def split(self, name: str) -> Dataset:
        """A split by name: ``"train"`` and ``"val"`` (subclasses with more splits extend :meth:`splits`)."""
        self.setup()
        splits = self.splits()
        if name not in splits:
            raise ConfigError(f"data={self.name} has no {name!r} split; it has {', '.join(sorted(splits))}.")
        return splits[name]

    def splits(self) -> dict[str, Dataset]:
        return {"train": self.train_set, "val": self.val_set}

    def eval_subset(self, split: str, n: int) -> Dataset:
        """What evaluation reads of a split: the first ``n`` items of a ``seed``-permutation of it (all of it
        when it has fewer), the same in every run with this data seed (FID's real reference images, the held-out
        inputs of conditional fakes)."""
        data = self.split(split)
        order = seeded_permutation(len(data), self.seed)
        return Subset(data, order[:n].tolist())

    def state_dict(self) -> dict[str, Any]:
        """The training shuffle's generator. With the loader's own state (its place in the epoch, which Lightning
        keeps too) a resumed run draws the batches an uninterrupted one would, mid-epoch or at an epoch's end."""
        return {"shuffle_generator": self._shuffle_generator.get_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._shuffle_generator.set_state(state_dict["shuffle_generator"])

    @functools.cached_property
    def _shuffle_generator(self) -> torch.Generator:
        # Seeded from the run's seed without a draw: the loader is built after a resume restores the global RNG, and
        # a draw from that RNG there would shift every later latent.
        return torch.Generator().manual_seed(torch.initial_seed())

    def _loader(self, dataset: Dataset, shuffle: bool, drop_last: bool) -> DataLoader:
        # torchdata's StatefulDataLoader keeps its position and shuffle state in Lightning's checkpoints, so a run
        # stopped mid-epoch resumes at the next batch of the same order. Each loader has a generator of its own, so
        # iterating it (a worker base seed is drawn every epoch) never moves the global RNG.
        generator = self._shuffle_generator if shuffle else torch.Generator().manual_seed(self.seed)
        with warnings.catch_warnings():
            # torchdata 0.11 calls torch.set_vital, deprecated in torch 2.14: a warning in every run, not ours to fix.
            warnings.filterwarnings("ignore", message="'set_vital' is deprecated")
            return StatefulDataLoader(
                dataset,
                batch_size=self.batch_size,
                shuffle=shuffle,
                drop_last=drop_last,
                num_workers=self.num_workers,
                pin_memory=torch.cuda.is_available(),
                persistent_workers=self.num_workers > 0,
                generator=generator,
            )
