"""Benchmark: BiGAN against the twin autoencoder (the same G and E, reconstruction losses only) and against a
random-init encoder (BiGAN's trained G with a freshly initialised E), on the embedded digits
(conf/recipe/shared/autoencoders_digits.yaml; bigan_digits.yaml adds D).

For each: the share of the 297 held-out digits whose class G(E(x)) keeps, read by a digit judge trained on the real
training digits only (src/metrics/digit_judge.py; its own held-out accuracy is recorded); the linear-probe (logistic
regression) and 1-NN accuracy on E(x) of the held-out digits, fitted on E(x) of the training digits; FID (and KID) of
the reconstructions G(E(x)) against the held-out digits (N = 297 each, computed here the same way for all three).
Target: BiGAN keeps the class far above chance (0.1) while its reconstructions' FID is clearly lower than twin_ae's.
Budget: 30 minutes of 2-core CPU for both runs and the evaluation (estimated, not yet measured: `seconds` will say).

    python experiments/bigan_digits.py [--seed 0] [--name NAME] [extra Hydra overrides for both runs …]
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

from record import REPO, RESULTS, write_result
from src.callbacks.config_in_checkpoint import ConfigInCheckpoint
from src.metrics.digit_judge import class_kept, train_digit_judge
from src.metrics.fid import InceptionMetrics
from src.metrics.inception import resolve_inception_weights
from src.sample import load_model
from src.utils.resume import load_checkpoint

MODELS = ("bigan", "twin_ae")


def train(result: str, model: str, seed: int, overrides: list[str]) -> tuple[dict, float]:
    run_dir = REPO / "logs" / "benchmarks" / result / model
    shutil.rmtree(run_dir, ignore_errors=True)
    command = [sys.executable, "-m", "src.run", f"model={model}", "data=digits", f"seed={seed}", "logger=csv",
               f"hydra.run.dir={run_dir}", *overrides]
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True)
    seconds = time.perf_counter() - start
    grids_dir = RESULTS / result
    grids_dir.mkdir(parents=True, exist_ok=True)
    for png in sorted((run_dir / "samples").glob("*_last.png")):
        shutil.copyfile(png, grids_dir / f"{model}_{png.name.removesuffix('_last.png')}.png")
    return {"run_dir": run_dir, "metrics": json.loads((run_dir / "metrics.json").read_text())}, seconds


def random_encoder(ckpt_path, seed: int):
    """The trained BiGAN with its encoder replaced by a fresh initialisation (seeded)."""
    checkpoint = load_checkpoint(ckpt_path)
    config = OmegaConf.create(checkpoint[ConfigInCheckpoint.KEY])
    torch.manual_seed(seed + 1000)
    model = instantiate(config.model)
    trained = {k: v for k, v in checkpoint["state_dict"].items() if not k.startswith("generator.encoder.")}
    missing, unexpected = model.load_state_dict(trained, strict=False)
    assert not unexpected and all(k.startswith("generator.encoder.") for k in missing)
    return model.eval()


def stacked(split) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.stack([split[i]["image"] for i in range(len(split))]),
            torch.stack([split[i]["label"] for i in range(len(split))]))


@torch.no_grad()
def evaluate(model, judge, metrics: InceptionMetrics, real_val_features, train, val) -> dict:
    (x_train, y_train), (x_val, y_val) = train, val
    codes_train, codes_val = model.encode(x_train).numpy(), model.encode(x_val)
    reconstructions = model.decode(codes_val)
    codes_val = codes_val.numpy()
    probe = LogisticRegression(max_iter=2000).fit(codes_train, y_train.numpy())
    nearest = KNeighborsClassifier(n_neighbors=1).fit(codes_train, y_train.numpy())
    metrics.reset()
    metrics.update(real_val_features, real=True)
    metrics.update(metrics.extract(reconstructions), real=False)
    scores = metrics.compute()
    return {"class_kept": class_kept(judge, reconstructions, y_val),
            "linear_probe_acc": float(probe.score(codes_val, y_val.numpy())),
            "knn1_acc": float(nearest.score(codes_val, y_val.numpy())),
            "recon_fid": scores["fid"], "recon_kid": scores["kid"],
            "recon_l1": float((reconstructions - x_val).abs().mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default="bigan_digits", help="result name (JSON file and grids folder)")
    args, overrides = parser.parse_known_args()
    if overrides and args.name == "bigan_digits":
        parser.error("overrides change the recipe: give the result its own --name")
    start = time.perf_counter()
    runs, figures = {}, {"seed": args.seed}
    for model in MODELS:
        runs[model], figures[f"{model}_train_seconds"] = train(args.name, model, args.seed, overrides)

    models = {model: load_model(run["run_dir"] / "checkpoints" / "last.ckpt")[0] for model, run in runs.items()}
    bigan_ckpt = runs["bigan"]["run_dir"] / "checkpoints" / "last.ckpt"
    models["random_encoder"] = random_encoder(bigan_ckpt, args.seed)
    config = OmegaConf.create(load_checkpoint(bigan_ckpt)[ConfigInCheckpoint.KEY])
    datamodule = instantiate(config.data)
    train_split, val_split = datamodule.split("train"), datamodule.split("val")
    judge = train_digit_judge(train_split, val_split)
    figures["judge_val_accuracy"] = judge.record["val_accuracy"]["digit"]
    train_set, val_set = stacked(train_split), stacked(val_split)
    metrics = InceptionMetrics(weights_path=resolve_inception_weights(None, config.paths.cache_dir), batch_size=50,
                               kid_subset_size=len(val_set[0]))
    real_val_features = metrics.extract(val_set[0])
    for name, model in models.items():
        for key, value in evaluate(model, judge, metrics, real_val_features, train_set, val_set).items():
            figures[f"{name}_{key}"] = value
    figures["fid_n"] = len(val_set[0])
    figures["chance"] = 0.1
    figures["target_met"] = (figures["bigan_class_kept"] >= 0.5
                             and figures["bigan_recon_fid"] < 0.8 * figures["twin_ae_recon_fid"])
    figures["target"] = ("BiGAN keeps the class far above chance (class_kept >= 0.5 against 0.1) and its "
                         "reconstructions' FID is clearly lower than twin_ae's (< 0.8×)")
    print(write_result(args.name, figures, time.perf_counter() - start))


if __name__ == "__main__":
    main()
