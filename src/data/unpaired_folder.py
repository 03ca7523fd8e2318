"""CycleGAN's published datasets on disk (horse2zebra, apple2orange, summer2winter_yosemite, monet2photo, …):
``<root>/<dataset>/trainA/ trainB/ testA/ testB/``, images of two domains with no correspondence between them.

Items ``{"a": float32 C×S×S in [-1, 1], "b": the same}`` (S = ``image_size``). Training, as the reference's
``unaligned_dataset``: item i holds A image i mod |A| and a B image drawn at random per access, from the DataModule's
own seeded generator (each DataLoader worker from its own, seeded by the loader), never the global RNG; an epoch is
max(|A|, |B|) items; each image is resized to ``load_size``², randomly cropped to ``image_size`` and flipped (the
reference's ``resize_and_crop`` + flip; torchvision draws those from the training RNG). Validation and test are the
published test sets, testA i paired with testB i (min(|A|, |B|) items, no image twice), resized to ``image_size``²
with no crop or flip; validation is their first ``val_size`` pairs (the sets have no validation split of their own).
Any image mode (L, P, RGBA, CMYK, …) is converted to ``channels``; any size is resized.
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset, get_worker_info
from torchvision.transforms import v2

from src.data.base import BatchSize, GANDataModule, ImageSize, NumWorkers, ValSize
from src.data.fingerprint import file_signature
from src.data.image_folder import find_images, load_image
from src.utils.arguments import Meaning, checked
from src.utils.errors import ConfigError, DatasetNotFoundError

CYCLEGAN_SETS = "https://efrosgans.eecs.berkeley.edu/cyclegan/datasets/<name>.zip"
Channels = Annotated[Literal[1, 3], Meaning("3 for RGB, 1 for grayscale")]
LoadSize = Annotated[int, Meaning("the side images are resized to before the random crop", at_least=1)]
Root = Annotated[str | Path, Meaning("the folder that holds the dataset folder", example="/path/to/datasets")]


def read_image(path: Path, channels: int) -> Tensor:
    """The image at ``path``, any mode and size, as float32 ``channels``×H×W in [-1, 1]
    (raises :class:`~src.utils.errors.CorruptImageError` naming an unreadable file)."""
    image = load_image(path, "RGB" if channels == 3 else "L")
    return v2.functional.to_dtype(v2.functional.to_image(image), torch.float32, scale=True) * 2 - 1


def _clamp(images: Tensor) -> Tensor:
    return images.clamp(-1, 1)


def resize_and_crop(image_size: int, load_size: int, flip: bool, train: bool) -> v2.Compose:
    """The reference's preprocessing of C×H×W images in [-1, 1]: for training, resize to ``load_size``² (bicubic,
    antialiased), a random ``image_size`` crop and, with ``flip``, a random horizontal flip; for evaluation, resize to
    ``image_size``² only. One call transforms a whole tensor with one draw, so channels stacked together (pix2pix's
    input and target) get the same crop and flip."""
    steps: list[Any] = [v2.Resize((load_size if train else image_size,) * 2,
                                  interpolation=v2.InterpolationMode.BICUBIC, antialias=True)]
    if train:
        steps.append(v2.RandomCrop(image_size))
        if flip:
            steps.append(v2.RandomHorizontalFlip())
    steps.append(v2.Lambda(_clamp))  # bicubic overshoots
    return v2.Compose(steps)


def dataset_folder(root: str | Path, dataset: str, subfolders: Sequence[str], where: str,
                   need: int | None = None) -> dict[str, list[Path]]:
    """The images of each of ``subfolders`` of ``<root>/<dataset>`` (absolute paths, sorted); at least ``need`` of
    the subfolders (all by default) must hold images. Raises :class:`DatasetNotFoundError` naming the folder, the
    layout expected and where the set is published (it is never downloaded)."""
    folder = Path(root).expanduser().absolute() / dataset
    found = {name: [folder / name / p for p in find_images(folder / name)] if (folder / name).is_dir() else []
             for name in subfolders}
    present = [name for name, paths in found.items() if paths]
    if len(present) < (len(subfolders) if need is None else need):
        missing = ", ".join(f"{name}/" for name in subfolders if name not in present)
        raise DatasetNotFoundError(
            f"{folder} has no images in {missing}: {where} expects {', '.join(f'{n}/' for n in subfolders)} there "
            f"(jpg/png images). Download and unpack the set yourself (nothing is fetched here), e.g. "
            f"{CYCLEGAN_SETS.replace('<name>', dataset)} for the CycleGAN sets or the pix2pix sets' "
            f"http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/{dataset}.tar.gz, into {folder.parent}, or set "
            f"data.root.")
    return {name: paths for name, paths in found.items() if paths}


class UnalignedFolders(Dataset):
    """``{"a", "b"}`` items from two lists of image files (see the module docstring).

    ``generator``: the training pairing's draws (None: held-out, item i pairs A i with B i).
    """

    def __init__(self, a: Sequence[Path], b: Sequence[Path], channels: int, transform: v2.Compose,
                 generator: torch.Generator | None = None):
        self.a, self.b, self.channels, self.transform = list(a), list(b), channels, transform
        self.generator = generator
        self._worker_generator: torch.Generator | None = None

    def __len__(self) -> int:
        return max(len(self.a), len(self.b)) if self.generator is not None else min(len(self.a), len(self.b))

    def _pairing(self) -> torch.Generator:
        worker = get_worker_info()
        if worker is None:
            return self.generator
        if self._worker_generator is None:  # a worker holds a copy of the generator: give each its own stream
            self._worker_generator = torch.Generator().manual_seed(worker.seed)
        return self._worker_generator

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        if self.generator is None and index >= len(self):
            raise IndexError(f"item {index} of {len(self)}")
        j = int(torch.randint(len(self.b), (), generator=self._pairing())) if self.generator is not None else index
        return {"a": self.transform(read_image(self.a[index % len(self.a)], self.channels)),
                "b": self.transform(read_image(self.b[j], self.channels))}


class FolderLayoutDataModule(GANDataModule):
    """What the CycleGAN and pix2pix folder DataModules share: settings, shape, fingerprint, the three splits.
    Subclasses list their files (:meth:`files`) and build the splits."""

    def __init__(self, root: str | Path, dataset: str, image_size: int, load_size: int, channels: int, flip: bool,
                 val_size: int, batch_size: int, num_workers: int, seed: int):
        super().__init__(batch_size=batch_size, num_workers=num_workers, val_size=val_size, seed=seed)
        if load_size < image_size:
            raise ConfigError(f"data.load_size={load_size} must be at least data.image_size={image_size} (the crop "
                              f"is taken from the resized image); set data.load_size={image_size} for no crop.")
        self.root, self.dataset = Path(root).expanduser().absolute(), dataset
        self.image_size, self.load_size, self.channels, self.flip = image_size, load_size, channels, flip
        self.test_set: Dataset | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.image_size, self.image_size)

    @property
    def num_classes(self) -> None:
        return None

    def files(self) -> dict[str, list[Path]]:
        """The image files of each subfolder of the dataset folder."""
        raise NotImplementedError

    def source_signature(self) -> Any:
        folder = self.root / self.dataset
        return file_signature(folder, [p.relative_to(folder) for paths in self.files().values() for p in paths])

    def transform(self, train: bool) -> v2.Compose:
        return resize_and_crop(self.image_size, self.load_size, self.flip, train)

    def splits(self) -> dict[str, Dataset]:
        return {"train": self.train_set, "val": self.val_set, "test": self.test_set}


class UnpairedFolderDataModule(FolderLayoutDataModule):
    """A CycleGAN dataset in its published layout (see the module docstring).

    Args:
        root: the folder that holds ``<dataset>/`` (``${paths.data_dir}`` in the presets).
        dataset: the dataset folder's name (horse2zebra, apple2orange, …).
        image_size: S, the side of the square images (the crop; 256 in the reference).
        load_size: the side training images are resized to before the random crop (286 in the reference;
            ``image_size`` for no crop).
        channels: 3 (RGB) or 1 (grayscale), what every image is converted to.
        flip: random horizontal flips of training images.
        val_size: the test pairs validation uses (the first ones; all of them when there are fewer).
        batch_size, num_workers, seed: see :class:`GANDataModule`; ``seed`` also seeds the training pairing.
    """

    kinds: ClassVar[tuple[str, ...]] = ("unpaired",)
    SUBFOLDERS = ("trainA", "trainB", "testA", "testB")

    @checked
    def __init__(self, root: Root, dataset: Annotated[str, Meaning("the dataset folder's name", example="horse2zebra")],
                 image_size: ImageSize = 256, load_size: LoadSize = 286, channels: Channels = 3, flip: bool = True,
                 val_size: ValSize = 1000, batch_size: BatchSize = 1, num_workers: NumWorkers = 0, seed: int = 0):
        super().__init__(root, dataset, image_size, load_size, channels, flip, val_size, batch_size, num_workers, seed)
        self.save_hyperparameters()

    @property
    def name(self) -> str:
        return self.dataset

    def files(self) -> dict[str, list[Path]]:
        return dataset_folder(self.root, self.dataset, self.SUBFOLDERS, "a CycleGAN dataset")

    def build_splits(self) -> tuple[Dataset, Dataset]:
        files = self.files()
        train = UnalignedFolders(files["trainA"], files["trainB"], self.channels, self.transform(True),
                                 self._pairing_generator)
        self.test_set = UnalignedFolders(files["testA"], files["testB"], self.channels, self.transform(False))
        return train, Subset(self.test_set, range(min(self.val_size, len(self.test_set))))

    @cached_property
    def _pairing_generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "pairing_generator": self._pairing_generator.get_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        if "pairing_generator" in state_dict:
            self._pairing_generator.set_state(state_dict["pairing_generator"])
