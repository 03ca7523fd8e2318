"""Image grids, optionally with a line of text under each row (T2F: the caption its faces were drawn from)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor
from torchvision.utils import make_grid

#: Height of the text strip under a labelled row, in pixels (PIL's default bitmap font is about 11 pixels high).
LABEL_HEIGHT = 14


def image_grid(images: Tensor, per_row: int, labels: Sequence[str] | None = None) -> Tensor:
    """Images N×C×H×W in [−1, 1] → a 3×H'×W' grid in [0, 1], ``per_row`` per row (2-pixel padding, as
    torchvision's ``make_grid``); with ``labels`` (one per row), each row's label printed under it."""
    images = images.detach().float().cpu()
    if not labels:
        return make_grid(images, nrow=per_row, normalize=True, value_range=(-1, 1))
    rows = [make_grid(images[i * per_row:(i + 1) * per_row], nrow=per_row, normalize=True, value_range=(-1, 1))
            for i in range(len(labels))]
    font = ImageFont.load_default()
    strips = []
    for row, label in zip(rows, labels):
        row = row.expand(3, -1, -1) if row.shape[0] == 1 else row
        canvas = Image.new("RGB", (row.shape[2], row.shape[1] + LABEL_HEIGHT), "white")
        canvas.paste(Image.fromarray((row.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)), (0, 0))
        ImageDraw.Draw(canvas).text((2, row.shape[1]), label, fill="black", font=font)
        strips.append(torch.from_numpy(np.array(canvas)).permute(2, 0, 1).float() / 255)
    return torch.cat(strips, dim=1)
