"""VAE-GAN networks (Larsen et al. 2016, "Autoencoding beyond pixels using a learned similarity metric"), after
andersbll/autoencoding_beyond_pixels `architectures.py` (img64x64; 32 px drops the side to 4).

Encoder (Enc):  conv5×5/2 64 → BN → ReLU → conv 128 → BN → ReLU → conv 256 → BN → ReLU → FC 1024 → BN → ReLU
                → FC 2·latent_dim, split into μ and log σ²                           (q(z|x) = N(μ, diag σ²))
Decoder (Dec):  FC (S/8)²·256 → BN → ReLU → deconv5×5/2 256 → 128 → 32 (BN, ReLU) → conv5×5 C → tanh
                (:class:`~src.nets.conv.ConvDecoder`; it is also the GAN's generator)
Discriminator:  conv5×5/1 32 → ReLU → conv5×5/2 128 → BN → ReLU → conv/2 256 → BN → ReLU → conv/2 256
                  ── Dis_l(x): this 4th conv's output, before its BN (the reference code's recon_depth=9; the
                     3rd conv's with ``similarity_layer=3``) ──
                → BN → ReLU → FC 512 → BN → ReLU → FC n_classes (1: real vs generated; 3: real / reconstruction /
                prior sample)

Images are N×C×S×S in [-1, 1], S divisible by 8 (32 or 64 here).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from torch import Tensor, nn

from src.nets.conv import ConvEncoder, Kernel, LatentDim, Width, conv_block, low_side
from src.utils.arguments import Meaning, checked
from src.utils.errors import ConfigError


class GaussianEncoder(nn.Module):
    """Enc(x) → (μ, log σ²), each N×latent_dim: the VAE's diagonal Gaussian posterior q(z | x)."""

    @checked
    def __init__(self, latent_dim: LatentDim, image_shape: tuple[int, int, int],
                 widths: Sequence[int] = (64, 128, 256), fc_dim: Width = 1024, kernel: Kernel = 5):
        super().__init__()
        self.latent_dim = latent_dim
        self.net = ConvEncoder(image_shape, 2 * latent_dim, widths, fc_dim, kernel)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        mu, log_var = self.net(images).chunk(2, dim=1)
        return mu, log_var


class VAEGANDiscriminator(nn.Module):
    """Dis(x) → (logits N×n_classes, features Dis_l(x) N×widths[l−1]×side×side).

    The features are the learned similarity metric: the output of conv layer l = ``similarity_layer`` before its
    batch norm (the paper and the reference code: the 4th and last, S/8 on a side; 3 takes the 3rd, S/4 on a side,
    the 8×8 grid the reference's 4th conv has on its 64-px faces when the images are 32 px).
    ``n_classes`` = 1 gives one real/fake logit per image (squeezed to N), 3 the three-class variant.
    """

    @checked
    def __init__(self, image_shape: tuple[int, int, int], n_classes: Literal[1, 3] = 1,
                 widths: Sequence[int] = (32, 128, 256, 256), fc_dim: Width = 512, kernel: Kernel = 5,
                 similarity_layer: Annotated[int, Meaning("the conv layer whose output is Dis_l (1 = first)",
                                                          at_least=2)] = 4):
        super().__init__()
        if similarity_layer > len(widths):
            raise ConfigError(f"model.discriminator.similarity_layer={similarity_layer}: D has {len(widths)} conv "
                              f"layers; pick one of 2..{len(widths)} (the paper: the last).")
        side = low_side(image_shape, len(widths) - 1, type(self).__name__)
        channels, convs = image_shape[0], []
        for k, width in enumerate(widths):
            # conv → [BN] → ReLU, the first unnormalised and stride 1, the others stride 2; the similarity layer's
            # conv stands alone so that Dis_l(x) is taken before its batch norm.
            block = conv_block(channels, width, kernel, 1 if k == 0 else 2, norm=k > 0)
            convs.extend([block] if k + 1 != similarity_layer else list(block))
            channels = width
        self.features = nn.Sequential(*convs[:similarity_layer])
        self.head = nn.Sequential(  # (the paper's layer: the same parameter names as before the choice existed)
            *convs[similarity_layer:], nn.Flatten(),
            nn.Linear(widths[-1] * side * side, fc_dim, bias=False), nn.BatchNorm1d(fc_dim), nn.ReLU(inplace=True),
            nn.Linear(fc_dim, n_classes),
        )
        self.n_classes = n_classes

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        features = self.features(images)
        logits = self.head(features)
        return (logits.squeeze(1) if self.n_classes == 1 else logits), features
