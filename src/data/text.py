"""Captions as tokens: the one tokenizer and vocabulary every captioned DataModule and text model shares.

Tokens are lower-cased words (letters and digits, with inner apostrophes: ``isn't``); punctuation and hyphens
separate words (``grey-haired`` → ``grey``, ``haired``). Ids: 0 is padding, 1 stands for any word the vocabulary
does not hold, the rest are the words of the captions it was built from, most frequent first.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

import torch

PAD, UNK = "<pad>", "<unk>"
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def tokenize(text: str) -> list[str]:
    """The words of ``text``: ``"A smiling, grey-haired man."`` → ``["a", "smiling", "grey", "haired", "man"]``."""
    return _WORD.findall(text.lower())


class Vocabulary:
    """Word ↔ id. Build it from the training captions (:meth:`build`); keep it with a model as :meth:`words`.

    Args:
        words: every id's word, ``words[0] == PAD`` and ``words[1] == UNK``.
    """

    def __init__(self, words: Sequence[str]):
        if list(words[:2]) != [PAD, UNK]:
            raise ValueError(f"A vocabulary starts with {PAD!r}, {UNK!r}; got {list(words[:2])}.")
        if len(set(words)) != len(words):
            raise ValueError("A vocabulary holds each word once.")
        self._words = list(words)
        self._ids = {word: i for i, word in enumerate(self._words)}

    @classmethod
    def build(cls, texts: Iterable[str], min_count: int = 1) -> "Vocabulary":
        """The words that occur at least ``min_count`` times in ``texts``, most frequent first (ties: alphabetical)."""
        counts = Counter(word for text in texts for word in tokenize(text))
        kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        return cls([PAD, UNK, *kept])

    @property
    def words(self) -> list[str]:
        """Every id's word (JSON-friendly: what a checkpoint keeps to rebuild the vocabulary)."""
        return list(self._words)

    def __len__(self) -> int:
        return len(self._words)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self._words == other._words

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def unk_id(self) -> int:
        return 1

    def ids(self, text: str) -> list[int]:
        """The id of every word of ``text`` (unknown words → ``unk_id``)."""
        return [self._ids.get(word, self.unk_id) for word in tokenize(text)]

    def unknown_words(self, text: str) -> list[str]:
        """The words of ``text`` that the vocabulary does not hold, in order, each once."""
        return list(dict.fromkeys(w for w in tokenize(text) if w not in self._ids))

    def encode(self, text: str, max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids int64 of length ``max_length``, padded with ``pad_id``, words past ``max_length`` cut; the number
        of real tokens, int64 scalar, at least 1 so that an LSTM can pack it: an empty caption is one ``unk_id``)."""
        ids = self.ids(text)[:max_length] or [self.unk_id]
        padded = torch.full((max_length,), self.pad_id, dtype=torch.int64)
        padded[: len(ids)] = torch.tensor(ids, dtype=torch.int64)
        return padded, torch.tensor(len(ids), dtype=torch.int64)

    def decode(self, ids: Iterable[int]) -> str:
        """The words of ``ids`` up to the first padding, joined by spaces."""
        words = []
        for i in ids:
            if int(i) == self.pad_id:
                break
            words.append(self._words[int(i)])
        return " ".join(words)
