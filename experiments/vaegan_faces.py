"""Benchmark: VAE-GAN (binary and three-class D) against the VAE with the same encoder, decoder, data and budget, on
the procedural faces at 32 px (conf/recipe/shared/autoencoders_faces.yaml; vaegan_faces.yaml adds D, vae_faces.yaml
the pixel σ).

Records per model the FID (and KID) of its prior samples (``val/fid/samples``, against real training faces) and of
its reconstructions of held-out faces (``val/fid/reconstructions``, against those faces), with N, the pixel L1 of
the reconstructions, the wall time, and the final grids (real | reconstruction pairs, prior samples).
Target: both VAE-GAN variants lower than the VAE on both FIDs. Budget: 30 minutes of 2-core CPU for the three runs
(estimated from step timings, not yet measured: the `seconds` figures will say).

    python experiments/vaegan_faces.py [--seed 0] [--name NAME] [--runs vaegan,vae] [extra Hydra overrides …]

``--runs`` (default: all three) picks the models to train, e.g. for an ablation of the budget (with its own
``--name``); the target is judged only when every run is there.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time

from record import REPO, RESULTS, write_result

#: name → the overrides that pick the model (each gets its recipe: same nets, data and budget).
RUNS = {
    "vaegan": ["model=vaegan"],
    "vaegan_three_class": ["model=vaegan", "model.discriminator_mode=three_class"],
    "vae": ["model=vae"],
}


def run(result: str, name: str, model: list[str], seed: int, overrides: list[str]) -> dict:
    run_dir = REPO / "logs" / "benchmarks" / result / name
    shutil.rmtree(run_dir, ignore_errors=True)
    command = [sys.executable, "-m", "src.run", *model, "data=faces", f"seed={seed}", "logger=csv",
               f"hydra.run.dir={run_dir}", *overrides]
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True)
    seconds = time.perf_counter() - start
    metrics = json.loads((run_dir / "metrics.json").read_text())
    grids_dir = RESULTS / result
    grids_dir.mkdir(parents=True, exist_ok=True)
    grids = []
    for png in sorted((run_dir / "samples").glob("*_last.png")):
        target = grids_dir / f"{name}_{png.name.removesuffix('_last.png')}.png"
        shutil.copyfile(png, target)
        grids.append(str(target.relative_to(REPO)))
    return {"seconds": round(seconds, 1), "grids": grids, **metrics}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default="vaegan_faces", help="result name (JSON file and grids folder)")
    parser.add_argument("--runs", default=",".join(RUNS), help=f"the models to train, comma-separated ({list(RUNS)})")
    args, overrides = parser.parse_known_args()
    args.runs = list(dict.fromkeys(args.runs.split(",")))
    if set(args.runs) - set(RUNS):
        parser.error(f"--runs {','.join(args.runs)}: the runs are {', '.join(RUNS)}")
    all_runs = set(args.runs) == set(RUNS)
    if (overrides or not all_runs) and args.name == "vaegan_faces":
        parser.error("overrides or a subset of runs change the benchmark: give the result its own --name")
    start = time.perf_counter()
    runs = {name: run(args.name, name, RUNS[name], args.seed, overrides) for name in args.runs}
    figures: dict = {"seed": args.seed}
    for name, metrics in runs.items():
        for key in ("fid/samples", "fid/reconstructions", "kid/samples", "kid/reconstructions", "recon_l1"):
            figures[f"{name}_{key.replace('/', '_')}"] = metrics[f"val/{key}"]
        figures[f"{name}_seconds"] = metrics["seconds"]
    first = next(iter(runs.values()))
    figures["fid_n_samples"] = first["val/fid_n/samples"]
    figures["fid_n_reconstructions"] = first["val/fid_n/reconstructions"]
    if all_runs:
        vae = runs["vae"]
        figures["target_met"] = all(runs[name][f"val/fid/{stream}"] < vae[f"val/fid/{stream}"]
                                    for name in ("vaegan", "vaegan_three_class")
                                    for stream in ("samples", "reconstructions"))
    figures["target"] = "both VAE-GAN variants: lower FID than the VAE on prior samples and on reconstructions"
    figures["grids"] = [path for metrics in runs.values() for path in metrics["grids"]]
    if overrides:
        figures["overrides"] = overrides
    print(write_result(args.name, figures, time.perf_counter() - start))


if __name__ == "__main__":
    main()
