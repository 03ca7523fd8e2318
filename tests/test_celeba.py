"""data=celeba (src/data/celeba.py): torchvision's CelebA layout read without its md5 checks, the official splits,
the crop and resize, and the errors for missing or malformed files."""
from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures import CELEBA_ATTRIBUTES, write_celeba, write_corrupt_image
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image

from src.data.celeba import ANNOTATION_FILES, CelebADataModule
from src.utils.errors import ConfigError, CorruptImageError, DatasetNotFoundError

CONFIG = Path(__file__).resolve().parents[1] / "conf" / "data" / "celeba.yaml"
SPLITS = {"train": 0, "val": 1, "test": 2}


def _rows(folder: Path, name: str, header_lines: int) -> list[list[str]]:
    return [line.split() for line in (folder / name).read_text().splitlines()[header_lines:]]


def _expected(folder: Path, split: str) -> list[tuple[str, list[int]]]:
    """(file, attrs as 0/1) of every image of ``split`` in file order, read from the fixture's text files."""
    partition = {name: int(number) for name, number in _rows(folder, "list_eval_partition.txt", 0)}
    return [(row[0], [(int(v) + 1) // 2 for v in row[1:]]) for row in _rows(folder, "list_attr_celeba.txt", 2)
            if partition[row[0]] == SPLITS[split]]


def _ready(root: Path, **kwargs) -> CelebADataModule:
    dm = CelebADataModule(root=str(root), **{"image_size": 16, "batch_size": 2, "val_size": 10, **kwargs})
    dm.prepare_data()
    dm.setup()
    return dm


def _pixels(path: Path, crop: int, size: int) -> torch.Tensor:
    """The center ``crop`` square of a 178×218 image resized to ``size`` with PIL's bilinear filter, in [-1, 1]."""
    left, top = round((178 - crop) / 2), round((218 - crop) / 2)
    with Image.open(path) as image:
        square = image.convert("RGB").crop((left, top, left + crop, top + crop)).resize((size, size), Image.BILINEAR)
    return torch.from_numpy(np.asarray(square) / 127.5 - 1).permute(2, 0, 1).float()


def test_items_are_the_files_images_and_attributes_in_the_official_splits(tmp_path):
    folder = write_celeba(tmp_path, n_train=6, n_val=3, n_test=3)
    dm = _ready(tmp_path)
    assert (dm.image_shape, dm.num_classes, dm.kind, dm.name) == ((3, 16, 16), None, "image", "celeba")
    assert dm.attribute_names == CELEBA_ATTRIBUTES
    for split in SPLITS:
        expected = _expected(folder, split)
        data = dm.split(split)
        assert len(data) == len(expected) == {"train": 6, "val": 3, "test": 3}[split]
        for item, (name, attrs) in zip(data, expected):
            assert set(item) == {"image", "attrs"}
            assert item["attrs"].dtype == torch.int64 and item["attrs"].tolist() == attrs
            assert item["image"].dtype == torch.float32 and item["image"].shape == (3, 16, 16)
            assert torch.allclose(item["image"], _pixels(folder / "img_align_celeba" / name, 178, 16), atol=1e-5)
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (2, 3, 16, 16) and batch["attrs"].shape == (2, 40)


def test_val_holds_the_first_val_size_images_of_the_validation_partition(tmp_path):
    folder = write_celeba(tmp_path, n_train=4, n_val=5, n_test=2)
    val = _ready(tmp_path, val_size=2).split("val")
    assert [item["attrs"].tolist() for item in val] == [attrs for _, attrs in _expected(folder, "val")[:2]]


@pytest.mark.parametrize(("crop", "size"), [(140, 24), (108, 8), (178, 64)])
def test_crop_and_resize(tmp_path, crop, size):
    folder = write_celeba(tmp_path, n_train=2, n_val=1, n_test=1)
    dm = _ready(tmp_path, crop_size=crop, image_size=size, batch_size=1)
    assert dm.image_shape == (3, size, size)
    name = _expected(folder, "train")[0][0]
    image = dm.split("train")[0]["image"]
    assert image.shape == (3, size, size) and image.min() >= -1 and image.max() <= 1
    assert torch.allclose(image, _pixels(folder / "img_align_celeba" / name, crop, size), atol=1e-5)


def test_a_crop_wider_than_the_images_is_refused():
    with pytest.raises(ConfigError, match="crop_size=200.*178"):
        CelebADataModule(crop_size=200)


def test_fingerprint_follows_the_crop_and_the_annotation_files(tmp_path):
    folder = write_celeba(tmp_path)
    before = CelebADataModule(root=str(tmp_path)).fingerprint()
    assert before == CelebADataModule(root=str(tmp_path)).fingerprint()
    assert before != CelebADataModule(root=str(tmp_path), crop_size=140).fingerprint()
    partition = folder / "list_eval_partition.txt"
    partition.write_text(partition.read_text().replace(" 2\n", " 0\n", 1))
    assert CelebADataModule(root=str(tmp_path)).fingerprint() != before


def _assert_names_folder_and_files(message: str, folder: Path, files) -> None:
    assert str(folder) in message and "data.root" in message and "mmlab.ie.cuhk.edu.hk" in message
    assert all(str(folder / name) in message for name in files)


def test_missing_files_are_named_with_their_folder(tmp_path):
    dm = CelebADataModule(root=str(tmp_path))
    dm.prepare_data()  # download=False: nothing is fetched
    with pytest.raises(DatasetNotFoundError, match="download=False") as error:
        dm.setup()
    _assert_names_folder_and_files(str(error.value), tmp_path / "celeba", ["img_align_celeba/", *ANNOTATION_FILES])


def test_one_missing_annotation_file_is_the_one_named(tmp_path):
    folder = write_celeba(tmp_path)
    (folder / "identity_CelebA.txt").unlink()
    with pytest.raises(DatasetNotFoundError) as error:
        _ready(tmp_path)
    message = str(error.value)
    _assert_names_folder_and_files(message, folder, ["identity_CelebA.txt"])
    assert str(folder / "list_attr_celeba.txt") not in message


@pytest.mark.timeout(60)
def test_a_failed_download_says_where_to_put_the_files(tmp_path, monkeypatch):
    def unknown_host(*args, **kwargs):  # offline: the test never downloads, even where a network exists
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", unknown_host)
    dm = CelebADataModule(root=str(tmp_path), download=True)
    with pytest.raises(DatasetNotFoundError, match="download failed") as error:
        dm.prepare_data()
    _assert_names_folder_and_files(str(error.value), tmp_path / "celeba", ANNOTATION_FILES)


def _edit_line(path: Path, number: int, edit) -> None:
    lines = path.read_text().splitlines(keepends=True)
    lines[number - 1] = edit(lines[number - 1])
    path.write_text("".join(lines))


def _drop_last(line: str) -> str:
    return line.rstrip().rsplit(" ", 1)[0].rstrip() + "\n"


@pytest.mark.parametrize(("file", "line", "edit", "problem"), [
    ("list_attr_celeba.txt", 5, lambda s: _drop_last(s), "39 values after the file name where 40"),
    ("list_attr_celeba.txt", 3, lambda s: s.rstrip("\n") + "  1\n", "41 values after the file name where 40"),
    ("list_attr_celeba.txt", 6, lambda s: s.replace("-1", " x", 1), "'x' is not an integer"),
    ("list_attr_celeba.txt", 4, lambda s: s.replace("-1", " 0", 1), "other than 1 or -1"),
    ("list_attr_celeba.txt", 2, lambda s: s.replace("Young", ""), "39 attribute names"),
    ("list_attr_celeba.txt", 8, lambda s: s.rstrip("\n") + " \n", "a space at the end of the line"),
    ("list_landmarks_align_celeba.txt", 7, lambda s: _drop_last(s), "9 values after the file name where 10"),
    ("identity_CelebA.txt", 2, lambda s: s.replace("000002", "000099"),
     "image 2 is 000099.jpg, where list_eval_partition.txt has 000002.jpg"),
], ids=["attr_short_row", "attr_long_first_row", "attr_not_a_number", "attr_zero", "attr_names", "attr_trailing_space",
        "landmarks_row", "identity_other_image"])
def test_a_malformed_annotation_file_names_the_file_and_line(tmp_path, file, line, edit, problem):
    folder = write_celeba(tmp_path)
    _edit_line(folder / file, line, edit)
    with pytest.raises(ConfigError, match="download it again") as error:
        _ready(tmp_path)
    assert f"{folder / file}, line {line}: " in str(error.value) and problem in str(error.value)


def test_an_annotation_file_with_fewer_images_is_named(tmp_path):
    folder = write_celeba(tmp_path)
    path = folder / "list_bbox_celeba.txt"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))
    with pytest.raises(ConfigError, match="11 images, where list_eval_partition.txt has 12") as error:
        _ready(tmp_path)
    assert str(path) in str(error.value)


def test_a_missing_or_corrupt_image_is_named_when_loaded(tmp_path):
    folder = write_celeba(tmp_path, n_train=2, n_val=1, n_test=1)
    dm = _ready(tmp_path)
    first, second = (name for name, _ in _expected(folder, "train"))
    broken = write_corrupt_image(folder / "img_align_celeba" / first)
    with pytest.raises(CorruptImageError) as error:
        dm.split("train")[0]
    assert error.value.paths == (broken,)
    (folder / "img_align_celeba" / second).unlink()
    with pytest.raises(DatasetNotFoundError, match=f"{second} is missing"):
        dm.split("train")[1]


def test_the_config_builds_the_datamodule_on_the_data_directory(tmp_path):
    write_celeba(tmp_path)
    cfg = OmegaConf.create({"paths": {"data_dir": str(tmp_path)}, "data": OmegaConf.load(CONFIG)})
    assert cfg.data.root == str(tmp_path) and cfg.data.download is False
    dm = instantiate(cfg.data, image_size=8, batch_size=2)
    assert isinstance(dm, CelebADataModule) and dm.crop_size == 178
    dm.setup()
    assert next(iter(dm.train_dataloader()))["image"].shape == (2, 3, 8, 8)
