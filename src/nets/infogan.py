"""InfoGAN networks (Chen et al. 2016), after openai/InfoGAN `infogan/models/regularized_gan.py`.

Generator:      FC 1024 → BN → ReLU → FC (H/4)(W/4)·128 → BN → ReLU
                → deconv4×4/2 64 → BN → ReLU → deconv4×4/2 C → tanh
Discriminator:  conv4×4/2 64 → lrelu → conv4×4/2 128 → BN → lrelu → FC 1024 → BN → lrelu   (the shared body)
                ├─ D head: FC 1                                   (real/fake logit)
                └─ Q head: FC 128 → BN → lrelu → FC code params   (categorical logits, Gaussian means [, log-stds])

Widths are constructor arguments so the config sizes the nets; H and W must be divisible by 4.
Images are N×C×H×W in [-1, 1].
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
from torch import Tensor, nn

from src.utils.arguments import Meaning, checked
from src.utils.errors import ConfigError

NoiseDim = Annotated[int, Meaning("the size of the noise z", at_least=0)]
CodeSize = Annotated[int, Meaning("the number of codes of this kind", at_least=0)]
Width = Annotated[int, Meaning("a layer width", at_least=1)]


@dataclass(frozen=True)
class QOutput:
    """What Q predicts about the codes behind an image.

    cat_logits: N×K unnormalised logits of the categorical code (K may be 0).
    cont_mean, cont_log_std: N×M parameters of a factored Gaussian over the continuous codes.
    """

    cat_logits: Tensor
    cont_mean: Tensor
    cont_log_std: Tensor


def _check_size(image_shape: tuple[int, int, int]) -> tuple[int, int]:
    _, height, width = image_shape
    if height % 4 or width % 4:
        raise ConfigError(f"InfoGAN nets need image sides divisible by 4, got {height}×{width}; set data.image_size.")
    return height // 4, width // 4


class InfoGANGenerator(nn.Module):
    """G(z, c): latent N×(noise_dim + n_categories + n_continuous) → image N×C×H×W in [-1, 1]."""

    @checked
    def __init__(
        self,
        noise_dim: NoiseDim,
        n_categories: CodeSize,
        n_continuous: CodeSize,
        image_shape: tuple[int, int, int],
        fc_dim: Width = 1024,
        base_channels: Width = 64,
    ):
        super().__init__()
        latent_dim = noise_dim + n_categories + n_continuous
        channels = image_shape[0]
        self.low_h, self.low_w = _check_size(image_shape)
        self.low_channels = 2 * base_channels
        self.fc = nn.Sequential(
            nn.Linear(latent_dim, fc_dim),
            nn.BatchNorm1d(fc_dim),
            nn.ReLU(True),
            nn.Linear(fc_dim, self.low_channels * self.low_h * self.low_w),
            nn.BatchNorm1d(self.low_channels * self.low_h * self.low_w),
            nn.ReLU(True),
        )
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(self.low_channels, base_channels, 4, 2, 1),
            nn.BatchNorm2d(base_channels),
            nn.ReLU(True),
            nn.ConvTranspose2d(base_channels, channels, 4, 2, 1),
            nn.Tanh(),
        )

    def forward(self, latent: Tensor) -> Tensor:
        hidden = self.fc(latent).view(-1, self.low_channels, self.low_h, self.low_w)
        return self.deconv(hidden)


class InfoGANDiscriminator(nn.Module):
    """Shared body with a D head (real/fake logit) and a Q head (code posterior)."""

    @checked
    def __init__(
        self,
        image_shape: tuple[int, int, int],
        n_categories: CodeSize,
        n_continuous: CodeSize,
        fixed_std: bool = True,
        base_channels: Width = 64,
        fc_dim: Width = 1024,
        q_dim: Width = 128,
        negative_slope: float = 0.1,
    ):
        super().__init__()
        channels = image_shape[0]
        low_h, low_w = _check_size(image_shape)
        self.n_categories, self.n_continuous, self.fixed_std = n_categories, n_continuous, fixed_std
        self.body = nn.Sequential(
            nn.Conv2d(channels, base_channels, 4, 2, 1),
            nn.LeakyReLU(negative_slope, True),
            nn.Conv2d(base_channels, 2 * base_channels, 4, 2, 1),
            nn.BatchNorm2d(2 * base_channels),
            nn.LeakyReLU(negative_slope, True),
            nn.Flatten(),
            nn.Linear(2 * base_channels * low_h * low_w, fc_dim),
            nn.BatchNorm1d(fc_dim),
            nn.LeakyReLU(negative_slope, True),
        )
        self.d_head = nn.Linear(fc_dim, 1)
        n_std = 0 if fixed_std else n_continuous
        self.q_head = nn.Sequential(
            nn.Linear(fc_dim, q_dim),
            nn.BatchNorm1d(q_dim),
            nn.LeakyReLU(negative_slope, True),
            nn.Linear(q_dim, n_categories + n_continuous + n_std),
        )

    def forward(self, images: Tensor) -> tuple[Tensor, QOutput]:
        """images N×C×H×W → (real/fake logits N, Q's code posterior)."""
        features = self.body(images)
        return self.d_head(features).squeeze(1), self.q(features)

    def q(self, features: Tensor) -> QOutput:
        params = self.q_head(features)
        cat_logits, cont_mean, rest = params.split(
            [self.n_categories, self.n_continuous, params.shape[1] - self.n_categories - self.n_continuous], dim=1
        )
        # openai/InfoGAN fixes σ = 1 for MNIST's continuous codes (fix_std=True); otherwise Q predicts log σ.
        log_std = torch.zeros_like(cont_mean) if self.fixed_std else rest
        return QOutput(cat_logits, cont_mean, log_std)
