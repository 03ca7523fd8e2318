"""Benchmark: the main job (`python -m src.run model=infogan`, InfoGAN on the embedded digits with the tuning in
conf/recipe/infogan_digits.yaml) for 3 seeds.

Records per seed the categorical-code accuracy `cat_acc` (Q's code on held-out real digits vs. their labels,
Hungarian-matched), FID/KID (with N) and wall time, and the median `cat_acc`. Target: cat_acc_median ≥ 0.90
within the 10-minute CPU budget per run (the paper reports ~0.95 on MNIST).

    python experiments/infogan_digits.py [--seeds 0 1 2] [--name NAME] [extra Hydra overrides …]

With overrides, pass --name so the ablation lands in experiments/results/NAME.json, not over the main result;
e.g. the paper's losses without R1: --name infogan_digits_paper_losses model.r1_gamma=0 model.lambda_cont=1
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time

from record import REPO, RESULTS, write_result


def run_seed(name: str, seed: int, overrides: list[str]) -> dict:
    run_dir = REPO / "logs" / "benchmarks" / name / f"seed{seed}"
    shutil.rmtree(run_dir, ignore_errors=True)  # a fresh run: no checkpoints or metrics left from an earlier one
    command = [sys.executable, "-m", "src.run", "model=infogan", "data=digits", f"seed={seed}", "logger=csv",
               f"hydra.run.dir={run_dir}", *overrides]
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True)
    seconds = time.perf_counter() - start
    metrics = json.loads((run_dir / "metrics.json").read_text())
    grids_dir = RESULTS / name  # the final grids of each seed, kept with the numbers (logs/ is not tracked)
    grids_dir.mkdir(parents=True, exist_ok=True)
    grids = []
    for png in sorted((run_dir / "samples").glob("*_last.png")):
        target = grids_dir / f"seed{seed}_{png.name.removesuffix('_last.png')}.png"
        shutil.copyfile(png, target)
        grids.append(str(target.relative_to(REPO)))
    return {"seed": seed, "seconds": round(seconds, 1), "grids": grids, **metrics}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--name", default="infogan_digits", help="result name (JSON file and grids folder)")
    args, overrides = parser.parse_known_args()
    if overrides and args.name == "infogan_digits":
        parser.error("overrides change the recipe: give the result its own --name")
    start = time.perf_counter()
    runs = [run_seed(args.name, seed, overrides) for seed in args.seeds]
    cat_acc = [r["val/cat_acc"] for r in runs]
    figures = {
        "seeds": args.seeds,
        "cat_acc": cat_acc,
        "cat_acc_median": statistics.median(cat_acc),
        "fid": [r["val/fid"] for r in runs],
        "fid_n": runs[0]["val/fid_n"],
        "kid": [r["val/kid"] for r in runs],
        "run_seconds": [r["seconds"] for r in runs],
        "run_seconds_max": max(r["seconds"] for r in runs),
        "target": "cat_acc_median >= 0.90, each run <= 600 s on a 2-core CPU",
        "grids": [path for r in runs for path in r["grids"]],
    }
    if overrides:
        figures["overrides"] = overrides
    print(write_result(args.name, figures, time.perf_counter() - start))


if __name__ == "__main__":
    main()
