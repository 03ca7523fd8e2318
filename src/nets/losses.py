"""GAN losses as small pure functions (no Lightning): logits in, scalar losses out."""
from __future__ import annotations

import math
from collections.abc import Callable

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


def kl_to_standard_normal(mu: Tensor, log_var: Tensor) -> Tensor:
    """KL(N(μ, diag σ²) ‖ N(0, I)) = −½ Σ (1 + log σ² − μ² − σ²): summed over the N×M code dims, mean over N
    (the VAE's L_prior)."""
    return (-0.5 * (1 + log_var - mu.pow(2) - log_var.exp())).sum(dim=1).mean()


def fixed_gaussian_nll(prediction: Tensor, target: Tensor, sigma: float = 1.0) -> Tensor:
    """−log N(target; prediction, σ² I) without its constant (½·log 2πσ² per dim): ½ Σ ((prediction − target) / σ)²,
    summed over every dim but the first, mean over N. With σ = 1 it is half the squared error: VAE-GAN's L_llike on
    the discriminator's features, or a VAE's pixel likelihood."""
    return (0.5 * ((prediction - target) / sigma).pow(2)).flatten(1).sum(dim=1).mean()


def cross_entropy_to(logits: Tensor, target_class: int) -> Tensor:
    """Cross-entropy of N×K logits against one class for every sample, batch mean (the three-class discriminator's
    loss for a set that is all real, all reconstructions or all prior samples)."""
    return F.cross_entropy(logits, torch.full((logits.shape[0],), target_class, dtype=torch.long,
                                              device=logits.device))


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor,
                     generator: torch.Generator | None = None) -> Tensor:
    """WGAN-GP's penalty (Gulrajani et al. 2017): E[(‖∇ₓ̂ D(x̂)‖₂ − 1)²] at x̂ = ε·real + (1 − ε)·fake, ε ∼ U(0, 1)
    per sample; the norm of each sample's gradient is taken over all of C·H·W (tkarras `loss.py`; T2F's
    `Losses.py` takes it over the channels only, a bug not copied). The graph is kept so the penalty trains D."""
    epsilon = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype, generator=generator)
    mixed = torch.lerp(fake.detach(), real.detach(), epsilon).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).float().sum(), mixed, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


class WGANGP:
    """The Wasserstein loss with gradient penalty and ProGAN's drift term (tkarras `loss.py`, ``D_wgangp_acgan``):

        L_D = E[D(fake)] − E[D(real)] + λ·E[(‖∇D(x̂)‖ − 1)²] + ε_drift·E[D(real)²]
        L_G = −E[D(fake)]

    Args: gp_lambda (λ, paper 10), drift (ε_drift, paper 0.001). Scores are D's raw outputs (N).
    """

    def __init__(self, gp_lambda: float = 10.0, drift: float = 0.001):
        self.gp_lambda, self.drift = gp_lambda, drift

    def real_term(self, scores: Tensor) -> Tensor:
        return -scores.mean() + self.drift * scores.pow(2).mean()

    def fake_term(self, scores: Tensor) -> Tensor:
        return scores.mean()

    def generator_loss(self, scores: Tensor) -> Tensor:
        return -scores.mean()

    def penalty(self, critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor) -> Tensor:
        return self.gp_lambda * gradient_penalty(critic, real, fake)


class NonSaturating:
    """The non-saturating GAN loss (Goodfellow et al. 2014) on D's logits, an alternative to :class:`WGANGP`:

        L_D = −E[log σ(D(real))] − E[log(1 − σ(D(fake)))]      L_G = −E[log σ(D(fake))]

    Optionally with WGAN-GP's penalty (``gp_lambda`` > 0; 0 by default: no penalty).
    """

    def __init__(self, gp_lambda: float = 0.0):
        self.gp_lambda = gp_lambda

    def real_term(self, scores: Tensor) -> Tensor:
        return bce_real(scores)

    def fake_term(self, scores: Tensor) -> Tensor:
        return bce_fake(scores)

    def generator_loss(self, scores: Tensor) -> Tensor:
        return bce_real(scores)

    def penalty(self, critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor) -> Tensor:
        if self.gp_lambda == 0:
            return real.new_zeros(())
        return self.gp_lambda * gradient_penalty(critic, real, fake)


def gaussian_kl(mu: Tensor, log_var: Tensor) -> Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) = 0.5·Σ(μ² + σ² − log σ² − 1), summed over the N×D dims, mean over N (StackGAN's
    conditioning-augmentation term)."""
    return 0.5 * (mu.pow(2) + log_var.exp() - log_var - 1).sum(dim=1).mean()


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
