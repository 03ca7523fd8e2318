"""ProGAN networks (Karras et al. 2018, "Progressive Growing of GANs"), after tkarras/progressive_growing_of_gans
`networks.py` (G_paper, D_paper).

Our names → the paper's:
- depth d (0 … D−1): the resolution 2^(d+2) (d = 0: 4×4). "stage" in `feature_maps` is TF's ``stage``:
  log2(resolution) − 1, so the 4×4 block has ``min(fmap_base / 2, fmap_max)`` feature maps (TF's ``nf(1)``).
- α: the fade-in weight of the newest block (TF's 1 − frac(lod)); α = 1 once it is faded in.

Generator (images N×C×R×R, linear output: no tanh, as in the paper; callers clamp to [−1, 1] where they need to):
    z (N×latent) → pixel norm (z on the hypersphere of radius √latent) → dense to nf(1)·4·4 → lrelu → pixel norm
    → conv3×3 → lrelu → pixel norm                                   (4×4 block)
    block d ≥ 1: nearest ×2 → [conv3×3 → lrelu → pixel norm] × 2
    toRGB_d: conv1×1 (gain 1, linear)
    fade-in at depth d: lerp(upsample(toRGB_{d−1}(h_{d−1})), toRGB_d(block_d(h_{d−1})), α)
Discriminator (mirrors it; scores N, unbounded):
    fromRGB_d: conv1×1 → lrelu
    block d ≥ 1: conv3×3 (nf(d+1)) → lrelu → conv3×3 (nf(d)) → lrelu → avg-pool 2
    fade-in at depth d: lerp(fromRGB_{d−1}(avgpool(x)), block_d(fromRGB_d(x)), α)
    final (4×4) block: minibatch stddev (+1 channel) [+ the compressed, tiled condition: T2F] → conv3×3 → lrelu
    → dense nf(0) → lrelu → dense 1 (gain 1)  [+ ⟨V·condition, that hidden layer⟩ with ``projection``]
Every layer uses the equalized learning rate (weights N(0, 1), scaled at run time by gain/√fan_in, gain √2 unless
said otherwise) and LeakyReLU(0.2).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.utils.arguments import Meaning, checked
from src.utils.errors import ConfigError

Resolution = Annotated[int, Meaning("the final image side in pixels (a power of 2, at least 4)", at_least=4)]
Width = Annotated[int, Meaning("a number of feature maps", at_least=1)]
LatentDim = Annotated[int, Meaning("the size of the generator's input", at_least=1)]

SLOPE = 0.2
SQRT2 = math.sqrt(2.0)


def depth_of(resolution: int) -> int:
    """The number of blocks for a final side ``resolution``: 4 → 1, 8 → 2, …, 64 → 5 (a ConfigError otherwise)."""
    log2 = math.log2(resolution) if resolution > 0 else -1
    if resolution < 4 or log2 != int(log2):
        raise ConfigError(f"ProGAN grows from 4×4 by doubling: the image side must be a power of 2 (4, 8, …, 1024), "
                          f"got {resolution}; set data.image_size.")
    return int(log2) - 1


def feature_maps(stage: int, fmap_base: int, fmap_max: int) -> int:
    """TF's ``nf(stage)`` = min(fmap_base / 2^stage, fmap_max); the block of side R uses stage log2(R) − 1."""
    return max(1, min(fmap_base // (2 ** stage), fmap_max))


def pixel_norm(x: Tensor, eps: float = 1e-8) -> Tensor:
    """x · rsqrt(mean over channels of x² + ε): every pixel's feature vector to unit RMS (paper §4.2); on N×C it
    puts latents on the sphere of radius √C."""
    return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + eps)


def minibatch_stddev(x: Tensor, group_size: int = 4) -> Tensor:
    """Append one channel: the standard deviation of each feature over a group of samples, averaged over features
    and pixels (paper §3; TF ``minibatch_stddev_layer``). x: N×C×H×W → N×(C+1)×H×W.

    Samples n and m share a group when n ≡ m (mod N/G), as TF's reshape to [G, N/G, …]. G is ``group_size`` or, when
    it does not divide N, the largest divisor of N below it (TF requires N divisible by G).
    """
    n = x.shape[0]
    group = next(g for g in range(min(group_size, n), 0, -1) if n % g == 0)
    y = x.reshape(group, -1, *x.shape[1:]).float()
    y = (y - y.mean(dim=0, keepdim=True)).pow(2).mean(dim=0)  # variance over the group: N/G×C×H×W
    y = (y + 1e-8).sqrt().mean(dim=(1, 2, 3))  # N/G
    y = y.to(x.dtype).repeat(group).view(n, 1, 1, 1).expand(n, 1, *x.shape[2:])
    return torch.cat([x, y], dim=1)


def downsample(x: Tensor, factor: int = 2) -> Tensor:
    """Average pooling by ``factor`` (ProGAN's downsampling of images and features)."""
    return F.avg_pool2d(x, factor) if factor > 1 else x


def upsample(x: Tensor, factor: int = 2) -> Tensor:
    """Nearest-neighbour upsampling by ``factor``."""
    return F.interpolate(x, scale_factor=factor, mode="nearest") if factor > 1 else x


def real_at(images: Tensor, resolution: int, alpha: float) -> Tensor:
    """Real images N×C×S×S shown to D at ``resolution`` during a fade-in with weight ``alpha``: average-pooled to
    R×R and blended with their 2× coarser version as the fakes are, lerp(upsample(downsample(x_R)), x_R, α)."""
    x = downsample(images, images.shape[-1] // resolution)
    if alpha >= 1.0 or resolution <= 4:
        return x
    return torch.lerp(upsample(downsample(x)), x, alpha)


class EqualizedLinear(nn.Module):
    """A dense layer with the equalized learning rate: y = x·(w·gain/√fan_in)ᵀ + b, w ∼ N(0, 1), b = 0."""

    def __init__(self, in_features: int, out_features: int, gain: float = SQRT2):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.scale = gain / math.sqrt(in_features)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


class EqualizedConv2d(nn.Module):
    """A k×k convolution (stride 1, 'same' padding) with the equalized learning rate, fan_in = C_in·k²."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, gain: float = SQRT2):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.scale = gain / math.sqrt(in_channels * kernel_size ** 2)
        self.padding = kernel_size // 2

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


class PixelNorm(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return pixel_norm(x)


def _conv_act(in_channels: int, out_channels: int, kernel_size: int = 3, normalize: bool = False) -> list[nn.Module]:
    layers = [EqualizedConv2d(in_channels, out_channels, kernel_size), nn.LeakyReLU(SLOPE)]
    return layers + [PixelNorm()] if normalize else layers


class _Growing(nn.Module):
    """The widths and the depth both nets share."""

    def __init__(self, resolution: int, fmap_base: int, fmap_max: int):
        super().__init__()
        self.resolution = resolution
        self.depth = depth_of(resolution)
        self.widths = [feature_maps(d + 1, fmap_base, fmap_max) for d in range(self.depth)]  # per depth
        self.dense_width = feature_maps(0, fmap_base, fmap_max)  # D's last hidden dense layer (TF's nf(0))

    def _check(self, depth: int, alpha: float) -> None:
        if not 0 <= depth < self.depth:
            raise ValueError(f"depth {depth} is outside 0 … {self.depth - 1} (resolutions 4 … {self.resolution}).")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha {alpha} must be within [0, 1].")


class ProGANGenerator(_Growing):
    """G(z, depth, α): latents N×latent_dim → images N×C×R×R, R = 2^(depth+2) (linear output, about [−1, 1]).

    Args:
        latent_dim: the size of z (paper 512; T2F: the conditioning c and the noise together).
        resolution: the final side (a power of 2); ``channels``: image channels.
        fmap_base, fmap_max: feature maps min(fmap_base / 2^stage, fmap_max) (paper 8192, 512).
        normalize_latent: pixel-normalise z first (the paper's latent on the hypersphere).
    """

    @checked
    def __init__(self, latent_dim: LatentDim = 512, resolution: Resolution = 64, channels: Width = 3,
                 fmap_base: Width = 8192, fmap_max: Width = 512, normalize_latent: bool = True):
        super().__init__(resolution, fmap_base, fmap_max)
        self.latent_dim, self.normalize_latent = latent_dim, normalize_latent
        w0 = self.widths[0]
        # TF G_paper: the dense layer to 4×4 has gain √2/4 (its output is 16 "pixels" of one fan-in).
        self.dense = EqualizedLinear(latent_dim, w0 * 16, gain=SQRT2 / 4)
        self.first = nn.Sequential(nn.LeakyReLU(SLOPE), PixelNorm(), *_conv_act(w0, w0, normalize=True))
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                          *_conv_act(self.widths[d - 1], self.widths[d], normalize=True),
                          *_conv_act(self.widths[d], self.widths[d], normalize=True))
            for d in range(1, self.depth))
        self.to_rgb = nn.ModuleList(EqualizedConv2d(w, channels, 1, gain=1.0) for w in self.widths)

    def forward(self, latent: Tensor, depth: int | None = None, alpha: float = 1.0) -> Tensor:
        depth = self.depth - 1 if depth is None else depth
        self._check(depth, alpha)
        z = pixel_norm(latent) if self.normalize_latent else latent
        h = self.first(self.dense(z).view(-1, self.widths[0], 4, 4))
        previous = h
        for block in self.blocks[:depth]:
            previous, h = h, block(h)
        image = self.to_rgb[depth](h)
        if depth > 0 and alpha < 1.0:
            image = torch.lerp(upsample(self.to_rgb[depth - 1](previous)), image, alpha)
        return image


class ProGANDiscriminator(_Growing):
    """D(x, depth, α[, condition]): images N×C×R×R, R = 2^(depth+2) → scores N.

    Args:
        resolution, channels, fmap_base, fmap_max: as :class:`ProGANGenerator`.
        group_size: of the minibatch standard deviation (paper 4).
        condition_dim: 0 (unconditional), or the size of a condition (T2F: the text embedding) that a dense layer
            compresses to ``compressed_dim`` and that is tiled over 4×4 and concatenated after minibatch stddev.
        condition_resolutions: the sides at whose block input the compressed condition is tiled and concatenated
            (paper: (4,), the final block only); e.g. (4, 8) also feeds it to the 8×8 block (not in the paper).
        projection: also add the projection term ⟨V·condition, f(x)⟩ to the score, f(x) the last hidden layer
            (Miyato & Koyama 2018, "cGANs with Projection Discriminator"; not in T2F): a bilinear match between
            the condition and D's image features that concatenation has to learn through its nonlinearities.
    """

    @checked
    def __init__(self, resolution: Resolution = 64, channels: Width = 3, fmap_base: Width = 8192,
                 fmap_max: Width = 512, group_size: Annotated[int, Meaning("the minibatch-stddev group size",
                                                                              at_least=1)] = 4,
                 condition_dim: Annotated[int, Meaning("the size of D's condition, 0 for none", at_least=0)] = 0,
                 compressed_dim: Annotated[int, Meaning("the size the condition is compressed to", at_least=1)] = 128,
                 condition_resolutions: Sequence[int] = (4,), projection: bool = False):
        super().__init__(resolution, fmap_base, fmap_max)
        self.group_size, self.condition_dim = group_size, condition_dim
        sides = [4 * 2 ** d for d in range(self.depth)]
        if condition_dim and (not condition_resolutions or any(r not in sides for r in condition_resolutions)):
            raise ConfigError(f"discriminator.condition_resolutions={list(condition_resolutions)}: each must be one "
                              f"of D's sides {sides} (4: the final block, as the paper).")
        # The sides whose block input gets the condition tiled on (none without a condition), and the channels each
        # block input gains.
        self.condition_sides = frozenset(int(r) for r in condition_resolutions) if condition_dim else frozenset()
        extra = [compressed_dim if r in self.condition_sides else 0 for r in sides]
        w0 = self.widths[0]
        self.from_rgb = nn.ModuleList(nn.Sequential(EqualizedConv2d(channels, w, 1), nn.LeakyReLU(SLOPE))
                                      for w in self.widths)
        self.blocks = nn.ModuleList(
            nn.Sequential(*_conv_act(self.widths[d] + extra[d], self.widths[d]),
                          *_conv_act(self.widths[d], self.widths[d - 1]), nn.AvgPool2d(2))
            for d in range(1, self.depth))
        self.compress = EqualizedLinear(condition_dim, compressed_dim) if condition_dim else None
        self.project = EqualizedLinear(condition_dim, self.dense_width, gain=1.0) if condition_dim and projection \
            else None
        self.final = nn.Sequential(*_conv_act(w0 + 1 + extra[0], w0), nn.Flatten(),
                                   EqualizedLinear(w0 * 16, self.dense_width), nn.LeakyReLU(SLOPE),
                                   EqualizedLinear(self.dense_width, 1, gain=1.0))

    def forward(self, images: Tensor, depth: int | None = None, alpha: float = 1.0,
                condition: Tensor | None = None) -> Tensor:
        depth = self.depth - 1 if depth is None else depth
        self._check(depth, alpha)
        if (condition is None) != (self.compress is None):
            raise ValueError("This discriminator " + ("needs a condition." if self.compress is not None
                                                      else "takes no condition (condition_dim=0)."))
        compressed = None if self.compress is None else F.leaky_relu(self.compress(condition), SLOPE)

        def with_condition(h: Tensor) -> Tensor:
            side = h.shape[-1]
            if side not in self.condition_sides:
                return h
            return torch.cat([h, compressed[:, :, None, None].expand(-1, -1, side, side)], dim=1)

        h = self.from_rgb[depth](images)
        if depth > 0:
            h = self.blocks[depth - 1](with_condition(h))
            if alpha < 1.0:
                h = torch.lerp(self.from_rgb[depth - 1](downsample(images)), h, alpha)
        for d in range(depth - 1, 0, -1):
            h = self.blocks[d - 1](with_condition(h))
        features = self.final[:-1](with_condition(minibatch_stddev(h, self.group_size)))
        score = self.final[-1](features).squeeze(1)
        if self.project is not None:
            score = score + (self.project(condition) * features).sum(dim=1)
        return score
