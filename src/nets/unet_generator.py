"""pix2pix's U-Net generator (Isola et al. 2017, §3.2.1 and appendix 6.1.1).

Encoder C64-C128-C256-C512-C512-…: 4×4 stride-2 convs, LeakyReLU(0.2) before each but the first, norm after each
but the first and the innermost (as the reference's ``UnetSkipConnectionBlock``). Decoder mirrored: ReLU, a 4×4
stride-2 transposed conv, norm, with dropout 0.5 in the first ``dropout_layers`` decoder layers (the paper's
CD512-CD512-CD512; the generator's only noise), the outermost one to the output channels with tanh. Skips: decoder
layer i takes the concatenation of the previous decoder output and the mirrored encoder output.

``num_downs`` = log2 of the side gives a 1×1 bottleneck (8 for 256×256: the reference ``unet_256``; 7 for 128, 5 for
32). Images N×C_in×S×S in [-1, 1] → N×C_out×S×S in [-1, 1]; S divisible by 2^num_downs.
"""
from __future__ import annotations

from typing import Annotated

import torch
from torch import Tensor, nn

from src.nets.norms import Norm, conv_bias
from src.utils.arguments import Meaning, checked


class UnetGenerator(nn.Module):
    """Args:
    in_channels, out_channels: image channels in and out.
    num_downs: the stride-2 steps down (and up).
    base_channels: the first conv's width (64); widths double per level up to 8× it.
    norm: the norm layer factory (:mod:`src.nets.norms`); batch norm in pix2pix.
    dropout: the dropout rate of the first ``dropout_layers`` decoder layers (0.5); 0 for none.

    The reference puts its dropout on decoder layers 2 to 4 (not the innermost); the paper on layers 1 to 3 (CD512
    ×3 right after the bottleneck): the paper's is used.
    """

    @checked
    def __init__(self, in_channels: Annotated[int, Meaning("image channels in", at_least=1)] = 3,
                 out_channels: Annotated[int, Meaning("image channels out", at_least=1)] = 3,
                 num_downs: Annotated[int, Meaning("the U-Net's stride-2 levels", at_least=2)] = 8,
                 base_channels: Annotated[int, Meaning("the first conv's width", at_least=1)] = 64,
                 norm: Norm = nn.BatchNorm2d,
                 dropout: Annotated[float, Meaning("the decoder's dropout rate", at_least=0)] = 0.5,
                 dropout_layers: Annotated[int, Meaning("decoder layers with dropout", at_least=0)] = 3):
        super().__init__()
        self.in_channels, self.out_channels, self.num_downs = in_channels, out_channels, num_downs
        bias = conv_bias(norm)
        widths = [base_channels * min(2 ** level, 8) for level in range(num_downs)]
        self.encoder = nn.ModuleList()
        for level, width in enumerate(widths):
            if level == 0:
                layers = [nn.Conv2d(in_channels, width, 4, stride=2, padding=1, bias=bias)]
            else:
                layers = [nn.LeakyReLU(0.2, True), nn.Conv2d(widths[level - 1], width, 4, stride=2, padding=1, bias=bias)]
                if level < num_downs - 1:  # no norm on the 1×1 bottleneck
                    layers.append(norm(width))
            self.encoder.append(nn.Sequential(*layers))
        self.decoder = nn.ModuleList()
        for step, level in enumerate(reversed(range(num_downs))):  # decoder step 0 undoes the innermost level
            width_in = widths[level] * (1 if level == num_downs - 1 else 2)  # the bottleneck has no skip beside it
            if level == 0:
                layers = [nn.ReLU(True), nn.ConvTranspose2d(width_in, out_channels, 4, stride=2, padding=1), nn.Tanh()]
            else:
                width_out = widths[level - 1]
                layers = [nn.ReLU(True), nn.ConvTranspose2d(width_in, width_out, 4, stride=2, padding=1, bias=bias),
                          norm(width_out)]
                if step < dropout_layers and dropout > 0:
                    layers.append(nn.Dropout(dropout))
            self.decoder.append(nn.Sequential(*layers))

    def forward(self, images: Tensor) -> Tensor:
        side = 2 ** self.num_downs
        if images.shape[-1] % side or images.shape[-2] % side:
            raise ValueError(f"UnetGenerator(num_downs={self.num_downs}) needs sides divisible by {side}; got "
                             f"{tuple(images.shape[-2:])}. Set num_downs to log2 of the image side.")
        skips, x = [], images
        for layer in self.encoder:
            x = layer(x)
            skips.append(x)
        x = self.decoder[0](skips.pop())
        for layer in self.decoder[1:]:
            x = layer(torch.cat([skips.pop(), x], dim=1))
        return x
