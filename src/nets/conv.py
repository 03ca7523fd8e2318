"""Convolutional pieces shared by the autoencoding families (VAE-GAN, VAE, BiGAN, twin autoencoder).

- :func:`conv_block`: conv (or transposed conv) → [batch norm] → activation, the one block builder of these nets.
- :class:`ConvEncoder`: image N×C×S×S in [-1, 1] → stride-2 conv blocks → [FC → BN → act] → FC to ``out_features``.
- :class:`ConvDecoder`: code N×latent_dim → FC (S/2^k)²·widths[0] → BN → ReLU → k stride-2 transposed conv blocks
  → conv C → tanh, images N×C×S×S in [-1, 1].

Convolutions are k×k with "same" padding: a stride-2 conv halves an even side, a stride-2 transposed conv doubles it
(output_padding 1), as in Larsen et al.'s 5×5 deeppy layers. Layers followed by batch norm carry no bias (the
norm's shift replaces it).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from torch import Tensor, nn

from src.utils.arguments import Meaning, checked
from src.utils.errors import ConfigError

Width = Annotated[int, Meaning("a layer width", at_least=1)]
LatentDim = Annotated[int, Meaning("the size of the code z", at_least=1)]
Kernel = Annotated[int, Meaning("the convolution kernel side (odd)", at_least=1)]
Activation = Literal["relu", "lrelu"]

#: LeakyReLU's slope where an activation is "lrelu" (DCGAN, BiGAN, ALI use 0.2).
LEAKY_SLOPE = 0.2


def activation(name: Activation) -> nn.Module:
    """``relu`` or ``lrelu`` (slope :data:`LEAKY_SLOPE`) as a module."""
    return nn.ReLU(inplace=True) if name == "relu" else nn.LeakyReLU(LEAKY_SLOPE, inplace=True)


def conv_block(in_channels: int, out_channels: int, kernel: int = 5, stride: int = 2, *, transpose: bool = False,
               norm: bool = True, act: Activation | None = "relu") -> nn.Sequential:
    """conv k×k (or transposed) with "same" padding → [BatchNorm2d] → [activation]."""
    padding = kernel // 2
    if transpose:
        conv: nn.Module = nn.ConvTranspose2d(in_channels, out_channels, kernel, stride, padding,
                                             output_padding=stride - 1, bias=not norm)
    else:
        conv = nn.Conv2d(in_channels, out_channels, kernel, stride, padding, bias=not norm)
    layers = [conv] + ([nn.BatchNorm2d(out_channels)] if norm else []) + ([activation(act)] if act else [])
    return nn.Sequential(*layers)


def low_side(image_shape: Sequence[int], stages: int, what: str) -> int:
    """The side of a square image after ``stages`` halvings; a ConfigError unless it is square and divisible."""
    _, height, width = image_shape
    factor = 2**stages
    if height != width or height % factor:
        raise ConfigError(f"{what} needs square images with a side divisible by {factor} ({stages} stride-2 "
                          f"layers), got {height}×{width}; set data.image_size (e.g. 32 or 64).")
    return height // factor


def _fc(in_features: int, out_features: int, act: Activation) -> list[nn.Module]:
    return [nn.Linear(in_features, out_features, bias=False), nn.BatchNorm1d(out_features), activation(act)]


class ConvEncoder(nn.Module):
    """x N×C×S×S in [-1, 1] → N×out_features: stride-2 conv blocks (``widths``), then an optional hidden
    FC → BN → act of ``fc_dim``, then a linear layer.

    Args:
        first_norm: batch norm in the first conv block (DCGAN-style discriminators and encoders leave it out).
    """

    @checked
    def __init__(self, image_shape: tuple[int, int, int], out_features: Annotated[int, Meaning(
                 "the encoder's output size", at_least=1)], widths: Sequence[int] = (64, 128, 256),
                 fc_dim: Annotated[int, Meaning("the hidden FC width", at_least=0)] = 1024, kernel: Kernel = 5,
                 act: Activation = "relu", first_norm: bool = True):
        super().__init__()
        side = low_side(image_shape, len(widths), type(self).__name__)
        blocks, channels = [], image_shape[0]
        for i, width in enumerate(widths):
            blocks.append(conv_block(channels, width, kernel, 2, norm=first_norm or i > 0, act=act))
            channels = width
        flat = channels * side * side
        hidden = _fc(flat, fc_dim, act) if fc_dim else []
        self.body = nn.Sequential(*blocks, nn.Flatten(), *hidden)
        self.head = nn.Linear(fc_dim or flat, out_features)

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.body(images))


class ConvDecoder(nn.Module):
    """z N×latent_dim → images N×C×S×S in [-1, 1]: FC to (S/2^k)²·widths[0] → BN → ReLU, k stride-2 transposed conv
    blocks of ``widths`` (BN, ReLU), then a stride-1 conv to C channels and tanh (Larsen et al.'s decoder with
    widths 256-128-32 and k = 3: 8·8·256 at 64 px)."""

    @checked
    def __init__(self, latent_dim: LatentDim, image_shape: tuple[int, int, int],
                 widths: Sequence[int] = (256, 128, 32), kernel: Kernel = 5):
        super().__init__()
        if not widths:
            raise ConfigError("ConvDecoder needs at least one transposed conv width (widths=[256, 128, 32]).")
        self.side = low_side(image_shape, len(widths), type(self).__name__)
        self.base_channels = widths[0]
        self.fc = nn.Sequential(*_fc(latent_dim, self.base_channels * self.side**2, "relu"))
        blocks, channels = [], self.base_channels
        for width in widths:
            blocks.append(conv_block(channels, width, kernel, 2, transpose=True))
            channels = width
        self.deconv = nn.Sequential(*blocks, nn.Conv2d(channels, image_shape[0], kernel, 1, kernel // 2), nn.Tanh())

    def forward(self, z: Tensor) -> Tensor:
        return self.deconv(self.fc(z).view(-1, self.base_channels, self.side, self.side))


