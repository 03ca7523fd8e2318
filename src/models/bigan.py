"""BiGAN (Donahue et al. 2017) / ALI (Dumoulin et al. 2017), and the twin autoencoder the lecture sets against it.

Names (paper → here): G → ``decoder``, E → ``encoder`` (both in ``self.generator``, see
:mod:`src.models.autoencoding`), D → ``discriminator`` (:class:`~src.nets.bigan.JointDiscriminator`).
z ~ U(−1, 1)^latent_dim (BiGAN's prior); x real, N×C×H×W in [-1, 1].

BiGAN, per batch (one D step, then one G+E step, from the same x and z):
    D   ← BCE(D(x, E(x)), real) + BCE(D(G(z), z), fake)          E(x) and G(z) detached
    G,E ← BCE(D(x, E(x)), fake) + BCE(D(G(z), z), real)          the flipped-label (non-saturating) loss
E learns only adversarially: no reconstruction loss anywhere. G and E share one Adam optimizer (``g``; lr 2e-4,
β1 = 0.5, the paper), D has its own (``d``).

Twin autoencoder (the lecture's baseline, the same G and E, no D): an autoencoder x → E → G → x and a reverse one
z → G → E → z, trained on reconstruction errors only,
    L = ‖G(E(x)) − x‖² + λ_z·‖E(G(z)) − z‖²      (mean squared errors per pixel and per code dim)
with one optimizer over G and E. Its reconstructions are blurry copies; BiGAN's G(E(x)) should be sharp images of
the same kind.
"""
from __future__ import annotations

from functools import partial
from itertools import chain
from typing import Annotated

import torch
import torch.nn.functional as F
from torch import Tensor

from src.models.autoencoding import AutoencodingModule, GridColumns
from src.nets.bigan import JointDiscriminator
from src.nets.conv import ConvDecoder, ConvEncoder, LatentDim
from src.nets.losses import bce_fake, bce_real
from src.utils.arguments import Meaning, checked


class UniformAutoencoder(AutoencodingModule):
    """A deterministic encoder z = E(x) and the uniform prior U(−1, 1): what BiGAN and the twin autoencoder share."""

    def __init__(self, encoder: ConvEncoder, decoder: ConvDecoder, optimizer_g: partial, latent_dim: int,
                 grid_columns: int, ema_decay: float | None, schedulers: dict | None):
        super().__init__(encoder, decoder, latent_dim, grid_columns, ema_decay, schedulers)
        self.optimizer_g = optimizer_g
        self.register_grid_latents()

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.rand(n, self.latent_dim, device=self.device, generator=generator) * 2 - 1

    def generator_optimizer(self) -> torch.optim.Optimizer:
        """One optimizer over G and E (they minimise the same loss)."""
        return self.optimizer_g(chain(self.decoder.parameters(), self.encoder.parameters()))


class BiGAN(UniformAutoencoder):
    @checked
    def __init__(self, encoder: ConvEncoder, decoder: ConvDecoder, discriminator: JointDiscriminator,
                 optimizer_g: partial, optimizer_d: partial, latent_dim: LatentDim, grid_columns: GridColumns = 8,
                 ema_decay: float | None = None, schedulers: dict | None = None):
        super().__init__(encoder, decoder, optimizer_g, latent_dim, grid_columns, ema_decay, schedulers)
        self.save_hyperparameters(ignore=["encoder", "decoder", "discriminator", "optimizer_g", "optimizer_d",
                                          "schedulers"])
        self.discriminator = discriminator
        self.optimizer_d = optimizer_d

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"g": self.generator_optimizer(), "d": self.optimizer_d(self.discriminator.parameters())}

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        optimizer_g, optimizer_d = self.optimizers()
        real = batch["image"]
        z = self.sample_prior(real.shape[0])
        code, fake = self.encoder(real), self.decoder(z)

        real_logits = self.discriminator(real, code.detach())
        fake_logits = self.discriminator(fake.detach(), z)
        loss_d = bce_real(real_logits) + bce_fake(fake_logits)
        self.check_finite({"loss_d": loss_d})
        self.step(optimizer_d, loss_d)

        def generator_loss() -> Tensor:
            loss = bce_fake(self.discriminator(real, code)) + bce_real(self.discriminator(fake, z))
            self.check_finite({"loss_g": loss})
            return loss

        loss_g = self.step(optimizer_g, generator_loss)
        self.log_dict({"train/loss_d": loss_d.detach(), "train/loss_g": loss_g.detach(),
                       "train/d_real": torch.sigmoid(real_logits).mean().detach(),
                       "train/d_fake": torch.sigmoid(fake_logits).mean().detach()})


class TwinAutoencoder(UniformAutoencoder):
    @checked
    def __init__(self, encoder: ConvEncoder, decoder: ConvDecoder, optimizer_g: partial, latent_dim: LatentDim,
                 latent_weight: Annotated[float, Meaning("λ_z, the weight of the code reconstruction", at_least=0)] = 1.0,
                 grid_columns: GridColumns = 8, ema_decay: float | None = None, schedulers: dict | None = None):
        super().__init__(encoder, decoder, optimizer_g, latent_dim, grid_columns, ema_decay, schedulers)
        self.save_hyperparameters(ignore=["encoder", "decoder", "optimizer_g", "schedulers"])

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"g": self.generator_optimizer()}

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        real = batch["image"]
        z = self.sample_prior(real.shape[0])
        image_error = F.mse_loss(self.decoder(self.encoder(real)), real)
        code_error = F.mse_loss(self.encoder(self.decoder(z)), z)
        loss = image_error + self.hparams.latent_weight * code_error
        self.check_finite({"loss_g": loss})
        self.step(self.optimizers(), loss)
        self.log_dict({"train/loss_g": loss.detach(), "train/image_mse": image_error.detach(),
                       "train/code_mse": code_error.detach()})
