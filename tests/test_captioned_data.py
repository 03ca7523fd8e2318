"""data=face2text and data=captions: real captioned files on disk (the published layouts), the item contract,
image-disjoint seeded splits, the quirks of real corpora, errors that name the files, training-only vocabulary."""
from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures_captions import (caption_records, face2text_entries, write_captions_folder, write_face2text,
                               write_image)
from PIL import Image

from src.data.caption_records import DataQuirkWarning
from src.data.captions_folder import CaptionsFolderDataModule
from src.data.face2text import Face2TextDataModule
from src.data.text import PAD, UNK, tokenize
from src.data.transforms import to_signed_unit
from src.utils.errors import ConfigError, DatasetNotFoundError

SPLITS = ("train", "val", "test")


@dataclass
class Case:
    """A captioned DataModule on its fixture, with each image file's captions as the fixture wrote them."""

    dm: Face2TextDataModule | CaptionsFolderDataModule
    captions: dict[Path, tuple[str, ...]]  # absolute image path → captions
    expected_image: Callable[[Path], torch.Tensor]  # the item image for a file, computed independently


def _face2text(tmp_path: Path, seed: int = 0, **kwargs) -> Case:
    entries = face2text_entries(24)
    folder = write_face2text(tmp_path, entries, size=40)
    settings = {"crop_size": 30, "image_size": 16, "batch_size": 4, "val_size": 4, "test_size": 4, **kwargs}
    dm = Face2TextDataModule(root=str(tmp_path), seed=seed, **settings)

    def expected(path: Path) -> torch.Tensor:  # 30 px center crop of 40 by slicing, then the shared resize
        pixels = np.asarray(Image.open(path).convert("RGB"))[5:35, 5:35]
        return to_signed_unit(16, 3)(Image.fromarray(pixels))

    captions = {folder / "lfw" / Path(name).with_suffix(".jpg"): tuple(texts) for name, texts in entries}
    return Case(dm, captions, expected)


def _captions(tmp_path: Path, fmt: str, seed: int = 0, **kwargs) -> Case:
    records = caption_records(16)
    write_captions_folder(tmp_path / "images", records, fmt=fmt)
    settings = {"image_size": 16, "batch_size": 4, "val_size": 3, "test_size": 3, **kwargs}
    dm = CaptionsFolderDataModule(root=str(tmp_path / "images"), seed=seed, **settings)
    captions = {tmp_path / "images" / name: tuple(texts) for name, texts in records}
    return Case(dm, captions, lambda path: to_signed_unit(16, 3)(Image.open(path).convert("RGB")))


CASES = {"face2text": _face2text, "captions_jsonl": lambda p, **k: _captions(p, "jsonl", **k),
         "captions_csv": lambda p, **k: _captions(p, "csv", **k)}


@pytest.fixture(params=list(CASES), ids=list(CASES))
def make(request) -> Callable[..., Case]:
    return CASES[request.param]


def _known(dm, caption: str) -> str:
    """The caption's words as the vocabulary reads them back (unknown ones as <unk>), cut at the max length."""
    words = set(dm.vocabulary.words)
    return " ".join(w if w in words else UNK for w in tokenize(caption)[: dm.max_caption_length])


def test_items_follow_the_contract(make, tmp_path: Path):
    case = make(tmp_path)
    dm = case.dm
    assert (dm.kinds, dm.kind, dm.image_shape, dm.num_classes) == (("captioned", "image"), "captioned",
                                                                  (3, 16, 16), None)
    length = dm.max_caption_length
    for split in SPLITS:
        first = dm.image_paths(split)[0]
        item = dm.split(split)[0]
        assert item["image"].dtype == torch.float32 and item["image"].shape == (3, 16, 16)
        assert -1.0 <= item["image"].min() and item["image"].max() <= 1.0
        torch.testing.assert_close(item["image"], case.expected_image(first), rtol=0, atol=1e-6)
        assert item["caption"] in case.captions[first]
        assert item["tokens"].dtype == torch.int64 and item["tokens"].shape == (length,)
        assert item["length"].dtype == torch.int64 and item["length"].shape == ()
        n = int(item["length"])
        assert 1 <= n <= length and not item["tokens"][n:].any() and item["tokens"][:n].all()
        assert dm.vocabulary.decode(item["tokens"]) == _known(dm, item["caption"])
        if split == "train":  # every training word is in the vocabulary
            assert UNK not in dm.vocabulary.decode(item["tokens"])

    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 3, 16, 16) and batch["tokens"].shape == (4, length)
    assert batch["length"].shape == (4,) and len(batch["caption"]) == 4 and isinstance(batch["caption"][0], str)


def test_splits_are_disjoint_by_image_and_seeded(make, tmp_path: Path):
    case = make(tmp_path / "a")
    paths = {split: set(case.dm.image_paths(split)) for split in SPLITS}
    sizes = {split: len(paths[split]) for split in SPLITS}
    held = case.dm.val_size
    assert sizes == {"train": len(case.captions) - held - case.dm.test_size, "val": held, "test": case.dm.test_size}
    assert set.union(*paths.values()) == set(case.captions)
    assert not (paths["train"] & paths["val"] or paths["train"] & paths["test"] or paths["val"] & paths["test"])
    case.dm.setup()
    assert [len(case.dm.split(split)) for split in SPLITS] == [sizes[split] for split in SPLITS]

    again = make(tmp_path / "a")
    other = make(tmp_path / "a", seed=1)
    assert {split: set(again.dm.image_paths(split)) for split in SPLITS} == paths
    assert set(other.dm.image_paths("val")) != paths["val"]


def test_every_caption_twin_enumerates_each_pair_once(make, tmp_path: Path):
    case = make(tmp_path)
    dm = case.dm
    owner = {caption: path for path, texts in case.captions.items() for caption in texts}
    for split in SPLITS:
        twin = dm.split(f"{split}_captions")
        expected = sorted(c for path in dm.image_paths(split) for c in case.captions[path])
        items = [twin[i] for i in range(len(twin))]
        assert len(twin) == len(expected) and sorted(item["caption"] for item in items) == expected
        for item in items[:6]:  # the caption comes with its own image
            torch.testing.assert_close(item["image"], case.expected_image(owner[item["caption"]]), rtol=0, atol=1e-6)


def test_vocabulary_and_max_length_come_from_training_captions_only(tmp_path: Path):
    records = caption_records(16)
    root = tmp_path / "images"
    write_captions_folder(root, records)
    first = CaptionsFolderDataModule(root=str(root), val_size=3, test_size=3)
    test_image = first.image_paths("test")[0].relative_to(root).as_posix()
    # The split depends on the images and the seed only: rewrite the captions, a long one with a new word in test.
    long = " ".join(["zebra"] * 30)
    relabelled = [(name, [f"face w{i}"] + ([long] if name == test_image else [])) for i, (name, _) in
                  enumerate(records)]
    write_captions_folder(root, relabelled)
    dm = CaptionsFolderDataModule(root=str(root), val_size=3, test_size=3)
    train = {root / name: texts for name, texts in relabelled if root / name in set(dm.image_paths("train"))}
    train_words = {w for texts in train.values() for text in texts for w in tokenize(text)}

    assert [list(texts) for texts in dm.train_captions()] == [train[path] for path in dm.image_paths("train")]
    assert dm.vocabulary.words[:3] == [PAD, UNK, "face"] and set(dm.vocabulary.words[2:]) == train_words
    assert dm.max_caption_length == 2
    twin = dm.split("test_captions")
    zebra = next(twin[i] for i in range(len(twin)) if twin[i]["caption"] == long)
    assert zebra["tokens"].tolist() == [dm.vocabulary.unk_id] * 2 and int(zebra["length"]) == 2
    unseen = next(twin[i] for i in range(len(twin)) if twin[i]["caption"] != long)
    assert dm.vocabulary.decode(unseen["tokens"]) == f"face {UNK}"  # its w<i> is in no training caption


def test_train_captions_read_no_image(tmp_path: Path, monkeypatch):
    case = _face2text(tmp_path)
    expected = [case.captions[path] for path in case.dm.image_paths("train")]

    def refuse(*args, **kwargs):
        raise AssertionError("train_captions opened an image")

    with monkeypatch.context() as patch:
        patch.setattr(Image, "open", refuse)
        fresh = _face2text(tmp_path).dm
        assert fresh.train_captions() == expected
        assert len(fresh.vocabulary) > 2 and fresh.max_caption_length >= 3

    shutil.rmtree(tmp_path / "face2text" / "lfw")
    without_images = Face2TextDataModule(root=str(tmp_path), val_size=4, test_size=4)
    assert without_images.train_captions() == expected and without_images.vocabulary == fresh.vocabulary
    with pytest.raises(DatasetNotFoundError, match="lfw"):
        without_images.setup()


def _one_quirk_warning(dm) -> str:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dm.setup()
    quirks = [w for w in caught if issubclass(w.category, DataQuirkWarning)]
    assert len(quirks) == 1, [str(w.message) for w in caught]
    return str(quirks[0].message)


def test_face2text_quirks_are_counted_in_one_warning(tmp_path: Path):
    entries = face2text_entries(20)
    names = [name for name, _ in entries]
    entries[3] = (names[3], ["", "  \n "])
    entries[4] = (names[4], [" \t", "A man &amp; his \u201cbig\u201d smile\n\nhe isn\u2019t  sad "])
    exact = names[5].replace(".bmp", ".jpg")
    entries[5] = (exact, entries[5][1])
    png, upper = Path(names[1]).with_suffix(".png").as_posix(), Path(names[2]).with_suffix(".JPG").as_posix()
    folder = write_face2text(tmp_path, entries, size=40, on_disk={names[0]: None, names[1]: png, names[2]: upper})
    dm = Face2TextDataModule(root=str(tmp_path), image_size=16, val_size=3, test_size=3)

    message = _one_quirk_warning(dm)
    assert str(folder / "clean.json") in message
    assert f"skipped 1 image not found on disk (e.g. {names[0]})" in message
    # The .bmp names of the release read from LFW's .jpg files are no quirk; .png and .JPG files are.
    assert f"read 2 images from a file with another extension than annotated (e.g. {names[1]} → {png})" in message
    assert "dropped 3 empty captions" in message
    assert f"skipped 1 image left without a caption (e.g. {names[3]})" in message
    assert "normalised 1 caption " in message

    used = {path for split in SPLITS for path in dm.image_paths(split)}
    lfw = folder / "lfw"
    assert len(used) == 18 and lfw / png in used and lfw / upper in used and lfw / exact in used
    assert lfw / Path(names[3]).with_suffix(".jpg") not in used  # on disk, but no caption left
    captions = [item["caption"] for split in SPLITS for item in dm.split(f"{split}_captions")]
    assert 'A man & his "big" smile he isn\'t sad' in captions and len(captions) == sum(
        len(texts) for name, texts in entries if name not in (names[0], names[3])) - 1


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_captions_quirks_are_counted_in_one_warning(fmt, tmp_path: Path):
    records = caption_records(12)
    records[1] = (records[1][0], ["", "   "])
    records[2] = (records[2][0], [*records[2][1], " \n"])
    records[3] = (records[3][0], ["a &quot;quoted&quot;   face"])
    root = tmp_path / "images"
    write_captions_folder(root, records, fmt=fmt, missing=[records[0][0]])
    dm = CaptionsFolderDataModule(root=str(root), image_size=16, val_size=2, test_size=2)

    message = _one_quirk_warning(dm)
    assert f"captions.{fmt}: skipped 1 image not found on disk (e.g. {records[0][0]})" in message
    assert "dropped 3 empty captions" in message and f"left without a caption (e.g. {records[1][0]})" in message
    assert "normalised 1 caption " in message and "another extension" not in message
    used = {path.relative_to(root).as_posix() for split in SPLITS for path in dm.image_paths(split)}
    assert used == {name for name, _ in records[2:]}
    captions = {item["caption"] for split in SPLITS for item in dm.split(f"{split}_captions")}
    assert 'a "quoted" face' in captions and set(records[2][1][:-1]) <= captions and "" not in captions


def test_clean_data_gives_no_warning(tmp_path: Path):
    case = _captions(tmp_path, "jsonl")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataQuirkWarning)
        case.dm.setup()


def test_lfw_root_can_be_elsewhere(tmp_path: Path):
    write_face2text(tmp_path / "data", face2text_entries(12), size=40)
    shutil.move(tmp_path / "data" / "face2text" / "lfw", tmp_path / "lfw_funneled")
    dm = Face2TextDataModule(root=str(tmp_path / "data"), lfw_root=str(tmp_path / "lfw_funneled"), crop_size=None,
                             image_size=16, val_size=2, test_size=2)
    assert all(path.is_relative_to(tmp_path / "lfw_funneled") for path in dm.image_paths("train"))
    assert len(dm.image_paths("train")) == 8


def test_missing_face2text_names_the_folder_the_files_and_their_sources(tmp_path: Path):
    dm = Face2TextDataModule(root=str(tmp_path))  # constructing reads nothing
    for call in (dm.train_captions, dm.setup):
        with pytest.raises(DatasetNotFoundError) as error:
            call()
        message = str(error.value)
        for needed in (str(tmp_path / "face2text" / "clean.json"), "does not exist", "rival.research.um.edu.mt",
                       "vis-www.cs.umass.edu/lfw", "lfw.tgz", str(tmp_path / "face2text" / "lfw"), "<Person_Name>",
                       "data.root", "data.lfw_root"):
            assert needed in message
        assert f"(missing: {tmp_path / 'face2text' / 'clean.json'}, {tmp_path / 'face2text' / 'lfw'})" in message


def test_face2text_without_any_image_on_disk_says_so(tmp_path: Path):
    entries = face2text_entries(10)
    write_face2text(tmp_path, entries, on_disk={name: None for name, _ in entries})
    (tmp_path / "face2text" / "lfw").mkdir()
    with pytest.warns(DataQuirkWarning, match="skipped 10 images not found on disk"), \
            pytest.raises(DatasetNotFoundError, match=r"10 of the 10 images .* are not in .*lfw .*train and val"):
        Face2TextDataModule(root=str(tmp_path), val_size=2, test_size=2).setup()


def test_missing_captions_folder_or_file(tmp_path: Path):
    with pytest.raises(DatasetNotFoundError, match=f"{tmp_path / 'nowhere'} does not exist"):
        CaptionsFolderDataModule(root=str(tmp_path / "nowhere")).train_captions()
    write_image(tmp_path / "a.jpg", 8, seed=0)
    with pytest.raises(DatasetNotFoundError) as error:
        CaptionsFolderDataModule(root=str(tmp_path)).setup()
    assert f"{tmp_path} holds neither captions.jsonl nor captions.csv" in str(error.value)
    assert '{"image": "<path relative to the folder>", "caption": "…"}' in str(error.value)
    assert "header image,caption" in str(error.value)
    with pytest.raises(DatasetNotFoundError, match="mine.jsonl does not exist"):
        CaptionsFolderDataModule(root=str(tmp_path), captions_file="mine.jsonl").train_captions()
    with pytest.raises(ConfigError, match="captions_file=captions.txt: a captions file ends in .jsonl or .csv"):
        CaptionsFolderDataModule(root=str(tmp_path), captions_file="captions.txt").train_captions()


def test_captions_file_is_chosen_or_asked_for(tmp_path: Path):
    records = caption_records(8)
    write_captions_folder(tmp_path, records, fmt="csv")
    (tmp_path / "captions.csv").rename(tmp_path / "labels.csv")
    dm = CaptionsFolderDataModule(root=str(tmp_path), captions_file="labels.csv", val_size=2)
    assert len(dm.train_captions()) == 6
    write_captions_folder(tmp_path, records, fmt="csv")
    write_captions_folder(tmp_path, records, fmt="jsonl")
    with pytest.raises(ConfigError, match="both captions.jsonl and captions.csv; say which to read: "
                                          "data.captions_file=captions.jsonl or data.captions_file=captions.csv"):
        CaptionsFolderDataModule(root=str(tmp_path)).train_captions()
    chosen = CaptionsFolderDataModule(root=str(tmp_path), captions_file=str(tmp_path / "captions.jsonl"), val_size=2)
    assert chosen.train_captions() == CaptionsFolderDataModule(root=str(tmp_path), captions_file="captions.csv",
                                                               val_size=2).train_captions()


@pytest.mark.parametrize(
    ("fmt", "content", "match"),
    [
        ("jsonl", '{"image": "a.jpg", "caption": "a face"}\n\n{"image": "b.jpg", "caption": "x"\n',
         r"captions.jsonl, line 3: not valid JSON"),
        ("jsonl", '{"image": "a.jpg", "caption": "a face"}\n{"image": "b.jpg", "text": "a face"}\n',
         r"captions.jsonl, line 2: not an object with the strings \"image\" and \"caption\""),
        ("jsonl", '["a.jpg", "a face"]\n', r"captions.jsonl, line 1: not an object"),
        ("jsonl", '{"image": "/abs/a.jpg", "caption": "a face"}\n', r"line 1: the image '/abs/a.jpg' is not a path "
                                                                      "relative to the folder"),
        ("csv", "path,text\na.jpg,a face\n", r"captions.csv, line 1: the header must name the columns image and "
                                             "caption; it is path,text"),
        ("csv", 'image,caption\na.jpg,"a face, smiling"\n"b.jpg","multi\nline"\nc.jpg,a face, smiling\n',
         r"captions.csv, line 5: 3 fields where the header has 2"),
        ("csv", 'image,caption\na.jpg,a face\nb.jpg,"never closed\n', r"captions.csv, line 3: unexpected end of data"),
    ],
    ids=["bad_json", "missing_key", "not_an_object", "absolute_path", "bad_header", "extra_field", "open_quote"],
)
def test_malformed_captions_file_names_the_line(fmt, content, match, tmp_path: Path):
    (tmp_path / f"captions.{fmt}").write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=match) as error:
        CaptionsFolderDataModule(root=str(tmp_path)).train_captions()
    assert str(tmp_path / f"captions.{fmt}") in str(error.value) and "Expected" in str(error.value)


def test_csv_extra_columns_and_byte_order_mark_are_fine(tmp_path: Path):
    text = '\ufeffid,caption,image\n1,"a ""big"" smile, then some",a.jpg\n2,a plain face,b.jpg\n3,a grey face,a.jpg\n'
    (tmp_path / "captions.csv").write_text(text, encoding="utf-8")
    dm = CaptionsFolderDataModule(root=str(tmp_path), val_size=1)
    assert sorted(dm.annotations.images, key=lambda image: image.image)[0].captions == (
        'a "big" smile, then some', "a grey face")


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ('[{"img_id": 1, "image": "A/A_0001.bmp",\n  "descriptions": [{"desc_id": 1, "text": "x"}]\n', r"line 3"),
        ('[{"img_id": 1, "image": "A/A_0001.bmp", "descriptions": []}, {"img_id": 2, "image": "B/B_0001.bmp"}]',
         r"entry 1 \(img_id 2\): expected"),
        ('[{"img_id": 1, "image": "A/A_0001.bmp", "descriptions": [{"desc_id": 1, "desc": "x"}]}]',
         r"entry 0 \(img_id 1\)"),
        ('{"img_id": 1}', r"holds a JSON dict; Face2Text's clean.json is a list"),
    ],
    ids=["bad_json", "no_descriptions", "no_text", "not_a_list"],
)
def test_malformed_clean_json_names_the_place(content, match, tmp_path: Path):
    (tmp_path / "face2text").mkdir()
    (tmp_path / "face2text" / "clean.json").write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=match) as error:
        Face2TextDataModule(root=str(tmp_path)).train_captions()
    assert str(tmp_path / "face2text" / "clean.json") in str(error.value)


def test_fingerprint_follows_settings_annotations_and_files(tmp_path: Path):
    case = _face2text(tmp_path)

    def build(**changes) -> Face2TextDataModule:  # on the same files (the fixture helper would rewrite them)
        return Face2TextDataModule(**{**case.dm.hparams, **changes})

    base = case.dm.fingerprint()
    assert build().fingerprint() == base
    assert build(crop_size=28).fingerprint() != base
    assert build(test_size=3).fingerprint() != base
    assert build(image_size=32).fingerprint() != base
    write_image(next(iter(case.captions)), 42, seed=99)
    touched = build().fingerprint()
    assert touched != base
    clean = tmp_path / "face2text" / "clean.json"
    entries = json.loads(clean.read_text())
    entries[0]["descriptions"].append({"desc_id": 9999, "text": "one more description"})
    clean.write_text(json.dumps(entries, indent=4))
    assert build().fingerprint() != touched


def test_no_test_split_when_test_size_is_zero(tmp_path: Path):
    dm = _captions(tmp_path, "jsonl", test_size=0).dm
    assert len(dm.image_paths("train")) == 13
    for name in ("test", "test_captions"):
        with pytest.raises(ConfigError, match=f"has no '{name}' split"):
            dm.split(name)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda p: Face2TextDataModule(root=str(p), crop_size=0), "crop_size=0: must be"),
        (lambda p: Face2TextDataModule(root=str(p), test_size=-1), "test_size=-1: must be a non-negative integer"),
        (lambda p: CaptionsFolderDataModule(root=str(p), channels=2), "channels=2: must be one of 1, 3"),
        (lambda p: _captions(p, "jsonl", val_size=8, test_size=8).dm.train_captions(),
         r"has 16 captioned images; val_size=8 and test_size=8 must leave some for training"),
    ],
    ids=["crop_size", "test_size", "channels", "nothing_to_train_on"],
)
def test_settings_that_cannot_work_are_refused(make, match, tmp_path: Path):
    with pytest.raises(ConfigError, match=match):
        make(tmp_path)
