"""Benchmark: the three ways of inverting one trained face generator (by default the VAE-GAN of
experiments/vaegan_faces.py) on held-out faces, with src.inversion (the settings of conf/invert.yaml):

- ``encoder``: the family's own E (VAE-GAN's posterior mean);
- ``optimize``: Adam on z from a seeded prior draw, minimising pixel MSE + the Inception feature distance + the prior
  term;
- ``hybrid``: the same optimisation from the encoder's z.

Recorded per method, on the first --n test faces: the pixel MSE of G(z) to the face (images in [-1, 1]), the
Inception feature distance (the one the optimisation uses), the share of the face's attributes the judge (trained on
real faces only, cached) reads on G(z) (`kept`, mean and per attribute), and seconds per image. Also, as the
ceiling: the judge's held-out accuracy on the real faces. Target: hybrid at least as accurate as the better of the
other two (pixel, feature and kept).

    python experiments/inversion_faces.py [--ckpt logs/benchmarks/vaegan_faces/vaegan/checkpoints/last.ckpt] [--n 100]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from face_codes import VAEGAN_CKPT, judge_record, load_face_generator
from record import RESULTS, write_result
from torchvision.utils import save_image

from src.inversion.encoder import EncoderSettings  # noqa: E402
from src.inversion.methods import METHODS, Inverter  # noqa: E402
from src.inversion.optimize import OptimizeSettings  # noqa: E402
from src.inversion.reconstruction import DistanceSettings, ReconstructionLoss  # noqa: E402
from src.metrics.attribute_judge import attribute_accuracy  # noqa: E402

NAME = "inversion_faces"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", type=Path, default=VAEGAN_CKPT)
    parser.add_argument("--n", type=int, default=100, help="test faces inverted")
    parser.add_argument("--steps", type=int, default=300, help="Adam steps of optimize and hybrid")
    args = parser.parse_args()
    start = time.perf_counter()
    faces = load_face_generator(args.ckpt)
    images, labels = faces.faces("test", args.n)
    distance = ReconstructionLoss(DistanceSettings(cache_dir=faces.run_config.paths.cache_dir))
    pixels_only = ReconstructionLoss(DistanceSettings(feature_weight=0))
    figures: dict = {"n": len(images), "steps": args.steps, **judge_record(faces.judge)}
    rows = [images[:8]]
    for method in METHODS:
        inverter = Inverter(faces.adapter, method, distance, OptimizeSettings(steps=args.steps), EncoderSettings())
        started = time.perf_counter()
        codes = torch.cat([inverter(chunk) for chunk in images.split(50)])
        seconds = time.perf_counter() - started
        reconstructions = faces.decode(codes)
        with torch.no_grad():
            pixel = pixels_only(reconstructions, images).mean().item()
            feature = distance.features(reconstructions, images).mean().item()
        kept = attribute_accuracy(faces.judge.predict(reconstructions), labels, faces.judge.names)
        figures |= {f"{method}_pixel_mse": pixel, f"{method}_feature_distance": feature,
                    f"{method}_kept": kept.pop("mean"), **{f"{method}_kept/{k}": v for k, v in kept.items()},
                    f"{method}_seconds_per_image": seconds / len(images)}
        rows.append(reconstructions[:8])
    best = lambda key, better: better(figures[f"encoder_{key}"], figures[f"optimize_{key}"])  # noqa: E731
    figures["target_met"] = (figures["hybrid_pixel_mse"] <= best("pixel_mse", min)
                             and figures["hybrid_feature_distance"] <= best("feature_distance", min)
                             and figures["hybrid_kept"] >= best("kept", max))
    figures["target"] = "hybrid: pixel MSE and feature distance <= the better of encoder/optimize, kept >= it"
    figures["checkpoint"] = str(args.ckpt)
    grids = RESULTS / NAME
    grids.mkdir(parents=True, exist_ok=True)
    save_image(torch.cat(rows).cpu(), grids / "faces_encoder_optimize_hybrid.png", nrow=8, normalize=True,
               value_range=(-1, 1))
    figures["grids"] = [str((grids / "faces_encoder_optimize_hybrid.png").relative_to(RESULTS.parent.parent))]
    print(write_result(NAME, figures, time.perf_counter() - start))


if __name__ == "__main__":
    main()
