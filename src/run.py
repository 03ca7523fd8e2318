"""Train a GAN: ``python -m src.run model=infogan [data=…] [trainer=…] [logger=…] [key=value …]``.

Composition and wiring only: everything built here comes from a ``_target_`` in ``conf/``.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.utilities import rank_zero_info

from src.callbacks.config_in_checkpoint import ConfigInCheckpoint
from src.callbacks.rng_state import RNGStateInCheckpoint
from src.callbacks.sample_grids import SampleGrids
from src.data.errors import CorruptImageError, DatasetNotFoundError
from src.models.base import NonFiniteLossError
from src.utils.checkpoint_io import AtomicCheckpointIO
from src.utils.compat import check_compatible
from src.utils.ddp_multirun import ddp_ranks_run_this_job
from src.utils.errors import ConfigError, WriteError
from src.utils.loggers import build_loggers
from src.utils.resume import resolve_ckpt_path
from src.utils.summary import print_summary

CONFIG_DIR = Path(__file__).resolve().parent.parent / "conf"
#: Failures that are the user's to fix: printed as one clear message, without a traceback.
USER_ERRORS = (ConfigError, DatasetNotFoundError, CorruptImageError, NonFiniteLossError, WriteError)


def train(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """Build data, model, callbacks, loggers and trainer from ``cfg``; fit. Returns (final metrics, objects)."""
    choices = HydraConfig.get().runtime.choices
    output_dir = Path(cfg.paths.output_dir)
    ckpt_path = resolve_ckpt_path(cfg.ckpt_path, output_dir.parent, cfg.run_name, output_dir)
    with open_dict(cfg):
        cfg.ckpt_path = str(ckpt_path) if ckpt_path else None  # the file itself, also when given as `last`
    pl.seed_everything(cfg.seed, workers=True)

    datamodule = instantiate(cfg.data)
    check_compatible(choices.model, cfg.model._target_, choices.data, datamodule.kind, CONFIG_DIR / "data")
    with open_dict(cfg):  # what the nets size themselves from; kept in the saved config for sampling later
        cfg.dataset = {"name": datamodule.name, "kind": datamodule.kind,
                       "image_shape": list(datamodule.image_shape), "num_classes": datamodule.num_classes}
    output_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, output_dir / "config_resolved.yaml", resolve=True)

    model = instantiate(cfg.model)
    callbacks = [instantiate(c) for c in cfg.callbacks.values()]
    callbacks += [instantiate(cfg.metrics), ConfigInCheckpoint(cfg), RNGStateInCheckpoint()]
    loggers = build_loggers(cfg.get("logger"), output_dir, cfg.ckpt_path)
    trainer: pl.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False,
                                      plugins=[AtomicCheckpointIO()])
    with ddp_ranks_run_this_job():
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.ckpt_path)

    metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}
    paths = {"run directory": str(output_dir), "resolved config": str(output_dir / "config_resolved.yaml")}
    for callback in trainer.callbacks:
        if isinstance(callback, ModelCheckpoint):
            found = {"best checkpoint": callback.best_model_path, "last checkpoint": callback.last_model_path}
            paths |= {name: path for name, path in found.items() if path}
        if isinstance(callback, SampleGrids):
            paths |= {f"grid: {name}": str(path) for name, path in callback.written.items()}
    for logger in loggers:
        paths[f"log: {type(logger).__name__}"] = str(logger.save_dir)
    if trainer.is_global_zero:
        (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
        paths["final metrics"] = str(output_dir / "metrics.json")
        print_summary(metrics, paths)
    return metrics, {"cfg": cfg, "datamodule": datamodule, "model": model, "trainer": trainer}


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns ``cfg.optimized_metric`` for sweepers."""
    try:
        metrics, _ = train(cfg)
    except USER_ERRORS as error:
        print(f"\nerror: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    value = metrics.get(cfg.get("optimized_metric"))
    rank_zero_info(f"{cfg.get('optimized_metric')} = {value}")
    return value


if __name__ == "__main__":
    main()
