"""Shared fixtures: one FID Inception cache per session, tiny runs of ``python -m src.run`` (as a subprocess
or in process), each in its own ``tmp_path``.

Tiny means: CPU, 1 epoch of 2 batches of 8, 2 validation batches, 8 real and 8 fake images for FID/KID and
narrow InfoGAN nets. Every FID computation still costs a 2048×2048 eigen-decomposition (~4 s on one thread,
see SINGLE_THREAD), so a test validates only where it checks FID or grids (``NO_VALIDATION`` elsewhere).
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"

#: The smallest run that still goes through every part: training, one validation with FID/KID, grids, checkpoints.
TINY = {
    "trainer": "cpu",
    "trainer.max_epochs": "1",
    "+trainer.limit_train_batches": "2",
    "+trainer.limit_val_batches": "2",
    "trainer.check_val_every_n_epoch": "1",
    "data.batch_size": "8",
    "logger": "csv",
    "metrics.num_fake_cpu": "8",
    "metrics.num_real_cpu": "8",
    "metrics.kid_subset_size": "8",
    "metrics.kid_subsets": "2",
    # Narrow nets: a training batch in milliseconds rather than seconds (the widths are not under test here).
    "model.generator.fc_dim": "32",
    "model.generator.base_channels": "8",
    "model.discriminator.fc_dim": "32",
    "model.discriminator.base_channels": "8",
    "model.discriminator.q_dim": "16",
}
#: For tests of training state only (resume, loggers): no validation, hence no FID and its eigen-decomposition.
#: ModelCheckpoint then saves last.ckpt at every training epoch end.
NO_VALIDATION = {"+trainer.limit_val_batches": "0"}

#: One BLAS/OpenMP thread per process. On 2 cores shared with other work, a 2-thread LAPACK eigen-decomposition
#: (FID's 2048×2048 eigvals) was measured at 48 s against 4 s single-threaded: spinning threads fight for cores.
SINGLE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}

#: Variables that would change what a run does or prints: a real W&B key or mode, full Hydra tracebacks,
#: another cache or data directory, another torch hub (where a downloaded FID Inception could be found).
_SCRUBBED_ENV = ("WANDB_MODE", "WANDB_API_KEY", "WANDB_DIR", "WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "NETRC",
                 "HYDRA_FULL_ERROR", "GANZOO_CACHE", "GANZOO_DATA_DIR", "TORCH_HOME", "XDG_CACHE_HOME",
                 "XDG_CONFIG_HOME")
#: Run inside a SLURM job, runs would be named after the job and resume its checkpoints (src/utils/resume.py).
_SCRUBBED_PREFIX = "SLURM_"


def overrides(*layers: dict[str, str] | Iterable[str]) -> list[str]:
    """Merge override layers, later ones winning; ``+key`` and ``key`` are the same key.

    A layer is a ``{key: value}`` dict or a list of ``key=value`` strings. Hydra refuses the same key twice
    on a command line, hence the merge.
    """
    merged: dict[str, tuple[str, str]] = {}
    for layer in layers:
        items = layer.items() if isinstance(layer, dict) else (item.split("=", 1) for item in layer)
        for key, value in items:
            merged[key.lstrip("+~")] = (key, value)
    return [f"{key}={value}" for key, value in merged.values()]


def group_option(group: str, option: str) -> list[str]:
    """The overrides that choose ``option`` of ``group``; a recipe (conf/recipe/<model>_<data>.yaml) comes with its
    model and data, since it tunes that model's keys (another model's node would not take them)."""
    if group != "recipe":
        return [f"{group}={option}"]
    models = sorted((f.stem for f in (CONF / "model").glob("*.yaml")), key=len, reverse=True)
    model = next((m for m in models if option.startswith(f"{m}_")), None)
    pair = [f"model={model}", f"data={option[len(model) + 1:]}"] if model else []
    return [f"{group}={option}", *pair]


@dataclass
class RunResult:
    returncode: int
    output: str  # stdout and stderr together
    run_dir: Path

    def __iter__(self):  # unpacks as (returncode, output, run_dir)
        return iter((self.returncode, self.output, self.run_dir))

    def __str__(self) -> str:  # what an assertion message shows
        return f"exit {self.returncode} in {self.run_dir}; output tail:\n{self.output[-6000:]}"


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One ganzoo cache (converted FID Inception weights, real-image features) for the whole session."""
    return tmp_path_factory.mktemp("ganzoo_cache")


def cli_env(home: Path) -> dict[str, str]:
    """The environment of a subprocess run: no W&B key or mode, HOME at ``home`` (no ~/.netrc, no caches)."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV and not k.startswith(_SCRUBBED_PREFIX)}
    home.mkdir(parents=True, exist_ok=True)
    env["HOME"] = str(home)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(SINGLE_THREAD)
    return env


def run_src(*layers, run_dir: Path, cache_dir: Path, env: dict[str, str], tiny: bool = True,
            multirun: bool = False, timeout: float = 600) -> RunResult:
    """``python -m src.run`` with the tiny overrides (unless ``tiny=False``) merged with ``layers`` (see
    :func:`overrides`), in the repo root, writing into ``run_dir`` (a multirun writes where ``hydra.sweep.dir``
    says)."""
    args = overrides(TINY if tiny else {}, {"paths.cache_dir": str(cache_dir)}, *layers,
                     {"hydra.run.dir": str(run_dir)})
    mode = ["--multirun"] if multirun else []
    done = subprocess.run([sys.executable, "-m", "src.run", *mode, *args], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    return RunResult(done.returncode, done.stdout, Path(run_dir))


@pytest.fixture
def run_env(tmp_path) -> dict[str, str]:
    return cli_env(tmp_path / "home")


@pytest.fixture
def fault_env(run_env) -> dict[str, str]:
    """run_env, also for this test's run_cli, with the test-only callbacks of tests/fault_helpers.py importable."""
    run_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "tests"), run_env.get("PYTHONPATH")]))
    return run_env


@pytest.fixture
def run_cli(tmp_path, cache_dir, run_env) -> Callable[..., RunResult]:
    """``run_cli(*layers, run_dir=None, tiny=True, multirun=False)``: :func:`run_src` in this test's tmp_path (run directory
    ``<tmp_path>/run`` by default). Returns ``RunResult(returncode, output, run_dir)``, which unpacks as a tuple."""

    def run(*layers, run_dir: Path | None = None, tiny: bool = True, multirun: bool = False,
            timeout: float = 600) -> RunResult:
        return run_src(*layers, run_dir=run_dir or tmp_path / "run", cache_dir=cache_dir, env=run_env, tiny=tiny,
                       multirun=multirun, timeout=timeout)

    return run


def compose_config(*layers, output_dir: Path | None = None, config_name: str = "config") -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` with ``layers`` (see :func:`overrides`) as ``@hydra.main`` would, and
    register its Hydra part, so ``${hydra:...}`` resolves. Returns the config without its ``hydra`` node, like
    the one ``main`` receives.

    Compose never sets ``hydra.runtime.output_dir`` (only a real run does), so ``${paths.output_dir}`` would
    resolve to None: give ``output_dir`` to set it.
    """
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name, overrides=overrides(*layers), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
        if output_dir is not None:
            cfg.paths.output_dir = str(output_dir)
    return cfg


@pytest.fixture
def single_thread():
    """torch on one thread for the test (small nets: threads only contend; see SINGLE_THREAD)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def hydra_config():
    """Leaves no Hydra config registered for the next test."""
    yield compose_config
    HydraConfig.instance().cfg = None


@pytest.fixture
def run_in_process(tmp_path, cache_dir, hydra_config, monkeypatch) -> Iterator[Callable[..., tuple[dict, dict]]]:
    """``run_in_process(*layers, output_dir=None, tiny=True)``: ``src.run.train`` on the tiny config (unless
    ``tiny=False``) merged with ``layers``;
    returns what ``train`` returns (final metrics, built objects). HOME is tmp_path, W&B sees no key."""
    for name in [*_SCRUBBED_ENV, *(k for k in os.environ if k.startswith(_SCRUBBED_PREFIX))]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see SINGLE_THREAD

    def run(*layers, output_dir: Path | None = None, tiny: bool = True):
        from src.run import train

        output_dir = Path(output_dir or tmp_path / "run")
        cfg = hydra_config(TINY if tiny else {}, {"paths.cache_dir": str(cache_dir)}, *layers, output_dir=output_dir)
        return train(cfg)

    yield run
    torch.set_num_threads(threads)
