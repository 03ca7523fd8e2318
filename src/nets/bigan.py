"""BiGAN / ALI networks (Donahue et al. 2017; Dumoulin et al. 2017): a generator G(z), an encoder E(x) and a
discriminator of joint pairs D(x, z).

G:  :class:`~src.nets.conv.ConvDecoder` (FC → BN → ReLU → stride-2 transposed conv blocks → conv C → tanh).
E:  :class:`~src.nets.conv.ConvEncoder` (stride-2 conv blocks with LeakyReLU → FC → BN → LeakyReLU → FC latent_dim);
    deterministic, as in BiGAN: E(x) is the code itself, no noise and no variance.
D (:class:`JointDiscriminator`): x goes through its own conv layers (DCGAN-style: no BN on the first, LeakyReLU),
    z through its own small MLP; they meet late, z's features concatenated with x's before the joint FC layers
    (the paper: "z enters D late"), which end in one real/fake logit. Dropout before each joint layer, as ALI's
    discriminator (p = ``dropout``, 0 for none).

Images N×C×S×S in [-1, 1]; codes N×latent_dim (BiGAN draws z uniformly from [-1, 1]).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import torch
from torch import Tensor, nn

from src.nets.conv import Kernel, LatentDim, Width, activation, conv_block, low_side
from src.utils.arguments import Meaning, checked


class JointDiscriminator(nn.Module):
    """D(x, z) → real/fake logits N: (x, E(x)) should score real, (G(z), z) fake."""

    @checked
    def __init__(self, latent_dim: LatentDim, image_shape: tuple[int, int, int],
                 widths: Sequence[int] = (64, 128, 256), z_dim: Width = 512, joint_dim: Width = 1024,
                 kernel: Kernel = 5, dropout: Annotated[float, Meaning("the dropout probability", at_least=0)] = 0.2):
        super().__init__()
        side = low_side(image_shape, len(widths), type(self).__name__)
        blocks, channels = [], image_shape[0]
        for i, width in enumerate(widths):
            blocks.append(conv_block(channels, width, kernel, 2, norm=i > 0, act="lrelu"))
            channels = width
        self.x_path = nn.Sequential(*blocks, nn.Flatten())
        self.z_path = nn.Sequential(nn.Linear(latent_dim, z_dim), activation("lrelu"),
                                    nn.Linear(z_dim, z_dim), activation("lrelu"))
        self.joint = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(channels * side * side + z_dim, joint_dim), activation("lrelu"),
            nn.Dropout(dropout), nn.Linear(joint_dim, 1),
        )

    def forward(self, images: Tensor, z: Tensor) -> Tensor:
        return self.joint(torch.cat([self.x_path(images), self.z_path(z)], dim=1)).squeeze(1)
