"""Captions of the procedural faces (src/data/faces/captions.py): true, varied, parseable, held-out frames apart."""
from __future__ import annotations

import re

import numpy as np
import pytest

from src.data.faces.attributes import ATTRIBUTES, NAMES, describe, frequencies, sample_attributes, with_value
from src.data.faces.captions import HELD_OUT_TEMPLATES, TRAIN_TEMPLATES, captions_for, named_attributes
from src.data.text import Vocabulary, tokenize

# An independent reading of the captions, written from the English rather than from the module's tables: for each
# attribute, what each value's words look like in a caption (lower-cased).
MANY_VALUED = {
    "gender": {"woman": r"\b(?:woman|lady|she)\b", "man": r"\b(?:man|gentleman|guy|he)\b"},
    "hair_color": {"black": r"\bblack\b", "brown": r"\b(?:brown|chestnut)\b",
                   "blond": r"\b(?:blonde?|golden|fair(?=[ -](?:hair|sideburns)))",
                   "red": r"\b(?:red|ginger|redheaded)\b",
                   "grey": r"\b(?:grey|gray|silver)\b"},
    "hair_length": {"bald": r"\bbald\b", "short": r"\b(?:short|cropped)\b",
                    "long": r"\blong(?:-haired| (?:\S+ )?hair\b)"},
    "skin_tone": {"light": r"\b(?:pale|light|fair(?=[ -](?:skin|complexion)))", "medium": r"\b(?:olive|tan|medium)\b",
                  "dark": r"\bdark\b"},
    "face_shape": {"round": r"\bround\b", "oval": r"\boval\b", "long": r"\b(?:narrow|long(?:, narrow)? face)\b"},
}
#: (a negated mention, any mention): a mention left after the negated ones are removed says "yes".
BINARY = {
    "eyeglasses": (r"\b(?:no|without|not wearing) (?:a pair of )?(?:glasses|spectacles|eyeglasses)\b",
                   r"\b(?:glasses|spectacles|eyeglasses|bespectacled)\b"),
    "smiling": (r"\bnot smiling\b|\bno smile\b|\bunsmiling\b|\bserious\b|\bneutral\b|\bstraight-faced\b",
                r"\b(?:smil|grin|happy)"),
    "beard": (r"\b(?:no|without a) beard\b|\bclean-shaven\b|\bbeardless\b", r"\bbeard"),
    "hat": (r"\b(?:no|without a|not wearing a) hat\b|\bbare-headed\b|\bhatless\b", r"\bhat\b"),
}


def stated(caption: str) -> dict[str, list[str]]:
    """{attribute: every value whose words appear in ``caption``}, for the attributes it mentions at all."""
    text = caption.lower()
    found = {}
    for name, values in MANY_VALUED.items():
        said = [value for value, pattern in values.items() if re.search(pattern, text)]
        if said:
            found[name] = said
    for name, (negated, mention) in BINARY.items():
        rest, negations = re.subn(negated, " ", text)
        said = (["no"] if negations else []) + (["yes"] if re.search(mention, rest) else [])
        if said:
            found[name] = said
    return found


def _faces(n: int, seed: int = 0) -> list[np.ndarray]:
    rng, probs = np.random.default_rng(seed), frequencies()
    return [sample_attributes(rng, probs) for _ in range(n)]


@pytest.fixture(scope="module")
def captioned() -> list[tuple[np.ndarray, list[str], list[str]]]:
    """300 faces with 4 training and 4 held-out captions each."""
    rng = np.random.default_rng(1)
    return [(attrs, captions_for(attrs, rng, 4, held_out=False), captions_for(attrs, rng, 4, held_out=True))
            for attrs in _faces(300)]


def test_every_caption_names_two_or_more_attributes_and_only_true_ones(captioned):
    for attrs, train, held_out in captioned:
        face = describe(attrs)
        for caption in train + held_out:
            independent = stated(caption)
            assert len(independent) >= 2, caption
            for name, values in independent.items():
                assert values == [face[name]], f"{caption!r} says {name} is {values}; it is {face[name]} ({face})"
            # The module's parser reads the same attributes and values as the independent reading.
            assert named_attributes(caption) == {name: values[0] for name, values in independent.items()}, caption
            if face["gender"] == "woman":
                assert "beard" not in independent and "shaven" not in caption


def test_captions_of_bald_faces_never_give_them_hair_length(captioned):
    bald = [(attrs, train + held) for attrs, train, held in captioned if describe(attrs)["hair_length"] == "bald"]
    assert len(bald) > 10
    for attrs, captions in bald:
        for caption in captions:
            assert not re.search(r"\b(?:short|long|cropped)\b[^,.]*\bhair\b(?! at the sides)|-haired", caption), caption


def test_held_out_frames_are_used_only_for_the_held_out_split(captioned):
    assert 0.2 <= len(HELD_OUT_TEMPLATES) / (len(TRAIN_TEMPLATES) + len(HELD_OUT_TEMPLATES)) <= 0.3
    assert not {t.text for t in TRAIN_TEMPLATES} & {t.text for t in HELD_OUT_TEMPLATES}
    train = [caption for _, captions, _ in captioned for caption in captions]
    held_out = [caption for _, _, captions in captioned for caption in captions]
    for caption in train:
        assert not any(t.pattern.fullmatch(caption) for t in HELD_OUT_TEMPLATES), caption
        assert any(t.pattern.fullmatch(caption) for t in TRAIN_TEMPLATES), caption
    for caption in held_out:
        assert any(t.pattern.fullmatch(caption) for t in HELD_OUT_TEMPLATES), caption
    # Every frame is used.
    for templates, captions in ((TRAIN_TEMPLATES, train), (HELD_OUT_TEMPLATES, held_out)):
        for template in templates:
            assert any(template.pattern.fullmatch(caption) for caption in captions), template.text


def test_captions_of_one_face_differ_and_vary_in_form():
    attrs = _faces(1, seed=3)[0]
    captions = captions_for(attrs, np.random.default_rng(0), 40, held_out=False)
    assert len(set(captions)) == 40
    assert len({caption.split()[0] for caption in captions}) >= 5  # different openings, not one frame
    assert len({frozenset(named_attributes(c)) for c in captions}) >= 15  # different subsets of attributes
    assert {len(named_attributes(c)) for c in captions} >= {2, 3, 4}


def test_captions_are_deterministic_given_the_generator():
    attrs = _faces(1, seed=4)[0]
    first = captions_for(attrs, np.random.default_rng(7), 5, held_out=False)
    assert first == captions_for(attrs, np.random.default_rng(7), 5, held_out=False)
    assert first != captions_for(attrs, np.random.default_rng(8), 5, held_out=False)


def test_every_attribute_value_is_named_somewhere(captioned):
    for split in (1, 2):
        named = {(name, value) for item in captioned for caption in item[split]
                 for name, value in named_attributes(caption).items()}
        assert named == {(a.name, value) for a in ATTRIBUTES for value in a.values}


def test_synonyms_and_negations_are_used(captioned):
    text = " ".join(caption.lower() for _, train, _ in captioned for caption in train)
    for word in ("blonde", "fair-haired", "gray", "silver", "spectacles", "eyeglasses", "grinning", "happy-looking",
                 "with a beard", "gentleman", "guy", "lady", "person", "dark-skinned", "with dark skin", "pale",
                 "fair-skinned", "olive", "tan", "narrow", "no glasses", "not smiling", "clean-shaven",
                 "without a hat", "bare-headed", "wearing a hat", "a hat on", "sideburns", "hair at the sides"):
        assert re.search(rf"\b{word}\b", text), word


def test_tokens_are_nonempty_and_train_words_cover_held_out_attribute_words(captioned):
    train = [c for _, captions, _ in captioned for c in captions]
    held_out = [c for _, _, captions in captioned for c in captions]
    assert all(tokenize(caption) for caption in train + held_out)
    vocabulary = Vocabulary.build(train)
    attribute_words = {"woman", "man", "person", *(v for a in ATTRIBUTES for v in a.values if not a.binary),
                       "glasses", "smiling", "beard", "hat"}
    assert not vocabulary.unknown_words(" ".join(attribute_words))
    # Only the held-out frames' own wording is new to a model trained on the training captions.
    frame_words = {word for template in HELD_OUT_TEMPLATES for word in tokenize(re.sub(r"\{\w+\}", " ", template.text))}
    unknown = {word for caption in held_out for word in vocabulary.unknown_words(caption)}
    assert unknown and unknown <= frame_words


@pytest.mark.parametrize(("caption", "expected"), [
    ("A smiling woman with long blond hair.", {"gender": "woman", "smiling": "yes", "hair_length": "long",
                                               "hair_color": "blond"}),
    ("Grey-haired man, bearded, no glasses.", {"gender": "man", "hair_color": "grey", "beard": "yes",
                                               "eyeglasses": "no"}),
    ("This person has short red hair and is not smiling.", {"hair_length": "short", "hair_color": "red",
                                                            "smiling": "no"}),
    ("A man with a round face, wearing a hat.", {"gender": "man", "face_shape": "round", "hat": "yes"}),
    ("Portrait of a dark-skinned woman in glasses.", {"skin_tone": "dark", "gender": "woman", "eyeglasses": "yes"}),
    ("A bald man with grey sideburns.", {"hair_length": "bald", "gender": "man", "hair_color": "grey"}),
    ("She has fair skin and a long, narrow face.", {"gender": "woman", "skin_tone": "light", "face_shape": "long"}),
])
def test_named_attributes_reads_the_brief_examples(caption, expected):
    assert named_attributes(caption) == expected


def test_named_attributes_refuses_a_contradiction():
    with pytest.raises(ValueError, match="hair_length"):
        named_attributes("A bald man with long hair.")


def test_a_beard_is_named_only_on_men():
    woman = with_value(_faces(1)[0], "gender", "woman")
    woman[NAMES.index("beard")] = 0
    captions = captions_for(woman, np.random.default_rng(0), 60, held_out=False)
    assert not any("beard" in named_attributes(c) for c in captions)
    man = with_value(woman, "beard", "yes")
    captions = captions_for(man, np.random.default_rng(0), 60, held_out=False)
    assert any(named_attributes(c).get("beard") == "yes" for c in captions)


def test_attrs_of_the_wrong_length_are_refused():
    with pytest.raises(ValueError, match="9"):
        captions_for(np.zeros(3, dtype=np.int64), np.random.default_rng(0), 1, held_out=False)


def test_the_oracle_text_code_holds_exactly_what_each_caption_states(captioned):
    # The diagnostic text encoder of experiments/results/t2f_faces_oracle_text.json, fed token ids as T2F feeds its
    # LSTM (held-out frames, with their unknown words, included), against the independent reading `stated`.
    import torch

    from src.data.faces.oracle import CODE_SIZE, NamedAttributeCode
    from src.nets.progan import ProGANGenerator
    from src.nets.t2f import TextToImageGenerator
    from src.nets.text_encoder import ConditioningAugmentation

    train = [c for _, captions, _ in captioned for c in captions]
    vocabulary = Vocabulary.build(train)
    pairs = [(describe(attrs), caption) for attrs, tr, ho in captioned[:60] for caption in tr[:1] + ho[:1]]
    encoded = [vocabulary.encode(caption, 40) for _, caption in pairs]
    tokens, lengths = torch.stack([t for t, _ in encoded]), torch.stack([n for _, n in encoded])
    oracle = NamedAttributeCode(vocabulary.words, hidden_size=32, scale=2.0)
    codes = oracle(tokens, lengths)
    assert codes.shape == (len(pairs), 32) and not codes[:, CODE_SIZE:].any()
    start = 0
    for attribute in ATTRIBUTES:
        block = codes[:, start:start + len(attribute.values)]
        for row, (face, caption) in enumerate(pairs):
            said = stated(caption).get(attribute.name)
            expected = torch.zeros(len(attribute.values))
            if said:
                expected[:] = -2.0
                expected[attribute.values.index(face[attribute.name])] = 2.0
            assert torch.equal(block[row], expected), (caption, attribute.name, block[row])
        start += len(attribute.values)
    # It stands in for the LSTM in T2F's generator: the sizes chain, and no parameter is trained.
    generator = TextToImageGenerator(oracle, ConditioningAugmentation(32, 5),
                                     ProGANGenerator(9, 8, 3, fmap_base=32, fmap_max=8))
    assert generator(tokens[:3], lengths[:3], torch.randn(3, 4), 1).images.shape == (3, 3, 8, 8)
    assert not list(oracle.parameters())
