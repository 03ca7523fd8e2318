"""The attributes of the procedural faces (``data=faces``): names, values, default frequencies, dependencies.

Every face carries one value of each attribute, stored as an int64 vector ``attrs`` (index of the value within
:attr:`Attribute.values`, in the order of :data:`ATTRIBUTES`). Captions, the renderer and the attribute judge all
read this one table, so adding a value here is the whole change.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from src.utils.errors import ConfigError


@dataclass(frozen=True)
class Attribute:
    """One labelled property of a face.

    name: the key in configs, in ``attrs`` and in the judge's heads.
    values: the possible values, by index (binary attributes are ``("no", "yes")``).
    frequencies: the default probability of each value (sums to 1), with realistic imbalance.
    """

    name: str
    values: tuple[str, ...]
    frequencies: tuple[float, ...]

    @property
    def binary(self) -> bool:
        return self.values == ("no", "yes")

    def index(self, value: str) -> int:
        if value not in self.values:
            raise ConfigError(f"{self.name} has no value {value!r}; its values are {', '.join(self.values)}.")
        return self.values.index(value)


_NO_YES = ("no", "yes")

#: Every attribute, in the order of ``attrs``.
ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute("gender", ("woman", "man"), (0.5, 0.5)),
    Attribute("hair_color", ("black", "brown", "blond", "red", "grey"), (0.3, 0.28, 0.2, 0.1, 0.12)),
    Attribute("hair_length", ("bald", "short", "long"), (0.12, 0.45, 0.43)),
    Attribute("eyeglasses", _NO_YES, (0.7, 0.3)),
    Attribute("smiling", _NO_YES, (0.5, 0.5)),
    Attribute("beard", _NO_YES, (0.6, 0.4)),  # of men: 20% of all faces (see REQUIRES)
    Attribute("hat", _NO_YES, (0.85, 0.15)),
    Attribute("skin_tone", ("light", "medium", "dark"), (0.4, 0.35, 0.25)),
    Attribute("face_shape", ("round", "oval", "long"), (0.33, 0.34, 0.33)),
)
NAMES: tuple[str, ...] = tuple(a.name for a in ATTRIBUTES)
BY_NAME: dict[str, Attribute] = {a.name: a for a in ATTRIBUTES}

#: Attribute values that need another attribute's value: a beard only on men. A drawn face that breaks a rule loses
#: the dependent value (a woman drawn with a beard has none), so the frequencies given are conditional on the rule.
REQUIRES: dict[tuple[str, str], tuple[str, str]] = {("beard", "yes"): ("gender", "man")}


def attribute(name: str) -> Attribute:
    """The attribute called ``name``; a ConfigError lists the valid names."""
    if name not in BY_NAME:
        raise ConfigError(f"Unknown face attribute {name!r}; the attributes are {', '.join(NAMES)}.")
    return BY_NAME[name]


def frequencies(overrides: Mapping[str, Mapping[str, float]] | None = None) -> dict[str, np.ndarray]:
    """Per attribute, the probability of each value: the defaults, with ``overrides`` ({attribute: {value: weight}},
    weights renormalised; values not named keep their default share of what is left) applied."""
    table = {a.name: np.asarray(a.frequencies, dtype=np.float64) for a in ATTRIBUTES}
    for name, weights in (overrides or {}).items():
        spec = attribute(name)
        probs = table[name].copy()
        named = [spec.index(value) for value in weights]
        for value, weight in weights.items():
            if not 0.0 <= float(weight) <= 1.0:
                raise ConfigError(f"data.attribute_frequencies.{name}.{value}={weight}: must be a probability "
                                  f"between 0 and 1.")
            probs[spec.index(value)] = float(weight)
        rest = [i for i in range(len(probs)) if i not in named]
        named_total = probs[named].sum()
        if named_total > 1.0 + 1e-9 or (not rest and abs(named_total - 1.0) > 1e-6):
            raise ConfigError(f"data.attribute_frequencies.{name}: the probabilities sum to {named_total:g}; "
                              f"they must sum to 1 (or to at most 1 when some values are not named).")
        if rest:
            default_rest = table[name][rest]
            share = default_rest / default_rest.sum() if default_rest.sum() > 0 else np.full(len(rest), 1 / len(rest))
            probs[rest] = share * (1.0 - named_total)
        table[name] = probs
    return table


def sample_attributes(rng: np.random.Generator, probs: Mapping[str, np.ndarray]) -> np.ndarray:
    """One face's attribute vector (int64, in the order of :data:`ATTRIBUTES`), drawn with ``probs``.

    Exactly one draw per attribute, in a fixed order, whatever the values: so the rest of the face (its nuisance
    parameters) draws the same numbers from ``rng`` whatever attributes it got.
    """
    attrs = np.array([rng.choice(len(a.values), p=probs[a.name]) for a in ATTRIBUTES], dtype=np.int64)
    for (name, value), (needed, needed_value) in REQUIRES.items():
        if attrs[NAMES.index(name)] == BY_NAME[name].index(value) and \
                attrs[NAMES.index(needed)] != BY_NAME[needed].index(needed_value):
            attrs[NAMES.index(name)] = 0  # the dependent value is dropped (binary: "no")
    return attrs


def with_value(attrs: np.ndarray, name: str, value: str) -> np.ndarray:
    """A copy of ``attrs`` with ``name`` set to ``value`` and whatever that value needs (a beard makes a man):
    the two versions of a paired face."""
    attrs = attrs.copy()
    attrs[NAMES.index(name)] = attribute(name).index(value)
    needed = REQUIRES.get((name, value))
    if needed is not None:
        attrs[NAMES.index(needed[0])] = BY_NAME[needed[0]].index(needed[1])
    return attrs


def describe(attrs: np.ndarray) -> dict[str, str]:
    """{attribute name: value name} of one attribute vector."""
    return {a.name: a.values[int(i)] for a, i in zip(ATTRIBUTES, attrs)}
