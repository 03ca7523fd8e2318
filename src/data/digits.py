"""The embedded dataset: scikit-learn's 1,797 real 8×8 handwritten digits, no download."""

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch.utils.data import Dataset, Subset, TensorDataset

from src.data.base import BatchSize, GANDataModule, ImageSize, NumWorkers, ValSize, split_indices
from src.data.dict_dataset import DictDataset
from src.utils.arguments import checked
from src.utils.hashing import digest

#: load_digits pixel values are integers 0..16.
_MAX_VALUE = 16.0


@lru_cache(maxsize=1)
def _raw_digits() -> tuple[np.ndarray, np.ndarray]:
    """(images N×8×8 float64 in 0..16, labels N int64), N = 1,797."""
    bunch = load_digits()
    return bunch.images, bunch.target.astype(np.int64)


def digit_images(image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All digits as (images N×1×S×S float32 in [-1, 1], labels N int64 in 0..9), S = ``image_size``."""
    images, labels = _raw_digits()
    unit = torch.from_numpy(images).float().unsqueeze(1) / _MAX_VALUE
    resized = F.interpolate(unit, size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False)
    # Bilinear weights are convex, but float rounding can step a hair past [0, 1].
    return resized.clamp(0.0, 1.0) * 2.0 - 1.0, torch.from_numpy(labels)


class DigitsDataModule(GANDataModule):
    """scikit-learn's ``load_digits`` as 1×S×S images in [-1, 1] with 10 classes, held in memory.

    The 1,797 digits are split by ``seed``: ``val_size`` held out (297 by default, leaving 1,500
    for training).

    Args:
        image_size: S, the side the 8×8 digits are resized to (bilinear, antialiased).
        batch_size, num_workers, val_size, seed: see :class:`GANDataModule`.
    """

    name = "digits"

    @checked
    def __init__(
        self,
        image_size: ImageSize = 32,
        batch_size: BatchSize = 64,
        num_workers: NumWorkers = 0,
        val_size: ValSize = 297,
        seed: int = 0,
    ):
        super().__init__(batch_size=batch_size, num_workers=num_workers, val_size=val_size, seed=seed)
        self.save_hyperparameters()
        self.image_size = image_size

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (1, self.image_size, self.image_size)

    @property
    def num_classes(self) -> int:
        return 10

    def source_signature(self) -> str:
        # The digits ship with scikit-learn; hash them in case a release ever changes them.
        images, labels = _raw_digits()
        return digest([images.tolist(), labels.tolist()])

    def build_splits(self) -> tuple[Dataset, Dataset]:
        images, labels = digit_images(self.image_size)
        pairs = DictDataset(TensorDataset(images, labels))
        train, val = split_indices(len(pairs), self.val_size, self.seed, what="The digits dataset")
        return Subset(pairs, train), Subset(pairs, val)
