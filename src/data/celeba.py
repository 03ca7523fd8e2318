"""CelebA (Liu et al. 2015, "Deep Learning Face Attributes in the Wild"): 202,599 aligned celebrity faces, each with
40 binary attributes, read from torchvision's on-disk layout with its official train / val / test partition.

Files, in ``<root>/celeba/`` (torchvision's layout; the CelebA site's "Align&Cropped Images" and "Anno"/"Eval"):

- ``img_align_celeba/000001.jpg`` … ``202599.jpg``: 178×218 RGB JPEGs (``img_align_celeba.zip``, extracted);
- ``list_attr_celeba.txt``: line 1 the image count, line 2 the 40 attribute names, then ``<file> <40 values>``,
  each value 1 or -1, separated by runs of spaces;
- ``list_eval_partition.txt``: ``<file> <0|1|2>`` (train 162,770 / val 19,867 / test 19,962 images);
- ``identity_CelebA.txt``, ``list_bbox_celeba.txt``, ``list_landmarks_align_celeba.txt``: not in the items, but
  torchvision reads them too, so they must be there.

Splits: ``train`` is partition 0, ``val`` the first ``val_size`` images of partition 1 (in file order; validation
runs every epoch, and FID's real reference is the training split), ``test`` all of partition 2.

Preprocessing: the center ``crop_size``×``crop_size`` square, then a resize to ``image_size`` (bilinear, antialiased).
The default 178 is the whole width (a crop from 20 px to 198 px down): what ``Resize(64)`` + ``CenterCrop(64)``
amounts to in PyTorch's DCGAN tutorial and ``pytorch/examples``' dcgan, the usual CelebA-64 preprocessing of PyTorch
GAN code. Tighter crops keep less background and hair: 140 (common in DCGAN-style CelebA-64 code) or 108
(carpedm20/DCGAN-tensorflow).
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated, Any

import torch
from torch.utils.data import Dataset, Subset
from torchvision.datasets import CelebA
from torchvision.transforms import v2

from src.data.base import BatchSize, ImageSize, NumWorkers, ValSize
from src.data.torchvision_sets import TorchvisionDataModule
from src.data.transforms import to_signed_unit
from src.utils.arguments import Meaning, checked
from src.utils.errors import ConfigError, CorruptImageError, DatasetNotFoundError
from src.utils.hashing import digest

CELEBA_URL = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"
IMAGE_FOLDER = "img_align_celeba"
ATTRIBUTE_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
#: The annotation files torchvision reads, in the order of its file list.
ANNOTATION_FILES = tuple(name for _, _, name in CelebA.file_list if name.endswith(".txt"))
#: The width of the aligned images (178×218).
NATIVE_WIDTH = 178
_PARTITIONS = {"train": 0, "val": 1, "test": 2}


def _malformed(path: Path, problem: str, line: int | None = None) -> ConfigError:
    where = f"{path}, line {line}" if line is not None else str(path)
    return ConfigError(f"{where}: {problem}. The file is not in CelebA's published format; download it again from "
                       f"{CELEBA_URL} (or with torchvision's CelebA(download=True)).")


class _CelebAFilesExist(CelebA):
    """torchvision's CelebA that checks its files exist instead of their md5 sums, keeps the official partition of
    every image (``partition``: int64, 0 train, 1 val, 2 test) and says which line of which annotation file is
    malformed.

    Why a subclass: torchvision compares every annotation file with the md5 of the official release, so any other
    file in the same layout, like the tiny fixtures the tests write, is "corrupted". Reading and parsing (the header
    rows, the runs of spaces, the ±1 → 0/1 map), the split selection and the download (whose md5 checks stay) are
    torchvision's own code; this only adds the checks it lacks: the same images in the same order in every file
    (with ``split="all"`` torchvision would pair rows of different images silently), one name per attribute column,
    values of ±1, and, where its parsing fails, the line that made it fail.
    """

    partition: torch.Tensor

    def _check_integrity(self) -> bool:
        folder = Path(self.root, self.base_folder)
        return (folder / IMAGE_FOLDER).is_dir() and all((folder / name).is_file() for name in ANNOTATION_FILES)

    def _load_csv(self, filename: str, header: int | None = None) -> Any:
        path = Path(self.root, self.base_folder, filename)
        try:
            table = super()._load_csv(filename, header)
        except (ValueError, IndexError):  # torch.tensor of ragged rows, int() of a non-number, a missing line
            raise _first_bad_line(path, header) from None
        first = 1 if header is None else header + 2  # the line of the first image
        if filename == ATTRIBUTE_FILE:
            names = [name for name in table.header if name]  # a trailing space after the names reads as ""
            if len(names) != table.data.shape[1]:
                raise _malformed(path, f"{len(names)} attribute names, but the lines of the images hold "
                                       f"{table.data.shape[1]} values", line=header + 1)
            bad = ((table.data != 1) & (table.data != -1)).any(dim=1).nonzero()
            if len(bad):
                raise _malformed(path, "an attribute value other than 1 or -1", line=first + int(bad[0]))
        if filename == PARTITION_FILE:
            self.partition = table.data[:, 0]
        reference = getattr(self, "_reference", None)
        if reference is None:
            self._reference = (filename, table.index)
        elif table.index != reference[1]:
            raise _misaligned(path, table.index, first, *reference)
        return table


def _misaligned(path: Path, images: list[str], first: int, reference: str, reference_images: list[str]) -> ConfigError:
    """The error for an annotation file whose images are not those of ``reference`` (another annotation file)."""
    shared = min(len(images), len(reference_images))
    row = next((i for i in range(shared) if images[i] != reference_images[i]), shared)
    if row < shared:
        return _malformed(path, f"image {row + 1} is {images[row]}, where {reference} has {reference_images[row]}",
                          line=first + row)
    return _malformed(path, f"{len(images)} images, where {reference} has {len(reference_images)}")


def _first_bad_line(path: Path, header: int | None) -> ConfigError:
    """The error for the first line of ``path`` that torchvision could not parse (read as torchvision reads it)."""
    with open(path) as file:
        rows = list(csv.reader(file, delimiter=" ", skipinitialspace=True))
    start = 0 if header is None else header + 1
    if len(rows) <= start:
        return _malformed(path, f"the file ends after {len(rows)} lines, before the line of its first image")
    # The attribute file names its columns; the others are checked against the line of their first image.
    width = len([name for name in rows[header] if name]) + 1 if path.name == ATTRIBUTE_FILE else len(rows[start])
    for number, row in enumerate(rows[start:], start + 1):
        if row and row[-1] == "":  # runs of spaces count as one, but spaces at the end give one more, empty, value
            return _malformed(path, "a space at the end of the line (read as one more, empty, value)", line=number)
        if len(row) != width:
            return _malformed(path, f"{max(len(row) - 1, 0)} values after the file name where {width - 1} are "
                                    "expected", line=number)
        for value in row[1:]:
            try:
                int(value)
            except ValueError:
                return _malformed(path, f"{value!r} is not an integer", line=number)
    return _malformed(path, "torchvision could not read it")


class CelebAItems(Dataset):
    """torchvision's CelebA as batch-dict items: ``{"image": float32 3×S×S in [-1, 1], "attrs": int64 (40,) of 0/1}``
    (the attributes in the file's column order, 1 for "has it").

    An image that is missing or cannot be decoded fails with an error naming its file.
    """

    def __init__(self, celeba: CelebA):
        self.celeba = celeba

    def __len__(self) -> int:
        return len(self.celeba)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        try:
            image, attrs = self.celeba[index]
        except FileNotFoundError as error:
            raise DatasetNotFoundError(
                f"CelebA image {error.filename} is missing: list_eval_partition.txt names it, but "
                f"{Path(error.filename).parent} does not hold it. Extract img_align_celeba.zip there again."
            ) from None
        # PIL reports undecodable files as OSError, SyntaxError or ValueError (see src.data.image_folder.load_image).
        except (OSError, SyntaxError, ValueError) as error:
            path = Path(self.celeba.root, self.celeba.base_folder, IMAGE_FOLDER, self.celeba.filename[index])
            raise CorruptImageError.for_files([path], str(error)) from error
        return {"image": image, "attrs": attrs}


class CelebADataModule(TorchvisionDataModule):
    """CelebA's aligned faces with their 40 attributes; see the module docstring for files, splits and preprocessing.

    Items: ``{"image": float32 3×S×S in [-1, 1], "attrs": int64 (40,) of 0/1}``, S = ``image_size``; the attribute
    names, in order, are :attr:`attribute_names`. Splits ``train``, ``val`` and ``test`` (the official partition).

    Args:
        root: the data directory that holds ``celeba/`` (torchvision's ``root``).
        download: in ``prepare_data``, let torchvision fetch missing files from Google Drive (needs the ``gdown``
            package and a network; the official links are often over their download quota).
        image_size: S, the side of the square images.
        crop_size: the side of the center square cut from each 178×218 image before resizing (at most 178).
        batch_size, num_workers, seed: see :class:`~src.data.base.GANDataModule`.
        val_size: how many of the official validation images the ``val`` split holds (the first, in file order).
    """

    name = "celeba"
    dataset_class = _CelebAFilesExist
    channels = 3

    @checked
    def __init__(
        self,
        root: Annotated[str | Path, Meaning("the data directory that holds celeba/", example="/path/to/data")] = "data",
        download: bool = False,
        image_size: ImageSize = 64,
        crop_size: Annotated[int, Meaning("the side of the center square cut from each 178×218 CelebA image",
                                          at_least=1)] = NATIVE_WIDTH,
        batch_size: BatchSize = 64,
        num_workers: NumWorkers = 0,
        val_size: ValSize = 1000,
        seed: int = 0,
    ):
        if crop_size > NATIVE_WIDTH:
            raise ConfigError(f"crop_size={crop_size}: CelebA's aligned images are {NATIVE_WIDTH} pixels wide, so a "
                              f"center square is at most {NATIVE_WIDTH}. Set data.crop_size to {NATIVE_WIDTH} or less.")
        super().__init__(root=root, download=download, image_size=image_size, batch_size=batch_size,
                         num_workers=num_workers, val_size=val_size, seed=seed)
        self.save_hyperparameters()
        self.crop_size = crop_size
        self.test_set: Dataset | None = None
        self._celeba: CelebA | None = None

    @property
    def num_classes(self) -> None:
        return None

    @property
    def folder(self) -> Path:
        return self.root / CelebA.base_folder

    @property
    def required_files(self) -> list[str]:
        return [f"{IMAGE_FOLDER}/", *ANNOTATION_FILES]

    @property
    def source(self) -> str:
        return (f"Get img_align_celeba.zip and the annotation files {', '.join(ANNOTATION_FILES)} from the CelebA "
                f"site, {CELEBA_URL} (its Google Drive or Baidu links; the annotations are under Anno/ and Eval/), "
                f"put them in {self.folder} and extract the zip there (it holds {IMAGE_FOLDER}/). Where the gdown "
                "package and Google Drive work, data.download=true lets torchvision fetch them.")

    def missing_files(self) -> list[str]:
        return [name for name in self.required_files
                if not ((self.folder / name).is_dir() if name.endswith("/") else (self.folder / name).is_file())]

    def fingerprint(self) -> str:
        # The base signs the annotation files (which images, in which split) but not the 202,599 JPEGs: stat-ing
        # them for every cache key would cost more than it guards against (the release's images do not change).
        return digest({"base": super().fingerprint(), "crop_size": self.crop_size})

    @property
    def attribute_names(self) -> list[str]:
        """The 40 attribute names of ``list_attr_celeba.txt``, in the order of ``attrs`` ("5_o_Clock_Shadow", …);
        reads the annotation files if the splits are not built yet."""
        self.setup()
        return [name for name in self._celeba.attr_names if name]

    def fetch(self) -> None:
        # CelebA's constructor takes split=, where the others take train=.
        CelebA(str(self.root), split="all", download=True)

    def build_splits(self) -> tuple[Dataset, Dataset]:
        self.require_files()
        transform = v2.Compose([v2.CenterCrop(self.crop_size), to_signed_unit(self.image_size, self.channels)])
        # One parse of the annotation files for all three splits (torchvision reads all five files per instance).
        self._celeba = self.dataset_class(str(self.root), split="all", transform=transform)
        items = CelebAItems(self._celeba)
        indices = {name: (self._celeba.partition == number).nonzero().flatten().tolist()
                   for name, number in _PARTITIONS.items()}
        self.test_set = Subset(items, indices["test"])
        return Subset(items, indices["train"]), Subset(items, indices["val"][: self.val_size])

    def splits(self) -> dict[str, Dataset]:
        return {**super().splits(), "test": self.test_set}
