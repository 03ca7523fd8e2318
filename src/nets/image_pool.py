"""The history of generated images that CycleGAN's discriminators learn from (Shrivastava et al. 2017; Zhu et al.
2017 §4: "a history of the 50 previously generated images"; the reference ``util/image_pool.py``).

Until the pool is full every fake is stored and returned as is; then each fake is, with probability 1/2, returned as
is, or swapped with a stored image chosen uniformly (the stored one is returned, the new one takes its place). The
pool's images are buffers, so checkpoints hold them and a resumed run draws from the same history.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import torch
from torch import Tensor, nn

from src.utils.arguments import Meaning, checked


class ImagePool(nn.Module):
    """Args:
    size: the images kept (50; 0: no pool, every fake is returned as is).
    image_shape: (C, H, W) of the images.
    """

    @checked
    def __init__(self, size: Annotated[int, Meaning("the images the history pool keeps", at_least=0)] = 50,
                 image_shape: Sequence[int] = (3, 256, 256)):
        super().__init__()
        self.size = size
        self.register_buffer("images", torch.zeros(size, *image_shape))
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))  # images stored so far (≤ size)

    @torch.no_grad()
    def query(self, fakes: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """N×C×H×W fakes (detached) → N images for D, drawn as the class docstring says; the draws come from
        ``generator`` (a CPU generator; default: the global RNG, the training stream), one coin and one slot per
        image, also while the pool fills, so the number of draws per call is fixed."""
        if self.size == 0:
            return fakes
        coins = torch.rand(len(fakes), generator=generator).tolist()
        slots = torch.randint(self.size, (len(fakes),), generator=generator).tolist()
        out = fakes.detach().clone()
        for i, (coin, slot) in enumerate(zip(coins, slots)):
            if self.count < self.size:
                self.images[self.count] = fakes[i]
                self.count += 1
            elif coin < 0.5:
                out[i] = self.images[slot]
                self.images[slot] = fakes[i]
        return out
