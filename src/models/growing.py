"""Progressive growing's schedule (Karras et al. 2018, §3 and appendix A.1), counted in images seen.

Stages run from 4×4 to the final side, doubling. Stage 0 (4×4) only stabilises; every later stage first fades its
new blocks in over ``fade_images`` (α rising linearly from 0 to 1 in the images seen), then trains them at α = 1
over ``stable_images``. The last stage stabilises for as long as training goes. ``batch_size`` is per stage too.

The phase is a pure function of the images seen (a checkpointed buffer of the model), so a run resumed from a
checkpoint taken anywhere, mid-stage or mid-fade, continues at the same stage and α.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from src.utils.errors import ConfigError

PerStage = int | Sequence[int]


@dataclass(frozen=True)
class Phase:
    """Where growing stands: ``stage`` (= the nets' depth, 0 at 4×4), its ``resolution``, the fade-in weight
    ``alpha`` of the newest blocks (1 when none is fading in), whether it is ``fading``, and the ``batch_size``."""

    stage: int
    resolution: int
    alpha: float
    fading: bool
    batch_size: int


class GrowthSchedule:
    """The per-stage schedule.

    Args:
        resolution: the final side (a power of 2, at least 4).
        fade_images, stable_images, batch_size: one value for every stage, or a list with one per stage (4×4, 8×8,
            …, final); stage 0's fade is ignored (it has none). Paper: 600k + 600k images, batch 16 at low
            resolution. Batch sizes are per process, like ``data.batch_size``.
        start_resolution: where training starts (default 4: the paper); a larger one skips the stages below it and
            starts there with no fade (e.g. the final side: the same nets trained without growing, a baseline).
    """

    def __init__(self, resolution: int, fade_images: PerStage = 600_000, stable_images: PerStage = 600_000,
                 batch_size: PerStage = 16, start_resolution: int = 4):
        if resolution < 4 or resolution & (resolution - 1):
            raise ConfigError(f"model.growth.resolution={resolution}: must be a power of 2, at least 4 "
                              f"(the growing goes 4, 8, 16, …); set data.image_size to one.")
        self.resolution = resolution
        self.stages = resolution.bit_length() - 2  # 4 → 1, 8 → 2, …
        self.fade_images = self._per_stage("fade_images", fade_images, at_least=0)
        self.stable_images = self._per_stage("stable_images", stable_images, at_least=1)
        self.batch_sizes = self._per_stage("batch_size", batch_size, at_least=1)
        if not 4 <= start_resolution <= resolution or start_resolution & (start_resolution - 1):
            raise ConfigError(f"model.growth.start_resolution={start_resolution}: must be a power of 2 from 4 to "
                              f"the final side {resolution}.")
        self.first_stage = start_resolution.bit_length() - 3
        # Images at which each stage begins: the stages before the first take none, the first has no fade.
        self.starts = [0] * (self.first_stage + 1)
        for stage in range(self.first_stage + 1, self.stages):
            self.starts.append(self.starts[-1] + self.fade_of(stage - 1) + self.stable_images[stage - 1])

    def _per_stage(self, name: str, value: PerStage, at_least: int) -> list[int]:
        values = [value] * self.stages if isinstance(value, int) else [int(v) for v in value]
        if len(values) != self.stages or any(v < at_least for v in values):
            raise ConfigError(
                f"model.growth.{name}={value}: give one integer ≥ {at_least}, or a list of {self.stages} "
                f"(one per stage: resolutions {', '.join(str(4 << s) for s in range(self.stages))}).")
        return values

    def fade_of(self, stage: int) -> int:
        """Images of stage ``stage``'s fade-in (0 for the first stage)."""
        return self.fade_images[stage] if stage > self.first_stage else 0

    def at(self, images_seen: int) -> Phase:
        """The phase after ``images_seen`` images (all ranks together)."""
        stage = max(s for s in range(self.stages) if self.starts[s] <= images_seen)
        into = images_seen - self.starts[stage]
        fade = self.fade_of(stage)
        alpha = min(1.0, into / fade) if fade else 1.0
        return Phase(stage, 4 << stage, alpha, into < fade, self.batch_sizes[stage])

    @property
    def total_images(self) -> int:
        """Images until the final stage has faded in and stabilised once (what the paper trains for)."""
        last = self.stages - 1
        return self.starts[last] + self.fade_of(last) + self.stable_images[last]

    def check_loader_batch(self, loader_batch: int) -> None:
        """Every stage's batch size must divide the loader's batch (each loader batch is cut into slices)."""
        bad = sorted({b for b in self.batch_sizes if loader_batch % b})
        if bad:
            raise ConfigError(
                f"model.growth.batch_size={self.batch_sizes} has {bad}, which do not divide data.batch_size="
                f"{loader_batch}: each loader batch is cut into slices of the stage's batch size. Set "
                f"data.batch_size to a multiple of {max(self.batch_sizes)} or choose divisors of it.")
