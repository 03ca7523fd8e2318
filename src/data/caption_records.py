"""Captioned images on disk: an annotation file naming image files, each with its captions.

What ``data=face2text`` and ``data=captions`` share, whatever the file format: cleaning the captions, finding
the annotated images on disk, a seeded train/val/test split of the images, one counted warning for what real
corpora get wrong, and the DataModule base that turns it into :class:`~src.data.captioned.CaptionedImages`.

Which images and captions (decided by the annotation file alone, so that the training captions, hence the
vocabulary, never depend on which image files happen to be on disk): captions are normalised (HTML entities,
typographic quotes, stray whitespace), empty ones dropped, an image left without any is skipped; several
entries of one image are merged; the images, sorted by their annotated name, are split by ``seed`` into
``val_size`` validation and ``test_size`` test images and the rest for training. When the splits are built,
images not on disk are skipped, and names whose extension differs from the file's (``X.jpg`` annotated, ``X.png``
or ``X.JPG`` on disk) are mapped to the file: each in one warning (:class:`DataQuirkWarning`) with the counts.
A format's own convention is no quirk: Face2Text names every LFW JPEG ``.bmp`` (``renamed_by_convention``).
"""
from __future__ import annotations

import functools
import html
import os
import warnings
from abc import abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, ClassVar, Literal

from torch.utils.data import Dataset
from torchvision.transforms import v2

from src.data.base import seeded_permutation
from src.data.captioned import CaptionedDataModule
from src.data.dict_dataset import DictDataset
from src.data.fingerprint import file_signature
from src.data.image_folder import IMAGE_EXTENSIONS, ImageFiles
from src.utils.arguments import Meaning
from src.utils.errors import ConfigError, DatasetNotFoundError
from src.utils.hashing import digest

TestSize = Annotated[int, Meaning("the number of held-out test images (0: no test split)", at_least=0)]
Channels = Annotated[Literal[1, 3], Meaning("3 for RGB, 1 for grayscale")]

# Typographic quotes as the ASCII ones the tokenizer knows: with a curly apostrophe "isn’t" would become the words
# "isn" and "t" instead of "isn't".
_ASCII_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
                               "\u00b4": "'", "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"',
                               "\u2033": '"'})


class DataQuirkWarning(UserWarning):
    """Images or captions of an annotation file were skipped, mapped or cleaned (all counted in one warning)."""


def normalise_caption(text: str) -> str:
    """``text`` with HTML entities decoded, typographic quotes made ASCII and whitespace runs (newlines too) made
    one space, trimmed: ``" A man &amp; his\\n“big” smile "`` → ``'A man & his "big" smile'``.

    Written here because the library that does this (ftfy) is not a dependency, and these are three lines.
    """
    return " ".join(html.unescape(text).translate(_ASCII_QUOTES).split())


@dataclass(frozen=True)
class CaptionedImage:
    """One annotated image: its name in the annotation file (a path relative to the image root, as written)
    and its captions (normalised, none empty)."""

    image: str
    captions: tuple[str, ...]


@dataclass
class Annotations:
    """What an annotation file holds once cleaned: the captioned images, sorted by name, and what cleaning did."""

    images: list[CaptionedImage]
    dropped: int = 0  #: empty or whitespace-only captions
    captionless: list[str] = field(default_factory=list)  #: images skipped because none of their captions was left
    normalised: int = 0  #: captions changed by :func:`normalise_caption`


def clean_annotations(entries: Iterable[tuple[str, Sequence[str]]]) -> Annotations:
    """:class:`Annotations` from the ``(image name, raw captions)`` entries of a file, in file order (an image may
    come in several entries: its captions are merged, in order)."""
    raw: dict[str, list[str]] = {}
    for image, captions in entries:
        raw.setdefault(image, []).extend(captions)
    result = Annotations(images=[])
    for image in sorted(raw):
        kept = []
        for text in raw[image]:
            clean = normalise_caption(text)
            if not clean:
                result.dropped += 1
                continue
            result.normalised += clean != text
            kept.append(clean)
        if kept:
            result.images.append(CaptionedImage(image, tuple(kept)))
        else:
            result.captionless.append(image)
    return result


def split_images(n: int, val_size: int, test_size: int, seed: int, what: str) -> dict[str, list[int]]:
    """``{"train", "val", "test"}`` → sorted indices into ``n`` images: ``val_size`` and ``test_size`` drawn by
    ``seed`` (the first ones of :func:`~src.data.base.seeded_permutation`, as in ``split_indices``), the rest for
    training; no ``"test"`` when ``test_size`` is 0. ``what`` names the data in the error raised when nothing
    would be left to train on."""
    if val_size + test_size >= n:
        raise ConfigError(
            f"{what} has {n} captioned images; val_size={val_size} and test_size={test_size} must leave some for "
            f"training. Lower data.val_size and data.test_size (together at most {n - 1})."
        )
    order = seeded_permutation(n, seed).tolist()
    splits = {"train": sorted(order[val_size + test_size:]), "val": sorted(order[:val_size])}
    if test_size:
        splits["test"] = sorted(order[val_size:val_size + test_size])
    return splits


def _images_by_stem(folder: Path) -> dict[str, list[str]]:
    """{file stem: sorted names of the image files with that stem} of one folder ({} if it does not exist)."""
    by_stem: dict[str, list[str]] = {}
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except (FileNotFoundError, NotADirectoryError):
        return by_stem
    for entry in entries:
        name = PurePosixPath(entry.name)
        if not entry.name.startswith(".") and name.suffix.lower() in IMAGE_EXTENSIONS and entry.is_file():
            by_stem.setdefault(name.stem, []).append(entry.name)
    return by_stem


def find_on_disk(root: Path, names: Sequence[str]) -> list[PurePosixPath | None]:
    """For each annotated name (a path relative to ``root``), the relative path of its file: the name itself when
    that file exists, else the image file in the same folder with the same stem and another extension or case of
    extension (``X.bmp`` → ``X.jpg``, ``X.jpg`` → ``X.JPG``; the first by name if several), else None."""
    listings: dict[Path, dict[str, list[str]]] = {}
    found: list[PurePosixPath | None] = []
    for name in names:
        relative = PurePosixPath(name)
        if (root / relative).is_file():
            found.append(relative)
            continue
        folder = root / relative.parent
        if folder not in listings:
            listings[folder] = _images_by_stem(folder)
        matches = listings[folder].get(relative.stem)
        found.append(relative.parent / matches[0] if matches else None)
    return found


def warn_quirks(source: Path, annotations: Annotations, missing: Sequence[str],
                mapped: Sequence[tuple[str, str]]) -> None:
    """One :class:`DataQuirkWarning` counting what was skipped, mapped, dropped or normalised (none if nothing was),
    with an example of each."""

    def count(n: int, noun: str) -> str:
        return f"{n} {noun}{'' if n == 1 else 's'}"

    parts = []
    if missing:
        parts.append(f"skipped {count(len(missing), 'image')} not found on disk (e.g. {missing[0]})")
    if mapped:
        parts.append(f"read {count(len(mapped), 'image')} from a file with another extension than annotated "
                     f"(e.g. {mapped[0][0]} → {mapped[0][1]})")
    if annotations.dropped:
        parts.append(f"dropped {count(annotations.dropped, 'empty caption')}")
    if annotations.captionless:
        parts.append(f"skipped {count(len(annotations.captionless), 'image')} left without a caption "
                     f"(e.g. {annotations.captionless[0]})")
    if annotations.normalised:
        parts.append(f"normalised {count(annotations.normalised, 'caption')} (HTML entities, typographic quotes, "
                     "whitespace)")
    if parts:
        warnings.warn(f"{source}: {'; '.join(parts)}.", DataQuirkWarning, stacklevel=3)


@dataclass(frozen=True)
class _Located:
    """The images of each split that are on disk (absolute paths, with their captions), and the quirks found."""

    splits: dict[str, list[tuple[Path, tuple[str, ...]]]]
    missing: list[str]
    mapped: list[tuple[str, str]]


class CaptionedFilesDataModule(CaptionedDataModule):
    """Base of the DataModules that read an annotation file naming image files (``face2text``, ``captions``).

    A subclass says where the files are (:attr:`annotation_file`, :attr:`image_root`), parses its format
    (:meth:`read_annotations`) and words the error for missing files (:meth:`not_found`). Items follow
    :mod:`src.data.captioned`: ``{"image": float32 C×S×S in [-1, 1], "caption": str, "tokens": int64 L,
    "length": int64 scalar}`` with S = ``image_size``, C = ``channels``, L = :attr:`max_caption_length`. Splits:
    ``train``, ``val``, ``test`` (when ``test_size`` > 0) and their ``<split>_captions`` twins.

    Images: each file is converted to ``channels``, center-cropped to ``crop_size`` when a subclass sets it
    (``None``: the whole image), then resized (shorter side) and center-cropped to S×S.

    Args:
        image_size: S. channels: 3 (RGB) or 1 (grayscale).
        val_size, test_size: held-out images (not captions) drawn by ``seed``; fewer when some are not on disk.
        batch_size, num_workers, seed: see :class:`~src.data.base.GANDataModule`.
    """

    #: Side of the center crop taken from every image before resizing, or None for the whole image.
    crop_size: int | None = None
    #: Annotated extension → the extension its files have by the format's own convention: read without a warning.
    renamed_by_convention: ClassVar[dict[str, str]] = {}

    def __init__(self, image_size: int, channels: int, val_size: int, test_size: int, seed: int, batch_size: int,
                 num_workers: int):
        super().__init__(batch_size=batch_size, num_workers=num_workers, val_size=val_size, seed=seed)
        self.image_size = image_size
        self.channels = channels
        self.test_size = test_size
        self.test_set: Dataset | None = None

    @property
    @abstractmethod
    def annotation_file(self) -> Path:
        """The annotation file (raises when it cannot be told or found)."""

    @property
    @abstractmethod
    def image_root(self) -> Path:
        """The folder the annotated image names are relative to."""

    @abstractmethod
    def read_annotations(self) -> list[tuple[str, list[str]]]:
        """``(image name, raw captions)`` of every entry of :attr:`annotation_file`, in file order; raises
        :class:`DatasetNotFoundError` when it is missing and ConfigError naming the place when it is malformed."""

    @abstractmethod
    def not_found(self, problem: str) -> DatasetNotFoundError:
        """The error for missing files: ``problem``, the files expected, where they come from."""

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.image_size, self.image_size)

    @property
    def num_classes(self) -> None:
        return None

    @functools.cached_property
    def annotations(self) -> Annotations:
        """The cleaned annotation file (read once; no image is touched)."""
        annotations = clean_annotations(self.read_annotations())
        if not annotations.images:
            raise self.not_found(f"{self.annotation_file} names no image with a caption")
        return annotations

    @functools.cached_property
    def assignment(self) -> dict[str, list[int]]:
        """Split name → indices into ``annotations.images``: the seeded split of the annotated images."""
        return split_images(len(self.annotations.images), self.val_size, self.test_size, self.seed,
                            what=str(self.annotation_file))

    def train_captions(self) -> list[tuple[str, ...]]:
        """The captions of every training image, from the annotation file alone (images on disk or not)."""
        return [self.annotations.images[i].captions for i in self.assignment["train"]]

    def image_paths(self, split: str) -> list[Path]:
        """The image files of ``split`` (``"train"``, ``"val"``, ``"test"``), those on disk, sorted by name."""
        splits = self._locate().splits
        if split not in splits:
            raise ConfigError(f"data={self.name} has no {split!r} split; it has {', '.join(sorted(splits))}.")
        return [path for path, _ in splits[split]]

    def source_signature(self) -> dict[str, Any]:
        files = [path.relative_to(self.image_root) for split in self._locate().splits.values() for path, _ in split]
        return {"annotations": file_signature(self.annotation_file.parent, [self.annotation_file.name]),
                "images": file_signature(self.image_root, files)}

    def fingerprint(self) -> str:
        # The base covers the shape, val_size, seed and files; test_size moves images out of training and the crop
        # changes every image.
        return digest({"base": super().fingerprint(), "test_size": self.test_size, "crop_size": self.crop_size})

    def build_splits(self) -> tuple[Dataset, Dataset]:
        located = self._locate()
        warn_quirks(self.annotation_file, self.annotations, located.missing, located.mapped)
        empty = [name for name, images in located.splits.items() if not images]
        if empty:
            total = len(self.annotations.images)
            raise self.not_found(
                f"{len(located.missing)} of the {total} images named in {self.annotation_file} are not in "
                f"{self.image_root} (e.g. {located.missing[0]}), which leaves the {' and '.join(empty)} "
                f"split{'s' if len(empty) > 1 else ''} without images"
            )
        built = {name: self.captioned(self._images([path for path, _ in images]), [c for _, c in images])
                 for name, images in located.splits.items()}
        self.test_set = built.get("test")
        return built["train"], built["val"]

    def image_splits(self) -> dict[str, Dataset]:
        splits = {"train": self.train_set, "val": self.val_set}
        return splits if self.test_set is None else {**splits, "test": self.test_set}

    def _locate(self) -> _Located:
        root = self.image_root
        if not root.is_dir():
            raise self.not_found(f"the image folder {root} does not exist")
        images = self.annotations.images
        on_disk = find_on_disk(root, [image.image for image in images])
        missing = [image.image for image, path in zip(images, on_disk) if path is None]
        mapped = [(image.image, str(path)) for image, path in zip(images, on_disk)
                  if path is not None and str(path) != str(PurePosixPath(image.image))
                  and self.renamed_by_convention.get(PurePosixPath(image.image).suffix) != path.suffix]
        splits = {name: [(root / on_disk[i], images[i].captions) for i in indices if on_disk[i] is not None]
                  for name, indices in self.assignment.items()}
        return _Located(splits, missing, mapped)

    def _images(self, paths: Sequence[Path]) -> Dataset:
        files = ImageFiles(paths, None, self.image_size, self.channels)
        if self.crop_size is not None:
            # ImageFiles resizes the whole image; the crop must come first (the face, not the frame, fills S×S).
            files.transform = v2.Compose([v2.CenterCrop(self.crop_size), files.transform])
        return DictDataset(files)
