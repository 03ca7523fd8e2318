"""The image preprocessing every PIL-based DataModule shares."""

import torch
from torchvision.transforms import v2


def to_signed_unit(image_size: int, channels: int) -> v2.Compose:
    """PIL image (any size) → float32 ``channels``×``image_size``×``image_size`` in [-1, 1].

    Resizes the shorter side to ``image_size`` (bilinear, antialiased) and center-crops
    the longer one, so aspect ratios are kept. On an image that already has the target
    square size both steps are exact no-ops, so native-size datasets are not resampled.
    The caller converts the PIL mode ("L" or "RGB") to match ``channels``.
    """
    return v2.Compose(
        [
            v2.Resize(image_size, interpolation=v2.InterpolationMode.BILINEAR, antialias=True),
            v2.CenterCrop(image_size),
            v2.ToImage(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean=[0.5] * channels, std=[0.5] * channels),
        ]
    )
