"""GAN losses as small pure functions (no Lightning): logits in, scalar losses out."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def bce_real(logits: Tensor) -> Tensor:
    """Non-saturating GAN loss for samples that should be scored real: −log σ(logits), batch mean."""
    return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))


def bce_fake(logits: Tensor) -> Tensor:
    """GAN loss for samples that should be scored fake: −log(1 − σ(logits)), batch mean."""
    return F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits))


def gaussian_nll(x: Tensor, mean: Tensor, log_std: Tensor) -> Tensor:
    """−log N(x; mean, exp(log_std)²) of a factored Gaussian: summed over N×M dims, mean over N."""
    per_dim = 0.5 * ((x - mean) / log_std.exp()) ** 2 + log_std + 0.5 * math.log(2 * math.pi)
    return per_dim.sum(dim=1).mean()


def r1_penalty(real_logits: Tensor, real_images: Tensor) -> Tensor:
    """R1 gradient penalty (Mescheder et al. 2018): ‖∇ₓ D(x)‖² on real x, summed over C·H·W, batch mean.

    ``real_images`` must have had ``requires_grad`` set before D saw them. The graph is kept (create_graph) so
    the penalty trains D; the caller scales it, usually by γ/2.
    """
    (grad,) = torch.autograd.grad(real_logits.float().sum(), real_images, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def lsgan_real(predictions: Tensor) -> Tensor:
    """Least-squares GAN loss (Mao et al. 2017) for samples that should be scored real: mean (D(x) − 1)²."""
    return F.mse_loss(predictions, torch.ones_like(predictions))


def lsgan_fake(predictions: Tensor) -> Tensor:
    """Least-squares GAN loss for samples that should be scored fake: mean D(x)²."""
    return F.mse_loss(predictions, torch.zeros_like(predictions))


class LeastSquaresGANLoss:
    """The least-squares GAN loss as a pair (CycleGAN's ``gan_mode='lsgan'``), picked in a config by ``_target_``:
    ``real(D's outputs)`` and ``fake(D's outputs)``, each a batch (and patch) mean."""

    real = staticmethod(lsgan_real)
    fake = staticmethod(lsgan_fake)


class VanillaGANLoss:
    """The original GAN loss with the non-saturating generator term, as a pair (pix2pix's ``gan_mode='vanilla'``):
    ``real`` = −log σ(logits), ``fake`` = −log(1 − σ(logits)), batch (and patch) means."""

    real = staticmethod(bce_real)
    fake = staticmethod(bce_fake)
