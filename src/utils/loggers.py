"""Experiment loggers from the ``logger`` config group, with W&B's offline fallback and run continuity."""
from __future__ import annotations

import netrc
import os
import socket
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict
from pytorch_lightning.loggers import Logger, WandbLogger
from pytorch_lightning.utilities import rank_zero_info, rank_zero_only

WANDB_HOST = "api.wandb.ai"
WANDB_ID_FILE = "wandb_id"


def wandb_online_reason() -> str | None:
    """None when W&B can run online; otherwise why not (no API key, no network, WANDB_MODE)."""
    if os.environ.get("WANDB_MODE") in ("offline", "disabled", "dryrun"):
        return f"WANDB_MODE={os.environ['WANDB_MODE']}"
    has_key = bool(os.environ.get("WANDB_API_KEY"))
    if not has_key:
        try:
            has_key = netrc.netrc().authenticators(WANDB_HOST) is not None
        except (FileNotFoundError, netrc.NetrcParseError):
            has_key = False
    if not has_key:
        return "no W&B API key is configured (run `wandb login` or set WANDB_API_KEY)"
    try:
        socket.create_connection((WANDB_HOST, 443), timeout=3).close()
    except OSError:
        return f"{WANDB_HOST} cannot be reached"
    return None


def run_dir_of_checkpoint(ckpt_path: str | Path) -> Path:
    """Checkpoints live in ``<run dir>/checkpoints/``."""
    return Path(ckpt_path).resolve().parent.parent


def build_loggers(logger_cfg: DictConfig | None, output_dir: str | Path, ckpt_path: str | None = None,
                  run_config: Mapping[str, Any] | None = None) -> list[Logger]:
    """Instantiate every configured logger. W&B goes offline by itself when it cannot reach its server,
    a resumed run (``ckpt_path``) continues the W&B run whose id was kept in its run directory, and the W&B
    run's config is the whole resolved ``run_config`` (nested, so runs group and filter by any key, e.g.
    ``model.optimizer_g.lr``; Lightning alone would log only what the model's ``save_hyperparameters`` saw)."""
    loggers: list[Logger] = []
    for name, cfg in (logger_cfg or {}).items():
        if cfg.get("_target_", "").endswith("WandbLogger"):
            cfg = cfg.copy()
            with open_dict(cfg):
                reason = wandb_online_reason()
                if reason and not cfg.get("offline"):
                    rank_zero_info(f"W&B runs offline: {reason}. Sync later with `wandb sync {output_dir}/wandb/offline-run-*`.")
                    cfg.offline = True
                previous = run_dir_of_checkpoint(ckpt_path) / WANDB_ID_FILE if ckpt_path else None
                previous_id = previous.read_text().strip() if previous is not None and previous.is_file() else ""
                if previous_id:
                    cfg.id, cfg.resume = previous_id, "allow"
                elif not cfg.get("id"):
                    # Chosen here, not by wandb.init (which runs lazily), so it can be kept for a resume. Like
                    # wandb.init, take WANDB_RUN_ID first: a W&B sweep agent names the run it launched there.
                    cfg.id = os.environ.get("WANDB_RUN_ID") or uuid.uuid4().hex[:8]
            # Passed to wandb.init when the run starts: `_partial_`, because instantiate would otherwise build
            # every `_target_` inside the run config.
            logger = instantiate(cfg, _partial_=True)(config=dict(run_config or {}))
        else:
            logger = instantiate(cfg)
        if isinstance(logger, WandbLogger) and rank_zero_only.rank == 0:
            Path(output_dir).mkdir(parents=True, exist_ok=True)
            (Path(output_dir) / WANDB_ID_FILE).write_text(cfg.id)
        loggers.append(logger)
    return loggers
