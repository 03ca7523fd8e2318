"""Score a checkpoint: ``python -m src.evaluate ckpt_path=<run>/checkpoints/last.ckpt [trainer=…] [metrics.…=…]``.

Runs one validation of the checkpoint's model on its dataset (both rebuilt from the config stored in the
checkpoint) with the FID/KID callback, on any trainer (``trainer=ddp_cpu`` or ``trainer=ddp trainer.devices=8``):
FID/KID per evaluation stream and the model's own ``val/`` metrics, printed and written to ``metrics.json``.
The evaluation fakes do not depend on the world size, so every trainer gives the same numbers for the same N.
"""
from __future__ import annotations

import json
from pathlib import Path

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig
from rich.console import Console

from src.sample import load_model
from src.utils.config_check import check_config
from src.utils.errors import exit_on_user_error
from src.callbacks.run_summary import final_metrics, summary_table


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Validate the checkpoint once; returns the logged metrics (the same on every rank)."""
    model, run_config = load_model(cfg.ckpt_path)
    datamodule = instantiate(run_config.data)
    trainer = instantiate(cfg.trainer, callbacks=[instantiate(cfg.metrics)], logger=False, enable_checkpointing=False)
    trainer.validate(model, datamodule=datamodule, verbose=False)
    metrics = final_metrics(trainer)
    if trainer.is_global_zero:
        output = Path(cfg.paths.output_dir)
        output.mkdir(parents=True, exist_ok=True)
        (output / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
        paths = {"checkpoint": str(cfg.ckpt_path), "final metrics": str(output / "metrics.json")}
        Console(width=160).print(summary_table(metrics, paths))
    return metrics


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    with exit_on_user_error():
        check_config(cfg)
        evaluate(cfg)


if __name__ == "__main__":
    main()
