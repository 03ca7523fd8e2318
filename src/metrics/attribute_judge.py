"""The attribute judge: a classifier of face attributes, trained once per dataset on real images, and the scores the
face benchmarks build on its predictions.

T2F (do the faces show what the captions say?), VAE-GAN / BiGAN editing (did the edit flip the attribute and keep
the others?) and CycleGAN / pix2pix (did the translation change the domain attribute and nothing else?) all need
to read attributes off generated images. No pretrained attribute classifier can be downloaded here, so each dataset
trains its own (:func:`train_judge`, on its real training images only), scored on its held-out validation images,
and caches it (:func:`load_judge`) like the real FID features: the key names the dataset, its fingerprint, this
module's :data:`JUDGE_VERSION` and the training settings, so a changed renderer or setting never reuses an old judge.

Attributes (the judge's "spec"): a tuple of ``(name, values)`` pairs in the order of the items' ``"attrs"``; a value
is predicted as its index. The procedural faces have categorical attributes (``src.data.faces.attributes``), CelebA
40 binary ones (values ``("no", "yes")``, labels 0/1).
"""
from __future__ import annotations

import dataclasses
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from src.metrics.fid import images_to_uint8
from src.nets.attribute_classifier import AttributeClassifier
from src.utils.atomic import UNREADABLE_CACHE_ERRORS, save_atomically
from src.utils.hashing import digest
from src.utils.paths import cache_root

#: Raise it whenever a change here or in AttributeClassifier could change the judge a training gives (a cache key).
JUDGE_VERSION = 1
#: The values of a binary attribute (CelebA's 0/1 labels); the procedural faces' binary ones use the same names.
BINARY_VALUES = ("no", "yes")
#: The key of the all-attribute figure in the dicts the score helpers return.
MEAN = "mean"

AttributeSpec = tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class JudgeSettings:
    """How a judge is trained; all of it is part of the cache key. The defaults fit the procedural faces at 64×64
    (20k faces) in 5 to 11 minutes on 2 shared CPU cores, with every attribute at 0.99 or more on held-out faces
    (experiments/results/faces_judge.json). Measured on an earlier renderer: 4 epochs left hair colour at 0.984
    (validation), and a net twice as wide (32 to 256) trained 3× slower.

    epochs, batch_size, lr, weight_decay: AdamW with a one-cycle learning-rate schedule peaking at ``lr``.
    max_shift: random translations of up to this fraction of the image side, per image (replicated border).
    flip: random horizontal flips (none of the judged attributes is left/right).
    base_width, max_width: the classifier's widths (:class:`AttributeClassifier`).
    seed: the initialisation, the shuffle and the augmentation; training is deterministic given it (on one device).
    """

    epochs: int = 6
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 1e-4
    max_shift: float = 0.0625
    flip: bool = True
    base_width: int = 16
    max_width: int = 128
    seed: int = 0


class AttributeJudge:
    """A trained attribute classifier and the attributes it predicts.

    Not an ``nn.Module`` on purpose: a LightningModule that holds one does not put the judge's weights into its
    checkpoints, parameter counts or precision casts. The net is frozen, in eval mode, and follows the device of the
    images it is given.

    Args:
        net: images N×C×S×S in [-1, 1] → one N×len(values) logit tensor per attribute, in the order of ``spec``.
        spec: ``((name, values), ...)``, the attributes in the order of the items' ``"attrs"``.
        image_shape: (C, S, S) of the images it was trained on; other shapes are refused.
        record: how it was trained and what it scored on held-out real images (``"val_accuracy"``: {name: share,
            "mean": share}, ``"n_train"``, ``"n_val"``, ``"train_seconds"``, ``"device"``, ``"settings"``).
        batch_size: images per forward pass in :meth:`predict`.
    """

    def __init__(self, net: AttributeClassifier, spec: AttributeSpec, image_shape: tuple[int, int, int],
                 record: Mapping[str, Any] | None = None, batch_size: int = 256):
        self.net = net.eval().requires_grad_(False)
        self.spec = _checked_spec(spec)
        self.image_shape = tuple(int(s) for s in image_shape)
        self.record = dict(record or {})
        self.batch_size = batch_size
        if tuple(net.num_values) != tuple(len(values) for _, values in self.spec):
            raise ValueError(f"The net's heads have {list(net.num_values)} values, the spec "
                             f"{[len(values) for _, values in self.spec]}.")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.spec)

    @torch.no_grad()
    def probabilities(self, images: Tensor) -> list[Tensor]:
        """Images N×C×S×S in [-1, 1] → per attribute, N×len(values) probabilities (rows sum to 1), on the images'
        device."""
        self._check_images(images)
        net = self.net.to(images.device)
        chunks = [[logits.softmax(1) for logits in net(chunk.float())] for chunk in images.split(self.batch_size)]
        return [torch.cat(per_attribute) for per_attribute in zip(*chunks)]

    def predict(self, images: Tensor) -> Tensor:
        """Images N×C×S×S in [-1, 1] → int64 N×K, the most probable value's index per attribute."""
        return torch.stack([p.argmax(1) for p in self.probabilities(images)], dim=1)

    def _check_images(self, images: Tensor) -> None:
        if images.ndim != 4 or tuple(images.shape[1:]) != self.image_shape:
            raise ValueError(f"This attribute judge was trained on images N×{'×'.join(map(str, self.image_shape))}; "
                             f"got shape {tuple(images.shape)}. Judge images of the size of its dataset.")

    def state(self) -> dict[str, Any]:
        """Everything needed to rebuild this judge (plain containers and tensors, loadable with weights_only)."""
        return {"spec": [[name, list(values)] for name, values in self.spec], "image_shape": list(self.image_shape),
                "net": {"num_values": list(self.net.num_values), **self.net.config}, "weights": self.net.state_dict(),
                "record": self.record}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> AttributeJudge:
        net = AttributeClassifier(**state["net"])
        net.load_state_dict(state["weights"])
        spec = tuple((name, tuple(values)) for name, values in state["spec"])
        return cls(net, spec, tuple(state["image_shape"]), state["record"])


def _checked_spec(spec: Sequence[tuple[str, Sequence[str]]]) -> AttributeSpec:
    spec = tuple((str(name), tuple(str(v) for v in values)) for name, values in spec)
    names = [name for name, _ in spec]
    if not spec or len(set(names)) != len(names) or MEAN in names or any(len(values) < 2 for _, values in spec):
        raise ValueError(f"An attribute spec needs distinct names (not {MEAN!r}), each with at least 2 values; "
                         f"got {spec}.")
    return spec


def judge_spec(datamodule) -> AttributeSpec:
    """The attributes a DataModule's items carry in ``"attrs"``, as the judge's heads.

    From ``datamodule.attributes`` (objects with ``name`` and ``values``, as the procedural faces' ``ATTRIBUTES``)
    where it has them, else from ``datamodule.attribute_names`` (binary 0/1 labels, as CelebA's).
    """
    attributes = getattr(datamodule, "attributes", None)
    if attributes is not None:
        return _checked_spec([(a.name, a.values) for a in attributes])
    names = getattr(datamodule, "attribute_names", None)
    if names is not None:
        return _checked_spec([(name, BINARY_VALUES) for name in names])
    raise ValueError(f"data={datamodule.name} has no attribute labels (neither `attributes` nor `attribute_names`), "
                     "so no attribute judge can be trained on it; use data=faces or data=celeba.")


def _load_labelled(dataset: Dataset, spec: AttributeSpec, what: str) -> tuple[Tensor, Tensor]:
    """Every item's image and attrs: (uint8 N×C×S×S, int64 N×K). uint8 holds 20k 64×64 faces in 250 MB (float32
    would take 1 GB); images that came from 8-bit pixels go through it exactly."""
    images, attrs = [], []
    for batch in DataLoader(dataset, batch_size=256, shuffle=False):
        images.append(images_to_uint8(batch["image"]))
        attrs.append(batch["attrs"].long())
    if not images:
        raise ValueError(f"The {what} set for the attribute judge is empty.")
    images, attrs = torch.cat(images), torch.cat(attrs)
    if attrs.ndim != 2 or attrs.shape[1] != len(spec):
        raise ValueError(f"The {what} items' attrs must be N×{len(spec)} (one value index per attribute: "
                         f"{', '.join(name for name, _ in spec)}); got shape {tuple(attrs.shape)}.")
    for (name, values), column in zip(spec, attrs.T):
        if column.min() < 0 or column.max() >= len(values):
            raise ValueError(f"The {what} items' {name} values must be indices 0..{len(values) - 1} "
                             f"({', '.join(values)}); got {int(column.min())}..{int(column.max())}.")
    return images, attrs


def _to_signed(pixels: Tensor) -> Tensor:
    """uint8 in [0, 255] → float32 in [-1, 1], the inverse of images_to_uint8."""
    return pixels.float() / 127.5 - 1.0


def shift_and_flip(images: Tensor, max_shift: int, flip: bool, generator: torch.Generator) -> Tensor:
    """Each image of N×C×H×W translated by whole pixels (up to ``max_shift`` each way, border replicated) and, with
    ``flip``, mirrored left-right with probability 1/2; the draws come from ``generator`` (CPU).

    Written here because torchvision's random transforms draw one set of parameters per call from the global RNG,
    and the judge needs one set per image from its own generator. Integer shifts sampled at pixel centres with
    nearest-neighbour interpolation move pixels exactly, without blurring them.
    """
    n, _, height, width = images.shape
    shifts = torch.randint(-max_shift, max_shift + 1, (n, 2), generator=generator).float()
    signs = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0) if flip else torch.ones(n)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = signs, 1.0
    theta[:, 0, 2], theta[:, 1, 2] = 2 * shifts[:, 0] / width, 2 * shifts[:, 1] / height
    grid = F.affine_grid(theta.to(images), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="nearest", padding_mode="border", align_corners=False)


def train_judge(train_set: Dataset, val_set: Dataset, spec: AttributeSpec, settings: JudgeSettings = JudgeSettings(),
                device: str | torch.device | None = None) -> AttributeJudge:
    """Fit an attribute judge on real images and score it on held-out real images.

    Items of both sets are dicts with ``"image"`` (C×S×S in [-1, 1]) and ``"attrs"`` (int64 K, value indices in
    the order of ``spec``). The loss is the sum over attributes of each head's cross-entropy. Deterministic given
    ``settings.seed`` on a given device (cuDNN runs in its deterministic mode); the caller's global RNG is not
    moved. ``device`` defaults to CUDA when available. ``judge.record`` gets the held-out accuracies and the time
    taken, reading the items included.

    A plain loop, not a Lightning Trainer: this is a one-off fit of a fixed classifier inside a metric (called from
    a callback or a benchmark, possibly inside a running Trainer), with no logging, checkpoints or distribution.
    """
    start = time.perf_counter()
    spec = _checked_spec(spec)
    device = torch.device(device if device is not None else "cuda" if torch.cuda.is_available() else "cpu")
    # The caller's RNG stays where it was: reading items may draw from it (a captioned item picks its caption, a
    # DataLoader iterator its base seed), and the initialisation does.
    with torch.random.fork_rng(devices=[]):
        images, attrs = _load_labelled(train_set, spec, "training")
        val_images, val_attrs = _load_labelled(val_set, spec, "validation")
        torch.manual_seed(settings.seed)
        image_shape = tuple(images.shape[1:])
        net = AttributeClassifier([len(values) for _, values in spec], image_size=image_shape[-1],
                                  in_channels=image_shape[0], base_width=settings.base_width,
                                  max_width=settings.max_width)
    net.to(device).train()
    generator = torch.Generator().manual_seed(settings.seed)
    batch_size = min(settings.batch_size, len(images))
    steps_per_epoch = len(images) // batch_size  # full batches only: batch norm on a last batch of 1 is degenerate
    optimizer = torch.optim.AdamW(net.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=settings.lr,
                                                   total_steps=settings.epochs * steps_per_epoch)
    max_shift = round(settings.max_shift * image_shape[-1])
    with torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True):
        for _ in range(settings.epochs):
            order = torch.randperm(len(images), generator=generator)
            for step in range(steps_per_epoch):
                index = order[step * batch_size:(step + 1) * batch_size]
                batch = shift_and_flip(_to_signed(images[index]).to(device), max_shift, settings.flip, generator)
                targets = attrs[index].to(device)
                loss = sum(F.cross_entropy(logits, targets[:, k]) for k, logits in enumerate(net(batch)))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
    judge = AttributeJudge(net, spec, image_shape)
    judge.record = {
        "val_accuracy": attribute_accuracy(judge.predict(_to_signed(val_images).to(device)).cpu(), val_attrs,
                                           judge.names),
        "n_train": len(images), "n_val": len(val_images), "train_seconds": round(time.perf_counter() - start, 1),
        "device": str(device), "settings": dataclasses.asdict(settings),
    }
    return judge


def judge_key(datamodule, spec: AttributeSpec, settings: JudgeSettings) -> dict[str, Any]:
    """What a cached judge depends on: the dataset (name, fingerprint), its attributes, this code, the settings."""
    return {"dataset": datamodule.name, "fingerprint": datamodule.fingerprint(), "spec": spec,
            "judge_version": JUDGE_VERSION, "settings": dataclasses.asdict(settings)}


def judge_path(datamodule, cache_dir: str | os.PathLike | None = None,
               settings: JudgeSettings = JudgeSettings()) -> Path:
    """``<cache_dir>/judges/<digest of judge_key>.pt``; ``cache_dir`` defaults to ``default_cache_dir()``."""
    return _path_of(judge_key(datamodule, judge_spec(datamodule), settings), cache_dir)


def _path_of(key: dict[str, Any], cache_dir: str | os.PathLike | None) -> Path:
    return cache_root(cache_dir) / "judges" / f"{digest(key)}.pt"


def load_judge(datamodule, cache_dir: str | os.PathLike | None = None, settings: JudgeSettings = JudgeSettings(),
               device: str | torch.device | None = None, retrain: bool = False) -> AttributeJudge:
    """The judge of ``datamodule``'s attributes: read from :func:`judge_path`, else (or with ``retrain``) trained
    with :func:`train_judge` on its ``"train"`` split, scored on its ``"val"`` split and written there atomically.

    A hit reads only the file: no image is loaded or drawn. An unreadable file is trained again, with a warning.
    Its ``record`` holds the held-out accuracy per attribute.
    """
    spec = judge_spec(datamodule)
    key = judge_key(datamodule, spec, settings)
    path = _path_of(key, cache_dir)
    judge = None if retrain else _read_judge(path)
    if judge is None:
        judge = train_judge(datamodule.split("train"), datamodule.split("val"), spec, settings, device)
        save_atomically({"key": key, **judge.state()}, path)
    return judge


def _read_judge(path: Path) -> AttributeJudge | None:
    """The judge cached at ``path``, or None when there is none (a miss) or it cannot be read (with a warning)."""
    if not path.is_file():
        return None
    try:
        return AttributeJudge.from_state(torch.load(path, map_location="cpu", weights_only=True))
    except UNREADABLE_CACHE_ERRORS as error:
        warnings.warn(f"The cached attribute judge {path} is unreadable ({type(error).__name__}); training it again.",
                      stacklevel=3)
        return None


def _as_long(values: Tensor, name: str) -> Tensor:
    if values.ndim != 2:
        raise ValueError(f"{name} must be N×K attribute value indices, got shape {tuple(values.shape)}.")
    return values.detach().cpu().long()


def attribute_accuracy(predicted: Tensor, intended: Tensor, names: Sequence[str],
                       mask: Tensor | None = None) -> dict[str, float]:
    """The share of predicted values that equal the intended ones, per attribute and over all.

    predicted, intended: N×K value indices (any device). mask: N×K bool, the (item, attribute) pairs that count
    (e.g. the attributes a caption names); all of them by default. Returns {name: share among that attribute's
    counted items} for each attribute with at least one counted item, and ``"mean"``: the share among all counted
    (item, attribute) pairs (equal to the mean over attributes when every pair counts).
    """
    predicted, intended = _as_long(predicted, "predicted"), _as_long(intended, "intended")
    mask = torch.ones_like(predicted, dtype=torch.bool) if mask is None else mask.detach().cpu().bool()
    if not predicted.shape == intended.shape == mask.shape or predicted.shape[1] != len(names):
        raise ValueError(f"predicted {tuple(predicted.shape)}, intended {tuple(intended.shape)} and mask "
                         f"{tuple(mask.shape)} must all be N×{len(names)} (one column per attribute name).")
    if not mask.any():
        raise ValueError("The mask counts no (item, attribute) pair, so there is no accuracy to give.")
    # Counts as Python ints, so the shares are exact ratios in double precision.
    correct, counts = ((predicted == intended) & mask).sum(0).tolist(), mask.sum(0).tolist()
    scores = {name: correct[k] / counts[k] for k, name in enumerate(names) if counts[k] > 0}
    return scores | {MEAN: sum(correct) / sum(counts)}


def _column(names: Sequence[str], attribute: str) -> int:
    if attribute not in names:
        raise ValueError(f"Unknown attribute {attribute!r}; the judged attributes are {', '.join(names)}.")
    return list(names).index(attribute)


def _after_and_before(pred_after: Tensor, attrs_before: Tensor, names: Sequence[str]) -> tuple[Tensor, Tensor]:
    pred_after, attrs_before = _as_long(pred_after, "pred_after"), _as_long(attrs_before, "attrs_before")
    if pred_after.shape != attrs_before.shape or pred_after.shape[1] != len(names):
        raise ValueError(f"pred_after {tuple(pred_after.shape)} and attrs_before {tuple(attrs_before.shape)} must "
                         f"both be N×{len(names)}.")
    return pred_after, attrs_before


def flip_rate(pred_after: Tensor, attrs_before: Tensor, attribute: str, names: Sequence[str]) -> float:
    """The share of items whose binary ``attribute`` was flipped by an edit or translation.

    pred_after: N×K the judge's predictions on the edited images; attrs_before: N×K the labels of the images before
    the edit (any device). An item counts as flipped when the predicted value after is ``1 - value before``.
    Defined for binary attributes only (0/1 values; a ValueError otherwise).
    """
    pred_after, attrs_before = _after_and_before(pred_after, attrs_before, names)
    k = _column(names, attribute)
    after, before = pred_after[:, k], attrs_before[:, k]
    if not ((after == 0) | (after == 1)).all() or not ((before == 0) | (before == 1)).all():
        raise ValueError(f"flip_rate is defined for binary (0/1) attributes; {attribute} has values "
                         f"{sorted(set(after.tolist()) | set(before.tolist()))}.")
    return int((after == 1 - before).sum()) / len(after)


def kept_share(pred_after: Tensor, attrs_before: Tensor, exclude: str, names: Sequence[str]) -> dict[str, float]:
    """How well an edit of ``exclude`` kept every other attribute: the share of predicted values after that equal
    the labels before, for each other attribute and (``"mean"``) over all items × other attributes.

    pred_after, attrs_before: N×K as in :func:`flip_rate`.
    """
    pred_after, attrs_before = _after_and_before(pred_after, attrs_before, names)
    mask = torch.ones(attrs_before.shape, dtype=torch.bool)
    mask[:, _column(names, exclude)] = False
    return attribute_accuracy(pred_after, attrs_before, names, mask)
