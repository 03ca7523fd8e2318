"""Fail fast on model/data pairs that cannot train together, naming the choices that can."""
from __future__ import annotations

from pathlib import Path

import yaml
from hydra.utils import get_class

from src.utils.errors import ConfigError


def data_kind(data_config_file: Path) -> str | None:
    """The ``kind`` of the DataModule a ``conf/data/*.yaml`` file builds (None if it names no class)."""
    target = (yaml.safe_load(data_config_file.read_text()) or {}).get("_target_")
    return getattr(get_class(target), "kind", None) if target else None


def compatible_data(model_kinds: tuple[str, ...], data_config_dir: Path) -> list[str]:
    """Names of the data configs whose DataModule yields one of ``model_kinds``."""
    return sorted(f.stem for f in data_config_dir.glob("*.yaml") if data_kind(f) in model_kinds)


def check_compatible(model_name: str, model_target: str, data_name: str, kind: str, data_config_dir: Path) -> None:
    """Raise ConfigError when the model's ``data_kinds`` do not include the datamodule's ``kind``."""
    model_kinds = tuple(getattr(get_class(model_target), "data_kinds", ()))
    if kind not in model_kinds:
        valid = ", ".join(compatible_data(model_kinds, data_config_dir)) or "none"
        raise ConfigError(
            f"model={model_name} cannot train on data={data_name}: it needs {' or '.join(model_kinds)} data, "
            f"and data={data_name} yields {kind} data. Valid choices for model={model_name}: {valid}."
        )
