"""A small CNN that predicts a face's attributes, one classification head per attribute (the attribute judge's net).

Body: ⌈log2(S / 4)⌉ stages of conv3×3/2 → BN → ReLU (widths base_width·2^i, capped at max_width), taking an S×S
image down to about 4×4 (S = 32: 3 stages, 64: 4, 128: 5), then one conv3×3/1 → BN → ReLU at that size and a global
average pool. Heads: one linear layer per attribute, giving that attribute's logits over its values.

Images are N×3×S×S in [-1, 1]; any S ≥ 8 works (the global pool absorbs what the stages leave).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated

from torch import Tensor, nn

from src.utils.arguments import Meaning, checked
from src.utils.errors import ConfigError

Width = Annotated[int, Meaning("a layer width", at_least=1)]
ImageSide = Annotated[int, Meaning("the side of the square input images, in pixels", at_least=8)]
#: Where the stride-2 stages stop: a 4×4 map still says where on the face a feature is (a beard below, a hat above)
#: before the global pool keeps only what, not where.
FINAL_SIDE = 4


def _conv_bn_relu(in_channels: int, out_channels: int, stride: int) -> list[nn.Module]:
    # No conv bias: the batch norm's shift replaces it.
    return [nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False), nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True)]


class AttributeClassifier(nn.Module):
    """Images N×C×S×S in [-1, 1] → a list of K logit tensors, the k-th N×num_values[k].

    Args:
        num_values: how many values each attribute has (2 for a binary one), in the order of the heads.
        image_size: S, which sets the number of stride-2 stages (⌈log2(S / 4)⌉).
        in_channels: C.
        base_width, max_width: the first stage's width, doubling every stage up to max_width.
    """

    @checked
    def __init__(self, num_values: Sequence[int], image_size: ImageSide = 64, in_channels: Width = 3,
                 base_width: Width = 16, max_width: Width = 128):
        super().__init__()
        if not num_values or any(int(v) < 2 for v in num_values):
            raise ConfigError(f"AttributeClassifier needs at least one attribute and at least 2 values for each, "
                              f"got num_values={list(num_values)}.")
        self.num_values = tuple(int(v) for v in num_values)
        #: The other constructor arguments, to rebuild the same net from a saved state dict.
        self.config = {"image_size": image_size, "in_channels": in_channels, "base_width": base_width,
                       "max_width": max_width}
        stages = max(1, math.ceil(math.log2(image_size / FINAL_SIDE)))
        layers: list[nn.Module] = []
        channels = in_channels
        for stage in range(stages):
            width = min(base_width * 2**stage, max_width)
            layers += _conv_bn_relu(channels, width, stride=2)
            channels = width
        layers += _conv_bn_relu(channels, channels, stride=1)
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.heads = nn.ModuleList(nn.Linear(channels, n) for n in self.num_values)

    def forward(self, images: Tensor) -> list[Tensor]:
        features = self.body(images)
        return [head(features) for head in self.heads]
