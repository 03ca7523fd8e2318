"""Any folder of images, found recursively, optionally labelled by their class subfolder."""

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal

import torch
from PIL import Image
from torch.utils.data import Dataset, Subset

from src.data.base import BatchSize, GANDataModule, ImageSize, NumWorkers, ValSize, split_indices
from src.data.dict_dataset import DictDataset
from src.utils.errors import ConfigError, CorruptImageError, DatasetNotFoundError
from src.data.fingerprint import file_signature
from src.data.transforms import to_signed_unit
from src.utils.arguments import Meaning, checked

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")

_PIL_MODES = {1: "L", 3: "RGB"}


def find_images(root: Path) -> list[Path]:
    """Paths relative to ``root`` of every image file below it (any depth, sorted).

    Extensions are matched case-insensitively. Hidden files and folders are skipped:
    macOS leaves ``._name.jpg`` metadata files beside real images that are not images.
    Symlinked folders are followed, since datasets are often linked in from shared storage.
    """
    found = []
    for folder, subfolders, files in os.walk(root, followlinks=True):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        found.extend(
            Path(folder, name).relative_to(root)
            for name in files
            if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)
        )
    return sorted(found)


def load_image(path: Path, mode: str) -> Image.Image:
    """The fully decoded image at ``path`` in PIL ``mode`` ("L" or "RGB"); raises :class:`CorruptImageError`."""
    try:
        with Image.open(path) as image:
            return image.convert(mode)
    # PIL reports undecodable files as OSError (truncated, unidentified), SyntaxError
    # (broken PNG chunks) or ValueError (bad header fields).
    except (OSError, SyntaxError, ValueError) as error:
        raise CorruptImageError.for_files([path], str(error)) from error


def class_names(root: Path, images: Sequence[Path]) -> list[str]:
    """Sorted names of the immediate subfolders of ``root`` that hold ``images`` (relative paths)."""
    loose = [path for path in images if len(path.parts) == 1]
    if loose:
        raise ConfigError(
            f"labels=True takes each image's class from its subfolder of {root}, but "
            f"{len(loose)} images lie directly in it (e.g. {loose[0]}). Move them into class "
            "subfolders, or set data.labels=false."
        )
    return sorted({path.parts[0] for path in images})


class ImageFiles(Dataset):
    """(image, label) pairs read from files on each access.

    Item: (float32 C×S×S in [-1, 1], class index or ``None``), C = ``channels``, S = ``image_size``.
    """

    def __init__(self, paths: Sequence[Path], labels: Sequence[int] | None, image_size: int, channels: int):
        self.paths = list(paths)
        self.labels = labels
        self.mode = _PIL_MODES[channels]
        self.transform = to_signed_unit(image_size, channels)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int | None]:
        image = self.transform(load_image(self.paths[index], self.mode))
        return image, None if self.labels is None else self.labels[index]


class ImageFolderDataModule(GANDataModule):
    """Every image below ``root`` (jpg, jpeg, png, bmp, webp), resized and center-cropped to S×S.

    The images are split by ``seed``: ``val_size`` held out, the rest for training.

    Args:
        root: the folder of images (searched recursively).
        image_size: S, the side of the square images (shorter side resized, then center crop).
        channels: 3 (RGB) or 1 (grayscale); images are converted to it.
        labels: when true, each image's class is the name of its immediate subfolder of ``root``
            (as in torchvision's ImageFolder), classes numbered in sorted order.
        verify: decode every image in ``setup`` and report all unreadable ones at once, instead
            of failing on the first one when training reaches it.
        batch_size, num_workers, val_size, seed: see :class:`GANDataModule`.
    """

    @checked
    def __init__(
        self,
        root: Annotated[str | Path, Meaning("the folder that holds the images", example="/path/to/images")],
        image_size: ImageSize = 64,
        channels: Annotated[Literal[1, 3], Meaning("3 for RGB, 1 for grayscale")] = 3,
        labels: bool = False,
        verify: bool = False,
        batch_size: BatchSize = 64,
        num_workers: NumWorkers = 0,
        val_size: ValSize = 64,
        seed: int = 0,
    ):
        super().__init__(batch_size=batch_size, num_workers=num_workers, val_size=val_size, seed=seed)
        self.save_hyperparameters()
        self.root = Path(root).expanduser().absolute()
        self.image_size = image_size
        self.channels = channels
        self.labels = labels
        self.verify = verify

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.image_size, self.image_size)

    @property
    def num_classes(self) -> int | None:
        return len(self.classes()) if self.labels else None

    @property
    def name(self) -> str:
        return f"image_folder-{self.root.name}"

    def images(self) -> list[Path]:
        """Paths relative to ``root`` of the images, sorted; raises if there are none."""
        if not self.root.is_dir():
            raise DatasetNotFoundError(
                f"Image folder {self.root} does not exist. "
                "Pass the folder that holds your images: data.root=/path/to/images"
            )
        images = find_images(self.root)
        if not images:
            raise DatasetNotFoundError(
                f"No images in {self.root}: searched it and its subfolders for files ending in "
                f"{', '.join(IMAGE_EXTENSIONS)} (any case). Put images there or pass data.root=/path/to/images"
            )
        return images

    def classes(self) -> list[str]:
        """Sorted names of the class subfolders (the immediate subfolders holding images)."""
        return class_names(self.root, self.images())

    def source_signature(self) -> list[tuple[str, int, int]]:
        return file_signature(self.root, self.images())

    def build_splits(self) -> tuple[Dataset, Dataset]:
        relative = self.images()
        paths = [self.root / path for path in relative]
        if self.verify:
            self._check_readable(paths)
        labels = None
        if self.labels:
            index = {name: i for i, name in enumerate(class_names(self.root, relative))}
            labels = [index[path.parts[0]] for path in relative]
        pairs = DictDataset(ImageFiles(paths, labels, self.image_size, self.channels))
        train, val = split_indices(len(pairs), self.val_size, self.seed, what=f"Image folder {self.root}")
        return Subset(pairs, train), Subset(pairs, val)

    def _check_readable(self, paths: Sequence[Path]) -> None:
        reasons = {}
        for path in paths:
            try:
                load_image(path, _PIL_MODES[self.channels])
            except CorruptImageError as error:
                reasons[path] = error.reason
        if reasons:
            raise CorruptImageError.for_files(list(reasons), next(iter(reasons.values())))
