"""MS-SSIM of pairs of images as a diversity figure (Karras et al. 2018, §5 after Odena et al. 2017): the mean
MS-SSIM between random pairs of samples; lower means more diverse (real data gives the reference level).

The standard MS-SSIM (Wang et al. 2003) uses 5 scales and an 11×11 Gaussian window, which needs sides of at least
161 pixels (torchmetrics refuses smaller). At smaller sides we keep the window at 11 where it fits and use the most
scales torchmetrics accepts for it (its rule: side ≥ 2^scales and side // max(1, scales − 1)² > window − 1, and the
coarsest scale must be larger than half the window), shrinking the window (7, 5, 3) below 11 only where no two
scales fit: 64 → 3 scales of 11, 32 and 16 → 2 of 11, 8 → 2 of 7, 4 → 2 of 3. The scales' weights are the first of
the standard ones, renormalised to sum to 1; the Gaussian's σ shrinks with the window (1.5·window/11: torchmetrics
sizes the window from σ).
"""
from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics.functional.image import multiscale_structural_similarity_index_measure

#: Wang et al.'s weights of the 5 scales.
STANDARD_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _fits(side: int, window: int, scales: int) -> bool:
    return (side >= 2 ** scales and side // max(1, scales - 1) ** 2 > window - 1
            and side / 2 ** (scales - 1) > (window - 1) / 2)


def ms_ssim_settings(side: int) -> tuple[int, tuple[float, ...]]:
    """(window size, scale weights) for images of ``side`` pixels: the standard ones where they fit, else as above."""
    for window in (11, 7, 5, 3):
        for scales in range(len(STANDARD_BETAS), 1, -1):
            if _fits(side, window, scales):
                betas = STANDARD_BETAS[:scales]
                return window, tuple(b / sum(betas) for b in betas)
    raise ValueError(f"MS-SSIM needs images of at least 4×4 pixels, got {side}×{side}.")


def pairwise_ms_ssim(first: Tensor, second: Tensor) -> float:
    """Mean MS-SSIM of the pairs (first[i], second[i]); images N×C×S×S in [−1, 1] (clamped)."""
    if first.shape != second.shape or first.ndim != 4:
        raise ValueError(f"Two batches N×C×S×S of one shape are needed, got {tuple(first.shape)} and "
                         f"{tuple(second.shape)}.")
    window, betas = ms_ssim_settings(min(first.shape[-2:]))
    to_unit = lambda x: ((x.float().clamp(-1, 1) + 1) / 2)  # noqa: E731
    with torch.no_grad():
        value = multiscale_structural_similarity_index_measure(
            to_unit(first), to_unit(second), data_range=1.0, kernel_size=window, sigma=1.5 * window / 11, betas=betas,
            normalize="relu")
    return float(value)
