"""Editing images through a generator's code, the two ways of Zhu et al. 2016 (and of the lecture on inversion):

- **Attribute vectors**: v = mean code of images that show an attribute's value − mean code of those that do not
  (codes from inversion, labels from the dataset); an edit is G(z + α·v), α signed (α > 0 adds the value, α < 0
  takes it away). :func:`attribute_vector`, :func:`shift`.
- **Edits under a user constraint** ("Generative Visual Manipulation on the Natural Image Manifold", eq. 5 as the
  lecture states it): from the code z₀ of the image,

      z* = argmin_z  λ_u·U(G(z)) + λ_s·‖z − z₀‖² + λ_d·R(G(z), z)  (+ the inversion's prior term λ_p·(−log p(z)))

  where U is the user's constraint, a colour stroke (:class:`StrokeConstraint`: masked squared error to a colour)
  and/or a target attribute value (:class:`AttributeConstraint`: the attribute judge's cross-entropy to that value),
  and R the realism term from the family's D (the adapter's ``realism``: −log D(x) for a logistic D, −D(x) for a
  WGAN critic). ‖z − z₀‖² and the prior term are means over the code's dimensions, as the inversion's prior term
  (their weights mean the same at any latent size). The paper's last step, transferring the change back onto the
  photo by optical flow, is not done: the edit is G(z*). :func:`constrained_edit`.

The variable moved is the adapter's free parameterisation, with the inversion's optimiser
(:func:`~src.inversion.optimize.minimise`); G, D and the judge are frozen.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

import torch
import torch.nn.functional as F
from torch import Tensor

from src.inversion.adapters import GeneratorAdapter
from src.inversion.optimize import OptimizeSettings, minimise
from src.metrics.attribute_judge import AttributeJudge
from src.utils.arguments import Meaning
from src.utils.errors import ConfigError

Weight = Annotated[float, Meaning("a loss weight", at_least=0)]


def value_index(spec: Sequence[tuple[str, Sequence[str]]], attribute: str, value: str | None) -> tuple[int, int]:
    """(column of ``attribute``, index of ``value``) in a judge's spec; ``value`` may be left out for a binary
    attribute (it is then ``yes``). A ConfigError naming the known attributes or values otherwise."""
    names = [name for name, _ in spec]
    if attribute not in names:
        raise ConfigError(f"attribute={attribute} is not an attribute of this dataset; use one of {', '.join(names)}.")
    column = names.index(attribute)
    values = list(spec[column][1])
    if value is None:
        if values != ["no", "yes"]:
            raise ConfigError(f"attribute={attribute} has the values {', '.join(values)}; pass target=<one of them>.")
        value = "yes"
    if str(value) not in values:
        raise ConfigError(f"target={value} is not a value of {attribute}; use one of {', '.join(values)}.")
    return column, values.index(str(value))


def attribute_vector(codes: Tensor, attrs: Tensor, column: int, value: int) -> Tensor:
    """v = mean of the codes whose attribute ``column`` has ``value`` − mean of the others: codes N×D, attrs N×K
    (the labels of the images the codes were found for) → D. A ConfigError when either group is empty."""
    has = attrs[:, column].to(codes.device) == value
    if has.all() or not has.any():
        raise ConfigError(f"The attribute vector needs images with and without the value; all {len(has)} labelled "
                          f"images {'have' if has.all() else 'lack'} it. Use more images (vector_images).")
    return codes[has].mean(0) - codes[~has].mean(0)


def shift(codes: Tensor, vector: Tensor, strength: float | Tensor) -> Tensor:
    """z + α·v for codes N×D; ``strength`` a number or one per item (N), e.g. signed to toggle each image."""
    alpha = torch.as_tensor(strength, dtype=codes.dtype, device=codes.device)
    return codes + (alpha[:, None] if alpha.ndim == 1 else alpha) * vector.to(codes.device)


class StrokeConstraint:
    """A colour stroke: the share of the image under ``mask`` should have ``color``. U(x) = Σ mask·(x − c)² /
    (Σ mask · C) per item.

    mask: H×W (or 1×H×W) of 0/1 at G's size, the same for every image, or N×1×H×W one per image;
    color: C values in [-1, 1] (the image's channels).
    """

    def __init__(self, mask: Tensor, color: Sequence[float] | Tensor):
        mask = torch.as_tensor(mask, dtype=torch.float32)
        self.mask = mask.reshape(1, 1, *mask.shape[-2:]) if mask.ndim < 4 else mask
        if self.mask.sum() == 0:
            raise ConfigError("The stroke mask is empty (no pixel above half brightness); draw the stroke in white "
                              "on black.")
        self.color = torch.as_tensor(color, dtype=torch.float32).reshape(1, -1, 1, 1)

    def __call__(self, images: Tensor) -> Tensor:
        if images.shape[1] != self.color.shape[1] or images.shape[-2:] != self.mask.shape[-2:]:
            raise ConfigError(f"The stroke is {self.color.shape[1]} colour values on a "
                              f"{'×'.join(map(str, self.mask.shape[-2:]))} mask; the generator makes "
                              f"{'×'.join(map(str, images.shape[1:]))} images. Give one value per channel.")
        mask, color = self.mask.to(images.device), self.color.to(images.device)
        squared = (images - color).pow(2) * mask
        return squared.flatten(1).sum(1) / (mask.flatten(1).sum(1) * images.shape[1])


class AttributeConstraint:
    """A target attribute value: U(x) = the judge's cross-entropy of ``value`` on attribute ``column``, per item;
    ``value`` one index for every image, or one per image (N; e.g. the opposite of each image's own value). The judge
    is frozen; the gradient reaches the images (and so the code) through it."""

    def __init__(self, judge: AttributeJudge, column: int, value: int | Tensor):
        self.judge, self.column, self.value = judge, column, torch.as_tensor(value, dtype=torch.long)

    def __call__(self, images: Tensor) -> Tensor:
        logits = self.judge.net.to(images.device)(self.at_judge_size(images).float())[self.column]
        return F.cross_entropy(logits, self.value.to(images.device).expand(len(images)), reduction="none")

    def at_judge_size(self, images: Tensor) -> Tensor:
        """Images resized (bilinear, differentiably) to the judge's side where G's differs (ProGAN mid-growth)."""
        side = self.judge.image_shape[-1]
        if images.shape[-1] != side:
            images = F.interpolate(images, size=(side, side), mode="bilinear", align_corners=False, antialias=True)
        return images

    def satisfied(self, images: Tensor) -> Tensor:
        """Per item, whether the judge reads the target value (bool N)."""
        return self.judge.predict(self.at_judge_size(images))[:, self.column] == self.value.to(images.device)


@dataclass(frozen=True)
class EditSettings:
    """The weights of the constrained edit's terms (λ_u on the constraints, λ_s on ‖z − z₀‖², λ_d on D's realism
    term, λ_p on the prior term) and the optimiser (Adam ``steps`` of ``lr``)."""

    constraint_weight: Weight = 1.0
    stay_weight: Weight = 1.0
    realism_weight: Weight = 0.05
    prior_weight: Weight = 1e-3
    steps: Annotated[int, Meaning("optimisation steps", at_least=1)] = 200
    lr: Annotated[float, Meaning("the learning rate", at_least=0)] = 0.05


def constrained_edit(adapter: GeneratorAdapter, start: Tensor, constraints: Sequence, settings: EditSettings
                     ) -> Tensor:
    """Codes N×latent_dim minimising the constrained objective (module docstring) from the codes ``start`` (z₀);
    ``constraints``: callables images → N (summed, weighted by λ_u). R is left out, with a warning, for a family
    without D (VAE, twin autoencoder)."""
    if not constraints:
        raise ConfigError("A constrained edit needs a constraint: stroke=<mask.png> with color=[r,g,b], and/or "
                          "attribute=<name> with target=<value>.")
    z0 = start.detach()
    realism_weight = settings.realism_weight
    if realism_weight > 0 and adapter.realism(adapter.decode(z0[:1]), z0[:1]) is None:
        warnings.warn(f"{type(adapter.model).__name__} has no discriminator: the edit has no realism term.",
                      stacklevel=2)
        realism_weight = 0.0

    def loss(images: Tensor, z: Tensor) -> Tensor:
        total = settings.constraint_weight * sum(constraint(images) for constraint in constraints)
        total = total + settings.stay_weight * (z - z0).pow(2).flatten(1).mean(1)
        if realism_weight > 0:
            total = total + realism_weight * adapter.realism(images, z)
        return total

    optimize = OptimizeSettings(optimizer="adam", steps=settings.steps, lr=settings.lr,
                                prior_weight=settings.prior_weight)
    return adapter.code(minimise(adapter, adapter.free(z0), loss, optimize))
