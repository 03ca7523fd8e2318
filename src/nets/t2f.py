"""T2F's generator side as one module (Karnewar 2018): text encoder → conditioning augmentation → c, concatenated
with Gaussian noise → ProGAN's growing generator. One module, so the generator EMA (a shadow copy of it) averages
the text encoder and the conditioning layer with the image generator, as they are trained together.

    φ = TextEncoder(tokens, lengths)                 N×E
    c, μ, log σ² = ConditioningAugmentation(φ)        N×K each (φ detached with ``detach_text``: the encoder is D's)
    image = G([c, z], depth, α), z ∼ N(0, I)          N×C×R×R  (G's latent_dim = K + noise_dim)
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from src.nets.progan import ProGANGenerator
from src.nets.text_encoder import ConditioningAugmentation, TextEncoder
from src.utils.errors import ConfigError


class TextFakes(NamedTuple):
    images: Tensor      # N×C×R×R
    embedding: Tensor   # φ(t), N×E: what D is conditioned on
    mu: Tensor          # N×K
    log_var: Tensor     # N×K


class TextToImageGenerator(nn.Module):
    def __init__(self, text_encoder: TextEncoder, augmentation: ConditioningAugmentation, image: ProGANGenerator):
        super().__init__()
        self.text_encoder, self.augmentation, self.image = text_encoder, augmentation, image
        self.noise_dim = image.latent_dim - augmentation.output_dim
        if self.noise_dim < 0 or augmentation.linear.in_features != text_encoder.output_dim:
            raise ConfigError(
                f"T2F's sizes do not chain: the text encoder gives {text_encoder.output_dim}, the conditioning layer "
                f"takes {augmentation.linear.in_features} and gives {augmentation.output_dim}, and the image "
                f"generator's latent_dim {image.latent_dim} must hold it plus the noise. Set model.noise_dim.")

    @property
    def resolution(self) -> int:
        return self.image.resolution

    def forward(self, tokens: Tensor, lengths: Tensor, noise: Tensor, depth: int | None = None, alpha: float = 1.0,
                generator: torch.Generator | None = None, detach_text: bool = False) -> TextFakes:
        """``detach_text``: the conditioning reads φ(t) detached (no gradient from G's losses reaches the encoder);
        the returned ``embedding`` is attached either way."""
        embedding = self.text_encoder(tokens, lengths)
        c, mu, log_var = self.augmentation(embedding.detach() if detach_text else embedding, generator)
        return TextFakes(self.image(torch.cat([c, noise], dim=1), depth, alpha), embedding, mu, log_var)
