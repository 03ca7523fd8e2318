"""The attribute judge: its net's shapes, training on a learnable synthetic set, the cache, and the score helpers
on hand-computed examples."""
from __future__ import annotations

import dataclasses
import os
import random

import pytest
import torch
from torch.utils.data import Dataset

from fixtures import write_celeba

from src.data.base import GANDataModule
from src.data.celeba import CelebADataModule
from src.data.faces.attributes import ATTRIBUTES, Attribute
from src.metrics import attribute_judge
from src.metrics.attribute_judge import (
    AttributeJudge,
    JudgeSettings,
    attribute_accuracy,
    flip_rate,
    judge_path,
    judge_spec,
    kept_share,
    load_judge,
    shift_and_flip,
    train_judge,
)
from src.nets.attribute_classifier import AttributeClassifier

SIZE = 32
#: Small enough to train in about a second on one thread, and enough to learn the shapes set perfectly (measured
#: 1.0 on both attributes; 2 epochs at lr 2e-3 stay near chance on "bar", so the accuracy check can fail).
FAST = JudgeSettings(epochs=8, batch_size=32, lr=1e-2, base_width=8, max_width=32)
#: For the cache's mechanics, where accuracy is not under test.
CHEAP = JudgeSettings(epochs=1, batch_size=64, base_width=4, max_width=8)
SHAPES_SPEC = (("tint", ("red", "green", "blue")), ("bar", ("horizontal", "vertical")))


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def shapes_judge(_one_thread) -> AttributeJudge:
    return train_judge(Shapes(384, seed=0), Shapes(128, seed=1), SHAPES_SPEC, FAST)


class Shapes(Dataset):
    """A learnable stand-in for labelled faces: 3×32×32 noisy images whose background tint (3 values) and bar
    orientation (a 4×16 white bar anywhere, horizontal or vertical) are the two attributes; ``extra`` more binary
    attributes are drawn at random (unlearnable, for the head count only)."""

    def __init__(self, n: int, seed: int, extra: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.attrs = torch.cat([torch.randint(3, (n, 1), generator=g), torch.randint(2, (n, 1 + extra), generator=g)],
                               dim=1)
        images = 0.2 * torch.randn(n, 3, SIZE, SIZE, generator=g) - 0.5
        images[torch.arange(n), self.attrs[:, 0]] += 0.6
        corners = torch.randint(2, SIZE - 18, (n, 2), generator=g).tolist()
        for image, (y, x), vertical in zip(images, corners, self.attrs[:, 1].tolist()):
            image[:, y:y + (16 if vertical else 4), x:x + (4 if vertical else 16)] = 0.9
        self.images = images.clamp(-1, 1)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"image": self.images[index], "attrs": self.attrs[index]}


class DrawsOnAccess(Dataset):
    """Items that draw from the global RNG when read, as a captioned training item picks its caption."""

    def __init__(self, items: Dataset):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {**self.items[index], "draw": torch.rand(())}


class ShapesDataModule(GANDataModule):
    """The shapes as a DataModule with categorical attributes (like data=faces), counting how often it builds data."""

    name = "shapes"
    attributes = tuple(Attribute(name, values, (1 / len(values),) * len(values)) for name, values in SHAPES_SPEC)

    def __init__(self, seed: int = 0, n_train: int = 384):
        super().__init__(batch_size=32, val_size=128, seed=seed)
        self.n_train = n_train
        self.builds = 0

    image_shape = (3, SIZE, SIZE)
    num_classes = None

    def source_signature(self) -> int:
        return self.n_train

    def build_splits(self) -> tuple[Dataset, Dataset]:
        self.builds += 1
        return Shapes(self.n_train, self.seed), Shapes(self.val_size, self.seed + 1)


class BinaryShapesDataModule(ShapesDataModule):
    """Like CelebA: 40 binary attributes named by ``attribute_names`` (the tint is folded to red or not)."""

    name = "binary_shapes"
    attributes = None
    attribute_names = [f"attr_{k}" for k in range(40)]

    def build_splits(self) -> tuple[Dataset, Dataset]:
        train, val = Shapes(64, self.seed, extra=38), Shapes(32, self.seed + 1, extra=38)
        for split in (train, val):
            split.attrs[:, 0] = (split.attrs[:, 0] == 0).long()
        return train, val


@pytest.fixture
def trainings(monkeypatch) -> list[int]:
    """Counts the calls of train_judge that load_judge makes."""
    calls = []
    real = attribute_judge.train_judge

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(attribute_judge, "train_judge", counting)
    return calls


@pytest.mark.parametrize("size", [32, 64, 128])
def test_classifier_gives_logits_per_attribute_at_every_size(size):
    num_values = [len(a.values) for a in ATTRIBUTES]
    net = AttributeClassifier(num_values, image_size=size)
    logits = net(torch.rand(2, 3, size, size) * 2 - 1)
    assert [tuple(t.shape) for t in logits] == [(2, v) for v in num_values]
    # The stride-2 stages take the image to 4×4 before the pool, whatever its size.
    assert net.body[:-2](torch.zeros(1, 3, size, size)).shape[-2:] == (4, 4)


def test_classifier_with_40_binary_heads():
    net = AttributeClassifier([2] * 40, image_size=64)
    logits = net(torch.zeros(3, 3, 64, 64))
    assert len(logits) == 40 and all(t.shape == (3, 2) for t in logits)


def test_classifier_refuses_an_attribute_without_two_values():
    with pytest.raises(ValueError, match="at least 2 values"):
        AttributeClassifier([3, 1])


def test_shift_and_flip_moves_whole_pixels_with_the_border_replicated():
    images = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    out = shift_and_flip(images, max_shift=2, flip=True, generator=torch.Generator().manual_seed(1))
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2), mode="replicate")
    for i in range(2):
        candidates = [view for dy in range(5) for dx in range(5)
                      for view in (padded[i, :, dy:dy + 8, dx:dx + 8],) for view in (view, view.flip(-1))]
        assert any(torch.equal(out[i], c) for c in candidates), f"image {i} is no whole-pixel shift or flip"
    assert torch.equal(shift_and_flip(images, 0, False, torch.Generator()), images)


def test_training_learns_a_learnable_set_deterministically(shapes_judge):
    accuracy = shapes_judge.record["val_accuracy"]
    assert accuracy["tint"] >= 0.95 and accuracy["bar"] >= 0.95, accuracy
    assert shapes_judge.record["n_train"] == 384 and shapes_judge.record["n_val"] == 128
    before = torch.get_rng_state()
    again = train_judge(DrawsOnAccess(Shapes(384, seed=0)), DrawsOnAccess(Shapes(128, seed=1)), SHAPES_SPEC, FAST)
    assert torch.equal(torch.get_rng_state(), before), "training moved the global RNG"
    weights = zip(shapes_judge.net.state_dict().values(), again.net.state_dict().values())
    assert all(torch.equal(a, b) for a, b in weights), "the same seed trained another judge"


def test_training_refuses_attrs_that_do_not_fit_the_spec():
    with pytest.raises(ValueError, match="attrs must be N×3"):
        train_judge(Shapes(32, 0), Shapes(32, 1), SHAPES_SPEC + (("extra", ("no", "yes")),), CHEAP)
    with pytest.raises(ValueError, match="tint values must be indices 0..1"):
        train_judge(Shapes(32, 0), Shapes(32, 1), (("tint", ("red", "other")), SHAPES_SPEC[1]), CHEAP)


def test_predict_on_held_out_images_leaves_the_rng_alone(shapes_judge):
    held_out = Shapes(64, seed=2)
    judge = AttributeJudge(shapes_judge.net, shapes_judge.spec, shapes_judge.image_shape, batch_size=16)  # 4 chunks
    before = torch.get_rng_state()
    predicted = judge.predict(held_out.images)
    assert torch.equal(torch.get_rng_state(), before)
    assert predicted.dtype == torch.int64 and predicted.shape == (64, 2)
    assert attribute_accuracy(predicted, held_out.attrs, judge.names)["mean"] >= 0.95
    probabilities = judge.probabilities(held_out.images)
    assert [tuple(p.shape) for p in probabilities] == [(64, 3), (64, 2)]
    assert torch.allclose(probabilities[0].sum(1), torch.ones(64))
    with pytest.raises(ValueError, match="trained on images N×3×32×32"):
        judge.predict(torch.zeros(2, 3, 64, 64))


def test_cache_trains_once_then_loads_without_data(tmp_path, trainings):
    datamodule = ShapesDataModule()
    first = load_judge(datamodule, tmp_path, CHEAP)
    path = judge_path(datamodule, tmp_path, CHEAP)
    assert path.parent == tmp_path / "judges" and path.is_file()
    assert len(trainings) == 1 and datamodule.builds == 1
    stamp = path.stat().st_mtime_ns
    fresh = ShapesDataModule()
    second = load_judge(fresh, tmp_path, CHEAP)
    assert len(trainings) == 1 and fresh.builds == 0, "a cache hit trained again or built the data"
    assert path.stat().st_mtime_ns == stamp
    assert second.record["val_accuracy"] == first.record["val_accuracy"]
    assert set(second.record["val_accuracy"]) == {"tint", "bar", "mean"}
    assert second.spec == SHAPES_SPEC
    images = Shapes(16, seed=3).images
    assert torch.equal(second.predict(images), first.predict(images))


def test_cache_key_follows_the_dataset_and_the_settings(tmp_path):
    path = judge_path(ShapesDataModule(), tmp_path, FAST)
    assert judge_path(ShapesDataModule(), tmp_path, FAST) == path
    assert judge_path(ShapesDataModule(n_train=256), tmp_path, FAST) != path  # another fingerprint
    assert judge_path(ShapesDataModule(seed=1), tmp_path, FAST) != path
    assert judge_path(ShapesDataModule(), tmp_path, dataclasses.replace(FAST, seed=1)) != path


@pytest.mark.parametrize("damage", ["random bytes", "bytes the unpickler indexes past", "truncated"])
def test_unreadable_cache_is_trained_again_with_a_warning(tmp_path, trainings, damage):
    datamodule = ShapesDataModule()
    load_judge(datamodule, tmp_path, CHEAP)
    path = judge_path(datamodule, tmp_path, CHEAP)
    content = path.read_bytes()
    damaged = {"random bytes": os.urandom(512), "bytes the unpickler indexes past": random.Random(2).randbytes(512),
               "truncated": content[:len(content) // 2]}  # seed 2's bytes raise IndexError in torch.load
    path.write_bytes(damaged[damage])
    with pytest.warns(UserWarning, match="unreadable"):
        load_judge(datamodule, tmp_path, CHEAP)
    assert len(trainings) == 2
    assert torch.load(path, weights_only=True)["record"]["n_train"] == 384  # the file was written anew
    load_judge(datamodule, tmp_path, CHEAP)
    assert len(trainings) == 2


def test_binary_attributes_get_40_heads(tmp_path):
    datamodule = BinaryShapesDataModule()
    spec = judge_spec(datamodule)
    assert len(spec) == 40 and all(values == ("no", "yes") for _, values in spec)
    judge = load_judge(datamodule, tmp_path, CHEAP)
    predicted = judge.predict(Shapes(5, seed=4, extra=38).images)
    assert predicted.shape == (5, 40) and set(predicted.unique().tolist()) <= {0, 1}
    assert len(judge.record["val_accuracy"]) == 41


def test_celeba_on_disk_gets_a_judge_of_its_40_attributes(tmp_path, trainings):
    write_celeba(tmp_path / "data")
    datamodule = CelebADataModule(root=str(tmp_path / "data"), image_size=32)
    judge = load_judge(datamodule, tmp_path / "cache", CHEAP)
    assert judge.names == tuple(datamodule.attribute_names) and len(judge.names) == 40
    assert judge.record["n_train"] == 6 and judge.record["n_val"] == 3  # the official partition of the fixture
    batch = next(iter(datamodule.val_dataloader()))
    assert judge.predict(batch["image"]).shape == batch["attrs"].shape
    load_judge(CelebADataModule(root=str(tmp_path / "data"), image_size=32), tmp_path / "cache", CHEAP)
    assert len(trainings) == 1


def test_a_datamodule_without_attributes_is_refused():
    class Unlabelled(ShapesDataModule):
        name = "unlabelled"
        attributes = None

    with pytest.raises(ValueError, match="data=unlabelled has no attribute labels"):
        judge_spec(Unlabelled())


NAMES = ("a", "b", "c")
PREDICTED = torch.tensor([[0, 1, 2], [1, 1, 0], [0, 0, 2], [1, 0, 1]])
INTENDED = torch.tensor([[0, 1, 2], [0, 1, 1], [0, 1, 2], [1, 1, 1]])


def test_attribute_accuracy_by_hand():
    # a: ✓ ✗ ✓ ✓; b: ✓ ✓ ✗ ✗; c: ✓ ✗ ✓ ✓ → 8 of 12 pairs.
    assert attribute_accuracy(PREDICTED, INTENDED, NAMES) == {"a": 0.75, "b": 0.5, "c": 0.75, "mean": 8 / 12}


def test_attribute_accuracy_counts_only_masked_pairs():
    mask = torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 0], [0, 0, 0]], dtype=torch.bool)
    # a: rows 0-2 ✓ ✗ ✓; b: rows 1-2 ✓ ✗; c: never counted. Mean over the 5 pairs (not the 7/12 of the two means).
    assert attribute_accuracy(PREDICTED, INTENDED, NAMES, mask) == {"a": 2 / 3, "b": 0.5, "mean": 3 / 5}
    with pytest.raises(ValueError, match="counts no"):
        attribute_accuracy(PREDICTED, INTENDED, NAMES, torch.zeros(4, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="must all be N×3"):
        attribute_accuracy(PREDICTED, INTENDED[:, :2], NAMES)


EDIT_NAMES = ("smiling", "hat", "eyeglasses")
BEFORE = torch.tensor([[0, 1, 0], [1, 0, 0], [0, 0, 1], [1, 1, 1]])
AFTER = torch.tensor([[1, 1, 1], [1, 0, 0], [1, 1, 1], [0, 1, 0]])


def test_flip_rate_by_hand():
    # smiling: 0→1 ✓, 1→1 ✗, 0→1 ✓, 1→0 ✓; hat: 1→1, 0→0, 0→1 ✓, 1→1.
    assert flip_rate(AFTER, BEFORE, "smiling", EDIT_NAMES) == 0.75
    assert flip_rate(AFTER, BEFORE, "hat", EDIT_NAMES) == 0.25
    with pytest.raises(ValueError, match="binary"):
        flip_rate(AFTER + 1, BEFORE, "smiling", EDIT_NAMES)
    with pytest.raises(ValueError, match="Unknown attribute 'beard'"):
        flip_rate(AFTER, BEFORE, "beard", EDIT_NAMES)


def test_kept_share_by_hand():
    # Without smiling: hat 1=1 ✓, 0=0 ✓, 0≠1 ✗, 1=1 ✓; eyeglasses 0≠1 ✗, 0=0 ✓, 1=1 ✓, 1≠0 ✗ → 5 of 8.
    assert kept_share(AFTER, BEFORE, "smiling", EDIT_NAMES) == {"hat": 0.75, "eyeglasses": 0.5, "mean": 5 / 8}
    with pytest.raises(ValueError, match="must both be N×3"):
        kept_share(AFTER[:, :2], BEFORE, "smiling", EDIT_NAMES)
