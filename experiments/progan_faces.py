"""Benchmark: ProGAN on the procedural faces at 64×64 (`python -m src.run model=progan`, the tuning in
conf/recipe/progan_faces.yaml), against the same generator and discriminator trained at 64×64 from the start
(`model.growth.start_resolution=64`) for the same wall-clock time.

Both runs train without validation; each is then scored once (`python -m src.evaluate`, FID/KID of the EMA
generator's samples at 64×64 against 500 real training faces, N = 500 on CPU) with the MS-SSIM of pairs of samples
(`val/ms_ssim`, lower = more diverse) and of real faces (`val/ms_ssim_real`). Growing should win or tie on FID.
Budget: about 30 minutes of 2 CPU cores for the growing run, the same for the baseline.

    python experiments/progan_faces.py [--seed 0] [extra Hydra overrides for both runs …]
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time

from record import REPO, write_result

NAME = "progan_faces"


def train(run_dir, overrides: list[str]) -> float:
    shutil.rmtree(run_dir, ignore_errors=True)
    command = [sys.executable, "-m", "src.run", "model=progan", "data=faces", "logger=csv",
               "+trainer.limit_val_batches=0", f"hydra.run.dir={run_dir}", *overrides]
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True)
    return time.perf_counter() - start


def score(run_dir) -> dict:
    out = run_dir / "evaluation"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "src.evaluate", f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}",
                    f"hydra.run.dir={out}"], cwd=REPO, check=True)
    metrics = json.loads((out / "metrics.json").read_text())
    return {**metrics, "eval_seconds": round(time.perf_counter() - start, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    args, overrides = parser.parse_known_args()
    overrides = [f"seed={args.seed}", *overrides]
    root = REPO / "logs" / "benchmarks" / NAME
    start = time.perf_counter()
    grown_seconds = train(root / "growing", overrides)
    grown = score(root / "growing")
    # The baseline gets the growing run's wall-clock (Lightning's max_time stops it mid-epoch; last.ckpt is written
    # at the stop), with epochs enough never to end first.
    budget = time.strftime("00:%H:%M:%S", time.gmtime(grown_seconds))
    fixed_seconds = train(root / "fixed64", [*overrides, "model.growth.start_resolution=64", "trainer.max_epochs=1000",
                                             f"+trainer.max_time={budget}"])
    fixed = score(root / "fixed64")
    keys = ("val/fid", "val/kid", "val/fid_n", "val/fid_n_real", "val/ms_ssim", "val/ms_ssim_real", "val/resolution")
    figures = {
        "seed": args.seed,
        "growing": {key: grown.get(key) for key in keys} | {"train_seconds": round(grown_seconds, 1)},
        "fixed_64": {key: fixed.get(key) for key in keys} | {"train_seconds": round(fixed_seconds, 1)},
        "growing_fid_minus_fixed_fid": grown["val/fid"] - fixed["val/fid"],
        "target": "growing FID <= fixed-64 FID for the same wall-clock; each run <= 30 min of 2 CPU cores",
    }
    if overrides[1:]:
        figures["overrides"] = overrides[1:]
    print(write_result(NAME, figures, time.perf_counter() - start))


if __name__ == "__main__":
    main()
