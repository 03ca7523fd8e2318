"""The procedural faces: the generator, the cache, the three DataModules (faces, faces_unpaired, faces_paired)."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from src.data.dict_dataset import ImagesOf
from src.data.faces import store
from src.data.faces.attributes import ATTRIBUTES, BY_NAME, NAMES, describe, frequencies, with_value
from src.data.faces.captions import captions_for, named_attributes
from src.data.faces.datamodules import (SPLIT_START, FacesDataModule, FacesPairedDataModule, FacesUnpairedDataModule,
                                        ProceduralFaces, to_signed)
from src.data.faces.render import FaceSpec, attribute_box, render, sample_face
from src.data.faces.store import FaceBlock
from src.utils.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
TINY = {"image_size": 32, "train_size": 32, "val_size": 8, "test_size": 8}
BINARY = ("eyeglasses", "smiling", "beard", "hat")


def _faces(tmp_path: Path, **kwargs) -> FacesDataModule:
    return FacesDataModule(**{**TINY, "cache_dir": str(tmp_path), "batch_size": 8, **kwargs})


def _ready(dm):
    dm.prepare_data()
    dm.setup("fit")
    return dm


def _nuisance(spec: FaceSpec) -> dict:
    return {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec) if f.name != "attrs"}


def _files(folder: Path) -> dict[str, int]:
    """Every file below ``folder`` (relative path) → its mtime in ns."""
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


# ----- the generator -------------------------------------------------------------------------------------------

def test_a_face_is_fixed_by_seed_and_index_and_differs_across_them():
    face = render(sample_face(0, 3), 32)
    assert face.dtype == np.uint8 and face.shape == (32, 32, 3)
    assert np.array_equal(face, render(sample_face(0, 3), 32))
    assert _nuisance(sample_face(0, 3)) == _nuisance(sample_face(0, 3))
    for other in (sample_face(1, 3), sample_face(0, 4)):
        assert _nuisance(other) != _nuisance(sample_face(0, 3))
        assert np.abs(render(other, 32).astype(int) - face).mean() > 10


def test_nuisance_parameters_do_not_depend_on_the_attributes():
    # Frequencies that change most attributes leave everything else of each face as it was.
    skewed = frequencies({"hat": {"yes": 1.0}, "gender": {"woman": 1.0}, "hair_color": {"red": 1.0}})
    changed = 0
    for index in range(20):
        plain, other = sample_face(5, index), sample_face(5, index, skewed)
        assert _nuisance(plain) == _nuisance(other)
        changed += not np.array_equal(plain.attrs, other.attrs)
    assert changed >= 15


@pytest.mark.parametrize("size", [32, 64, 128])
def test_every_size_renders_the_same_face(size):
    spec = sample_face(0, 7)
    face = render(spec, size).astype(np.float64)
    assert face.shape == (size, size, 3)
    # Pooled to 32 px, every size shows the same picture (up to grain and resampling).
    pooled = face.reshape(32, size // 32, 32, size // 32, 3).mean(axis=(1, 3))
    assert np.abs(pooled - render(spec, 32)).mean() < 6


def test_every_value_occurs_and_the_default_frequencies_hold(tmp_path: Path):
    attrs = ProceduralFaces(32, {"train": 600}, None, 0, tmp_path).attrs("train")
    assert all(np.array_equal(attrs[i], sample_face(0, i).attrs) for i in range(0, 600, 37))
    assert attrs.shape == (600, len(ATTRIBUTES)) and attrs.dtype == np.int64
    for k, a in enumerate(ATTRIBUTES):
        counts = np.bincount(attrs[:, k], minlength=len(a.values))
        assert (counts > 0).all(), (a.name, counts)
        expected = np.asarray(a.frequencies)
        if a.name == "beard":  # a beard only on men: 0.4 of the half that are men
            expected = np.array([0.8, 0.2])
        assert np.abs(counts / 600 - expected).max() < 4 * np.sqrt(0.25 / 600), (a.name, counts / 600)
    bearded = attrs[:, NAMES.index("beard")] == 1
    assert (attrs[bearded, NAMES.index("gender")] == BY_NAME["gender"].index("man")).all()
    assert not list(tmp_path.iterdir())  # attributes alone draw no picture


def test_attribute_frequencies_can_be_overridden(tmp_path: Path):
    faces = ProceduralFaces(32, {"train": 400}, {"eyeglasses": {"yes": 0.9}, "hair_color": {"grey": 0.5}}, 0,
                            tmp_path)
    attrs = faces.attrs("train")
    assert abs(attrs[:, NAMES.index("eyeglasses")].mean() - 0.9) < 0.06
    assert abs((attrs[:, NAMES.index("hair_color")] == BY_NAME["hair_color"].index("grey")).mean() - 0.5) < 0.1
    assert faces.block("train").key != ProceduralFaces(32, {"train": 400}, None, 0, tmp_path).block("train").key


@pytest.mark.parametrize(("override", "match"), [
    ({"wings": {"yes": 0.5}}, "Unknown face attribute 'wings'"),
    ({"hat": {"maybe": 0.5}}, "hat has no value 'maybe'"),
    ({"hair_length": {"bald": 0.7, "long": 0.6}}, "sum to 1.3"),
    ({"smiling": {"yes": 1.5}}, "between 0 and 1"),
    ({"hat": 0.5}, r"attribute_frequencies.hat=0.5: give each value's probability, e.g. .*\{eyeglasses: \{yes: 0.5\}\}"),
    ({"hat": {"yes": "often"}}, "attribute_frequencies.hat="),
], ids=["attribute", "value", "sum", "probability", "not_a_mapping", "not_a_number"])
@pytest.mark.parametrize("module", [FacesDataModule, FacesUnpairedDataModule, FacesPairedDataModule],
                         ids=lambda m: m.name)
def test_a_bad_frequency_override_is_refused_at_construction(module, override, match, tmp_path: Path):
    with pytest.raises(ConfigError, match=match):
        module(**TINY, attribute_frequencies=override, cache_dir=str(tmp_path))


@pytest.mark.parametrize("processes", [2, 3])
def test_the_arrays_do_not_depend_on_the_number_of_processes(processes, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(store, "CHUNK", 5)  # several chunks, so the processes really share the work
    block = FaceBlock.of(3, 100, 17, 32, frequencies(), paired_on="hat")
    alone = store.faces(block, tmp_path / "one", processes=1)
    shared = store.faces(block, tmp_path / "many", processes=processes)
    assert alone.keys() == shared.keys()
    for name in alone:
        assert np.array_equal(alone[name], shared[name]), name
    assert np.array_equal(alone["images_b"][4], render(dataclasses.replace(
        sample_face(3, 104), attrs=with_value(sample_face(3, 104).attrs, "hat", "yes")), 32))


# ----- pairs: the same face without and with the attribute ------------------------------------------------------

@pytest.mark.parametrize("name", BINARY)
def test_a_pair_differs_only_where_the_attribute_is_drawn(name, tmp_path: Path):
    dm = _ready(FacesPairedDataModule(**TINY, domain_attribute=name, cache_dir=str(tmp_path)))
    plain = _ready(_faces(tmp_path))  # the same faces as drawn, each with its own value of the attribute
    column, yes = NAMES.index(name), BY_NAME[name].index("yes")
    pairs, natural = dm.faces.arrays("train"), plain.faces.arrays("train")
    limit = {"eyeglasses": 0.25, "smiling": 0.25, "beard": 0.45, "hat": 0.4}[name]  # of the height: a band
    for i in range(TINY["train_size"]):
        spec = sample_face(0, SPLIT_START["train"] + i)
        a, b = pairs["images_a"][i].astype(int), pairs["images_b"][i].astype(int)
        attrs_a, attrs_b = pairs["attrs_a"][i], pairs["attrs_b"][i]
        assert (attrs_a[column], attrs_b[column]) == (0, yes)
        others = [k for k in range(len(NAMES)) if k != column]
        assert np.array_equal(attrs_a[others], attrs_b[others])
        x0, y0, x1, y1 = attribute_box(spec, name, 32)
        assert 0 < y1 - y0 <= limit * 32
        changed = (a != b).any(axis=2)
        assert changed[y0:y1, x0:x1].sum() >= 4  # b shows the attribute
        outside = changed.copy()
        outside[y0:y1, x0:x1] = False
        assert not outside.any(), f"face {i}: {outside.sum()} pixels changed outside {name}'s box"
        # Where the face was drawn with the same value, its pair side is that very picture.
        same_side = pairs["images_b"][i] if spec.attrs[column] == yes else pairs["images_a"][i]
        if np.array_equal(spec.attrs, attrs_a) or np.array_equal(spec.attrs, attrs_b):
            assert np.array_equal(same_side, natural["images"][i])


def test_a_beard_pair_is_two_men(tmp_path: Path):
    dm = _ready(FacesPairedDataModule(**TINY, domain_attribute="beard", cache_dir=str(tmp_path)))
    arrays = dm.faces.arrays("train")
    man = BY_NAME["gender"].index("man")
    assert (arrays["attrs_a"][:, NAMES.index("gender")] == man).all()
    assert (arrays["attrs_b"][:, NAMES.index("gender")] == man).all()


# ----- two unpaired domains --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["eyeglasses", "hat"])
def test_unpaired_domains_lack_and_have_the_attribute(name, tmp_path: Path):
    dm = _ready(FacesUnpairedDataModule(**TINY, domain_attribute=name, attribute_frequencies={name: {"yes": 0.5}},
                                        cache_dir=str(tmp_path)))
    column = NAMES.index(name)
    arrays = dm.faces.arrays("train")
    n_yes = int((arrays["attrs"][:, column] == 1).sum())
    for split in ("train", "val", "test"):
        data = dm.split(split)
        items = [data[i] for i in range(len(data))]
        assert all(item["attrs_a"][column] == 0 for item in items)
        assert all(item["attrs_b"][column] == 1 for item in items)
    train = dm.split("train")
    assert (len(train.a), len(train.b), len(train)) == (TINY["train_size"] - n_yes, n_yes,
                                                        max(n_yes, TINY["train_size"] - n_yes))
    # Every face of the split is in exactly one domain.
    a_images = {train.a[i]["image"].numpy().tobytes() for i in range(len(train.a))}
    b_images = {train.b[i]["image"].numpy().tobytes() for i in range(len(train.b))}
    everyone = {to_signed(face).numpy().tobytes() for face in arrays["images"]}
    assert not a_images & b_images and a_images | b_images == everyone


def test_unpaired_training_pairs_are_drawn_per_access_and_held_out_ones_are_fixed(tmp_path: Path):
    dm = _ready(FacesUnpairedDataModule(**TINY, attribute_frequencies={"eyeglasses": {"yes": 0.5}},
                                        cache_dir=str(tmp_path)))
    train, val = dm.split("train"), dm.split("val")
    torch.manual_seed(0)
    first = [train[0]["b"] for _ in range(8)]
    assert any(not torch.equal(first[0], b) for b in first[1:])
    torch.manual_seed(0)  # the global RNG decides, nothing else
    assert all(torch.equal(b, train[0]["b"]) for b in first)
    assert all(torch.equal(train[i]["a"], train.a[i % len(train.a)]["image"]) for i in range(len(train)))
    for i in range(len(val)):
        assert torch.equal(val[i]["a"], val.a[i]["image"])
        assert torch.equal(val[i]["b"], val.b[i]["image"])
    reference = ImagesOf(dm.eval_subset("val", 2), "b")
    assert len(reference) == 2 and reference[0]["image"].shape == (3, 32, 32)


def test_held_out_domains_of_unequal_size_repeat_no_face(tmp_path: Path):
    # Hats are rare: the held-out B domain is smaller than A. An evaluation (FID's reference set of B, the B images
    # translated to A) must not count one B face twice.
    dm = _ready(FacesUnpairedDataModule(**{**TINY, "test_size": 40}, domain_attribute="hat",
                                        attribute_frequencies={"hat": {"yes": 0.25}}, cache_dir=str(tmp_path)))
    test = dm.split("test")
    assert 0 < len(test.b) < len(test.a) and len(test) == len(test.b)
    for domain in ("a", "b"):
        images = [item["image"] for item in ImagesOf(dm.eval_subset("test", 500), domain)]
        assert len({image.numpy().tobytes() for image in images}) == len(images) == len(test.b)
    with pytest.raises(IndexError):
        test[len(test)]


@pytest.mark.parametrize("module", [FacesUnpairedDataModule, FacesPairedDataModule])
def test_the_judge_of_two_domains_trains_on_more_real_faces_of_the_same_stream(module, tmp_path: Path):
    """The judge's faces: judge_faces ordinary faces of the same size, frequencies and stream; the first are the
    unpaired train split's faces, and none is a held-out (val or test) translation input."""
    frequencies = {"eyeglasses": {"yes": 0.5}, "hat": {"yes": 0.3}}
    dm = _ready(module(**TINY, attribute_frequencies=frequencies, judge_faces=48, cache_dir=str(tmp_path)))
    labelled = _ready(dm.labelled_faces())
    assert isinstance(labelled, FacesDataModule) and labelled.image_shape == dm.image_shape
    assert (len(labelled.split("train")), len(labelled.split("val"))) == (48, 4)
    assert labelled.seed == dm.seed and labelled.faces.keys()["train"] != dm.faces.keys()["train"]
    assert all(np.array_equal(labelled.faces.probs[k], dm.faces.probs[k]) for k in dm.faces.probs)
    judged = labelled.faces.arrays("train")
    if module is FacesUnpairedDataModule:
        own = dm.faces.arrays("train")
        assert np.array_equal(judged["images"][:TINY["train_size"]], own["images"])
        assert np.array_equal(judged["attrs"][:TINY["train_size"]], own["attrs"])
    judged_faces = {face.tobytes() for face in judged["images"]}
    for split in ("val", "test"):
        arrays = dm.faces.arrays(split)
        held_out = arrays["images"] if "images" in arrays else np.concatenate([arrays["images_a"], arrays["images_b"]])
        assert not judged_faces & {face.tobytes() for face in held_out}


def test_a_domain_attribute_must_be_binary(tmp_path: Path):
    for module in (FacesUnpairedDataModule, FacesPairedDataModule):
        with pytest.raises(ConfigError, match="hair_color has values black, brown, blond, red, grey; the two "
                                              "domains need a binary .* one of eyeglasses, smiling, beard, hat"):
            module(**TINY, domain_attribute="hair_color", cache_dir=str(tmp_path))
        with pytest.raises(ConfigError, match="wings is no face attribute; .* one of eyeglasses, smiling, beard, hat"):
            module(**TINY, domain_attribute="wings", cache_dir=str(tmp_path))


def test_an_empty_domain_says_how_to_fill_it(tmp_path: Path):
    dm = FacesUnpairedDataModule(**TINY, domain_attribute="hat", attribute_frequencies={"hat": {"yes": 0.0}},
                                 cache_dir=str(tmp_path))
    with pytest.raises(ConfigError, match=r"no face with hat .* domain B is empty.*attribute_frequencies"):
        dm.setup()


# ----- the cache ---------------------------------------------------------------------------------------------------

def test_the_cache_key_changes_with_every_setting(monkeypatch):
    probs = frequencies()
    base = FaceBlock.of(0, 0, 32, 64, probs)
    variants = [FaceBlock.of(1, 0, 32, 64, probs), FaceBlock.of(0, 5, 32, 64, probs), FaceBlock.of(0, 0, 33, 64, probs),
                FaceBlock.of(0, 0, 32, 32, probs), FaceBlock.of(0, 0, 32, 64, frequencies({"hat": {"yes": 0.5}})),
                FaceBlock.of(0, 0, 32, 64, probs, paired_on="hat"), FaceBlock.of(0, 0, 32, 64, probs, "smiling")]
    keys = [base.key] + [v.key for v in variants]
    assert len(set(keys)) == len(keys)
    assert FaceBlock.of(0, 0, 32, 64, frequencies()).key == base.key
    monkeypatch.setattr(store, "GENERATOR_VERSION", store.GENERATOR_VERSION + 1)
    assert base.key not in keys[1:] and FaceBlock.of(0, 0, 32, 64, probs).key != keys[0]


def test_the_fingerprint_follows_the_settings(tmp_path: Path):
    fingerprint = _faces(tmp_path).fingerprint()
    assert fingerprint == _faces(tmp_path).fingerprint()
    for change in ({"image_size": 64}, {"seed": 1}, {"train_size": 33}, {"test_size": 9}, {"val_size": 9},
                   {"captions_per_face": 2}, {"attribute_frequencies": {"hat": {"yes": 0.5}}}):
        assert _faces(tmp_path, **change).fingerprint() != fingerprint, change
    assert _faces(tmp_path, cache_dir=str(tmp_path / "elsewhere")).fingerprint() == fingerprint
    assert not list(tmp_path.iterdir())  # keys are computed, nothing is drawn
    # The held-out faces do not depend on how many training faces there are.
    assert (_faces(tmp_path).faces.keys()["val"], _faces(tmp_path).faces.keys()["test"]) == \
        (_faces(tmp_path, train_size=99).faces.keys()["val"], _faces(tmp_path, train_size=99).faces.keys()["test"])
    unpaired = FacesUnpairedDataModule(**TINY, cache_dir=str(tmp_path))
    assert unpaired.fingerprint() != FacesUnpairedDataModule(**TINY, domain_attribute="hat",
                                                             cache_dir=str(tmp_path)).fingerprint()


def test_a_second_setup_reads_the_cache(tmp_path: Path, monkeypatch):
    first = _ready(_faces(tmp_path))
    written = _files(tmp_path)
    assert len(written) == 3 * 3  # train, val, test: images, attrs, meta.json
    assert all(p.name == "meta.json" or p.suffix == ".npy" for p in tmp_path.rglob("*") if p.is_file())

    def no_drawing(*args, **kwargs):
        raise AssertionError("drew faces although they are cached")

    monkeypatch.setattr(FaceBlock, "draw", no_drawing)
    second = _faces(tmp_path)
    second.prepare_data()
    second.setup()
    assert _files(tmp_path) == written
    assert torch.equal(second.split("test")[3]["image"], first.split("test")[3]["image"])


@pytest.mark.parametrize("damage", ["truncated", "garbage", "no_meta", "other_key"])
def test_a_corrupt_cache_is_drawn_again_with_a_warning(damage, tmp_path: Path):
    original = _ready(_faces(tmp_path)).faces.arrays("train")["images"].copy()
    folder = store.folder(_faces(tmp_path).faces.block("train"), tmp_path)
    images = folder / "images.npy"
    if damage == "truncated":
        images.write_bytes(images.read_bytes()[: images.stat().st_size // 2])
    elif damage == "garbage":
        images.write_bytes(os.urandom(1000))
    elif damage == "no_meta":
        (folder / "meta.json").unlink()
    else:
        (folder / "meta.json").write_text('{"key": "0123456789abcdef"}')
    dm = _faces(tmp_path)
    with pytest.warns(UserWarning, match=f"The face cache {folder} is unreadable"):
        dm.setup()
    assert np.array_equal(dm.faces.arrays("train")["images"], original)
    assert sorted(p.name for p in folder.iterdir()) == ["attrs.npy", "images.npy", "meta.json"]
    assert [p.name for p in folder.parent.iterdir() if p.name.startswith(".")] == []


def test_a_rank_that_drew_the_block_too_keeps_the_copy_another_put_in_place(tmp_path: Path):
    # Two DDP ranks with a cold cache both draw the block; the first to finish moves its copy into place and reads
    # it. The second, finishing after, must use that copy, not delete it under the first one's reader (that race
    # failed the ddp_cpu CycleGAN test with FileNotFoundError on images.npy). The second rank's path is taken for real:
    # it found no cache when it started, so it went straight to drawing (store._generate).
    block = _faces(tmp_path).faces.block("train")
    first = store.faces(block, tmp_path)
    place = store.folder(block, tmp_path)
    inodes = {p.name: p.stat().st_ino for p in place.iterdir()}
    second = store._generate(block, place, 1)
    assert {p.name: p.stat().st_ino for p in place.iterdir()} == inodes
    assert np.array_equal(second["images"], first["images"])
    assert [p.name for p in place.parent.iterdir() if p.name.startswith(".")] == []


def test_a_failed_write_leaves_no_block_behind(tmp_path: Path):
    # A real "file too large" (the block needs 3 MB): RLIMIT_FSIZE in a child process.
    script = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))\n"
        "from src.data.faces.attributes import frequencies\n"
        "from src.data.faces.store import FaceBlock, faces\n"
        "from src.utils.errors import WriteError\n"
        "try:\n"
        f"    faces(FaceBlock.of(0, 0, 1000, 32, frequencies()), {str(tmp_path)!r}, processes=1)\n"
        "except WriteError as error:\n"
        "    print(error)\n"
        "    sys.exit(3)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr[-2000:]
    assert "Could not write the face cache" in done.stdout and "data.cache_dir" in done.stdout
    assert list((tmp_path / "faces").iterdir()) == []


# ----- the DataModules: items, splits, captions ------------------------------------------------------------------

def test_faces_items_follow_the_batch_contract(tmp_path: Path):
    dm = _faces(tmp_path, captions_per_face=3)
    assert (dm.image_shape, dm.num_classes, dm.kind, dm.kinds, dm.name) == \
        ((3, 32, 32), None, "captioned", ("captioned", "image"), "faces")
    _ready(dm)
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"image", "attrs", "caption", "tokens", "length"}
    assert batch["image"].shape == (8, 3, 32, 32) and batch["image"].dtype == torch.float32
    assert -1 <= batch["image"].min() < 0 < batch["image"].max() <= 1
    assert batch["attrs"].shape == (8, len(ATTRIBUTES)) and batch["attrs"].dtype == torch.int64
    sizes = torch.tensor([len(a.values) for a in ATTRIBUTES])
    assert ((batch["attrs"] >= 0) & (batch["attrs"] < sizes)).all()
    assert len(batch["caption"]) == 8 and all(isinstance(c, str) and c for c in batch["caption"])
    assert batch["tokens"].shape == (8, dm.max_caption_length) and batch["tokens"].dtype == torch.int64
    assert batch["length"].dtype == torch.int64 and (batch["length"] >= 1).all()
    assert {name: len(dm.split(name)) for name in ("train", "val", "test", "train_captions", "val_captions",
                                                     "test_captions")} == \
        {"train": 32, "val": 8, "test": 8, "train_captions": 96, "val_captions": 24, "test_captions": 24}
    # An item is the rendered face, scaled to [-1, 1], with its attributes.
    item, spec = dm.split("test")[5], sample_face(0, SPLIT_START["test"] + 5)
    expected = torch.from_numpy(render(spec, 32)).permute(2, 0, 1).float() / 127.5 - 1
    assert torch.allclose(item["image"], expected, atol=1e-6)
    assert torch.equal(item["attrs"], torch.from_numpy(spec.attrs))


@pytest.mark.parametrize("module", [FacesUnpairedDataModule, FacesPairedDataModule], ids=lambda m: m.name)
def test_two_domain_items_follow_the_batch_contract(module, tmp_path: Path):
    dm = module(**TINY, batch_size=4, attribute_frequencies={"eyeglasses": {"yes": 0.5}}, cache_dir=str(tmp_path))
    assert (dm.image_shape, dm.num_classes, dm.kind) == ((3, 32, 32), None, module.kinds[0])
    _ready(dm)
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"a", "b", "attrs_a", "attrs_b"}
    for key in ("a", "b"):
        assert batch[key].shape == (4, 3, 32, 32) and batch[key].dtype == torch.float32
        assert batch[key].min() >= -1 and batch[key].max() <= 1
        assert batch[f"attrs_{key}"].shape == (4, len(ATTRIBUTES)) and batch[f"attrs_{key}"].dtype == torch.int64
    assert sum(len(b["a"]) for b in dm.val_dataloader()) == len(dm.split("val"))


def test_captions_come_from_attributes_and_seed_and_the_test_split_is_held_out(tmp_path: Path, monkeypatch):
    def no_drawing(*args, **kwargs):
        raise AssertionError("drew a face for its captions")

    with monkeypatch.context() as patched:
        patched.setattr(FaceBlock, "draw", no_drawing)
        before = _faces(tmp_path, captions_per_face=4)
        vocabulary, train_captions = before.vocabulary, before.train_captions()
    assert not list(tmp_path.iterdir())
    dm = _ready(_faces(tmp_path, captions_per_face=4))
    assert dm.vocabulary == vocabulary and dm.train_captions() == train_captions
    for split in ("train", "val", "test"):
        for i, texts in enumerate(dm.captions(split)):
            spec = sample_face(0, SPLIT_START[split] + i)
            rng = np.random.default_rng(np.random.SeedSequence([0, SPLIT_START[split] + i, 1]))
            assert texts == captions_for(spec.attrs, rng, 4, held_out=split == "test")
            truth = describe(spec.attrs)
            for text in texts:
                assert named_attributes(text).items() <= truth.items(), (text, truth)
    test_item = dm.split("test_captions")[0]
    assert test_item["caption"] in dm.captions("test")[0]
    assert not set(c for texts in dm.captions("test") for c in texts) & set(c for texts in train_captions for c in texts)


@pytest.mark.parametrize("name", ["faces", "faces_unpaired", "faces_paired"])
def test_the_config_builds_the_module_without_drawing(name, tmp_path: Path):
    data = OmegaConf.load(ROOT / "conf" / "data" / f"{name}.yaml")
    assert OmegaConf.to_container(data)["cache_dir"] == "${paths.cache_dir}"
    assert (data.image_size, data.train_size, data.batch_size, data.num_workers) == (64, 20000, 64, 0)
    cfg = OmegaConf.create({"paths": {"cache_dir": str(tmp_path / "cache")}, "data": data})
    dm = instantiate(cfg.data)
    assert dm.name == name and dm.image_shape == (3, 64, 64) and dm.batch_size == 64
    assert not (tmp_path / "cache").exists()
    assert Counter(dm.faces.sizes.values()) == Counter([20000, 2000, 2000])
