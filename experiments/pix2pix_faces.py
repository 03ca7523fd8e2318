"""Benchmark: pix2pix on the embedded paired faces, each face without → with eyeglasses (`python -m src.run
model=pix2pix`, the recipe conf/recipe/pix2pix_faces_paired.yaml: 32 px, 10 epochs of 4,000 pairs), scored on the 500
test pairs; and the CycleGAN checkpoint of experiments/cyclegan_faces.py (run that first) on the same test pairs.

Records for both: L1 and SSIM of G(a) to the ground-truth b, the judge's flip and kept shares (a → b), FID/KID with
N, seconds. Target: pix2pix closer to the ground truth than CycleGAN (lower L1, higher SSIM: it has the pairs), both
flipping ≥ 0.90.

    python experiments/pix2pix_faces.py [--seed 0] [--n 500] [--cyclegan-ckpt PATH] [extra Hydra overrides …]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from hydra.utils import instantiate
from record import REPO, RESULTS, write_result
from torch.utils.data import default_collate
from translation_eval import copy_grids, kept_each, run_config_of, score, train  # puts this checkout's src first

from src.models.pix2pix import ground_truth_figures  # noqa: E402
from src.sample import load_model  # noqa: E402

NAME = "pix2pix_faces"
KEYS = ("l1", "ssim", "flip_a2b", "kept_a2b", "fid/a2b", "kid/a2b", "fid_n/a2b", "fid_n_real/a2b")


def paired_figures(ckpt: Path, data, n: int) -> dict:
    """A CycleGAN's a → b figures on paired data: FID, flip and kept by :func:`score`, L1/SSIM to the ground truth
    by pix2pix's own :func:`ground_truth_figures`, on the same first n test pairs."""
    figures = score(ckpt, "test", n, data=data)
    model, _ = load_model(ckpt)
    items = instantiate(data).eval_subset("test", n)
    per_image: dict[str, list[torch.Tensor]] = {"l1": [], "ssim": []}
    with torch.no_grad():
        for start in range(0, len(items), 50):
            batch = default_collate([items[i] for i in range(start, min(len(items), start + 50))])
            fake = model.translate("a2b", batch["a"], model.eval_generator)
            for name, values in ground_truth_figures(fake, batch["b"]).items():
                per_image[name].append(values)
    return figures | {f"val/{name}": float(torch.cat(values).mean()) for name, values in per_image.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--cyclegan-ckpt", type=Path,
                        default=REPO / "logs" / "benchmarks" / "cyclegan_faces" / "checkpoints" / "last.ckpt")
    args, overrides = parser.parse_known_args()
    if not args.cyclegan_ckpt.is_file():
        parser.error(f"{args.cyclegan_ckpt} does not exist: run experiments/cyclegan_faces.py first")
    start = time.perf_counter()
    ckpt, train_seconds, train_cpu_seconds = train(NAME, ["model=pix2pix", "data=faces_paired", f"seed={args.seed}",
                                                          *overrides])
    paired_data = run_config_of(ckpt).data
    pix2pix = score(ckpt, "test", args.n)
    cyclegan = paired_figures(args.cyclegan_ckpt, paired_data, args.n)
    record = {
        "seed": args.seed, "split": "test",
        **{f"pix2pix_{k}": pix2pix[f"val/{k}"] for k in KEYS},
        **{f"cyclegan_{k}": cyclegan[f"val/{k}"] for k in KEYS},
        **kept_each(pix2pix, "pix2pix_"), **kept_each(cyclegan, "cyclegan_"),
        **{key: value for key, value in pix2pix.items() if key.startswith("judge_")},
        "pix2pix_train_seconds": round(train_seconds, 1),
        "pix2pix_train_cpu_seconds": round(train_cpu_seconds, 1),
        "cyclegan_checkpoint": str(args.cyclegan_ckpt),
        "target": "pix2pix_l1 < cyclegan_l1 and pix2pix_ssim > cyclegan_ssim; both flip_a2b >= 0.90",
        "grids": copy_grids(ckpt.parent.parent, RESULTS / NAME),
    }
    if overrides:
        record["overrides"] = overrides
    print(write_result(NAME, record, time.perf_counter() - start))


if __name__ == "__main__":
    main()
