"""The end of a run, on rank 0: the final metrics in ``metrics.json`` and in each W&B run's summary, and a table
of them with where the checkpoints, sample grids, logs and config were written."""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import WandbLogger
from rich.console import Console
from rich.table import Table

from src.callbacks.sample_grids import SampleGrids


def final_metrics(trainer: pl.Trainer) -> dict[str, float]:
    """The last value of every metric the run logged."""
    return {name: float(value) for name, value in trainer.callback_metrics.items()}


def summary_table(metrics: Mapping[str, float], paths: Mapping[str, str]) -> Table:
    table = Table(title="ganzoo run summary", show_header=True, header_style="bold")
    table.add_column("metric / artefact")
    table.add_column("value", overflow="fold")
    for name in sorted(metrics):
        table.add_row(name, f"{metrics[name]:.4f}")
    for name, path in paths.items():
        table.add_row(name, str(path))
    return table


class RunSummary(pl.Callback):
    def __init__(self, output_dir: str | Path):
        self.output_dir = Path(output_dir)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        metrics = final_metrics(trainer)
        (self.output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
        paths = {"run directory": str(self.output_dir),
                 "resolved config": str(self.output_dir / "config_resolved.yaml"),
                 "final metrics": str(self.output_dir / "metrics.json")}
        for callback in trainer.callbacks:
            if isinstance(callback, ModelCheckpoint):
                found = {"best checkpoint": callback.best_model_path, "last checkpoint": callback.last_model_path}
                paths |= {name: path for name, path in found.items() if path}
            if isinstance(callback, SampleGrids):
                paths |= {f"grid: {name}": str(path) for name, path in callback.written.items()}
        for logger in trainer.loggers:
            paths[f"log: {type(logger).__name__}"] = str(logger.save_dir)
            if isinstance(logger, WandbLogger):
                # The run's headline numbers in W&B's runs table, also for a metric last logged before the end.
                logger.experiment.summary.update(metrics)
        Console(width=160).print(summary_table(metrics, paths))
