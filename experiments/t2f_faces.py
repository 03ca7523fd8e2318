"""Benchmark: T2F on the procedural captioned faces at 64×64 (`python -m src.run model=t2f`, the tuning in
conf/recipe/t2f_faces.yaml): text fidelity on the held-out test captions (sentence frames never seen in training).

For each of the first --captions test captions (a fixed, seeded subset of every (face, caption) pair of the test
split) the EMA generator draws one face, and the attribute judge (trained on real faces only, cached) predicts the
attributes; a caption counts only for the attributes it names (`named_attributes`). Reported per attribute and
overall (pairs pooled), against two controls:
  (a) shuffled: the same generator fed the captions rolled by one place (each face judged against the caption it was
      not drawn from): what the text adds over a text-blind generator of the same quality;
  (b) base rate: the share of training faces that have the named value, i.e. what a generator that ignores the
      caption would score on average.
Also the FID/KID of the `captions` stream (one fake per test caption against the test faces, N as logged) and
`val/text_acc` as the run logged it. Target: mean accuracy ≥ 0.80 on named attributes, the shuffled control near the
base rate. Budget: about 30 minutes of 2 CPU cores, evaluation included.

    python experiments/t2f_faces.py [--seed 0] [--captions 2000] [--name t2f_faces] [extra Hydra overrides …]

The caption grid of the run's last validation is copied to experiments/results/<name>/caption_rows.png.
"""
from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import time

import numpy as np
import torch
from hydra.utils import instantiate

from record import REPO, RESULTS, write_result

sys.path.insert(0, str(REPO))
from src.data.faces.captions import named_attributes  # noqa: E402
from src.metrics.attribute_judge import attribute_accuracy, load_judge  # noqa: E402
from src.nets.progan import upsample  # noqa: E402
from src.sample import load_model  # noqa: E402

NAME = "t2f_faces"


def judged(model, judge, tokens, lengths, seed: int, batch: int = 50) -> torch.Tensor:
    """The judge's N×K predictions on one face per caption, drawn in seeded chunks."""
    predictions = []
    for start in range(0, len(tokens), batch):
        generator = torch.Generator().manual_seed(seed + start)
        fakes = model.from_captions(tokens[start:start + batch], lengths[start:start + batch], 1, generator)
        predictions.append(judge.predict(upsample(fakes, judge.image_shape[-1] // fakes.shape[-1])))
    return torch.cat(predictions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--captions", type=int, default=2000)
    parser.add_argument("--name", default=NAME, help="result name (JSON file, grid folder and run folder)")
    args, overrides = parser.parse_known_args()
    run_dir = REPO / "logs" / "benchmarks" / args.name / f"seed{args.seed}"
    shutil.rmtree(run_dir, ignore_errors=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "src.run", "model=t2f", "data=faces", f"seed={args.seed}", "logger=csv",
                    f"hydra.run.dir={run_dir}", *overrides], cwd=REPO, check=True)
    train_seconds = time.perf_counter() - start
    logged = json.loads((run_dir / "metrics.json").read_text())
    figures = {"seed": args.seed, **text_fidelity(run_dir, args.captions, args.seed),
               "val_text_acc_logged": logged.get("val/text_acc"),
               "fid": logged.get("val/fid/captions"), "kid": logged.get("val/kid/captions"),
               "fid_n": logged.get("val/fid_n/captions"), "fid_n_real": logged.get("val/fid_n_real/captions"),
               "resolution": logged.get("val/resolution"), "ms_ssim": logged.get("val/ms_ssim"),
               "ms_ssim_real": logged.get("val/ms_ssim_real"), "train_seconds": round(train_seconds, 1),
               "target": "text_acc_mean >= 0.80 with shuffled_acc_mean near base_rate_mean; <= 30 min of 2 CPU cores"}
    if overrides:
        figures["overrides"] = overrides
    figures["validations"] = validations(run_dir)
    grid = run_dir / "samples" / "caption_rows_last.png"
    if grid.is_file():
        (RESULTS / args.name).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(grid, RESULTS / args.name / "caption_rows.png")
        figures["grids"] = [f"experiments/results/{args.name}/caption_rows.png"]
    print(write_result(args.name, figures, time.perf_counter() - start))


def validations(run_dir) -> list[dict]:
    """Every validation the run logged (epoch, resolution, text accuracy, FID, MS-SSIM), from its CSV log."""
    keys = {"val/resolution": "resolution", "val/alpha": "alpha", "val/text_acc": "text_acc",
            "val/fid/captions": "fid", "val/ms_ssim": "ms_ssim"}
    rows = []
    for path in sorted(run_dir.glob("csv/*/metrics.csv")):
        with path.open() as f:
            for row in csv.DictReader(f):
                if row.get("val/text_acc"):
                    rows.append({"epoch": int(row["epoch"]),
                                 **{name: float(row[key]) for key, name in keys.items() if row.get(key)}})
    return rows


def text_fidelity(run_dir, n_captions: int, seed: int) -> dict:
    """Per-attribute and mean accuracy on the named attributes of the first ``n_captions`` test captions, with the
    shuffled and base-rate controls, for the run's last checkpoint."""
    model, config = load_model(run_dir / "checkpoints" / "last.ckpt")
    datamodule = instantiate(config.data)
    judge = load_judge(datamodule, config.paths.cache_dir, model.judge_settings)
    names, values = judge.names, dict(judge.spec)
    items = datamodule.eval_subset("test_captions", n_captions)
    items = [items[i] for i in range(len(items))]
    tokens = torch.stack([item["tokens"] for item in items])
    lengths = torch.stack([item["length"] for item in items])
    intended = torch.zeros(len(items), len(names), dtype=torch.int64)
    mask = torch.zeros_like(intended, dtype=torch.bool)
    for row, item in enumerate(items):
        for name, value in named_attributes(item["caption"]).items():
            k = names.index(name)
            intended[row, k], mask[row, k] = values[name].index(value), True

    with torch.no_grad():
        matched = attribute_accuracy(judged(model, judge, tokens, lengths, seed), intended, names, mask)
        shuffled = attribute_accuracy(judged(model, judge, tokens.roll(1, 0), lengths.roll(1, 0), seed),
                                      intended, names, mask)
    train_attrs = torch.from_numpy(np.array(datamodule.faces.attrs("train")))
    frequency = [torch.bincount(train_attrs[:, k], minlength=len(values[name])).float() / len(train_attrs)
                 for k, name in enumerate(names)]
    expected = torch.stack([frequency[k][intended[:, k]] for k in range(len(names))], dim=1)
    base_rate = {name: expected[mask[:, k], k].mean().item() for k, name in enumerate(names) if mask[:, k].any()}
    base_rate["mean"] = expected[mask].mean().item()
    return {"n_captions": len(items), "named_pairs": int(mask.sum()),
            "text_acc": matched, "text_acc_mean": matched["mean"],
            "shuffled_acc": shuffled, "shuffled_acc_mean": shuffled["mean"],
            "base_rate": base_rate, "base_rate_mean": base_rate["mean"]}


if __name__ == "__main__":
    main()
