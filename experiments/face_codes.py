"""What the inversion and editing faces benchmarks share: the trained face generator (by default the VAE-GAN of
experiments/vaegan_faces.py), its dataset's labelled faces at G's size, the attribute judge (trained on real faces
only, cached) and FID of a set of images against real faces, all with the project's own code.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from record import REPO

sys.path.insert(0, str(REPO))  # this checkout's src, whatever is installed
from src.edit import labelled_images  # noqa: E402
from src.invert import decode  # noqa: E402
from src.inversion.adapters import GeneratorAdapter, adapter_for  # noqa: E402
from src.metrics.attribute_judge import AttributeJudge, JudgeSettings, load_judge  # noqa: E402
from src.metrics.fid import InceptionMetrics  # noqa: E402
from src.metrics.inception import resolve_inception_weights  # noqa: E402
from src.sample import load_model  # noqa: E402

#: The generator both benchmarks use unless --ckpt says otherwise.
VAEGAN_CKPT = REPO / "logs" / "benchmarks" / "vaegan_faces" / "vaegan" / "checkpoints" / "last.ckpt"


@dataclass
class FaceGenerator:
    adapter: GeneratorAdapter
    run_config: DictConfig
    datamodule: object
    judge: AttributeJudge

    def faces(self, split: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The first n evaluation-order faces of ``split`` at G's size and their labels N×K."""
        return labelled_images(self.datamodule, n, self.adapter, split)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return decode(self.adapter, codes, 250)

    def judge_with_seed(self, seed: int) -> AttributeJudge:
        """A second judge, trained the same way on the same real faces from another seed: an independent reader of
        images that were optimised against the first."""
        return load_judge(self.datamodule, self.run_config.paths.cache_dir, JudgeSettings(seed=seed))

    @cached_property
    def inception(self) -> InceptionMetrics:
        return InceptionMetrics(weights_path=resolve_inception_weights(None, self.run_config.paths.cache_dir),
                                batch_size=50)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.inception.extract(images.cpu())

    def fid(self, images: torch.Tensor, real_features: torch.Tensor) -> dict[str, float]:
        """FID and KID of ``images`` against real faces' :meth:`features` (the FID Inception, offline weights; KID
        on subsets of the smaller count)."""
        metrics = self.inception
        metrics.kid.subset_size = min(len(images), len(real_features), 1000)
        metrics.reset()
        metrics.update(real_features, real=True)
        metrics.update(self.features(images), real=False)
        scores = metrics.compute()
        return {"fid": scores["fid"], "kid": scores["kid"]}


def load_face_generator(ckpt: Path) -> FaceGenerator:
    if not Path(ckpt).is_file():
        raise SystemExit(f"{ckpt} does not exist: run experiments/vaegan_faces.py first, or pass --ckpt")
    model, run_config = load_model(ckpt)
    datamodule = instantiate(run_config.data)
    judge = load_judge(datamodule, run_config.paths.cache_dir, JudgeSettings())
    return FaceGenerator(adapter_for(model), run_config, datamodule, judge)


def judge_record(judge: AttributeJudge, prefix: str = "judge_val_") -> dict[str, float]:
    """The judge's held-out accuracy on real faces per attribute and mean: the ceiling of flip and kept."""
    return {f"{prefix}{name}": value for name, value in judge.record["val_accuracy"].items()}
