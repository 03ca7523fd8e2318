"""The PatchGAN discriminator of CycleGAN and pix2pix (Isola et al. 2017, §3.2.2; the reference's
``NLayerDiscriminator``): one logit per overlapping image patch.

C64-C128-C256-C512 with n_layers=3: a 4×4 stride-2 conv and LeakyReLU(0.2) (no norm on the first), ``n_layers - 1``
more stride-2 convs with norm, one stride-1 conv with norm, and a stride-1 conv to one channel. Each output logit sees
a 70×70 window of the input with n_layers=3 (4×4 kernels, strides 2, 2, 2, 1, 1: 1 + 3·(1 + 2 + 4 + 8 + 8) = 70;
tests/test_translation_nets.py measures it on the gradient).
pix2pix's conditional D is the same class with ``in_channels`` = input + output channels, fed their concatenation.
Input N×C×H×W → logits N×1×H'×W' (30×30 at 256×256), raw (the GAN loss applies its own link).
"""
from __future__ import annotations

from typing import Annotated

from torch import Tensor, nn

from src.nets.norms import Norm, conv_bias
from src.utils.arguments import Meaning, checked


class PatchGAN(nn.Module):
    """Args:
    in_channels: channels of what D sees (3 for CycleGAN's RGB D's; 6 for pix2pix's (input, output) pairs).
    base_channels: the first conv's width (64); widths double per layer up to 8× it.
    n_layers: stride-2 convs (3: the 70×70 PatchGAN; 1: the 16×16 one, 5: 286×286).
    norm: the norm layer factory (:mod:`src.nets.norms`).
    """

    @checked
    def __init__(self, in_channels: Annotated[int, Meaning("channels D sees", at_least=1)] = 3,
                 base_channels: Annotated[int, Meaning("the first conv's width", at_least=1)] = 64,
                 n_layers: Annotated[int, Meaning("stride-2 convs", at_least=1)] = 3,
                 norm: Norm = nn.InstanceNorm2d):
        super().__init__()
        self.in_channels = in_channels
        bias = conv_bias(norm)
        layers: list[nn.Module] = [nn.Conv2d(in_channels, base_channels, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        width = base_channels
        for n in range(1, n_layers + 1):
            stride = 2 if n < n_layers else 1  # the last widening conv keeps the resolution
            out = base_channels * min(2 ** n, 8)
            layers += [nn.Conv2d(width, out, 4, stride=stride, padding=1, bias=bias), norm(out), nn.LeakyReLU(0.2, True)]
            width = out
        layers.append(nn.Conv2d(width, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, images: Tensor) -> Tensor:
        return self.net(images)
