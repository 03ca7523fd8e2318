"""Benchmark: CycleGAN on the embedded unpaired faces, without → with eyeglasses (`python -m src.run model=cyclegan`,
the recipe conf/recipe/cyclegan_faces_unpaired.yaml: 32 px, 24 epochs of ~2,000 items), scored on the 500 test faces.

Records each way (a2b: add eyeglasses, b2a: remove them): the judge's share of translations whose eyeglasses flip
(`flip_*`) and whose other attributes are kept (`kept_*`), the cycle-reconstruction L1 (`cycle_l1_a`, `cycle_l1_b`),
FID/KID with N, the judge's own held-out accuracy on real faces (``judge_val_*``, the ceiling of flip and
kept), the training and total seconds. Target: flip ≥ 0.90 each way with kept ≥ 0.90, training within 30
minutes of CPU on 2 cores. The checkpoint is kept for experiments/pix2pix_faces.py.

    python experiments/cyclegan_faces.py [--seed 0] [--n 500] [extra Hydra overrides …]
"""
from __future__ import annotations

import argparse
import time

from record import RESULTS, write_result
from translation_eval import copy_grids, kept_each, score, train

NAME = "cyclegan_faces"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n", type=int, default=500, help="test items scored (FID: as many fakes and reals)")
    args, overrides = parser.parse_known_args()
    start = time.perf_counter()
    ckpt, train_seconds, train_cpu_seconds = train(NAME, ["model=cyclegan", "data=faces_unpaired", f"seed={args.seed}",
                                                          *overrides])
    figures = score(ckpt, "test", args.n)
    record = {
        "seed": args.seed, "split": "test",
        **{key: figures[f"val/{key}"] for key in ("flip_a2b", "flip_b2a", "kept_a2b", "kept_b2a", "cycle_l1_a",
                                                  "cycle_l1_b", "fid/a2b", "fid/b2a", "kid/a2b", "kid/b2a",
                                                  "fid_n/a2b", "fid_n_real/a2b", "fid_n/b2a", "fid_n_real/b2a")},
        **kept_each(figures),
        **{key: value for key, value in figures.items() if key.startswith("judge_")},
        "train_seconds": round(train_seconds, 1),
        "train_cpu_seconds": round(train_cpu_seconds, 1),
        "checkpoint": str(ckpt),
        "target": "flip_a2b, flip_b2a >= 0.90 with kept_a2b, kept_b2a >= 0.90; training <= 1800 s on 2 CPU cores",
        "grids": copy_grids(ckpt.parent.parent, RESULTS / NAME),
    }
    if overrides:
        record["overrides"] = overrides
    print(write_result(NAME, record, time.perf_counter() - start))


if __name__ == "__main__":
    main()
