"""The attribute judge of two-domain faces (``data=faces_unpaired``, ``data=faces_paired``): what tells whether a
translation flipped the domain attribute and kept the others.

The judge (:mod:`src.metrics.attribute_judge`) trains on labelled images; a two-domain DataModule yields pairs. Its
view here, :class:`DomainsAsLabelledImages`, shows the judge every real face of both domains of a split as
``{"image", "attrs"}`` items (each face once, whatever the pairing), under the DataModule's own name and fingerprint,
so the judge is cached per two-domain dataset like any other.
"""
from __future__ import annotations

import os

from torch.utils.data import ConcatDataset, Dataset

from src.data.faces.attributes import ATTRIBUTES
from src.data.faces.datamodules import TwoDomains
from src.metrics.attribute_judge import AttributeJudge, JudgeSettings, load_judge


class DomainsAsLabelledImages:
    """A two-domain faces DataModule as the judge reads a DataModule: ``name``, ``fingerprint()``, ``attributes``
    and ``split(name)`` (domain A's faces, then domain B's)."""

    attributes = ATTRIBUTES

    def __init__(self, datamodule):
        self.datamodule, self.name = datamodule, datamodule.name

    def fingerprint(self) -> str:
        return self.datamodule.fingerprint()

    def split(self, name: str) -> Dataset:
        pairs = self.datamodule.split(name)
        return ConcatDataset([pairs.a, pairs.b])


def has_judge(datamodule) -> bool:
    """Whether the DataModule's items carry face attributes a judge can read (two-domain procedural faces)."""
    if getattr(datamodule, "domain_attribute", None) is None:
        return False
    datamodule.setup()
    return isinstance(datamodule.split("train"), TwoDomains)


def domain_judge(datamodule, cache_dir: str | os.PathLike | None = None, settings: JudgeSettings = JudgeSettings(),
                 device=None) -> AttributeJudge:
    """The judge of a two-domain faces DataModule, trained on the real faces of its train split (cached)."""
    return load_judge(DomainsAsLabelledImages(datamodule), cache_dir, settings, device)
