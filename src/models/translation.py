"""What the image-to-image translation families (CycleGAN, pix2pix) share: generators by direction, evaluation
streams per direction, the translation grids' fixed inputs, and the validation figures (the attribute judge's flip
and kept shares where the data has face attributes, plus each family's per-image figures).

Directions: ``"a2b"`` translates domain A's images (``batch["a"]``) to domain B, ``"b2a"`` the reverse. A family's
``self.generator`` is an ``nn.ModuleDict`` by direction (CycleGAN: both, pix2pix: ``a2b``), so the EMA shadow copy,
sampling and ``src.translate`` treat every family alike.

Evaluation (every validation, on ``eval_split``, ``val`` by default; the benchmarks use ``test``):
- FID/KID per direction: stream ``a2b`` scores G(held-out A) against real held-out B, ``b2a`` the reverse
  (``val/fid/a2b``, ``val/fid/b2a``); ``val/fid`` is the ``primary`` direction's.
- with face attributes (``data=faces_unpaired``, ``faces_paired``): ``val/flip_<direction>``, the share of
  translations whose domain attribute the judge reads as flipped, and ``val/kept_<direction>``, the share of the
  other attributes it reads as kept (:mod:`src.metrics.domain_judge`; trained on real faces only, cached).
- the family's own per-image figures (:meth:`TranslationModule.per_image_figures`), averaged: ``val/<name>``.
"""
from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Annotated, ClassVar, Literal

import torch
from torch import Tensor, nn
from pytorch_lightning.utilities import move_data_to_device
from torch.utils.data import default_collate

from src.metrics.attribute_judge import AttributeJudge, JudgeSettings, flip_rate, kept_share
from src.metrics.domain_judge import domain_judge, has_judge
from src.models.base import EvalStream, GANModule, RealSet
from src.utils.errors import ConfigError
from src.utils.arguments import Meaning

#: (source key, target key) of each direction.
SIDES = {"a2b": ("a", "b"), "b2a": ("b", "a")}
Direction = Literal["a2b", "b2a"]
GridSize = Annotated[int, Meaning("held-out images per translation grid", at_least=1)]
EvalSize = Annotated[int, Meaning("held-out items scored at each validation", at_least=1)]


def per_image_l1(x: Tensor, y: Tensor) -> Tensor:
    """Mean absolute difference of each item of two N×C×H×W batches: N values."""
    return (x - y).abs().flatten(1).mean(1)


class TranslationModule(GANModule):
    """Args (the families pass their own on):
    generators: direction → net (images N×C×H×W in [-1, 1] → the other domain's).
    image_shape: (C, H, W) of the data, for the grids' fixed inputs.
    primary: the direction whose FID is ``val/fid`` (checkpoints keep the best by it).
    eval_split: the split evaluated at every validation (``val``; ``test`` for final numbers).
    eval_size: the held-out items the per-image figures and the judge score (FID: as many as metrics.num_fake_*).
    grid_size: held-out images per grid.
    judge_settings: how the attribute judge trains (:class:`JudgeSettings`), or None for no judge.
    judge_cache_dir: where the judge is cached (null: $GANZOO_CACHE or ~/.cache/ganzoo).
    """

    data_kinds: ClassVar[tuple[str, ...]] = ("unpaired",)
    generator: nn.ModuleDict

    def __init__(self, generators: Mapping[str, nn.Module], image_shape: Sequence[int], primary: str = "a2b",
                 eval_split: str = "val", eval_size: int = 500, grid_size: int = 8, judge_settings: JudgeSettings | None = JudgeSettings(),
                 judge_cache_dir: str | None = None, ema_decay: float | None = None, schedulers: dict | None = None):
        super().__init__(nn.ModuleDict(dict(generators)), ema_decay=ema_decay, schedulers=schedulers)
        if primary not in self.generator:
            raise ConfigError(f"model.primary={primary}: this model translates {', '.join(self.generator)} only.")
        self.primary, self.eval_split, self.eval_size = primary, eval_split, eval_size
        self.judge_settings, self.judge_cache_dir = judge_settings, judge_cache_dir
        self.judge: AttributeJudge | None = None
        self.domain_attribute: str | None = None
        # The grids' inputs, fixed held-out images taken at fit start; buffers, so a checkpoint alone can draw them.
        self.register_buffer("grid_a", torch.zeros(grid_size, *image_shape))
        self.register_buffer("grid_b", torch.zeros(grid_size, *image_shape))
        self._judged: dict[str, Tensor] = {}

    # ----- translation ------------------------------------------------------------------------------------
    def translate(self, direction: str, images: Tensor, net: nn.ModuleDict | None = None) -> Tensor:
        """One direction's translation of N×C×H×W images in [-1, 1], by ``net`` (default: the trained generators)."""
        return (net if net is not None else self.generator)[direction](images)

    @torch.no_grad()
    def translate_batch(self, direction: str, batch: Mapping[str, Tensor],
                        generator: torch.Generator | None = None) -> Tensor:
        """The evaluation generators' translation of a batch's source images (deterministic: ``generator`` unused)."""
        return self.translate(direction, batch[SIDES[direction][0]], self.eval_generator)

    def evaluation_streams(self) -> list[EvalStream]:
        """Per direction, its translations of held-out source images against real held-out target images; the
        primary direction first."""
        order = [self.primary, *(d for d in self.generator if d != self.primary)]
        return [EvalStream(d, make=functools.partial(self.translate_batch, d),
                           real=RealSet(self.eval_split, SIDES[d][1]), inputs=RealSet(self.eval_split, SIDES[d][0]))
                for d in order]

    # ----- validation -------------------------------------------------------------------------------------
    def per_image_figures(self, batch: Mapping[str, Tensor], translations: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """The family's own figures of a validation batch, one value per item (logged as ``val/<name>``, the mean)."""
        return {}

    def setup(self, stage: str) -> None:
        """The judge (where the data has face attributes) and the grids' held-out inputs, for fit and validate."""
        datamodule = self.trainer.datamodule
        if self.judge_settings is not None and has_judge(datamodule):
            self.judge = domain_judge(datamodule, self.judge_cache_dir, self.judge_settings, self.device)
            self.domain_attribute = datamodule.domain_attribute
        held_out = datamodule.eval_subset(self.eval_split, len(self.grid_a))
        batch = default_collate([held_out[i % len(held_out)] for i in range(len(self.grid_a))])
        self.grid_a.copy_(batch["a"])
        self.grid_b.copy_(batch["b"])

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        """Nothing per batch: the figures are taken on ``eval_split`` at the epoch's end (the validation loader
        reads the ``val`` split, whatever ``eval_split`` says)."""

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        scores = {f"val/{name}": values.mean() for name, values in self.held_out_figures().items()
                  if not name.startswith(("predicted_", "before_"))}
        if self.judge is not None:
            figures = self._judged
            for direction in self.generator:
                predicted, before = figures[f"predicted_{direction}"].long(), figures[f"before_{direction}"].long()
                scores[f"val/flip_{direction}"] = flip_rate(predicted, before, self.domain_attribute, self.judge.names)
                kept = kept_share(predicted, before, self.domain_attribute, self.judge.names)
                scores[f"val/kept_{direction}"] = kept.pop("mean")
                # each other attribute's share too (val/kept_a2b/hair_color …): which ones a translation loses
                scores.update({f"val/kept_{direction}/{name}": share for name, share in kept.items()})
        self.log_dict(scores, sync_dist=True)  # the same on every rank: gathered

    @torch.no_grad()
    def held_out_figures(self) -> dict[str, Tensor]:
        """Per-item figures of the first ``eval_size`` items of ``eval_split`` (the same items as FID's), each rank
        translating items i ≡ rank (mod world size), gathered on every rank: name → N values (N×K judge
        predictions under ``predicted_<direction>``, the source's attributes under ``before_<direction>``)."""
        items = self.trainer.datamodule.eval_subset(self.eval_split, self.eval_size)
        rank, world = self.global_rank, self.trainer.world_size
        mine = list(range(rank, len(items), world))
        batch_size = self.trainer.datamodule.batch_size
        figures: dict[str, list[Tensor]] = defaultdict(list)
        for start in range(0, len(mine), batch_size):
            batch = move_data_to_device(default_collate([items[i] for i in mine[start:start + batch_size]]),
                                        self.device)
            translations = {d: self.translate_batch(d, batch) for d in self.generator}
            for name, values in self.per_image_figures(batch, translations).items():
                figures[name].append(values.float())
            if self.judge is not None:
                for direction, images in translations.items():
                    figures[f"predicted_{direction}"].append(self.judge.predict(images).float())
                    figures[f"before_{direction}"].append(batch[f"attrs_{SIDES[direction][0]}"].float())
        rows = -(-len(items) // world)
        gathered = {name: self._gather(torch.cat(values), rows) for name, values in figures.items()}
        self._judged = {name: values for name, values in gathered.items() if name.startswith(("predicted_", "before_"))}
        return gathered

    def _gather(self, values: Tensor, rows: int) -> Tensor:
        """Every rank's rows of a figure on every rank: padded with NaN rows to ``rows`` each, gathered, unpadded.
        (A rank with no items must still take part: every rank has items while the split has ≥ world size.)"""
        padded = torch.full((rows, *values.shape[1:]), float("nan"), device=values.device)
        padded[: len(values)] = values
        gathered = self.all_gather(padded)
        if self.trainer.world_size > 1:
            gathered = gathered.transpose(0, 1).flatten(0, 1)  # item order: rank 0's first, rank 1's first, …
        keep = ~gathered.flatten(1).isnan().any(1) if gathered.ndim > 1 else ~gathered.isnan()
        return gathered[keep]

    @staticmethod
    def rows(*columns: Tensor) -> tuple[Tensor, int]:
        """A grid of one row per item with the given columns (e.g. A | G(A) | F(G(A))): (images, per row)."""
        return torch.stack(columns, dim=1).flatten(0, 1), len(columns)
