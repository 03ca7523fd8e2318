"""The CycleGAN (trainA/ trainB/ testA/ testB/) and pix2pix (train/ val/ test/, A | B side by side) folder layouts, on
fixtures with odd sizes and modes."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from src.data.paired_folder import PairedFolderDataModule
from src.data.unpaired_folder import UnpairedFolderDataModule
from src.utils.errors import DatasetNotFoundError

#: Odd sizes and every common mode: grayscale, palette, alpha, CMYK (JPEG), RGB.
ODD = [("L", (37, 53), "png"), ("P", (64, 31), "png"), ("RGBA", (20, 20), "png"), ("CMYK", (45, 17), "jpg"),
       ("RGB", (9, 70), "png")]


def _write(folder: Path, n: int, start: int = 0) -> None:
    """n images numbered start…, image k of value 20·k (grey level), in the modes and sizes of ODD in turn."""
    folder.mkdir(parents=True)
    for k in range(start, start + n):
        mode, size, ext = ODD[k % len(ODD)]
        image = Image.new("L", size, 20 * k).convert(mode)
        image.save(folder / f"{k:03d}.{ext}")


def _cyclegan_set(root: Path, name: str = "h2z", counts=(3, 4, 2, 3)) -> Path:
    for sub, n, start in zip(("trainA", "trainB", "testA", "testB"), counts, (0, 3, 7, 9)):
        _write(root / name / sub, n, start)
    return root


def _value(image: torch.Tensor) -> int:
    """The grey level 20·k an image was written with, read back from [-1, 1]."""
    return round(((image.mean().item() + 1) * 127.5) / 20)


def test_unpaired_folders_convert_resize_and_pair_at_random_with_their_own_generator(tmp_path):
    dm = UnpairedFolderDataModule(_cyclegan_set(tmp_path), "h2z", image_size=16, load_size=16, flip=False)
    dm.setup()
    train, val, test = dm.split("train"), dm.split("val"), dm.split("test")
    assert (len(train), len(val), len(test)) == (4, 2, 2)  # max(3, 4) to train; min(2, 3) held out
    item = train[0]
    assert item["a"].shape == item["b"].shape == (3, 16, 16) and item["a"].min() >= -1 and item["a"].max() <= 1
    assert [_value(train[i]["a"]) for i in range(4)] == [0, 1, 2, 0]  # A i mod |A|
    assert [(_value(test[i]["a"]), _value(test[i]["b"])) for i in range(2)] == [(7, 9), (8, 10)]  # aligned held out

    def partners(seed: int, global_seed: int) -> list[int]:
        torch.manual_seed(global_seed)
        other = UnpairedFolderDataModule(tmp_path, "h2z", image_size=16, load_size=16, flip=False, seed=seed)
        other.setup()
        return [_value(other.split("train")[i % 4]["b"]) for i in range(40)]

    drawn = partners(0, global_seed=1)
    assert set(drawn) == {3, 4, 5, 6}  # random B partners, each of trainB
    assert partners(0, global_seed=2) == drawn  # the global RNG plays no part
    assert partners(1, global_seed=1) != drawn  # the data seed does

    grey = UnpairedFolderDataModule(tmp_path, "h2z", image_size=8, load_size=12, channels=1)
    grey.setup()
    assert grey.split("train")[1]["a"].shape == (1, 8, 8)  # resized to 12, cropped to 8


def test_unpaired_pairing_resumes_from_the_datamodule_state(tmp_path):
    dm = UnpairedFolderDataModule(_cyclegan_set(tmp_path), "h2z", image_size=16, load_size=16, flip=False)
    dm.setup()
    [dm.split("train")[0] for _ in range(3)]
    state = dm.state_dict()
    after = [_value(dm.split("train")[0]["b"]) for _ in range(10)]
    resumed = UnpairedFolderDataModule(tmp_path, "h2z", image_size=16, load_size=16, flip=False)
    resumed.load_state_dict(state)
    resumed.setup()
    assert [_value(resumed.split("train")[0]["b"]) for _ in range(10)] == after


def test_missing_domain_folder_names_it_the_layout_and_where_to_get_the_set(tmp_path):
    _write(tmp_path / "horse2zebra" / "trainA", 2)
    dm = UnpairedFolderDataModule(tmp_path, "horse2zebra", image_size=16, load_size=16)
    with pytest.raises(DatasetNotFoundError) as error:
        dm.setup()
    message = str(error.value)
    assert str(tmp_path / "horse2zebra") in message and "trainB/, testA/, testB/" in message
    assert "cyclegan/datasets/horse2zebra.zip" in message


def _pix2pix_set(root: Path, splits=("train", "test")) -> Path:
    """A | B images: left half grey 20·k, right half grey 20·k + 10, odd sizes and modes."""
    for s, split in enumerate(splits):
        folder = root / "fac" / split
        folder.mkdir(parents=True)
        for k in range(3):
            mode, (w, h), ext = ODD[(k + s) % len(ODD)]
            image = Image.new("L", (2 * w, h), 20 * k)
            image.paste(20 * k + 10, (w, 0, 2 * w, h))
            image.convert(mode).save(folder / f"{k}.{ext}")
    return root


def test_paired_halves_in_either_direction_with_one_crop_for_both(tmp_path):
    _pix2pix_set(tmp_path)
    dm = PairedFolderDataModule(tmp_path, "fac", image_size=16, load_size=16, flip=False)
    dm.setup()
    assert len(dm.split("val")) == len(dm.split("test")) == 3  # val/ falls back on test/
    item = dm.split("test")[1]
    grey = lambda image: (image.mean().item() + 1) * 127.5  # noqa: E731
    assert item["a"].shape == (3, 16, 16) and abs(grey(item["a"]) - 20) < 2 and abs(grey(item["b"]) - 30) < 2
    swapped = PairedFolderDataModule(tmp_path, "fac", image_size=16, load_size=16, direction="b2a")
    swapped.setup()
    assert torch.equal(swapped.split("test")[1]["a"], item["b"])
    # Training crops and flips a and b together: a pattern present in both halves stays aligned.
    (tmp_path / "same" / "train").mkdir(parents=True)
    (tmp_path / "same" / "test").mkdir(parents=True)
    half = Image.linear_gradient("L").resize((30, 30)).rotate(30)
    both = Image.new("L", (60, 30))
    both.paste(half, (0, 0))
    both.paste(half, (30, 0))
    both.save(tmp_path / "same" / "train" / "0.png")
    both.save(tmp_path / "same" / "test" / "0.png")
    aligned = PairedFolderDataModule(tmp_path, "same", image_size=16, load_size=24)
    aligned.setup()
    for _ in range(5):
        pair = aligned.split("train")[0]
        assert torch.equal(pair["a"], pair["b"])


def test_paired_set_without_train_names_the_folder(tmp_path):
    _pix2pix_set(tmp_path, splits=("val", "test"))
    with pytest.raises(DatasetNotFoundError, match=r"fac has no images in train/.*pix2pix/datasets/fac.tar.gz"):
        PairedFolderDataModule(tmp_path, "fac", image_size=16).setup()
