"""A diagnostic stand-in for T2F's text encoder on the procedural faces: the caption's named attributes as a code.

``NamedAttributeCode`` maps token ids back to the caption (the run's vocabulary), reads which attribute values it
names with :func:`~src.data.faces.captions.named_attributes` (the same parser the judge's text accuracy uses) and
returns φ(t) = ``scale`` × a vector with one slot per (attribute, value): +1 at the named value, −1 at the other
values of a named attribute, 0 for attributes the caption does not name; zero-padded to ``hidden_size``. It has no
parameters: a perfect, fixed text encoder. Trained with it, T2F shows how far its image side can carry the text at a
given budget, i.e. the most any better text encoder could add (experiments/results/t2f_faces_oracle_text.json):

    python experiments/t2f_faces.py --name t2f_faces_oracle_text '~model.generator.text_encoder' \
        '+model.generator.text_encoder={_target_: src.data.faces.oracle.NamedAttributeCode, \
        vocabulary: ${dataset.vocabulary}, hidden_size: 128}'

Only for data whose captions :func:`named_attributes` reads (``data=faces``); a diagnostic, not a model.
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from itertools import accumulate
from typing import Annotated

import torch
from torch import Tensor, nn

from src.data.faces.attributes import ATTRIBUTES, BY_NAME
from src.data.faces.captions import named_attributes
from src.data.text import Vocabulary
from src.utils.arguments import Meaning, checked

#: Where each attribute's values start in the code.
_OFFSETS = dict(zip((a.name for a in ATTRIBUTES), accumulate((len(a.values) for a in ATTRIBUTES), initial=0)))
CODE_SIZE = sum(len(a.values) for a in ATTRIBUTES)


@lru_cache(maxsize=100_000)
def attribute_code(caption: str) -> Tensor:
    """The ±1/0 code (``CODE_SIZE``) of the attribute values ``caption`` names."""
    code = torch.zeros(CODE_SIZE)
    for name, value in named_attributes(caption).items():
        start, values = _OFFSETS[name], BY_NAME[name].values
        code[start:start + len(values)] = -1.0
        code[start + values.index(value)] = 1.0
    return code


class NamedAttributeCode(nn.Module):
    """φ(t): (tokens int64 N×L, lengths int64 N) → N×hidden_size, the named attributes' code (module docstring)."""

    @checked
    def __init__(self, vocabulary: Sequence[str],
                 hidden_size: Annotated[int, Meaning("the code's padded size", at_least=CODE_SIZE)] = 128,
                 scale: Annotated[float, Meaning("the code's magnitude", at_least=0)] = 1.5):
        super().__init__()
        self.vocabulary = Vocabulary([str(word) for word in vocabulary])
        self.output_dim, self.scale = hidden_size, scale

    def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        codes = torch.stack([attribute_code(self.vocabulary.decode(row[:n].tolist()))
                             for row, n in zip(tokens.cpu(), lengths.tolist())])
        codes = nn.functional.pad(codes, (0, self.output_dim - CODE_SIZE))
        return (self.scale * codes).to(tokens.device)
