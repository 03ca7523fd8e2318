"""The three ways of finding z for images x (Zhu et al. 2016, §3.1), for any adapter:

- ``encoder``: z = E(x), by the family's own encoder (VAE-GAN, VAE, BiGAN, twin autoencoder; ``use_own``) or by one
  trained here with G frozen (:mod:`src.inversion.encoder`);
- ``optimize``: z minimising L(G(z), x) + λ·(−log p(z)) from a seeded random prior draw (:mod:`src.inversion.optimize`);
- ``hybrid``: the same optimisation started from the encoder's z, which avoids the poor local optima a random start
  falls into (the paper's choice).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from src.inversion.adapters import GeneratorAdapter
from src.inversion.encoder import EncoderSettings, train_encoder
from src.inversion.optimize import OptimizeSettings, minimise, random_start
from src.utils.errors import ConfigError

METHODS = ("encoder", "optimize", "hybrid")


@dataclass
class Inverter:
    """Codes of images by one method. ``reconstruction``: the per-item loss (generated, target) → N; ``real``: images
    to train a new encoder on (N×C×S×S at G's size; the images being inverted are added to them); ``encoder``: an
    already trained one (``TrainedEncoder``) to use instead of training."""

    adapter: GeneratorAdapter
    method: str
    reconstruction: nn.Module
    optimize: OptimizeSettings = OptimizeSettings()
    encoding: EncoderSettings = EncoderSettings()
    encoder: nn.Module | None = None
    real: Tensor | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"method={self.method} is not an inversion method; use one of {', '.join(METHODS)}.")

    @property
    def uses_own_encoder(self) -> bool:
        return self.adapter.has_encoder and self.encoding.use_own and self.encoder is None

    def encoder_start(self, images: Tensor) -> Tensor:
        """Free codes (N×free_dim) of ``images`` by the encoder: the family's own, the given one, or a new one
        trained now (kept in ``self.encoder`` for the next batch)."""
        if self.uses_own_encoder:
            with torch.no_grad():
                return self.adapter.free(self.adapter.encode(images))
        if self.encoder is None:
            real = images if self.real is None else torch.cat([self.real.to(images.device), images])
            self.encoder = train_encoder(self.adapter, real, self.reconstruction, self.encoding)
        with torch.no_grad():
            return self.encoder(images)

    def __call__(self, images: Tensor) -> Tensor:
        """Codes N×latent_dim of images N×C×S×S in [-1, 1] (at G's size, on the adapter's device)."""
        if self.method == "encoder":
            return self.adapter.code(self.encoder_start(images))
        start = (random_start(self.adapter, len(images), self.optimize.seed) if self.method == "optimize"
                 else self.encoder_start(images))
        free = minimise(self.adapter, start, lambda generated, _: self.reconstruction(generated, images), self.optimize)
        return self.adapter.code(free)
