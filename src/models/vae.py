"""The variational autoencoder (Kingma & Welling 2014) with VAE-GAN's encoder and decoder: the baseline VAE-GAN
must beat (Larsen et al. 2016 compare against it with the same nets).

Enc(x) → (μ, log σ²); z = μ + σ ⊙ ε, ε ~ N(0, I) (the reparameterisation); x̃ = Dec(z). One loss, one optimizer over
Enc and Dec together:

    L = L_prior + L_pixel,   L_prior = KL(q(z|x) ‖ N(0, I)),   L_pixel = −log N(x; x̃, σ_x² I) = ½ Σ ((x̃ − x)/σ_x)²

(sums over code dims and pixels, mean over the batch; ``pixel_sigma`` is σ_x, in the units of images in [-1, 1]).
No discriminator. Reconstructions and the encoder's code are the posterior mean μ; prior samples are Dec(z),
z ~ N(0, I).
"""
from __future__ import annotations

from functools import partial
from itertools import chain
from typing import Annotated

import torch
from torch import Tensor

from src.models.autoencoding import AutoencodingModule, GridColumns
from src.nets.conv import ConvDecoder, LatentDim
from src.nets.losses import fixed_gaussian_nll, kl_to_standard_normal
from src.nets.vaegan import GaussianEncoder
from src.utils.arguments import Meaning, checked

PixelSigma = Annotated[float, Meaning("σ of the Gaussian pixel likelihood (images in [-1, 1])", at_least=1e-6)]


class GaussianAutoencoder(AutoencodingModule):
    """A Gaussian encoder q(z|x) = N(μ, diag σ²) with the standard normal prior: what VAE and VAE-GAN share."""

    encoder: GaussianEncoder

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn(n, self.latent_dim, device=self.device, generator=generator)

    def code_of(self, encoded: tuple[Tensor, Tensor]) -> Tensor:
        return encoded[0]  # the posterior mean μ

    def sample_noise(self, n: int) -> tuple[Tensor, Tensor]:
        """This batch's randomness, from the training RNG: (ε for the posterior draws, Z_p for prior samples)."""
        return (torch.randn(n, self.latent_dim, device=self.device),
                torch.randn(n, self.latent_dim, device=self.device))

    def posterior_sample(self, mu: Tensor, log_var: Tensor, eps: Tensor) -> Tensor:
        """z = μ + σ ⊙ ε: the reparameterised draw from q(z|x), differentiable in μ and log σ²."""
        return mu + (0.5 * log_var).exp() * eps


class VAE(GaussianAutoencoder):
    @checked
    def __init__(self, encoder: GaussianEncoder, decoder: ConvDecoder, optimizer_g: partial, latent_dim: LatentDim,
                 pixel_sigma: PixelSigma = 1.0, grid_columns: GridColumns = 8, ema_decay: float | None = None,
                 schedulers: dict | None = None):
        super().__init__(encoder, decoder, latent_dim, grid_columns, ema_decay, schedulers)
        self.save_hyperparameters(ignore=["encoder", "decoder", "optimizer_g", "schedulers"])
        self.optimizer_g = optimizer_g
        self.register_grid_latents()

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"g": self.optimizer_g(chain(self.encoder.parameters(), self.decoder.parameters()))}

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        real = batch["image"]
        mu, log_var = self.encoder(real)
        z = self.posterior_sample(mu, log_var, self.sample_noise(real.shape[0])[0])
        kl = kl_to_standard_normal(mu, log_var)
        pixel = fixed_gaussian_nll(self.decoder(z), real, self.hparams.pixel_sigma)
        loss = kl + pixel
        self.check_finite({"loss_g": loss})
        self.step(self.optimizers(), loss)
        self.log_dict({"train/loss_g": loss.detach(), "train/kl": kl.detach(), "train/nll_pixel": pixel.detach()})
