"""The procedural faces as DataModules: captioned faces (``data=faces``) and two domains of them, unpaired
(``data=faces_unpaired``) or pixel-aligned pairs (``data=faces_paired``).

Faces are drawn by :mod:`src.data.faces.render` and cached by :mod:`src.data.faces.store`; splits are train, val and
test, each a fixed block of the face stream ``seed`` (:data:`SPLIT_START`), so the held-out faces stay the same
whatever ``train_size`` is. Drawing happens in ``prepare_data`` (once per machine); ``setup`` reads the cache, and
draws it itself where nothing ran ``prepare_data`` (a plain script).

Items (images float32 3×S×S in [-1, 1], attribute vectors int64 K in the order of
:data:`~src.data.faces.attributes.ATTRIBUTES`):

- faces: ``{"image", "attrs", "caption", "tokens", "length"}`` (:mod:`src.data.captioned`); the test split's captions
  use the held-out sentence frames of :mod:`src.data.faces.captions`.
- faces_unpaired: ``{"a", "b", "attrs_a", "attrs_b"}``: domain A is the faces of a split without
  ``domain_attribute``, B those with it (disjoint faces). Training pairs A face ``i mod |A|`` with a random B face per
  access (the global torch RNG, as CycleGAN's unaligned dataset); val and test pair A face ``i mod |A|`` with B face
  ``i mod |B|``, a fixed order. Length max(|A|, |B|).
- faces_paired: the same keys, ``a`` and ``b`` being one face drawn without and with ``domain_attribute``: identical
  but where the attribute is drawn.
"""
from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from src.data.base import BatchSize, GANDataModule, NumWorkers, ValSize
from src.data.captioned import CaptionedDataModule
from src.data.faces.attributes import ATTRIBUTES, BY_NAME, NAMES, frequencies
from src.data.faces.captions import captions_for
from src.data.faces.render import face_attributes
from src.data.faces.store import FaceBlock, faces, read
from src.utils.arguments import Meaning, checked
from src.utils.errors import ConfigError

#: Where each split's faces start in the stream of a seed (a face is (seed, index)): 2**32 faces apart.
SPLIT_START = {"train": 0, "val": 1 << 32, "test": 2 << 32}
#: The attributes a domain can be split by: those with values ("no", "yes").
BINARY = tuple(a.name for a in ATTRIBUTES if a.binary)

FaceSide = Annotated[Literal[32, 64, 128], Meaning("the side of the square faces, in pixels")]
TrainSize = Annotated[int, Meaning("the number of training faces", at_least=1)]
JudgeFaces = Annotated[int, Meaning("the number of real labelled faces the attribute judge trains on", at_least=1)]
TestSize = Annotated[int, Meaning("the number of held-out test faces", at_least=1)]
Frequencies = Annotated[Mapping[str, Mapping[str, float]] | None,
                        Meaning("overrides of the attribute frequencies, {attribute: {value: probability}}",
                                example={"eyeglasses": {"yes": 0.5}})]
CaptionsPerFace = Annotated[int, Meaning("the number of captions written for each face", at_least=1)]
CacheDir = Annotated[str | Path | None, Meaning("the cache folder (faces go under <cache_dir>/faces/); null: "
                                                "$GANZOO_CACHE or ~/.cache/ganzoo", example="~/.cache/ganzoo")]
DomainAttribute = Annotated[str, Meaning("the binary attribute that tells domain A (without) from B (with)",
                                         example="eyeglasses")]


def _plain(overrides: Mapping[str, Mapping[str, float]] | None) -> dict[str, dict[str, float]]:
    """``overrides`` as plain dicts (Hydra passes DictConfigs; the cache keys want plain values), or a ConfigError
    for a shape :func:`frequencies` cannot read."""
    plain = {}
    for name, weights in (overrides or {}).items():
        try:
            plain[str(name)] = {str(value): float(p) for value, p in weights.items()}
        except (AttributeError, TypeError, ValueError):
            raise ConfigError(f"data.attribute_frequencies.{name}={weights}: give each value's probability, e.g. "
                              f"data.attribute_frequencies={{eyeglasses: {{yes: 0.5}}}}.") from None
    return plain


def to_signed(pixels: np.ndarray) -> torch.Tensor:
    """uint8 H×W×3 → float32 3×H×W in [-1, 1]."""
    return torch.from_numpy(np.array(pixels)).permute(2, 0, 1).float().div_(127.5).sub_(1.0)


class FaceImages(Dataset):
    """Faces as ``{"image": float32 3×S×S in [-1, 1], "attrs": int64 K}``, from uint8 N×S×S×3 and int64 N×K arrays
    (memory-mapped ones are read per item, never copied whole), optionally only the faces at ``rows``."""

    def __init__(self, images: np.ndarray, attrs: np.ndarray, rows: np.ndarray | None = None):
        self.images, self.attrs = images, attrs
        self.rows = np.arange(len(images)) if rows is None else rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        row = self.rows[index]
        return {"image": to_signed(self.images[row]), "attrs": torch.from_numpy(np.array(self.attrs[row]))}


class TwoDomains(Dataset):
    """``{"a", "b", "attrs_a", "attrs_b"}`` items from the faces of domain A and of domain B.

    Training (``random_b``): item ``i`` holds A face ``i mod |A|`` and a B face drawn per access from the global
    torch RNG (in DataLoader workers, their seeded streams); length max(|A|, |B|), so an epoch shows every face of
    the larger domain. Held-out splits: item ``i`` holds A face ``i`` and B face ``i``; length min(|A|, |B|), so no
    face appears twice in an evaluation (FID's reference set of a domain, the inputs translated each way).
    """

    def __init__(self, a: FaceImages, b: FaceImages, random_b: bool):
        if len(a) == 0 or len(b) == 0:
            raise ValueError("Both domains need at least one face.")
        self.a, self.b, self.random_b = a, b, random_b

    def __len__(self) -> int:
        return max(len(self.a), len(self.b)) if self.random_b else min(len(self.a), len(self.b))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not self.random_b and index >= len(self):
            raise IndexError(f"item {index} of {len(self)}")
        j = int(torch.randint(len(self.b), ())) if self.random_b else index
        a, b = self.a[index % len(self.a)], self.b[j]
        return {"a": a["image"], "b": b["image"], "attrs_a": a["attrs"], "attrs_b": b["attrs"]}


class ProceduralFaces:
    """What the three DataModules share: the settings, the block each split is, its cached arrays.

    Args: see :class:`FacesDataModule`; ``paired_on``: draw every face without and with this attribute.
    """

    def __init__(self, image_size: int, sizes: Mapping[str, int], attribute_frequencies: Mapping | None, seed: int,
                 cache_dir: str | Path | None, paired_on: str | None = None):
        self.image_size, self.sizes, self.seed = image_size, dict(sizes), seed
        self.probs = frequencies(_plain(attribute_frequencies))  # a bad override is a ConfigError here
        self.cache_dir, self.paired_on = cache_dir, paired_on

    def block(self, split: str) -> FaceBlock:
        return FaceBlock.of(self.seed, SPLIT_START[split], self.sizes[split], self.image_size, self.probs,
                            self.paired_on)

    def keys(self) -> dict[str, str]:
        """The cache key of every split (what the data is: a change of any setting that alters a face changes it)."""
        return {split: self.block(split).key for split in self.sizes}

    def prepare(self) -> None:
        for split in self.sizes:
            faces(self.block(split), self.cache_dir)

    def arrays(self, split: str) -> dict[str, np.ndarray]:
        return faces(self.block(split), self.cache_dir)

    def attrs(self, split: str) -> np.ndarray:
        """The split's attribute vectors (N×K int64) without drawing a picture: from the cache when it is there."""
        block = self.block(split)
        cached = read(block, self.cache_dir) if self.paired_on is None else None
        if cached is not None:
            return np.asarray(cached["attrs"])
        return np.stack([face_attributes(self.seed, index, self.probs)
                         for index in range(block.first, block.first + block.count)])


def face_captions(attrs: np.ndarray, seed: int, index: int, n: int, held_out: bool) -> list[str]:
    """The ``n`` captions of face ``index`` of stream ``seed`` (attribute vector ``attrs``): its own random stream
    (seed, index, 1), apart from the picture's (seed, index)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, index, 1]))
    return captions_for(attrs, rng, n, held_out=held_out)


def _check_domain(domain_attribute: str) -> str:
    if domain_attribute not in BINARY:
        what = (f"has values {', '.join(BY_NAME[domain_attribute].values)}" if domain_attribute in BY_NAME
                else "is no face attribute")
        raise ConfigError(f"data.domain_attribute={domain_attribute} {what}; the two domains need a binary (no/yes) "
                          f"attribute: one of {', '.join(BINARY)}.")
    return domain_attribute


class FacesDataModule(CaptionedDataModule):
    """Procedural captioned faces with attribute labels, drawn and cached on first use.

    Args:
        image_size: S, the side of the square faces (32, 64 or 128 pixels).
        train_size, val_size, test_size: faces per split.
        attribute_frequencies: overrides of the default value frequencies, ``{attribute: {value: probability}}``
            (values not named share what is left in their default proportions); see
            :func:`src.data.faces.attributes.frequencies`.
        captions_per_face: captions written for each face (a training item draws one of them per access).
        cache_dir: the cache folder; faces go under ``<cache_dir>/faces/`` (null: $GANZOO_CACHE or ~/.cache/ganzoo).
        batch_size, num_workers: see :class:`GANDataModule`.
        seed: the face stream (every face, its captions) and the FID reference subset.
    """

    name = "faces"
    attributes = ATTRIBUTES  # what the attribute judge reads its heads from

    @checked
    def __init__(
        self,
        image_size: FaceSide = 64,
        train_size: TrainSize = 20000,
        val_size: ValSize = 2000,
        test_size: TestSize = 2000,
        attribute_frequencies: Frequencies = None,
        captions_per_face: CaptionsPerFace = 5,
        cache_dir: CacheDir = None,
        batch_size: BatchSize = 64,
        num_workers: NumWorkers = 0,
        seed: int = 0,
    ):
        super().__init__(batch_size=batch_size, num_workers=num_workers, val_size=val_size, seed=seed)
        attribute_frequencies = _plain(attribute_frequencies)  # plain dicts in checkpoints (weights_only loading)
        self.save_hyperparameters()
        self.faces = ProceduralFaces(image_size, {"train": train_size, "val": val_size, "test": test_size},
                                     attribute_frequencies, seed, cache_dir)
        self.image_size, self.captions_per_face = image_size, captions_per_face
        self.test_set: Dataset | None = None
        self._captions: dict[str, list[list[str]]] = {}

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (3, self.image_size, self.image_size)

    @property
    def num_classes(self) -> None:
        return None

    def source_signature(self) -> dict[str, Any]:
        return {"faces": self.faces.keys(), "captions_per_face": self.captions_per_face}

    def prepare_data(self) -> None:
        self.faces.prepare()

    def captions(self, split: str) -> list[list[str]]:
        """Every face's captions (``captions_per_face`` each): from its attributes and (seed, index) alone, so no
        picture is drawn; the test split's use the held-out sentence frames."""
        if split not in self._captions:
            start, held_out = SPLIT_START[split], split == "test"
            self._captions[split] = [face_captions(attrs, self.seed, start + i, self.captions_per_face, held_out)
                                     for i, attrs in enumerate(self.faces.attrs(split))]
        return self._captions[split]

    def train_captions(self) -> Sequence[Sequence[str]]:
        return self.captions("train")

    def _split(self, split: str) -> Dataset:
        arrays = self.faces.arrays(split)
        return self.captioned(FaceImages(arrays["images"], arrays["attrs"]), self.captions(split))

    def build_splits(self) -> tuple[Dataset, Dataset]:
        self.test_set = self._split("test")
        return self._split("train"), self._split("val")

    def image_splits(self) -> dict[str, Dataset]:
        return {"train": self.train_set, "val": self.val_set, "test": self.test_set}


class _TwoDomainFaces(GANDataModule):
    """The settings and splits both two-domain DataModules share; subclasses say how a split becomes its domains."""

    paired: ClassVar[bool]

    @checked
    def __init__(
        self,
        image_size: FaceSide = 64,
        train_size: TrainSize = 20000,
        val_size: ValSize = 2000,
        test_size: TestSize = 2000,
        attribute_frequencies: Frequencies = None,
        domain_attribute: DomainAttribute = "eyeglasses",
        judge_faces: JudgeFaces = 20000,
        cache_dir: CacheDir = None,
        batch_size: BatchSize = 64,
        num_workers: NumWorkers = 0,
        seed: int = 0,
    ):
        super().__init__(batch_size=batch_size, num_workers=num_workers, val_size=val_size, seed=seed)
        attribute_frequencies = _plain(attribute_frequencies)  # plain dicts in checkpoints (weights_only loading)
        self.save_hyperparameters()
        self.domain_attribute = _check_domain(domain_attribute)
        self.judge_faces = judge_faces
        self.faces = ProceduralFaces(image_size, {"train": train_size, "val": val_size, "test": test_size},
                                     attribute_frequencies, seed, cache_dir,
                                     paired_on=domain_attribute if self.paired else None)
        self.image_size = image_size
        self.test_set: Dataset | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (3, self.image_size, self.image_size)

    @property
    def num_classes(self) -> None:
        return None

    def source_signature(self) -> dict[str, Any]:
        return {"faces": self.faces.keys(), "domain_attribute": self.domain_attribute}

    def prepare_data(self) -> None:
        self.faces.prepare()

    @abstractmethod
    def domains(self, split: str) -> Dataset:
        """The split as :class:`TwoDomains` items."""

    def labelled_faces(self) -> FacesDataModule:
        """What the attribute judge of these domains trains on: ``judge_faces`` ordinary labelled faces of the same
        stream, renderer, size and frequencies (the first of them are this train split's faces; it trains on no val or
        test face), scored on a tenth as many faces of the val block.

        Not the train split itself: 4,000 faces at 32 px trained a judge to 0.86 mean held-out accuracy (gender 0.72,
        face shape 0.66), so "kept" read the judge's errors as lost attributes; 20,000 reach the 64-px judge's level
        (experiments/results/cyclegan_faces.json records the judge's own held-out accuracy beside what it scores).
        """
        hp = self.hparams
        return FacesDataModule(image_size=self.image_size, train_size=self.judge_faces,
                               val_size=max(1, self.judge_faces // 10), test_size=1,
                               attribute_frequencies=hp.attribute_frequencies, cache_dir=hp.cache_dir, seed=self.seed)

    def build_splits(self) -> tuple[Dataset, Dataset]:
        self.test_set = self.domains("test")
        return self.domains("train"), self.domains("val")

    def splits(self) -> dict[str, Dataset]:
        return {"train": self.train_set, "val": self.val_set, "test": self.test_set}


class FacesUnpairedDataModule(_TwoDomainFaces):
    """Two unpaired domains of procedural faces: A without ``domain_attribute``, B with it (CycleGAN-style data).

    Args:
        domain_attribute: the binary attribute that makes the domains (eyeglasses, smiling, beard or hat).
        judge_faces: the real labelled faces the attribute judge of the domains trains on (:meth:`labelled_faces`).
        The others: see :class:`FacesDataModule`.
    """

    name = "faces_unpaired"
    kinds: ClassVar[tuple[str, ...]] = ("unpaired",)
    paired = False

    def domains(self, split: str) -> Dataset:
        arrays = self.faces.arrays(split)
        column = arrays["attrs"][:, NAMES.index(self.domain_attribute)]
        with_it = np.flatnonzero(column == BY_NAME[self.domain_attribute].index("yes"))
        without = np.flatnonzero(column != BY_NAME[self.domain_attribute].index("yes"))
        if len(with_it) == 0 or len(without) == 0:
            missing = "with" if len(with_it) == 0 else "without"
            raise ConfigError(
                f"The {split} split of data=faces_unpaired has no face {missing} {self.domain_attribute} among its "
                f"{len(column)} faces, so domain {'B' if missing == 'with' else 'A'} is empty. Enlarge "
                f"data.{split}_size or set data.attribute_frequencies={{{self.domain_attribute}: {{yes: 0.5}}}}.")
        images, attrs = arrays["images"], arrays["attrs"]
        return TwoDomains(FaceImages(images, attrs, without), FaceImages(images, attrs, with_it),
                          random_b=split == "train")


class FacesPairedDataModule(_TwoDomainFaces):
    """Pixel-aligned pairs of procedural faces: each face drawn without (``a``) and with (``b``) ``domain_attribute``
    (pix2pix-style data; also usable as unpaired data).

    Args: see :class:`FacesUnpairedDataModule`.
    """

    name = "faces_paired"
    kinds: ClassVar[tuple[str, ...]] = ("paired", "unpaired")
    paired = True

    def domains(self, split: str) -> Dataset:
        arrays = self.faces.arrays(split)
        return TwoDomains(FaceImages(arrays["images_a"], arrays["attrs_a"]),
                          FaceImages(arrays["images_b"], arrays["attrs_b"]), random_b=False)
