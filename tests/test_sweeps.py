"""Sweeps as users run them: Hydra's Optuna sweeper over ``conf/hparams_search/`` and the W&B sweep specs in
``experiments/sweeps/``."""
from __future__ import annotations

import itertools
import json

import pytest
import yaml
from conftest import CONF, ROOT
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf
from wandb.sdk.launch.sweeps.utils import create_sweep_command_args, load_sweep_config

WANDB_SPECS = sorted((ROOT / "experiments" / "sweeps").glob("*.yaml"))


def test_optuna_sweep_runs_its_trials_and_writes_the_best(run_cli, tmp_path):
    """Two real trials on the tiny settings (each validates: the sweep minimises val/fid)."""
    sweep_dir = tmp_path / "sweep"
    result = run_cli({"hparams_search": "infogan_optuna", "hydra.sweeper.n_trials": "2",
                      "hydra.sweep.dir": str(sweep_dir)}, multirun=True)
    assert result.returncode == 0, str(result)
    space = OmegaConf.load(CONF / "hparams_search" / "infogan_optuna.yaml").hydra.sweeper.params
    jobs = sorted(p for p in sweep_dir.iterdir() if p.is_dir())
    assert [job.name for job in jobs] == ["0", "1"]

    trials = []
    for job in jobs:
        overrides = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
        drawn = {key: float(value) for key, value in (o.split("=", 1) for o in overrides) if key in space}
        assert set(drawn) == set(space), overrides
        run_config = yaml.safe_load((job / "config_resolved.yaml").read_text())
        for key, value in drawn.items():  # the trial trained with what the sweeper drew
            assert OmegaConf.select(OmegaConf.create(run_config), key) == pytest.approx(value)
        assert 1e-4 <= drawn["model.optimizer_g.lr"] <= 3e-3
        trials.append((json.loads((job / "metrics.json").read_text())["val/fid"], drawn))

    best = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    best_fid, best_params = min(trials, key=lambda trial: trial[0])
    assert best["best_value"] == pytest.approx(best_fid)
    assert best["best_params"] == pytest.approx(best_params)


def _candidates(parameter: dict) -> list:
    """The values a W&B sweep may give one parameter: the fixed value, the listed values, or a distribution's ends."""
    if "value" in parameter:
        return [parameter["value"]]
    if "values" in parameter:
        return list(parameter["values"])
    assert parameter["min"] < parameter["max"], parameter
    if parameter.get("distribution", "").startswith("log_uniform"):
        assert parameter["min"] > 0, parameter
    return [parameter["min"], parameter["max"]]


def _agent_overrides(command: list[str], args_no_hyphens: list[str]) -> list[str]:
    """The Hydra overrides of ``python -m src.run`` in the command a W&B agent runs (``${args_no_hyphens}``
    expanded as the agent expands it, other macros dropped)."""
    expanded = []
    for part in command:
        if part == "${args_no_hyphens}":
            expanded += args_no_hyphens
        elif not part.startswith("${"):
            expanded.append(part)
    assert expanded[:3] == ["python", "-m", "src.run"], command
    return expanded[3:]


def test_every_wandb_sweep_spec_expands_into_overrides_that_compose(hydra_config, tmp_path):
    """For each spec: every value of every parameter, turned into the agent's ``key=value`` arguments, composes
    and lands at its key (one composition per row of values, each parameter cycling through its own)."""
    assert WANDB_SPECS, "no W&B sweep spec in experiments/sweeps/"
    for path in WANDB_SPECS:
        spec = load_sweep_config(str(path))
        assert spec["metric"]["name"].startswith("val/") and spec["metric"]["goal"] in ("minimize", "maximize"), path
        candidates = {key: _candidates(parameter) for key, parameter in spec["parameters"].items()}
        rows = max(len(values) for values in candidates.values())
        cycles = {key: itertools.cycle(values) for key, values in candidates.items()}
        for _ in range(rows):
            chosen = {key: next(values) for key, values in cycles.items()}
            args = create_sweep_command_args({"args": {key: {"value": v} for key, v in chosen.items()}})
            cfg = hydra_config(_agent_overrides(spec["command"], args["args_no_hyphens"]),
                               {"paths.data_dir": str(tmp_path / "data")}, output_dir=tmp_path / "run")
            choices = HydraConfig.get().runtime.choices
            for key, value in chosen.items():
                landed = choices[key] if key in choices else OmegaConf.select(cfg, key, throw_on_missing=True)
                assert landed == pytest.approx(value), f"{path.name}: {key}={value} composed to {landed}"
