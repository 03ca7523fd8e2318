"""pix2pix's published datasets on disk (facades, maps, edges2shoes, cityscapes, night2day, …):
``<root>/<dataset>/train/ val/ test/``, each image the pair A | B side by side (width 2·W).

Items ``{"a": float32 C×S×S in [-1, 1], "b": the same}``, pixel-aligned; ``direction=b2a`` swaps the halves (facades
are trained labels → photo: B → A). Training: both halves resized to ``load_size``², one random ``image_size`` crop and
flip for both (the reference's ``aligned_dataset``); evaluation: resized to ``image_size``². Splits: train/, and val/
and test/ each falling back on the other where a set ships only one of them. Any image mode is converted.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, ClassVar, Literal

import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset
from torchvision.transforms import v2

from src.data.base import BatchSize, ImageSize, NumWorkers, ValSize
from src.data.unpaired_folder import Channels, FolderLayoutDataModule, LoadSize, Root, dataset_folder, read_image
from src.utils.arguments import Meaning, checked
from src.utils.errors import CorruptImageError


class SideBySide(Dataset):
    """``{"a", "b"}`` items from images holding A | B side by side (see the module docstring)."""

    def __init__(self, paths: Sequence[Path], channels: int, transform: v2.Compose, swap: bool):
        self.paths, self.channels, self.transform, self.swap = list(paths), channels, transform, swap

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        image = read_image(self.paths[index], self.channels)
        width = image.shape[-1] // 2
        if width == 0:
            raise CorruptImageError.for_files([self.paths[index]], "1 pixel wide: no A | B pair side by side")
        left, right = image[..., :width], image[..., width:2 * width]
        a, b = (right, left) if self.swap else (left, right)
        both = self.transform(torch.cat([a, b]))  # one crop and flip for both halves
        return {"a": both[:self.channels], "b": both[self.channels:]}


class PairedFolderDataModule(FolderLayoutDataModule):
    """A pix2pix dataset in its published layout (see the module docstring).

    Args:
        root, dataset, image_size, load_size, channels, flip: see
            :class:`src.data.unpaired_folder.UnpairedFolderDataModule`.
        direction: ``a2b`` (left half → right half) or ``b2a``.
        val_size: the validation pairs used (the first ones).
    """

    kinds: ClassVar[tuple[str, ...]] = ("paired", "unpaired")
    SUBFOLDERS = ("train", "val", "test")

    @checked
    def __init__(self, root: Root, dataset: Annotated[str, Meaning("the dataset folder's name", example="facades")],
                 image_size: ImageSize = 256, load_size: LoadSize = 286, channels: Channels = 3, flip: bool = True,
                 direction: Annotated[Literal["a2b", "b2a"], Meaning("which half is the input")] = "a2b",
                 val_size: ValSize = 1000, batch_size: BatchSize = 1, num_workers: NumWorkers = 0, seed: int = 0):
        super().__init__(root, dataset, image_size, load_size, channels, flip, val_size, batch_size, num_workers, seed)
        self.save_hyperparameters()
        self.direction = direction

    @property
    def name(self) -> str:
        return f"{self.dataset}-{self.direction}"

    def files(self) -> dict[str, list[Path]]:
        files = dataset_folder(self.root, self.dataset, self.SUBFOLDERS, "a pix2pix dataset", need=2)
        if "train" not in files:
            dataset_folder(self.root, self.dataset, ("train",), "a pix2pix dataset")  # raises, naming train/
        return files

    def _split(self, paths: Sequence[Path], train: bool) -> SideBySide:
        return SideBySide(paths, self.channels, self.transform(train), swap=self.direction == "b2a")

    def build_splits(self) -> tuple[Dataset, Dataset]:
        files = self.files()
        val = self._split(files.get("val") or files["test"], train=False)
        self.test_set = self._split(files.get("test") or files["val"], train=False)
        return self._split(files["train"], train=True), Subset(val, range(min(self.val_size, len(val))))
