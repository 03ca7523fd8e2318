"""The run's spine, unit by unit: atomic checkpoints, the model/data compatibility check, W&B's offline
decision, FID sharding, and the import-layering contracts."""
from __future__ import annotations

import netrc
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import CONF, ROOT
from torch.utils.data import Dataset, TensorDataset

from src.callbacks.fid import shard_size
from src.data.base import GANDataModule
from src.metrics.inception import CONVERTED_WEIGHTS_NAME, resolve_inception_weights
from src.utils import loggers
from src.utils.checkpoint_io import AtomicCheckpointIO
from src.utils.compat import check_compatible, compatible_data
from src.utils.errors import ConfigError
from src.utils.loggers import wandb_online_reason

# ----- AtomicCheckpointIO ------------------------------------------------------------------------------------


def test_checkpoint_save_writes_and_replaces(tmp_path):
    io, path = AtomicCheckpointIO(), tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"global_step": 1}, path)
    io.save_checkpoint({"global_step": 2}, path)
    assert torch.load(path, weights_only=True) == {"global_step": 2}
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]


#: Run in a child: a real file-size limit (Python ignores SIGXFSZ, so the write fails with EFBIG inside torch's zip
#: writer, which reports it as RuntimeError, as it does a full disk), then one checkpoint far above it.
_SAVE_OVER_THE_LIMIT = """
import resource, sys, torch
from src.utils.checkpoint_io import AtomicCheckpointIO
from src.utils.errors import WriteError
resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
try:
    AtomicCheckpointIO().save_checkpoint({"global_step": 2, "weights": torch.zeros(100_000)}, sys.argv[1])
except WriteError as error:
    print(error)
    sys.exit(3)
"""


def test_failed_save_keeps_the_previous_checkpoint_and_no_tmp(tmp_path):
    io, path = AtomicCheckpointIO(), tmp_path / "last.ckpt"
    io.save_checkpoint({"global_step": 1, "weights": torch.arange(1000)}, path)
    previous = path.read_bytes()
    done = subprocess.run([sys.executable, "-c", _SAVE_OVER_THE_LIMIT, str(path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 3, done.stdout + done.stderr
    message = done.stdout.strip()
    assert message.startswith(f"Could not write {path} (RuntimeError: [enforce fail at inline_container"), message
    assert "MiB free on that filesystem); the previous file is intact" in message
    assert message.endswith(f"then resume with ckpt_path={path}.")
    assert path.read_bytes() == previous
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


# ----- check_compatible ----------------------------------------------------------------------------------------


class UnpairedDataModule(GANDataModule):
    """A DataModule of a kind InfoGAN cannot use (two unpaired image domains)."""

    kinds = ("unpaired",)
    name = "unpaired"
    image_shape = (3, 8, 8)
    num_classes = None

    def build_splits(self) -> tuple[Dataset, Dataset]:
        data = TensorDataset(torch.zeros(4, 3, 8, 8))
        return data, data


@pytest.fixture
def data_config_dir(tmp_path) -> Path:
    """A conf/data with one unpaired option and one digits option (and a README that is no option)."""
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "pairs.yaml").write_text(f"_target_: {__name__}.UnpairedDataModule\n")
    (folder / "small_digits.yaml").write_text("_target_: src.data.digits.DigitsDataModule\nimage_size: 16\n")
    (folder / "README.md").write_text("not a config")
    return folder


def test_incompatible_data_is_refused_listing_the_valid_choices(data_config_dir):
    with pytest.raises(ConfigError) as error:
        check_compatible("infogan", "src.models.infogan.InfoGAN", "pairs", UnpairedDataModule.kinds, data_config_dir)
    message = str(error.value)
    assert "model=infogan cannot train on data=pairs" in message
    assert "unpaired" in message and "image" in message
    assert message.endswith("Valid choices for model=infogan: small_digits.")


def test_compatible_data_passes(data_config_dir):
    check_compatible("infogan", "src.models.infogan.InfoGAN", "small_digits", ("image",), data_config_dir)


PAIRED_DATA = {"faces_paired", "facades", "maps", "edges2shoes"}
TWO_DOMAIN_DATA = {"faces_unpaired", "horse2zebra", "apple2orange", "summer2winter_yosemite", "monet2photo"} | PAIRED_DATA


def test_shipped_data_configs_suit_the_models_that_need_their_kind():
    shipped = sorted(f.stem for f in (CONF / "data").glob("*.yaml"))
    assert TWO_DOMAIN_DATA <= set(shipped)
    assert compatible_data(("image",), CONF / "data") == sorted(set(shipped) - TWO_DOMAIN_DATA)
    assert compatible_data(("unpaired",), CONF / "data") == sorted(TWO_DOMAIN_DATA)
    assert compatible_data(("paired",), CONF / "data") == sorted(PAIRED_DATA)
    assert "faces" in compatible_data(("captioned",), CONF / "data")


# ----- W&B online or offline -------------------------------------------------------------------------------------


@pytest.fixture
def no_wandb_key(tmp_path, monkeypatch):
    for name in ("WANDB_API_KEY", "WANDB_MODE", "NETRC"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))


def _network(monkeypatch, reachable: bool) -> list:
    """Stand in for socket.create_connection; returns the list of addresses it was asked for."""
    asked = []

    class _Connection:
        def close(self):
            pass

    def create_connection(address, timeout=None):
        asked.append(address)
        if not reachable:
            raise OSError("Network is unreachable")
        return _Connection()

    monkeypatch.setattr(socket, "create_connection", create_connection)
    return asked


def test_wandb_without_key_gives_the_reason(no_wandb_key, monkeypatch):
    asked = _network(monkeypatch, reachable=True)
    reason = wandb_online_reason()
    assert reason is not None and "no W&B API key" in reason and "wandb login" in reason
    assert asked == []  # no key: no need to try the network


def test_wandb_mode_offline_is_the_reason(no_wandb_key, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_online_reason() == "WANDB_MODE=offline"


@pytest.mark.parametrize("where", ["env", "netrc"])
def test_wandb_with_key_is_online_when_the_server_answers(where, no_wandb_key, tmp_path, monkeypatch):
    if where == "env":
        monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    else:
        (tmp_path / ".netrc").write_text(f"machine {loggers.WANDB_HOST}\n  login user\n  password {'x' * 40}\n")
        (tmp_path / ".netrc").chmod(0o600)
        assert netrc.netrc().authenticators(loggers.WANDB_HOST) is not None
    asked = _network(monkeypatch, reachable=True)
    assert wandb_online_reason() is None
    assert asked == [(loggers.WANDB_HOST, 443)]


def test_wandb_with_key_but_no_network_gives_the_reason(no_wandb_key, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    _network(monkeypatch, reachable=False)
    assert wandb_online_reason() == f"{loggers.WANDB_HOST} cannot be reached"


# ----- FID sharding ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("world_size", [1, 2, 3, 4, 7])
def test_shards_cover_the_total(world_size):
    for total in [0, 1, 5, 8, 10, 501]:
        shards = [shard_size(total, rank, world_size) for rank in range(world_size)]
        assert sum(shards) == total
        assert max(shards) - min(shards) <= 1 and shards == sorted(shards, reverse=True)


# ----- layering ---------------------------------------------------------------------------------------------------


def test_import_contracts_hold():
    lint_imports = shutil.which("lint-imports")
    if lint_imports is None:
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    done = subprocess.run([lint_imports, "--no-cache", "setup.cfg"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    kept = re.search(r"(\d+) kept, 0 broken", done.stdout)
    assert kept and int(kept.group(1)) >= 3, done.stdout  # nets-are-plain, data-metrics-not-models, nothing-imports-run


def test_import_linter_sees_a_broken_contract(tmp_path):
    """The check above is only worth something if the linter reads this package: a false contract must break."""
    lint_imports = shutil.which("lint-imports")
    if lint_imports is None:
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    config = tmp_path / "contracts.ini"
    config.write_text("[importlinter]\nroot_package = src\n\n"
                      "[importlinter:contract:false]\nname = models use no nets\ntype = forbidden\n"
                      "source_modules =\n    src.models\nforbidden_modules =\n    src.nets\n")
    done = subprocess.run([lint_imports, "--no-cache", str(config)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 1 and "src.models.infogan -> src.nets" in done.stdout, done.stdout + done.stderr


# ----- reproducibility --------------------------------------------------------------------------------------------


def test_resolving_fid_weights_leaves_the_global_rng_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # no torch-fidelity download: convert
    torch.manual_seed(0)
    expected = torch.rand(4)
    torch.manual_seed(0)
    resolve_inception_weights(None, tmp_path / "cache")
    assert (tmp_path / "cache" / CONVERTED_WEIGHTS_NAME).is_file()
    assert torch.equal(torch.rand(4), expected)
