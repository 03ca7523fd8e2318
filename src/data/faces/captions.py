"""Captions of the procedural faces, and the parser that reads back which attribute values a caption names.

A caption names a random subset of two or more of a face's attributes (:data:`~src.data.faces.attributes.ATTRIBUTES`)
and never a wrong one. It is a sentence frame (:class:`Template`: "A photo of {np}.", "{subject} has {has} and is
{is}.") whose slots are filled with phrases from one table of synonyms per attribute value (:func:`_phrases`):
"A smiling woman with long blond hair.", "Grey-haired man, bearded, no glasses.", "This person has short red hair and
is not smiling." A value that is absent may be named by a negation ("no glasses", "clean-shaven", "bare-headed").

Held-out phrasing: :data:`HELD_OUT_TEMPLATES` (5 of the 18 frames) are used only with ``held_out=True`` (the test
split's captions), so a text model is scored on sentence structures it never saw, made of attribute words it did.

:func:`named_attributes` parses a caption with a lexicon built from the same tables (every phrase any face can get,
with what it names), so the two always agree; a table edit that made one phrase mean two things fails at import.
Hand-written rather than an NLP library: the captions come from a closed grammar, and the parser only has to
recognise its phrases exactly (spaCy or NLTK would add a model download and still need this synonym table).
"""
from __future__ import annotations

import itertools
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from src.data.faces.attributes import ATTRIBUTES, BY_NAME, NAMES, describe
from src.data.text import tokenize

# ---------------------------------------------------------------------------------------------------------------
# Synonym tables
# ---------------------------------------------------------------------------------------------------------------

#: The nouns (and subject pronouns) that name a gender; a caption that does not name it says "person".
NOUNS: dict[str, tuple[str, ...]] = {"woman": ("woman", "lady"), "man": ("man", "gentleman", "guy")}
PRONOUNS: dict[str, str] = {"woman": "she", "man": "he"}
UNNAMED_NOUN = "person"

HAIR_COLORS: dict[str, tuple[str, ...]] = {
    "black": ("black", "jet-black"),
    "brown": ("brown", "chestnut"),
    "blond": ("blond", "blonde", "fair", "golden"),
    "red": ("red", "ginger"),
    "grey": ("grey", "gray", "silver"),
}
#: Hair colours said on their own before a noun ("a blonde woman").
HAIR_COLOR_ADJECTIVES: dict[str, tuple[str, ...]] = {"blond": ("blond", "blonde"), "red": ("redheaded",)}
HAIR_LENGTHS: dict[str, tuple[str, ...]] = {"short": ("short", "cropped"), "long": ("long",)}
#: The attributes the hair phrases of a face depend on.
HAIR_DEPENDS_ON = ("gender", "hair_color", "hair_length")

#: A noun-phrase part: (adjective before the noun or None, phrase after it or None).
_Np = tuple[str | None, str | None]


@dataclass(frozen=True)
class Phrases:
    """Every phrase naming one attribute value (or a hair colour and length), by role: ``np`` — parts of a noun
    phrase, ``has`` — objects of "has", ``is_`` — predicates of "is", ``tag`` — short fragments of a list
    ("Grey-haired man, bearded, no glasses.")."""

    np: tuple[_Np, ...]
    has: tuple[str, ...]
    is_: tuple[str, ...]
    tag: tuple[str, ...]

    def role(self, name: str) -> tuple:
        return getattr(self, "is_" if name == "is" else name)


def _adjectives(*words: str) -> tuple[_Np, ...]:
    return tuple((word, None) for word in words)


def _after(*phrases: str) -> tuple[_Np, ...]:
    return tuple((None, phrase) for phrase in phrases)


_SIMPLE: dict[tuple[str, str], Phrases] = {
    ("eyeglasses", "yes"): Phrases(
        np=_adjectives("bespectacled") + _after("with glasses", "wearing glasses", "in glasses", "with spectacles",
                                                "wearing eyeglasses", "in spectacles", "wearing a pair of glasses"),
        has=("glasses", "spectacles", "eyeglasses", "a pair of glasses"),
        is_=("wearing glasses", "wearing spectacles", "wearing eyeglasses", "bespectacled"),
        tag=("glasses", "spectacles", "in glasses", "wearing glasses")),
    ("eyeglasses", "no"): Phrases(
        np=_after("without glasses", "with no glasses", "without spectacles", "not wearing glasses"),
        has=("no glasses", "no spectacles"),
        is_=("not wearing glasses", "without glasses"),
        tag=("no glasses", "without glasses", "no eyeglasses")),
    ("smiling", "yes"): Phrases(
        np=_adjectives("smiling", "grinning", "happy-looking") + _after("with a smile", "with a big smile",
                                                                        "smiling", "grinning"),
        has=("a smile", "a big smile", "a grin"),
        is_=("smiling", "grinning", "happy-looking"),
        tag=("smiling", "grinning", "big smile")),
    ("smiling", "no"): Phrases(
        np=_adjectives("unsmiling", "serious-looking", "straight-faced") + _after(
            "with a neutral expression", "with a serious expression", "not smiling"),
        has=("a neutral expression", "a serious expression", "no smile"),
        is_=("not smiling", "unsmiling", "serious-looking", "straight-faced"),
        tag=("not smiling", "no smile", "serious expression", "straight-faced")),
    ("beard", "yes"): Phrases(
        np=_adjectives("bearded") + _after("with a beard", "with a full beard"),
        has=("a beard", "a full beard"),
        is_=("bearded",),
        tag=("bearded", "full beard")),
    ("beard", "no"): Phrases(
        np=_adjectives("clean-shaven", "beardless") + _after("without a beard", "with no beard"),
        has=("no beard",),
        is_=("clean-shaven", "beardless"),
        tag=("clean-shaven", "no beard", "beardless")),
    ("hat", "yes"): Phrases(
        np=_after("wearing a hat", "with a hat on", "in a hat", "with a hat"),
        has=("a hat on",),
        is_=("wearing a hat",),
        tag=("hat", "wearing a hat", "hat on")),
    ("hat", "no"): Phrases(
        np=_adjectives("bare-headed", "hatless") + _after("without a hat", "with no hat", "not wearing a hat"),
        has=("no hat",),
        is_=("bare-headed", "not wearing a hat", "hatless"),
        tag=("no hat", "bare-headed", "hatless")),
    ("skin_tone", "light"): Phrases(
        np=_adjectives("pale", "fair-skinned", "light-skinned", "pale-skinned") + _after(
            "with pale skin", "with fair skin", "with light skin", "with a light complexion",
            "with a fair complexion"),
        has=("pale skin", "fair skin", "light skin", "a light complexion", "a fair complexion"),
        is_=("pale", "fair-skinned", "light-skinned"),
        tag=("pale skin", "fair-skinned", "light skin")),
    ("skin_tone", "medium"): Phrases(
        np=_adjectives("olive-skinned", "tan", "tan-skinned") + _after(
            "with olive skin", "with tan skin", "with medium skin", "with a medium skin tone",
            "with an olive complexion"),
        has=("olive skin", "tan skin", "medium skin", "a medium skin tone", "an olive complexion"),
        is_=("olive-skinned", "tan-skinned"),
        tag=("olive skin", "tan skin", "medium skin tone")),
    ("skin_tone", "dark"): Phrases(
        np=_adjectives("dark-skinned") + _after("with dark skin", "with a dark complexion", "with a dark skin tone"),
        has=("dark skin", "a dark complexion", "a dark skin tone"),
        is_=("dark-skinned",),
        tag=("dark skin", "dark-skinned")),
    ("face_shape", "round"): Phrases(
        np=_adjectives("round-faced") + _after("with a round face"),
        has=("a round face",),
        is_=("round-faced",),
        tag=("round face", "round-faced")),
    ("face_shape", "oval"): Phrases(
        np=_adjectives("oval-faced") + _after("with an oval face"),
        has=("an oval face",),
        is_=("oval-faced",),
        tag=("oval face",)),
    # Not "long-faced": it means glum.
    ("face_shape", "long"): Phrases(
        np=_adjectives("narrow-faced") + _after("with a long face", "with a narrow face", "with a long, narrow face"),
        has=("a long face", "a narrow face", "a long, narrow face"),
        is_=("narrow-faced",),
        tag=("long face", "narrow face")),
}


def _hair_phrases(color: str | None, length: str | None, bald: bool, man: bool) -> Phrases:
    """The phrases naming ``color`` and/or ``length`` (None: not named) of a face's hair. A bald head still shows its
    hair colour at the sides (so a bald face's colour is named as "grey hair at the sides", "grey sideburns")."""
    colors = HAIR_COLORS[color] if color else ()
    haired = tuple(f"{word}-haired" for word in colors if "-" not in word)
    sides = tuple(f"{word} hair at the sides" for word in colors) + \
        (tuple(f"{word} sideburns" for word in colors) if man else ())
    if length == "bald" or (length is None and bald):
        if color is None:
            return Phrases(np=_adjectives("bald") + _after("with a bald head"), has=("a bald head",), is_=("bald",),
                           tag=("bald",))
        if length is None:  # the colour alone, of a bald head
            return Phrases(np=_after(*(f"with {s}" for s in sides)), has=sides, is_=(), tag=sides)
        return Phrases(np=tuple(("bald", f"with {s}") for s in sides) + _after(*(f"with a bald head and {s}"
                                                                                   for s in sides)),
                       has=tuple(f"a bald head and {s}" for s in sides), is_=(),
                       tag=tuple(f"bald with {s}" for s in sides))
    if length is None:
        hair = tuple(f"{word} hair" for word in colors)
        return Phrases(np=_adjectives(*haired, *HAIR_COLOR_ADJECTIVES.get(color, ())) + _after(
            *(f"with {h}" for h in hair)), has=hair, is_=haired, tag=hair + haired)
    lengths = HAIR_LENGTHS[length]
    if color is None:
        hair = tuple(f"{word} hair" for word in lengths)
        return Phrases(np=_adjectives(f"{length}-haired") + _after(*(f"with {h}" for h in hair)), has=hair,
                       is_=(f"{length}-haired",), tag=hair + (f"{length}-haired",))
    hair = tuple(f"{lw} {cw} hair" for lw in lengths for cw in colors)
    return Phrases(np=_after(*(f"with {h}" for h in hair)), has=hair, is_=(), tag=hair)


#: What a caption can name, as items that are phrased together: hair colour and length share one phrase when both
#: are named ("long blond hair"); gender is named by the noun.
_Item = tuple[str, ...]


def _phrases(item: _Item, face: dict[str, str]) -> Phrases:
    """Every phrase that names ``item``'s attributes of ``face`` (value names, as :func:`describe` gives)."""
    if item[0].startswith("hair_"):
        return _hair_phrases(face["hair_color"] if "hair_color" in item else None,
                             face["hair_length"] if "hair_length" in item else None,
                             bald=face["hair_length"] == "bald", man=face["gender"] == "man")
    (name,) = item
    return _SIMPLE[(name, face[name])]


def _nameable(face: dict[str, str]) -> list[str]:
    """The attributes a caption of ``face`` may name: all, but a beard (or its absence) only on a man."""
    return [name for name in NAMES if name != "beard" or face["gender"] == "man"]


# ---------------------------------------------------------------------------------------------------------------
# Sentence frames
# ---------------------------------------------------------------------------------------------------------------

#: Slots that hold attribute phrases, with the fewest items each takes and the role of their phrases.
_ATTRIBUTE_SLOTS: dict[str, tuple[int, str]] = {"np": (0, "np"), "bare": (0, "np"), "has": (1, "has"),
                                                "is": (1, "is"), "tags": (1, "tag")}


@dataclass(frozen=True)
class Template:
    """A sentence frame. Slots: ``{np}`` "a smiling woman with glasses", ``{bare}`` the same without the article,
    ``{subject}`` "the woman", "this person", "she", ``{noun}`` "woman", ``{has}`` "long hair and a beard", ``{is}``
    "smiling and bald", ``{tags}`` "bearded, no glasses". Sentences are capitalised after filling."""

    text: str

    @cached_property
    def slots(self) -> tuple[str, ...]:
        return tuple(name for _, name, _, _ in string.Formatter().parse(self.text) if name)

    @cached_property
    def pattern(self) -> re.Pattern:
        """Matches (fully, ignoring case) every caption this frame gives: the slots as ``.+``, the words as written."""
        parts = [re.escape(literal) + ("(.+)" if name else "") for literal, name, _, _ in
                 string.Formatter().parse(self.text)]
        return re.compile("".join(parts), re.IGNORECASE)

    @property
    def attribute_slots(self) -> tuple[str, ...]:
        return tuple(name for name in self.slots if name in _ATTRIBUTE_SLOTS)


TRAIN_TEMPLATES: tuple[Template, ...] = tuple(Template(t) for t in (
    "{np}.",
    "A photo of {np}.",
    "Portrait of {np}.",
    "A picture of {np}.",
    "Close-up of {np}.",
    "An image of {np}.",
    "{bare}, {tags}.",
    "{subject} has {has}.",
    "{subject} is {is}.",
    "{subject} has {has} and is {is}.",
    "{np}, {is}.",
    "{np} who is {is}.",
    "{np}. {subject} has {has}.",
))
#: Only for ``held_out=True``: each has literal words no training frame has, so no training caption matches them.
HELD_OUT_TEMPLATES: tuple[Template, ...] = tuple(Template(t) for t in (
    "Here we see {np}.",
    "In this image, {subject} has {has}.",
    "The camera shows {np}.",
    "We are looking at {np} who is {is}.",
    "The {noun} in this picture is {is}.",
))

#: How many attributes a caption names (gender included), and how likely each count is.
_COUNTS, _COUNT_CDF = (2, 3, 4, 5), np.cumsum((0.3, 0.35, 0.25, 0.1))
#: Gender is named this many times as often as any other attribute: most descriptions of a face start with it.
_GENDER_WEIGHT = 3.0
_MAX_ADJECTIVES = 2
#: Draws allowed per caption asked for before giving up on finding ``n`` different ones.
_TRIES_PER_CAPTION = 50


def _pick(rng: np.random.Generator, options: Sequence):
    return options[int(rng.random() * len(options))]


def _join(parts: Sequence[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _sentence_case(text: str) -> str:
    return re.sub(r"(^|\. )([a-z])", lambda m: m.group(1) + m.group(2).upper(), text)


def _noun_phrase(noun: str, parts: Sequence[_Np]) -> str:
    """"smiling, grey-haired man with a beard and glasses, wearing a hat" (no article): adjectives before the noun,
    the "with …" phrases merged into one list, then the others."""
    adjectives = [adj for adj, _ in parts if adj]
    after = [post for _, post in parts if post]
    merged = [p[len("with "):] for p in after if p.startswith("with ") and " and " not in p]
    rest = [p for p in after if not (p.startswith("with ") and " and " not in p)]
    posts = (["with " + _join(merged)] if merged else []) + rest
    return " ".join(filter(None, [", ".join(adjectives), noun, ", ".join(posts)]))


def _assign(items: list[_Item], template: Template, face: dict[str, str],
            rng: np.random.Generator) -> dict[str, list[_Item]] | None:
    """Which items go in which attribute slot of ``template`` (every slot at least its minimum, every item in a slot
    that has a phrase for it), or None when these items cannot fill this frame."""
    slots = {name: [] for name in template.attribute_slots}

    def fits(item: _Item, slot: str) -> bool:
        return bool(_phrases(item, face).role(_ATTRIBUTE_SLOTS[slot][1]))

    left = list(items)
    for slot in slots:
        for _ in range(_ATTRIBUTE_SLOTS[slot][0]):
            choice = next((item for item in left if fits(item, slot)), None)
            if choice is None:
                return None
            slots[slot].append(choice)
            left.remove(choice)
    for item in left:
        options = [slot for slot in slots if fits(item, slot)]
        if not options:
            return None
        slots[_pick(rng, options)].append(item)
    return slots


def _fill(template: Template, slots: dict[str, list[_Item]], face: dict[str, str], gender_named: bool,
          rng: np.random.Generator) -> str:
    gender = face["gender"]
    noun = _pick(rng, NOUNS[gender]) if gender_named else UNNAMED_NOUN
    values = {}
    for slot, items in slots.items():
        role = _ATTRIBUTE_SLOTS[slot][1]
        if role == "np":
            parts, adjectives = [], 0
            for item in items:
                options = _phrases(item, face).np
                if adjectives >= _MAX_ADJECTIVES:
                    options = tuple(option for option in options if option[0] is None)
                part = _pick(rng, options)
                adjectives += part[0] is not None
                parts.append(part)
            phrase = _noun_phrase(noun, parts)
            values[slot] = phrase if slot == "bare" else _article(phrase)
        else:
            phrases = [_pick(rng, _phrases(item, face).role(role)) for item in items]
            values[slot] = ", ".join(phrases) if role == "tag" else _join(phrases)
    if "subject" in template.slots:
        choices = [f"the {noun}", f"this {noun}"] + ([PRONOUNS[gender]] if gender_named else [])
        values["subject"] = _pick(rng, choices)
    values["noun"] = noun
    return _sentence_case(template.text.format(**values))


def _caption(face: dict[str, str], rng: np.random.Generator, templates: Sequence[Template]) -> str:
    nameable = _nameable(face)
    weights = np.array([_GENDER_WEIGHT if name == "gender" else 1.0 for name in nameable])
    count = _COUNTS[int(np.searchsorted(_COUNT_CDF, rng.random() * _COUNT_CDF[-1], side="right"))]
    # A weighted draw without replacement, as the `count` largest keys u^(1/w) (Efraimidis & Spirakis 2006, A-ES);
    # the same law as rng.choice(..., replace=False, p=...), at a tenth of its cost.
    keys = np.log(rng.random(len(nameable))) / weights
    chosen = {nameable[i] for i in np.argsort(keys)[-count:]}
    hair = tuple(name for name in ("hair_color", "hair_length") if name in chosen)
    items = [(name,) for name in NAMES if name in chosen and name != "gender" and not name.startswith("hair_")]
    items += [hair] if hair else []
    items = [items[i] for i in rng.permutation(len(items))]
    # Some frame always fits: {np} takes any number of items, each has an "np" phrase.
    for index in rng.permutation(len(templates)):
        slots = _assign(items, templates[index], face, rng)
        if slots is not None:
            return _fill(templates[index], slots, face, "gender" in chosen, rng)
    raise AssertionError("no frame takes these items; TRAIN_TEMPLATES and HELD_OUT_TEMPLATES need an {np} frame")


def captions_for(attrs: np.ndarray, rng: np.random.Generator, n: int, held_out: bool) -> list[str]:
    """``n`` different captions of one face.

    Args:
        attrs: int64 value indices in the order of :data:`ATTRIBUTES` (as ``sample_attributes`` gives).
        rng: the only source of randomness (same state → same captions).
        n: how many captions.
        held_out: use only :data:`HELD_OUT_TEMPLATES` (for the test split), else only :data:`TRAIN_TEMPLATES`.

    Returns:
        ``n`` distinct English sentences, each naming two or more of the face's attributes, none wrongly.
    """
    if len(attrs) != len(ATTRIBUTES):
        raise ValueError(f"attrs has {len(attrs)} values; a face has {len(ATTRIBUTES)} ({', '.join(NAMES)}).")
    face = describe(attrs)
    templates = HELD_OUT_TEMPLATES if held_out else TRAIN_TEMPLATES
    captions: list[str] = []
    for _ in range(_TRIES_PER_CAPTION * n):
        if len(captions) == n:
            break
        caption = _caption(face, rng, templates)
        if caption not in captions:
            captions.append(caption)
    if len(captions) < n:
        raise ValueError(f"Found only {len(captions)} different captions of one face in {_TRIES_PER_CAPTION * n} "
                         f"draws, fewer than n={n}; ask for fewer captions per face.")
    return captions


# ---------------------------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------------------------


def _lexicon() -> dict[tuple[str, ...], dict[str, str]]:
    """Every phrase any caption can contain (as tokens) → the attribute values it names.

    Built from the phrases :func:`_phrases` gives (also the "with …" phrases without their "with", as
    :func:`_noun_phrase` merges them), so the parser knows exactly what the generator says.
    """
    lexicon: dict[tuple[str, ...], dict[str, str]] = {}

    def add(phrase: str, named: dict[str, str]) -> None:
        tokens = tuple(tokenize(phrase))
        if lexicon.setdefault(tokens, named) != named:
            raise ValueError(f"The caption phrase {phrase!r} names {named} for one face and {lexicon[tokens]} "
                             "for another; give it one meaning in src/data/faces/captions.py.")

    def add_all(phrases: Phrases, named: dict[str, str]) -> None:
        for adj, post in phrases.np:
            if adj and post:  # "bald" + "with grey sideburns": each part is also one attribute's phrase
                continue
            for phrase in filter(None, (adj, post, post and post.removeprefix("with "))):
                add(phrase, named)
        for phrase in (*phrases.has, *phrases.is_, *phrases.tag):
            add(phrase, named)

    for gender, nouns in NOUNS.items():
        for word in (*nouns, PRONOUNS[gender]):
            add(word, {"gender": gender})
    for (name, value), phrases in _SIMPLE.items():
        add_all(phrases, {name: value})
    # Hair phrases depend on the gender and on the length when it is not named (a bald head's colour, sideburns).
    for gender, color, length in itertools.product(*(BY_NAME[name].values for name in HAIR_DEPENDS_ON)):
        face = {"gender": gender, "hair_color": color, "hair_length": length}
        for item in (("hair_color",), ("hair_length",), ("hair_color", "hair_length")):
            add_all(_phrases(item, face), {name: face[name] for name in item})
    return lexicon


_LEXICON = _lexicon()
_LONGEST = max(len(tokens) for tokens in _LEXICON)


def named_attributes(caption: str) -> dict[str, str]:
    """{attribute name: value name} of every attribute ``caption`` names (as :func:`captions_for` phrases them).

    Reads the caption's tokens left to right, taking the longest known phrase at each place ("not wearing glasses"
    before "wearing glasses"). Raises ValueError when the caption names two values of one attribute.
    """
    tokens = tokenize(caption)
    named: dict[str, str] = {}
    i = 0
    while i < len(tokens):
        for size in range(min(_LONGEST, len(tokens) - i), 0, -1):
            found = _LEXICON.get(tuple(tokens[i:i + size]))
            if found is not None:
                for name, value in found.items():
                    if named.setdefault(name, value) != value:
                        raise ValueError(f"{caption!r} names both {named[name]!r} and {value!r} as its {name}.")
                i += size
                break
        else:
            i += 1
    return named
