"""MNIST, Fashion-MNIST and CIFAR-10 read from their native files by torchvision's dataset classes.

The official train split is for training and the FID reference; the first ``val_size``
images of the official test split are the validation set. Nothing is downloaded in
``setup``: a download, when asked for, happens in ``prepare_data`` (once per machine, as
Lightning intends), with a short network timeout so an offline machine fails fast.
"""

import os
import socket
from abc import abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

from torch.utils.data import Dataset, Subset
from torchvision.datasets import CIFAR10, MNIST, FashionMNIST, VisionDataset

from src.data.base import BatchSize, GANDataModule, ImageSize, NumWorkers, ValSize
from src.data.dict_dataset import DictDataset
from src.utils.errors import DatasetNotFoundError
from src.data.fingerprint import file_signature
from src.data.transforms import to_signed_unit
from src.utils.arguments import checked

#: Seconds a socket may wait during a download before the attempt counts as failed.
DOWNLOAD_TIMEOUT_S = 10.0


@contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    # torchvision opens its URLs without a timeout, so behind a firewall that drops packets
    # it would hang for minutes. The default is process-wide, hence set only while downloading;
    # it bounds each socket operation, not the whole transfer, so slow downloads still finish.
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


class _CIFAR10FilesExist(CIFAR10):
    """torchvision's CIFAR10 that checks its batch files exist instead of their md5 sums.

    Why: torchvision compares every batch file (and ``batches.meta``) against the md5 of
    the official release, so any other file in the same native pickle layout, like the
    tiny fixtures the tests write, is rejected as "corrupted". Reading, parsing and the
    download (whose archive md5 is still checked) stay torchvision's own code.
    """

    train_list: ClassVar = [[name, None] for name, _ in CIFAR10.train_list]
    test_list: ClassVar = [[name, None] for name, _ in CIFAR10.test_list]
    meta: ClassVar = {**CIFAR10.meta, "md5": None}


class TorchvisionDataModule(GANDataModule):
    """A torchvision dataset class read from its native files (shared by the concrete DataModules).

    Subclasses set the class attributes and say where the files live and where they come from.

    Args:
        root: the data directory torchvision's ``root`` argument expects.
        download: try to download missing files in ``prepare_data``.
        image_size: side of the square images; ``None`` keeps the native size (no resampling).
        batch_size, num_workers, val_size, seed: see :class:`GANDataModule`.
    """

    dataset_class: ClassVar[type[VisionDataset]]
    channels: ClassVar[int]
    native_size: ClassVar[int]

    @checked
    def __init__(
        self,
        root: str = "data",
        download: bool = True,
        image_size: ImageSize | None = None,
        batch_size: BatchSize = 64,
        num_workers: NumWorkers = 0,
        val_size: ValSize = 1000,
        seed: int = 0,
    ):
        super().__init__(batch_size=batch_size, num_workers=num_workers, val_size=val_size, seed=seed)
        self.save_hyperparameters()
        self.root = Path(root).expanduser().absolute()
        self.download = download
        self.image_size = self.native_size if image_size is None else image_size

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.image_size, self.image_size)

    @property
    def num_classes(self) -> int:
        return 10

    @property
    @abstractmethod
    def folder(self) -> Path:
        """The folder torchvision reads the files from."""

    @property
    @abstractmethod
    def required_files(self) -> list[str]:
        """Names of the files that must be in :attr:`folder`."""

    @property
    @abstractmethod
    def source(self) -> str:
        """Where the files come from and how to put them in place."""

    def missing_files(self) -> list[str]:
        return [name for name in self.required_files if not (self.folder / name).is_file()]

    def source_signature(self) -> list[tuple[str, int, int]]:
        return file_signature(self.folder, self.required_files)

    def prepare_data(self) -> None:
        if self.download and self.missing_files():
            try:
                with _socket_timeout(DOWNLOAD_TIMEOUT_S):
                    self.fetch()
            except (OSError, RuntimeError) as error:
                # The last line holds the cause (torchvision lists every mirror it tried above it).
                reason = (str(error).strip().splitlines() or [type(error).__name__])[-1]
                # `from None`: the message says all a user needs; the chained traceback would bury it.
                raise self._not_found(f"the download failed ({reason})") from None

    def fetch(self) -> None:
        """Download the missing files (torchvision checks the archives' md5 sums)."""
        self.dataset_class(str(self.root), train=True, download=True)

    def require_files(self) -> None:
        """Raise DatasetNotFoundError, naming every missing file, unless all of them are there."""
        if self.missing_files():
            why = "prepare_data() has not downloaded it yet" if self.download else "download=False"
            raise self._not_found(why)

    def build_splits(self) -> tuple[Dataset, Dataset]:
        self.require_files()
        transform = to_signed_unit(self.image_size, self.channels)
        train = self.dataset_class(str(self.root), train=True, transform=transform)
        test = self.dataset_class(str(self.root), train=False, transform=transform)
        return DictDataset(train), Subset(DictDataset(test), range(min(self.val_size, len(test))))

    def _not_found(self, why: str) -> DatasetNotFoundError:
        missing = "\n".join(f"  {self.folder / name}" for name in self.missing_files())
        return DatasetNotFoundError(
            f"Dataset {self.name!r} not found in {self.folder}: {why}. Missing files:\n{missing}\n"
            f"{self.source}\nOr set data.root to the directory that holds "
            f"{self.folder.relative_to(self.root)}/."
        )


class _MNISTFormat(TorchvisionDataModule):
    """The MNIST family: four idx-ubyte files in ``<root>/<ClassName>/raw``."""

    channels = 1
    native_size = 28

    @property
    def folder(self) -> Path:
        return self.root / self.dataset_class.__name__ / "raw"

    @property
    def required_files(self) -> list[str]:
        return [os.path.splitext(archive)[0] for archive, _ in self.dataset_class.resources]

    @property
    def source(self) -> str:
        mirror = self.dataset_class.mirrors[0]
        archives = ", ".join(archive for archive, _ in self.dataset_class.resources)
        return f"Download {archives} from {mirror} and gunzip them into {self.folder}."


class MNISTDataModule(_MNISTFormat):
    """MNIST: 60,000 training / 10,000 test 1×28×28 handwritten digits, 10 classes."""

    name = "mnist"
    dataset_class = MNIST


class FashionMNISTDataModule(_MNISTFormat):
    """Fashion-MNIST: 60,000 training / 10,000 test 1×28×28 clothing images, 10 classes."""

    name = "fashion_mnist"
    dataset_class = FashionMNIST


class CIFAR10DataModule(TorchvisionDataModule):
    """CIFAR-10: 50,000 training / 10,000 test 3×32×32 photos, 10 classes.

    Files: the python pickle batches in ``<root>/cifar-10-batches-py``.
    """

    name = "cifar10"
    dataset_class = _CIFAR10FilesExist
    channels = 3
    native_size = 32

    @property
    def folder(self) -> Path:
        return self.root / CIFAR10.base_folder

    @property
    def required_files(self) -> list[str]:
        batches = CIFAR10.train_list + CIFAR10.test_list
        return [name for name, _ in batches] + [CIFAR10.meta["filename"]]

    @property
    def source(self) -> str:
        return f"Download {CIFAR10.url} and extract it into {self.root}."
