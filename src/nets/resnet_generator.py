"""CycleGAN's ResNet generator (Johnson et al. 2016 as adapted by Zhu et al. 2017, appendix 7.2).

c7s1-64, d128, d256, n × R256, u128, u64, c7s1-C: a 7×7 conv with reflection padding, two stride-2 convs down,
``n_blocks`` residual blocks (6 at 128×128, 9 at 256×256), two stride-2 transposed convs up, a 7×7 conv to the output
channels and tanh. Images N×C_in×H×W in [-1, 1] → N×C_out×H×W in [-1, 1]; H and W must be divisible by 2^
``n_downsampling`` (4 with the paper's two steps). ``n_downsampling`` is the reference code's constant 2, exposed for
small images: at 32×32 one step keeps a 16×16 grid for the residual blocks (the paper's 128-px model has 32×32).
"""
from __future__ import annotations

from typing import Annotated

from torch import Tensor, nn

from src.nets.norms import Norm, conv_bias
from src.utils.arguments import Meaning, checked

Channels = Annotated[int, Meaning("image channels", at_least=1)]


class ResidualBlock(nn.Module):
    """x + (pad, conv3×3, norm, ReLU, [dropout], pad, conv3×3, norm)(x), channels kept."""

    def __init__(self, channels: int, norm: Norm, dropout: float = 0.0):
        super().__init__()
        bias = conv_bias(norm)
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias), norm(channels), nn.ReLU(True),
            *([nn.Dropout(dropout)] if dropout > 0 else []),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias), norm(channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """Args:
    in_channels, out_channels: image channels in and out (``in_channels``, ``out_channels`` are kept as attributes:
        CycleGAN's identity loss needs them equal).
    base_channels: the first conv's width (64); each down-sampling step doubles it (2×, 4× with the paper's 2).
    n_blocks: residual blocks at the lowest resolution (6 for 128×128, 9 for 256×256).
    norm: the norm layer factory (:mod:`src.nets.norms`); instance norm in CycleGAN.
    dropout: dropout inside each residual block (0: CycleGAN's default, ``--no_dropout``).
    n_downsampling: stride-2 convs down (and transposed convs up) around the residual blocks: 2 in the paper.
    """

    @checked
    def __init__(self, in_channels: Channels = 3, out_channels: Channels = 3,
                 base_channels: Annotated[int, Meaning("the first conv's width", at_least=1)] = 64,
                 n_blocks: Annotated[int, Meaning("the residual blocks", at_least=0)] = 9,
                 norm: Norm = nn.InstanceNorm2d,
                 dropout: Annotated[float, Meaning("the dropout rate in the residual blocks", at_least=0)] = 0.0,
                 n_downsampling: Annotated[int, Meaning("the stride-2 steps down", at_least=0)] = 2):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        bias, width = conv_bias(norm), base_channels
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, width, 7, bias=bias), norm(width),
                                   nn.ReLU(True)]
        self.factor = 2 ** n_downsampling
        for _ in range(n_downsampling):  # d128, d256
            layers += [nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=bias), norm(2 * width), nn.ReLU(True)]
            width *= 2
        layers += [ResidualBlock(width, norm, dropout) for _ in range(n_blocks)]
        for _ in range(n_downsampling):  # u128, u64
            layers += [nn.ConvTranspose2d(width, width // 2, 3, stride=2, padding=1, output_padding=1, bias=bias),
                       norm(width // 2), nn.ReLU(True)]
            width //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, images: Tensor) -> Tensor:
        if images.shape[-1] % self.factor or images.shape[-2] % self.factor:
            raise ValueError(f"ResnetGenerator needs sides divisible by {self.factor} ({self.factor.bit_length() - 1} "
                             f"stride-2 steps); got {tuple(images.shape[-2:])}.")
        return self.net(images)

