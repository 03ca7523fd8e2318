"""A folder of images given on the command line (``src.translate``, ``src.invert``, ``src.edit``): found
recursively, read in any mode and size, and the unreadable ones named rather than fatal.

The entry points share this so that every one of them accepts the same folders (jpg, jpeg, png, bmp, webp, any
depth, hidden files skipped; :func:`~src.data.image_folder.find_images`) and reports problems in the same words.
"""
from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

from torch import Tensor

from src.data.image_folder import find_images
from src.data.unpaired_folder import read_image
from src.utils.errors import ConfigError, CorruptImageError


def input_images(folder: str | Path, key: str = "input") -> list[Path]:
    """Paths relative to ``folder`` of the images below it; a one-line ConfigError naming the setting ``key``
    when it is not a folder or holds no image."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise ConfigError(f"{key}={folder} is not a folder; pass the folder of images to read.")
    images = find_images(root)
    if not images:
        raise ConfigError(f"{key}={folder} holds no images (jpg, jpeg, png, bmp, webp, searched recursively).")
    return images


def readable_images(source: Path, relative_paths: Iterable[Path], channels: int,
                    failed: dict[Path, str]) -> Iterator[tuple[Path, Tensor]]:
    """(relative path, image ``channels``×H×W in [-1, 1] at its own size) for each readable file; an unreadable one
    is recorded in ``failed`` (relative path → reason) with a warning, and the others still come."""
    for relative in relative_paths:
        try:
            image = read_image(source / relative, channels)
        except CorruptImageError as error:
            failed[relative] = error.reason
            warnings.warn(f"Cannot read {source / relative} ({error.reason}); skipped, the others are written.",
                          stacklevel=2)
            continue
        yield relative, image
