"""The table printed at the end of a run: final metrics and where everything was written."""
from __future__ import annotations

from collections.abc import Mapping

from rich.console import Console
from rich.table import Table


def summary_table(metrics: Mapping[str, float], paths: Mapping[str, str]) -> Table:
    table = Table(title="ganzoo run summary", show_header=True, header_style="bold")
    table.add_column("metric / artefact")
    table.add_column("value", overflow="fold")
    for name in sorted(metrics):
        table.add_row(name, f"{metrics[name]:.4f}")
    for name, path in paths.items():
        table.add_row(name, str(path))
    return table


def print_summary(metrics: Mapping[str, float], paths: Mapping[str, str]) -> None:
    Console(width=160).print(summary_table(metrics, paths))
