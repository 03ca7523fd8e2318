"""The attribute judge of two-domain faces (``data=faces_unpaired``, ``data=faces_paired``): what tells whether a
translation flipped the domain attribute and kept the others.

The judge (:mod:`src.metrics.attribute_judge`) trains on labelled images; a two-domain DataModule yields pairs, and
its train split may be small (the CycleGAN recipe's 4,000 faces at 32 px trained a judge to 0.86 mean held-out
accuracy). It therefore trains on the DataModule's :meth:`labelled_faces`: ``data.judge_faces`` ordinary labelled
faces of the same stream, renderer, size and attribute frequencies, real images only, cached like any other judge.
"""
from __future__ import annotations

import os

from src.data.faces.datamodules import TwoDomains
from src.metrics.attribute_judge import AttributeJudge, JudgeSettings, load_judge


def has_judge(datamodule) -> bool:
    """Whether the DataModule's items carry face attributes a judge can read (two-domain procedural faces)."""
    if getattr(datamodule, "domain_attribute", None) is None or not hasattr(datamodule, "labelled_faces"):
        return False
    datamodule.setup()
    return isinstance(datamodule.split("train"), TwoDomains)


def domain_judge(datamodule, cache_dir: str | os.PathLike | None = None, settings: JudgeSettings = JudgeSettings(),
                 device=None) -> AttributeJudge:
    """The judge of a two-domain faces DataModule, trained on its labelled faces (cached; drawn on first use)."""
    return load_judge(datamodule.labelled_faces(), cache_dir, settings, device)
