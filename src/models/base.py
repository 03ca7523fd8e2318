"""The shared GAN LightningModule: what every family has in common.

A family subclass implements ``training_step`` (its own update rule, through :meth:`GANModule.step`),
:meth:`build_optimizers`, :meth:`evaluation_streams` (what FID/KID score, see :class:`EvalStream`) and
:meth:`visualizations` (the grids worth looking at). The base owns manual optimisation, the count of images
seen, learning-rate schedules counted in images (:mod:`src.models.schedules`), the generator's EMA shadow copy
and the NaN check that every rank agrees on. Metrics are namespaced ``train/…`` and ``val/…``.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from src.models.schedules import ImageSchedule
from src.utils.errors import ConfigError, NonFiniteLossError

__all__ = ["EvalStream", "GANModule", "NonFiniteLossError", "RealSet"]


@dataclass(frozen=True)
class RealSet:
    """A set of images of the DataModule: a split (``"train"``, ``"val"``, ``"test"`` where the data has one)
    and, for two-domain data, a domain (``"a"`` or ``"b"``; ``None``: the ``"image"`` key); ``size``: the images
    average-pooled to size×size (a growing model's current resolution), ``None``: as the data gives them."""

    split: str = "train"
    domain: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class EvalStream:
    """One thing a family is scored on: fakes it makes, against real images (FID, KID and later feature metrics).

    name: the metric suffix, ``val/fid/<name>``; the first stream a family names is its primary one (``val/fid``).
    make: how the fakes are made, images N×C×H×W in [-1, 1] on the module's device, drawing all randomness
        from the ``torch.Generator`` it is given (never from the global RNG):
        - ``inputs is None``: ``make(n, generator)`` → n fakes from nothing but a count (unconditional samples);
        - otherwise ``make(batch, generator)`` → one fake per item of a collated batch of ``inputs``
          (captions → faces, A → B translations, reconstructions of held-out images).
    real: the real images the fakes are compared with.
    inputs: the held-out items the fakes are made from, or None.
    """

    name: str
    make: Callable[..., Tensor] = field(compare=False)
    real: RealSet = RealSet()
    inputs: RealSet | None = None


class GANModule(pl.LightningModule, ABC):
    """Base of every GAN family.

    Args:
        generator: everything that makes fakes (one net, or an ``nn.ModuleDict`` of them, e.g. CycleGAN's G and F),
            kept as ``self.generator``.
        ema_decay: None (off) or the decay of an exponential moving average of ``self.generator``'s weights
            (ProGAN: 0.999). The average is a shadow copy (``generator_ema``, in checkpoints; the trained generator
            is never overwritten), updated after every generator step (:meth:`update_ema`; after every batch for a
            family that steps its generator once per batch), and used for evaluation, grids and sampling.
        schedulers: per optimizer name (the keys of :meth:`build_optimizers`), a factory ``optimizer → ImageSchedule``
            (a ``_partial_`` config); each is advanced by the images seen after every batch.
    """

    #: The kinds of data (``GANDataModule.kinds``) this family can train on: any one of them will do.
    data_kinds: ClassVar[tuple[str, ...]] = ("image",)
    #: Whether the EMA is updated once per loader batch (the default, one generator step per batch). A family that
    #: takes several generator steps per batch (ProGAN's slices) sets False and calls :meth:`update_ema` after each:
    #: the decay is per generator step (the paper's 0.999 per minibatch).
    ema_each_batch: ClassVar[bool] = True
    generator: nn.Module

    def __init__(self, generator: nn.Module, ema_decay: float | None = None,
                 schedulers: Mapping[str, Callable[[torch.optim.Optimizer], ImageSchedule]] | None = None) -> None:
        super().__init__()
        self.generator = generator
        # GANs alternate several optimizers per batch; Lightning's automatic loop assumes one loss.
        self.automatic_optimization = False
        if ema_decay is not None and not 0.0 < ema_decay < 1.0:
            raise ConfigError(f"model.ema_decay={ema_decay}: must be between 0 and 1 (e.g. 0.999), or null for no EMA.")
        self.ema_decay = ema_decay
        self.scheduler_factories = dict(schedulers or {})
        # Images seen by the whole run (all ranks): what schedules count in. A buffer, so checkpoints keep it.
        self.register_buffer("images_seen", torch.zeros((), dtype=torch.int64))
        self.generator_ema: AveragedModel | None = None
        if ema_decay is not None:
            # A deep copy made now, so it starts from the same (seeded, identical on every rank) weights.
            self.generator_ema = AveragedModel(generator, multi_avg_fn=get_ema_multi_avg_fn(ema_decay),
                                               use_buffers=True).requires_grad_(False)

    # ----- what a family provides -------------------------------------------------------------------------
    @abstractmethod
    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The optimizers by name, in the order ``self.optimizers()`` returns them."""

    @abstractmethod
    def evaluation_streams(self) -> list[EvalStream]:
        """What FID/KID score at every validation, the primary stream first."""

    @abstractmethod
    def visualizations(self) -> dict[str, tuple[Tensor, int]]:
        """Grids to save and log: name → (images N×C×H×W in [-1, 1], images per row)."""

    # ----- shared machinery ---------------------------------------------------------------------------------
    @property
    def eval_generator(self) -> nn.Module:
        """The generator evaluation, grids and sampling use: the EMA copy when there is one."""
        return self.generator_ema.module if self.generator_ema is not None else self.generator

    def configure_optimizers(self):
        optimizers = self.build_optimizers()
        unknown = sorted(set(self.scheduler_factories) - set(optimizers))
        if unknown:
            raise ConfigError(f"model.schedulers names {unknown}, which are not optimizers of this model; "
                              f"its optimizers are {sorted(optimizers)}.")
        schedulers = [self.scheduler_factories[name](optimizer) for name, optimizer in optimizers.items()
                      if name in self.scheduler_factories]
        for scheduler in schedulers:
            if not isinstance(scheduler, ImageSchedule):
                raise ConfigError(f"model.schedulers must build src.models.schedules.ImageSchedule subclasses "
                                  f"(schedules counted in images seen), got {type(scheduler).__name__}.")
        return list(optimizers.values()), schedulers

    def step(self, optimizer: torch.optim.Optimizer, loss: Tensor | Callable[[], Tensor],
             when: Callable[[], bool] | None = None) -> Tensor:
        """One optimizer step on ``loss``, gradients confined to that optimizer's parameters; returns the loss.

        ``loss`` may be a function that computes it: it then runs while the optimizer is toggled, so only this
        optimizer's parameters record gradients (no other net's ``.grad`` is filled by this backward). ``when``,
        asked after the loss is computed: whether to take the step at all (VAE-GAN's equilibrium gating); it must
        answer the same on every rank.
        """
        self.toggle_optimizer(optimizer)
        if callable(loss):
            loss = loss()
        if when is None or when():
            optimizer.zero_grad(set_to_none=True)
            self.manual_backward(loss)
            optimizer.step()
        self.untoggle_optimizer(optimizer)
        return loss

    @staticmethod
    def batch_size_of(batch: Mapping[str, Any]) -> int:
        """Items in a batch dict: the length of its first tensor."""
        return next(value.shape[0] for value in batch.values() if isinstance(value, Tensor))

    def on_train_batch_end(self, outputs: Any, batch: Mapping[str, Any], batch_idx: int) -> None:
        self.images_seen += self.batch_size_of(batch) * self.trainer.world_size
        schedulers = self.lr_schedulers()
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers] if schedulers else []:
            scheduler.step_to(int(self.images_seen))
        if self.ema_each_batch:
            self.update_ema()

    def update_ema(self) -> None:
        """One step of the generator EMA (nothing when there is none)."""
        if self.generator_ema is not None:
            self.generator_ema.update_parameters(self.generator)

    def check_finite(self, losses: dict[str, Tensor]) -> None:
        """Stop every rank with a clear message when a loss is NaN/inf on any rank (checkpoints stay valid).

        The ranks agree first: a rank that stopped alone would leave the others waiting in a collective forever.
        """
        bad = {name: value.item() for name, value in losses.items() if not math.isfinite(value.item())}
        if not self.trainer.strategy.reduce_boolean_decision(bool(bad), all=False):
            return
        where = f"{bad} on rank {self.global_rank}" if bad else "on another rank"
        raise NonFiniteLossError(
            f"Non-finite loss at epoch {self.current_epoch}, batch {self.trainer.fit_loop.total_batch_idx}: "
            f"{where}. The weights before this step are in the last checkpoint. Usual fixes: lower the "
            f"learning rates (model.optimizer_g.lr / model.optimizer_d.lr), check the data for NaNs, "
            f"or resume from the last checkpoint with another seed."
        )
