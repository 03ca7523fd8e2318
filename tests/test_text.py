"""The shared tokenizer, vocabulary and captioned items (src/data/text.py, src/data/captioned.py)."""
from __future__ import annotations

import pytest
import torch
from torch.utils.data import Dataset

from src.data.captioned import CaptionedImages
from src.data.text import PAD, UNK, Vocabulary, tokenize


def test_tokenize_lowercases_and_splits_on_punctuation_and_hyphens():
    assert tokenize("A smiling, Grey-haired man. He isn't 40!") == [
        "a", "smiling", "grey", "haired", "man", "he", "isn't", "40"]
    assert tokenize("  ...  ") == []


def test_vocabulary_is_most_frequent_first_then_alphabetical():
    vocabulary = Vocabulary.build(["b a", "a c", "c d"])
    assert vocabulary.words == [PAD, UNK, "a", "c", "b", "d"]
    assert Vocabulary.build(["b a", "a c", "c d"], min_count=2).words == [PAD, UNK, "a", "c"]
    assert Vocabulary(vocabulary.words) == vocabulary


def test_encode_pads_cuts_and_marks_unknown_words():
    vocabulary = Vocabulary.build(["a smiling man"])
    ids, length = vocabulary.encode("A smiling woman", max_length=5)
    assert ids.dtype == torch.int64 and ids.tolist() == [vocabulary.ids("a")[0], vocabulary.ids("smiling")[0],
                                                         vocabulary.unk_id, 0, 0]
    assert int(length) == 3
    assert vocabulary.unknown_words("A smiling woman, a woman") == ["woman"]
    ids, length = vocabulary.encode("a smiling man a smiling man", max_length=4)
    assert int(length) == 4 and vocabulary.decode(ids) == "a smiling man a"
    ids, length = vocabulary.encode("", max_length=3)  # an LSTM cannot pack a length of 0
    assert ids.tolist() == [vocabulary.unk_id, 0, 0] and int(length) == 1


def test_a_vocabulary_must_start_with_pad_and_unk_and_hold_words_once():
    with pytest.raises(ValueError, match="starts with"):
        Vocabulary(["a", "b"])
    with pytest.raises(ValueError, match="once"):
        Vocabulary([PAD, UNK, "a", "a"])


class _Images(Dataset):
    def __len__(self):
        return 3

    def __getitem__(self, index):
        return {"image": torch.full((1, 2, 2), float(index)), "attrs": torch.tensor([index])}


CAPTIONS = [["zero a", "zero b"], ["one"], ["two a", "two b", "two c"]]


def test_training_items_draw_one_of_their_captions_from_the_global_rng():
    vocabulary = Vocabulary.build(text for texts in CAPTIONS for text in texts)
    data = CaptionedImages(_Images(), CAPTIONS, vocabulary, max_length=4)
    assert len(data) == 3
    torch.manual_seed(0)
    drawn = {data[2]["caption"] for _ in range(40)}
    assert drawn == set(CAPTIONS[2])
    torch.manual_seed(0)
    first = [data[0]["caption"] for _ in range(10)]
    torch.manual_seed(0)
    assert [data[0]["caption"] for _ in range(10)] == first  # the training stream decides, nothing else
    item = data[1]
    assert item["caption"] == "one" and item["attrs"].tolist() == [1] and item["image"].shape == (1, 2, 2)
    assert vocabulary.decode(item["tokens"]) == "one" and int(item["length"]) == 1


def test_every_caption_mode_enumerates_each_pair_once_in_order():
    vocabulary = Vocabulary.build(text for texts in CAPTIONS for text in texts)
    data = CaptionedImages(_Images(), CAPTIONS, vocabulary, max_length=4, every_caption=True)
    assert [(int(data[i]["attrs"]), data[i]["caption"]) for i in range(len(data))] == [
        (0, "zero a"), (0, "zero b"), (1, "one"), (2, "two a"), (2, "two b"), (2, "two c")]


def test_images_and_captions_must_match():
    vocabulary = Vocabulary.build(["a"])
    with pytest.raises(ValueError, match="captions for 2"):
        CaptionedImages(_Images(), [["a"], ["a"]], vocabulary, 2)
    with pytest.raises(ValueError, match="at least one caption"):
        CaptionedImages(_Images(), [["a"], [], ["a"]], vocabulary, 2)
