"""The image DataModules: the batch contract, splits, fingerprints, native formats, errors, configs."""

import inspect
import pickle
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures import write_cifar10, write_corrupt_image, write_image_folder, write_mnist
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue
from sklearn.datasets import load_digits
from torch.utils.data import SequentialSampler
from torchdata.stateful_dataloader.sampler import RandomSampler  # the stateful loader's own, which keeps its place

from src.data import torchvision_sets
from src.data.base import GANDataModule
from src.data.digits import DigitsDataModule
from src.utils.errors import ConfigError, CorruptImageError, DatasetNotFoundError
from src.data.image_folder import IMAGE_EXTENSIONS, ImageFolderDataModule
from src.data.torchvision_sets import CIFAR10DataModule, FashionMNISTDataModule, MNISTDataModule
from src.data.unpaired_folder import FolderLayoutDataModule

CONF_DATA = Path(__file__).resolve().parents[1] / "conf" / "data"


@dataclass
class Case:
    """A DataModule on its (fixture) data and what it must report."""

    make: Callable[[Path], GANDataModule]
    image_shape: tuple[int, int, int]
    num_classes: int | None
    n_train: int
    n_val: int


def _mnist(tmp_path: Path, **kwargs) -> MNISTDataModule:
    write_mnist(tmp_path, n_train=16, n_test=8)
    return MNISTDataModule(root=str(tmp_path), download=False, batch_size=4, val_size=5, **kwargs)


def _fashion(tmp_path: Path) -> FashionMNISTDataModule:
    write_mnist(tmp_path, n_train=16, n_test=8, fashion=True)
    return FashionMNISTDataModule(root=str(tmp_path), download=False, batch_size=4, val_size=5)


def _cifar10(tmp_path: Path) -> CIFAR10DataModule:
    write_cifar10(tmp_path, n_per_batch=4)
    return CIFAR10DataModule(root=str(tmp_path), download=False, batch_size=4, val_size=5)


def _folder(tmp_path: Path, classes=("a", "b"), **kwargs) -> ImageFolderDataModule:
    write_image_folder(tmp_path / "images", n=8, size=20, classes=classes)
    kwargs = {"image_size": 16, "batch_size": 3, "val_size": 2, **kwargs}
    return ImageFolderDataModule(root=str(tmp_path / "images"), **kwargs)


CASES = {
    "digits": Case(lambda _: DigitsDataModule(image_size=16, batch_size=32), (1, 16, 16), 10, 1500, 297),
    "mnist": Case(_mnist, (1, 28, 28), 10, 16, 5),
    "mnist_resized": Case(lambda p: _mnist(p, image_size=32), (1, 32, 32), 10, 16, 5),
    "fashion_mnist": Case(_fashion, (1, 28, 28), 10, 16, 5),
    # The fixture's test batch has 4 images, fewer than val_size=5.
    "cifar10": Case(_cifar10, (3, 32, 32), 10, 20, 4),
    "folder_labelled": Case(lambda p: _folder(p, labels=True), (3, 16, 16), 2, 6, 2),
    "folder_gray_flat": Case(lambda p: _folder(p, classes=(), channels=1), (1, 16, 16), None, 6, 2),
}


@pytest.fixture(params=list(CASES), ids=list(CASES))
def case(request) -> Case:
    return CASES[request.param]


def _ready(dm: GANDataModule) -> GANDataModule:
    dm.prepare_data()
    dm.setup("fit")
    return dm


def _signed_unit(pixels: np.ndarray) -> torch.Tensor:
    """uint8 pixels → float32 in [-1, 1], the scaling every DataModule must apply."""
    return torch.from_numpy(pixels / 127.5 - 1).float()


def _stack(dataset) -> torch.Tensor:
    return torch.stack([dataset[i]["image"] for i in range(len(dataset))])


def test_batches_follow_the_contract(case: Case, tmp_path: Path):
    dm = case.make(tmp_path)
    # Models size themselves from these before setup.
    assert (dm.image_shape, dm.num_classes, dm.kind) == (case.image_shape, case.num_classes, "image")
    assert isinstance(dm.name, str) and dm.name
    _ready(dm)
    assert (len(dm.train_set), len(dm.val_set)) == (case.n_train, case.n_val)

    batch = next(iter(dm.train_dataloader()))
    images = batch["image"]
    assert images.shape == (dm.batch_size, *case.image_shape)
    assert images.dtype == torch.float32
    assert images.min() >= -1.0 and images.max() <= 1.0
    if case.num_classes is None:
        assert set(batch) == {"image"}
    else:
        assert set(batch) == {"image", "label"}
        assert batch["label"].dtype == torch.int64 and batch["label"].shape == (dm.batch_size,)
        assert 0 <= batch["label"].min() and batch["label"].max() < case.num_classes

    assert sum(len(b["image"]) for b in dm.val_dataloader()) == case.n_val


def test_eval_subset_is_a_seeded_part_of_its_split(case: Case, tmp_path: Path):
    first, second = _ready(case.make(tmp_path)), _ready(case.make(tmp_path))
    for split, size in (("train", case.n_train), ("val", case.n_val)):
        n = min(size, 5)
        subset = first.eval_subset(split, n)
        assert len(subset) == n and subset.dataset is first.split(split)
        assert set(subset.indices) <= set(range(size))
        assert torch.equal(_stack(subset), _stack(second.eval_subset(split, n)))
        assert len(first.eval_subset(split, size + 10)) == size
    with pytest.raises(ConfigError, match="has no 'test' split; it has train, val"):
        first.split("test")


def test_loaders_shuffle_and_drop_only_in_training():
    dm = DigitsDataModule(batch_size=64)
    train, val = dm.train_dataloader(), dm.val_dataloader()
    assert isinstance(train.sampler, RandomSampler) and train.drop_last
    assert isinstance(val.sampler, SequentialSampler) and not val.drop_last
    assert len(train) == 1500 // 64 and len(val) == -(-297 // 64)
    assert train.pin_memory == torch.cuda.is_available()
    assert not train.persistent_workers
    assert DigitsDataModule(num_workers=1).train_dataloader().persistent_workers


def test_digits_split_is_seeded_and_disjoint():
    dm, same, other = (_ready(DigitsDataModule(seed=s)) for s in (0, 0, 1))
    assert set(dm.train_set.indices).isdisjoint(dm.val_set.indices)
    assert len(set(dm.train_set.indices) | set(dm.val_set.indices)) == 1797
    assert dm.val_set.indices == same.val_set.indices
    assert dm.val_set.indices != other.val_set.indices


def test_digits_keep_their_values_at_native_size():
    dm = _ready(DigitsDataModule(image_size=8, val_size=1))
    expected = torch.from_numpy(load_digits().images).float() / 16 * 2 - 1
    index = dm.val_set.indices[0]
    assert torch.allclose(dm.val_set[0]["image"][0], expected[index], atol=1e-6)


def test_mnist_images_are_the_file_bytes_scaled(tmp_path: Path):
    raw = write_mnist(tmp_path, n_train=16, n_test=8)
    pixels = np.frombuffer((raw / "train-images-idx3-ubyte").read_bytes()[16:], dtype=np.uint8)
    labels = np.frombuffer((raw / "train-labels-idx1-ubyte").read_bytes()[8:], dtype=np.uint8)
    item = _ready(MNISTDataModule(root=str(tmp_path), download=False, val_size=1)).train_set[3]
    assert torch.allclose(item["image"][0], _signed_unit(pixels[3 * 784 : 4 * 784].reshape(28, 28)), atol=1e-6)
    assert item["label"] == labels[3]


def test_cifar10_images_are_the_pickled_planes_scaled(tmp_path: Path):
    folder = write_cifar10(tmp_path, n_per_batch=4)
    batch = pickle.loads((folder / "data_batch_2").read_bytes())
    item = _ready(CIFAR10DataModule(root=str(tmp_path), download=False, val_size=1)).train_set[4]
    expected = _signed_unit(batch["data"][0].reshape(3, 32, 32))
    assert torch.allclose(item["image"], expected, atol=1e-6) and item["label"] == batch["labels"][0]


def test_fingerprint_follows_settings_and_files(tmp_path: Path):
    digits = DigitsDataModule(image_size=32).fingerprint()
    assert digits == DigitsDataModule(image_size=32).fingerprint()
    assert digits != DigitsDataModule(image_size=16).fingerprint()
    assert digits != DigitsDataModule(seed=1).fingerprint()

    folder = _folder(tmp_path)
    before = folder.fingerprint()
    assert before != _folder(tmp_path, image_size=32).fingerprint()
    write_image_folder(tmp_path / "images" / "a" / "more", n=1)
    assert folder.fingerprint() != before

    mnist = _mnist(tmp_path)
    before = mnist.fingerprint()
    write_mnist(tmp_path, n_train=17)
    assert mnist.fingerprint() != before


TORCHVISION_MODULES = [MNISTDataModule, FashionMNISTDataModule, CIFAR10DataModule]


def _assert_says_where_and_what(message: str, dm: torchvision_sets.TorchvisionDataModule):
    assert str(dm.folder) in message
    assert all(name in message for name in dm.required_files)
    assert "http" in message and "data.root" in message


@pytest.mark.parametrize("module", TORCHVISION_MODULES, ids=lambda m: m.name)
def test_missing_torchvision_files_without_download(module, tmp_path: Path):
    dm = module(root=str(tmp_path), download=False)
    dm.prepare_data()
    with pytest.raises(DatasetNotFoundError, match="download=False") as error:
        dm.setup()
    _assert_says_where_and_what(str(error.value), dm)


@pytest.fixture
def silent_server():
    """A local port that accepts connections and never answers, like a host behind a stalling firewall."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    yield server.getsockname()
    server.close()


def _offline(kind: str, silent_server) -> Callable:
    """A stand-in for ``socket.getaddrinfo``: every host unknown, or every host the silent server."""

    def getaddrinfo(*args, **kwargs):
        if kind == "unknown_host":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", silent_server)]

    return getaddrinfo


@pytest.mark.timeout(60)
@pytest.mark.parametrize("network", ["unknown_host", "silent_host"])
@pytest.mark.parametrize("module", TORCHVISION_MODULES, ids=lambda m: m.name)
def test_failed_download_says_where_to_put_the_files(module, network, silent_server, tmp_path: Path, monkeypatch):
    # A simulated offline network: the test must not download even where a network exists.
    monkeypatch.setattr(socket, "getaddrinfo", _offline(network, silent_server))
    monkeypatch.setattr(torchvision_sets, "DOWNLOAD_TIMEOUT_S", 0.5)
    dm = module(root=str(tmp_path), download=True)
    start = time.monotonic()
    with pytest.raises(DatasetNotFoundError, match="download failed") as error:
        dm.prepare_data()
    # At most one timeout per mirror: torchvision gives up on a mirror after its first request.
    assert time.monotonic() - start < 10
    _assert_says_where_and_what(str(error.value), dm)
    assert error.value.__suppress_context__


def test_missing_image_folder(tmp_path: Path):
    dm = ImageFolderDataModule(root=str(tmp_path / "nowhere"))
    with pytest.raises(DatasetNotFoundError, match="data.root=") as error:
        dm.setup()
    assert str(tmp_path / "nowhere") in str(error.value)


def test_image_folder_without_images_lists_the_extensions(tmp_path: Path):
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden.png").write_bytes(b"macOS metadata")
    with pytest.raises(DatasetNotFoundError) as error:
        ImageFolderDataModule(root=str(tmp_path)).setup()
    assert all(extension in str(error.value) for extension in IMAGE_EXTENSIONS)


def test_corrupt_image_fails_when_loaded_naming_the_file(tmp_path: Path):
    dm = _folder(tmp_path, batch_size=1)
    broken = write_corrupt_image(tmp_path / "images" / "a" / "broken.png")
    dm.setup()
    with pytest.raises(CorruptImageError, match="broken.png") as error:
        for loader in (dm.train_dataloader(), dm.val_dataloader()):
            for _ in loader:
                pass
    assert error.value.paths == (broken,) and "Remove" in str(error.value)


def test_verify_reports_every_corrupt_image_at_setup(tmp_path: Path):
    dm = _folder(tmp_path, verify=True)
    broken = [write_corrupt_image(tmp_path / "images" / name) for name in ("a/x.png", "b/y.png")]
    with pytest.raises(CorruptImageError, match="2 images") as error:
        dm.setup()
    assert error.value.paths == tuple(broken)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda p: _folder(p, classes=(), labels=True), "class subfolders"),
        (lambda p: _folder(p, val_size=8), "val_size"),
        (lambda p: _folder(p, batch_size=7), "batch_size"),
    ],
    ids=["labels_without_subfolders", "val_takes_everything", "batch_larger_than_train"],
)
def test_settings_that_cannot_work_are_refused(make, match, tmp_path: Path):
    with pytest.raises(ValueError, match=match):
        make(tmp_path).train_dataloader()


def test_unsupported_channels_are_refused(tmp_path: Path):
    with pytest.raises(ValueError, match="channels"):
        ImageFolderDataModule(root=str(tmp_path), channels=2)


def _load_preset(config: Path) -> DictConfig:
    """A data config with the presets its defaults list names merged under it (apple2orange: horse2zebra's settings)."""
    data = OmegaConf.load(config)
    bases = [OmegaConf.load(config.parent / f"{name}.yaml") for name in data.pop("defaults", []) if name != "_self_"]
    return OmegaConf.merge(*bases, data) if bases else data


@pytest.mark.parametrize("config", sorted(CONF_DATA.glob("*.yaml")), ids=lambda p: p.stem)
def test_config_instantiates_with_every_constructor_argument(config: Path, tmp_path: Path):
    data = _load_preset(config)
    cls = get_class(data._target_)
    assert issubclass(cls, GANDataModule)
    parameters = set(inspect.signature(cls).parameters)
    assert set(data) - {"_target_"} == parameters
    # The published translation sets keep the reference's batch of 1 and decode their JPEGs in workers; the rest
    # share one default.
    published_layout = issubclass(cls, FolderLayoutDataModule)
    assert (data.batch_size, data.num_workers) == ((1, 4) if published_layout else (64, 0))

    cfg = OmegaConf.create({"paths": {"data_dir": str(tmp_path), "cache_dir": str(tmp_path / "cache")}, "data": data})
    if OmegaConf.is_missing(data, "root"):
        with pytest.raises(MissingMandatoryValue):
            instantiate(cfg.data)
        cfg.data.root = str(tmp_path)
    dm = instantiate(cfg.data)
    assert isinstance(dm, cls)
    if "root" in parameters:
        assert Path(dm.root) == tmp_path
