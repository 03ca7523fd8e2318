"""Learning-rate schedules counted in images seen, stepped by the shared GAN module under manual optimisation.

Lightning steps schedulers only in automatic optimisation, and counts in optimizer steps or epochs; GAN papers
state schedules in images (ProGAN: 600k images per phase) or epochs of a dataset (CycleGAN: 100 constant + 100
decaying), and a batch here makes one step per optimizer. So a schedule is a function of the images the whole run
has seen (all ranks), which survives changes of batch size, world size and optimizer count. These are torch
``LRScheduler``s, so Lightning keeps their state in checkpoints and restores it on resume.
"""
from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from src.utils.errors import ConfigError


class ImageSchedule(LRScheduler):
    """Base: ``lr = base_lr · factor(images_seen)``; the shared module calls :meth:`step_to` after every batch."""

    def __init__(self, optimizer: Optimizer):
        self.images_seen = 0
        super().__init__(optimizer)

    def factor(self, images: int) -> float:
        raise NotImplementedError

    def step_to(self, images_seen: int) -> None:
        """Set the learning rates for a run that has seen ``images_seen`` images."""
        self.images_seen = images_seen
        self.step()

    def get_lr(self) -> list[float]:
        return [base_lr * self.factor(self.images_seen) for base_lr in self.base_lrs]


class ConstantThenLinearDecay(ImageSchedule):
    """The base rate for ``constant_images``, then linearly down to 0 over ``decay_images`` (CycleGAN, pix2pix:
    100 epochs constant, 100 decaying; give both in images, e.g. epochs × training images)."""

    def __init__(self, optimizer: Optimizer, constant_images: int, decay_images: int):
        if constant_images < 0 or decay_images < 1:
            raise ConfigError(f"ConstantThenLinearDecay: constant_images={constant_images} must be ≥ 0 and "
                              f"decay_images={decay_images} ≥ 1.")
        self.constant_images, self.decay_images = constant_images, decay_images
        super().__init__(optimizer)

    def factor(self, images: int) -> float:
        return max(0.0, 1.0 - max(0, images - self.constant_images) / self.decay_images)
