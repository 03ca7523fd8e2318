"""Adapter from (image, label) datasets to the batch-dict contract."""

from typing import Any

import torch
from torch.utils.data import Dataset


class DictDataset(Dataset):
    """Wraps a dataset of ``(image, label)`` pairs so that items are batch dicts.

    Item: ``{"image": float32 C×H×W in [-1, 1], "label": int64 scalar}``; the
    ``"label"`` key is left out where the wrapped dataset gives ``None`` (unlabelled data).
    The default collate stacks items into ``{"image": N×C×H×W, "label": N}``.
    """

    def __init__(self, pairs: Dataset):
        self.pairs = pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        image, label = self.pairs[index]
        item: dict[str, Any] = {"image": image}
        if label is not None:
            item["label"] = torch.as_tensor(label, dtype=torch.int64)
        return item


class ImagesOf(Dataset):
    """The images of one key of a batch-dict dataset, as ``{"image": ...}`` items (e.g. domain ``"b"`` of
    two-domain data, for FID's real reference set); with ``size``, average-pooled to size×size (ProGAN's
    downsampling of real images to the current resolution; the side must be a multiple of ``size``)."""

    def __init__(self, items: Dataset, key: str = "image", size: int | None = None):
        self.items, self.key, self.size = items, key, size

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        image = self.items[index][self.key]
        if self.size is not None and image.shape[-1] != self.size:
            image = torch.nn.functional.avg_pool2d(image, image.shape[-1] // self.size)
        return {"image": image}
