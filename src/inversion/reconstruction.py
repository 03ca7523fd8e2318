"""How far a generated image is from the one being inverted: L(G(z), x) = w_pixel·MSE + w_feature·d_Inception.

Pixels alone make inversions blurry where G cannot match x exactly (a squared error prefers the average); a feature
distance keeps edges and textures (Zhu et al. 2016 use the same pair). The feature part is the FID Inception's stem
(:class:`~src.metrics.perceptual.InceptionDistance`), built only when its weight is not 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from torch import Tensor, nn

from src.metrics.perceptual import InceptionDistance
from src.utils.arguments import Meaning

Weight = Annotated[float, Meaning("a loss weight", at_least=0)]


@dataclass(frozen=True)
class DistanceSettings:
    """pixel_weight, feature_weight: the weights of the pixel MSE and of the Inception feature distance;
    feature_size: the side images are resized to for Inception's stem (at least 75); cache_dir: where the converted
    Inception weights are kept (default: the ganzoo cache). Bounds are checked with the config (``check_config``)."""

    pixel_weight: Weight = 1.0
    feature_weight: Weight = 1.0
    feature_size: Annotated[int, Meaning("the side of the images Inception sees", at_least=75)] = 128
    cache_dir: str | None = None


class ReconstructionLoss(nn.Module):
    """Images N×C×H×W in [-1, 1] (generated, target) → the loss of each item, N."""

    def __init__(self, settings: DistanceSettings = DistanceSettings(),
                 features: nn.Module | None = None):
        super().__init__()
        self.pixel_weight, self.feature_weight = settings.pixel_weight, settings.feature_weight
        self.features = features
        if self.features is None and self.feature_weight > 0:
            self.features = InceptionDistance(settings.feature_size, cache_dir=settings.cache_dir)

    def forward(self, generated: Tensor, target: Tensor) -> Tensor:
        loss = self.pixel_weight * (generated - target).pow(2).flatten(1).mean(1)
        if self.feature_weight > 0:
            loss = loss + self.feature_weight * self.features.to(generated.device)(generated, target)
        return loss
