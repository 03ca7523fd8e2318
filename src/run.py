"""Train a GAN: ``python -m src.run model=infogan [data=…] [trainer=…] [logger=…] [key=value …]``.

Composition and wiring only: everything built here comes from a ``_target_`` in ``conf/``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.utilities import rank_zero_info

from src.callbacks.run_summary import final_metrics
from src.utils.compat import check_compatible
from src.utils.config_check import check_config
from src.utils.ddp_multirun import ddp_ranks_run_this_job
from src.utils.errors import exit_on_user_error
from src.utils.loggers import build_loggers
from src.utils.resume import resolve_ckpt_path

CONFIG_DIR = Path(__file__).resolve().parent.parent / "conf"


def dataset_info(datamodule, with_text: bool | None = None) -> dict[str, Any]:
    """What the nets size themselves from (``cfg.dataset``); for captioned data (``with_text``, default: whenever the
    data is captioned) also the vocabulary (text models size their embedding from it, and sampling tokenizes typed
    captions with it) and the caption length, read from the training captions."""
    info = {"name": datamodule.name, "kind": datamodule.kind, "image_shape": list(datamodule.image_shape),
            "num_classes": datamodule.num_classes}
    if "captioned" in datamodule.kinds if with_text is None else with_text:
        info.update(vocabulary=datamodule.vocabulary.words, vocab_size=len(datamodule.vocabulary),
                    max_caption_length=datamodule.max_caption_length)
    return info


def train(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """Build data, model, callbacks, loggers and trainer from ``cfg``; fit. Returns (final metrics, objects)."""
    choices = HydraConfig.get().runtime.choices
    output_dir = Path(cfg.paths.output_dir)
    ckpt_path = resolve_ckpt_path(cfg.ckpt_path, output_dir.parent, cfg.run_name, output_dir)
    with open_dict(cfg):
        cfg.ckpt_path = str(ckpt_path) if ckpt_path else None  # the file itself, also when given as `last`
    pl.seed_everything(cfg.seed, workers=True)

    datamodule = instantiate(cfg.data)
    check_compatible(choices.model, cfg.model._target_, choices.data, datamodule.kinds, CONFIG_DIR / "data")
    with open_dict(cfg):  # what the nets size themselves from; kept in the saved config for sampling later
        cfg.dataset = dataset_info(datamodule)
    output_dir.mkdir(parents=True, exist_ok=True)
    # The run's record; ConfigInCheckpoint reads it back into every checkpoint.
    OmegaConf.save(cfg, output_dir / "config_resolved.yaml", resolve=True)

    model = instantiate(cfg.model)
    callbacks = [instantiate(c) for c in cfg.callbacks.values()] + [instantiate(cfg.metrics)]
    loggers = build_loggers(cfg.get("logger"), output_dir, cfg.ckpt_path,
                            run_config=OmegaConf.to_container(cfg, resolve=True))
    trainer: pl.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    with ddp_ranks_run_this_job():
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
    return final_metrics(trainer), {"cfg": cfg, "datamodule": datamodule, "model": model, "trainer": trainer}


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns ``cfg.optimized_metric`` for sweepers."""
    with exit_on_user_error():
        check_config(cfg, HydraConfig.get().runtime.choices)
        metrics, _ = train(cfg)
    value = metrics.get(cfg.get("optimized_metric"))
    rank_zero_info(f"{cfg.get('optimized_metric')} = {value}")
    return value


if __name__ == "__main__":
    main()
