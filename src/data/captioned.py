"""Images with captions: the item format and the vocabulary every captioned DataModule shares.

Item (one image, one caption): ``{"image": float32 C×H×W in [-1, 1], "caption": str, "tokens": int64
max_caption_length (ids, padded with 0), "length": int64 scalar (real tokens, ≥ 1)}``, plus whatever else the
image's item holds (``"attrs"`` for the procedural faces). The default collate stacks them into a batch, the
captions as a list of strings.

Which caption: a training item draws one of its image's captions per access, from the global torch RNG (the
training stream, in checkpoints; with workers, their seeded streams), so every epoch sees other pairings. The
``<split>_captions`` splits hold every (image, caption) pair once, in a fixed order: what evaluation reads (one
fake per held-out caption).
"""
from __future__ import annotations

import functools
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch.utils.data import Dataset

from src.data.base import GANDataModule
from src.data.text import Vocabulary, tokenize


class CaptionedImages(Dataset):
    """Captioned items over a dataset of image items.

    Args:
        images: a map-style dataset of dict items with an ``"image"``.
        captions: for each item of ``images``, its captions (at least one each).
        vocabulary, max_length: how captions become ``"tokens"`` and ``"length"``.
        every_caption: one item per (image, caption) pair in order, instead of one per image with a random caption.
    """

    def __init__(self, images: Dataset, captions: Sequence[Sequence[str]], vocabulary: Vocabulary, max_length: int,
                 every_caption: bool = False):
        if len(images) != len(captions):
            raise ValueError(f"{len(images)} images but captions for {len(captions)}.")
        if any(len(c) == 0 for c in captions):
            raise ValueError("Every image needs at least one caption.")
        self.images, self.captions = images, captions
        self.vocabulary, self.max_length = vocabulary, max_length
        self.pairs = [(i, k) for i, texts in enumerate(captions) for k in range(len(texts))] if every_caption else None

    def __len__(self) -> int:
        return len(self.pairs) if self.pairs is not None else len(self.images)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if self.pairs is not None:
            image_index, caption_index = self.pairs[index]
        else:
            image_index = index
            caption_index = int(torch.randint(len(self.captions[index]), ()))
        caption = self.captions[image_index][caption_index]
        tokens, length = self.vocabulary.encode(caption, self.max_length)
        return {**self.images[image_index], "caption": caption, "tokens": tokens, "length": length}


class CaptionedDataModule(GANDataModule):
    """Base of the DataModules whose images come with captions (``data=faces``, ``face2text``, ``captions``).

    A subclass gives its training captions (:meth:`train_captions`, cheap: no image is read) and builds its
    splits with :meth:`captioned`. It then exposes what a text model sizes itself from before any image is
    loaded: :attr:`vocabulary` (the words of the training captions), :attr:`max_caption_length` and
    :func:`tokenize`. Every split ``s`` has a twin ``s_captions`` with every (image, caption) pair.
    """

    kinds: ClassVar[tuple[str, ...]] = ("captioned", "image")
    tokenize = staticmethod(tokenize)

    @abstractmethod
    def train_captions(self) -> Sequence[Sequence[str]]:
        """The captions of every training image (without reading images)."""

    @functools.cached_property
    def vocabulary(self) -> Vocabulary:
        """The words of the training captions; words seen only elsewhere map to ``<unk>``."""
        return Vocabulary.build(text for texts in self.train_captions() for text in texts)

    @functools.cached_property
    def max_caption_length(self) -> int:
        """The longest training caption, in tokens: the length of every ``"tokens"`` vector (longer ones are cut)."""
        return max(len(tokenize(text)) for texts in self.train_captions() for text in texts)

    def captioned(self, images: Dataset, captions: Sequence[Sequence[str]], every_caption: bool = False) -> Dataset:
        return CaptionedImages(images, captions, self.vocabulary, self.max_caption_length, every_caption)

    def splits(self) -> dict[str, Dataset]:
        splits = self.image_splits()
        pairs = {f"{name}_captions": CaptionedImages(data.images, data.captions, data.vocabulary, data.max_length,
                                                     every_caption=True)
                 for name, data in splits.items() if isinstance(data, CaptionedImages)}
        return {**splits, **pairs}

    def image_splits(self) -> dict[str, Dataset]:
        """The splits by name, each a :class:`CaptionedImages` (default: train and val)."""
        return super().splits()
