"""A differentiable feature distance from the FID Inception, for inversion: LPIPS' recipe on weights we have.

LPIPS (Zhang et al. 2018) compares unit-normalised feature maps of an ImageNet network; its weights are a download
this environment cannot make. The reference FID Inception is already here (:func:`src.metrics.inception.build_inception`),
so this takes its stem, up to the two early pooling layers (64 and 192 channels), and compares the maps there:

    d(a, b) = Σ_layers mean_{h,w} ‖n(f_l(a)) − n(f_l(b))‖²,   n: unit length along the channels

Images in [-1, 1] (1 or 3 channels) are resized to ``size`` (bilinear; the stem needs at least 75 px) and scaled as
the FID path scales its uint8 pixels ((p − 128)/128 with p = 127.5·(x + 1)), without the rounding to uint8 that
would stop the gradient. The deeper layers are left out: they cost most of Inception's time and see objects, not
the shapes and textures a reconstruction should keep.
"""
from __future__ import annotations

import os

import torch.nn.functional as F
from torch import Tensor, nn

from src.metrics.inception import build_inception

#: The smallest side Inception's stem can take down to its 192-channel pooling layer.
MIN_SIZE = 75


class InceptionDistance(nn.Module):
    """d(a, b) per item (N) between images N×C×H×W in [-1, 1]; frozen, always in eval mode.

    Args:
        size: the side images are resized to before the stem (at least 75; 299 is Inception's own).
        weights_path, cache_dir: where the FID Inception weights come from (see ``build_inception``).
        inception: an already built FID Inception to take the stem from (instead of building one).
    """

    def __init__(self, size: int = 128, weights_path: str | os.PathLike | None = None,
                 cache_dir: str | os.PathLike | None = None, inception: nn.Module | None = None):
        super().__init__()
        if size < MIN_SIZE:
            raise ValueError(f"InceptionDistance needs size >= {MIN_SIZE} (Inception's stem), got {size}.")
        net = inception if inception is not None else build_inception(weights_path, cache_dir)
        self.size = size
        self.block1 = nn.Sequential(net.Conv2d_1a_3x3, net.Conv2d_2a_3x3, net.Conv2d_2b_3x3, net.MaxPool_1)
        self.block2 = nn.Sequential(net.Conv2d_3b_1x1, net.Conv2d_4a_3x3, net.MaxPool_2)
        self.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> InceptionDistance:
        return super().train(False)  # batch norm keeps the reference statistics

    def features(self, images: Tensor) -> list[Tensor]:
        """The two unit-normalised feature maps of images N×C×H×W in [-1, 1]."""
        x = images.float().expand(-1, 3, -1, -1) if images.shape[1] == 1 else images.float()
        x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        x = (127.5 * x - 0.5) / 128
        first = self.block1(x)
        second = self.block2(first)
        return [F.normalize(f, dim=1, eps=1e-10) for f in (first, second)]

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return sum((fa - fb).pow(2).sum(1).flatten(1).mean(1) for fa, fb in zip(self.features(a), self.features(b)))
