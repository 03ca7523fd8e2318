"""What the CycleGAN and pix2pix faces benchmarks share: train a recipe through `python -m src.run`, then score a
checkpoint on a split of a two-domain dataset (FID each way, the judge's flip and kept shares, cycle L1 or L1/SSIM
to the ground-truth pairs), with the project's own evaluation code (the FID callback, the model's held-out figures).
"""
from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig

from record import REPO

sys.path.insert(0, str(REPO))  # this checkout's src, whatever is installed
from src.callbacks.fid import FIDCallback  # noqa: E402
from src.sample import load_model  # noqa: E402


def child_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def train(name: str, overrides: list[str]) -> tuple[Path, float, float]:
    """Run `python -m src.run` with ``overrides`` into logs/benchmarks/<name>; (last checkpoint, wall seconds, CPU
    seconds of the run: user + system over its cores, which other work on the machine does not inflate)."""
    run_dir = REPO / "logs" / "benchmarks" / name
    shutil.rmtree(run_dir, ignore_errors=True)
    start, cpu = time.perf_counter(), child_cpu_seconds()
    subprocess.run([sys.executable, "-m", "src.run", *overrides, "logger=csv", f"hydra.run.dir={run_dir}"], cwd=REPO,
                   check=True)
    return run_dir / "checkpoints" / "last.ckpt", time.perf_counter() - start, child_cpu_seconds() - cpu


def score(ckpt: Path, split: str, n: int, data: DictConfig | None = None, cache_dir: str | None = None) -> dict:
    """The ``val/…`` figures of ``ckpt`` on ``split`` (its first ``n`` items; FID with n fakes against n reals),
    on the checkpoint's own dataset or on ``data`` (a data config, e.g. the paired faces for a CycleGAN)."""
    model, run_config = load_model(ckpt)
    model.eval_split, model.eval_size = split, n
    datamodule = instantiate(data if data is not None else run_config.data)
    metrics = FIDCallback(num_fake_cpu=n, num_fake_gpu=n, num_real_cpu=n, num_real_gpu=n,
                          kid_subset_size=min(n, 1000), cache_dir=cache_dir or run_config.paths.cache_dir)
    trainer = pl.Trainer(accelerator="auto", devices=1, callbacks=[metrics], logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, limit_val_batches=1)
    trainer.validate(model, datamodule=datamodule, verbose=False)
    return ({name: float(value) for name, value in trainer.callback_metrics.items() if name.startswith("val/")}
            | judge_figures(model))


def kept_each(figures: dict, prefix: str = "") -> dict:
    """The kept share of each other attribute (``val/kept_<direction>/<attribute>`` of :func:`score`) as
    ``<prefix>kept_<direction>/<attribute>``: which attributes a translation loses."""
    return {prefix + key[len("val/"):]: value for key, value in figures.items()
            if key.startswith("val/kept_") and key.count("/") == 2}


def judge_figures(model) -> dict:
    """The judge's own held-out accuracy on real faces (``judge_val_<attribute>``, mean and min): the ceiling that
    ``flip`` and ``kept`` are read against, as a judge's errors count as lost attributes."""
    if getattr(model, "judge", None) is None:
        return {}
    accuracy = dict(model.judge.record["val_accuracy"])
    mean = accuracy.pop("mean")
    return {"judge_val_mean": mean, "judge_val_min": min(accuracy.values()),
            **{f"judge_val_{name}": value for name, value in accuracy.items()}}


def run_config_of(ckpt: Path) -> DictConfig:
    return load_model(ckpt)[1]


def copy_grids(run_dir: Path, target: Path) -> list[str]:
    target.mkdir(parents=True, exist_ok=True)
    grids = []
    for png in sorted((run_dir / "samples").glob("*_last.png")):
        shutil.copyfile(png, target / png.name.replace("_last", ""))
        grids.append(str((target / png.name.replace("_last", "")).relative_to(REPO)))
    return grids


def metrics_json(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())
