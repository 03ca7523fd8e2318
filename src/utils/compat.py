"""Fail fast on model/data pairs that cannot train together, naming the choices that can."""
from __future__ import annotations

from pathlib import Path

import yaml
from hydra.utils import get_class

from src.utils.errors import ConfigError


def data_kinds(data_config_file: Path) -> tuple[str, ...]:
    """The ``kinds`` of the DataModule a ``conf/data/*.yaml`` file builds (none if it names no class)."""
    target = (yaml.safe_load(data_config_file.read_text()) or {}).get("_target_")
    return tuple(getattr(get_class(target), "kinds", ())) if target else ()


def compatible_data(model_kinds: tuple[str, ...], data_config_dir: Path) -> list[str]:
    """Names of the data configs whose DataModule yields one of ``model_kinds``."""
    return sorted(f.stem for f in data_config_dir.glob("*.yaml") if set(data_kinds(f)) & set(model_kinds))


def check_compatible(model_name: str, model_target: str, data_name: str, kinds: tuple[str, ...],
                     data_config_dir: Path) -> None:
    """Raise ConfigError when none of the model's ``data_kinds`` is among the datamodule's ``kinds``."""
    model_kinds = tuple(getattr(get_class(model_target), "data_kinds", ()))
    if not set(kinds) & set(model_kinds):
        valid = ", ".join(compatible_data(model_kinds, data_config_dir)) or "none"
        raise ConfigError(
            f"model={model_name} cannot train on data={data_name}: it needs {' or '.join(model_kinds)} data, "
            f"and data={data_name} yields {' and '.join(kinds)} data. Valid choices for model={model_name}: {valid}."
        )
