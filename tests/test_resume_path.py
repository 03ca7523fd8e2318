"""``ckpt_path=`` resolution: a file as given, ``last`` as the newest last.ckpt of the same model and data."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from src.utils.errors import ConfigError
from src.utils.resume import CHECKPOINT_KEYS, resolve_ckpt_path


def _last(runs: Path, run: str, mtime: float) -> Path:
    path = runs / run / "checkpoints" / "last.ckpt"
    path.parent.mkdir(parents=True)
    torch.save(dict.fromkeys(CHECKPOINT_KEYS, {}), path)  # the least that passes as a checkpoint of src.run
    os.utime(path, (mtime, mtime))
    return path


def test_no_checkpoint_is_a_fresh_run(tmp_path):
    assert resolve_ckpt_path(None, tmp_path, "infogan_digits") is None


def test_a_file_is_taken_as_given(tmp_path):
    path = _last(tmp_path, "any", 1.0)
    assert resolve_ckpt_path(str(path), tmp_path, "infogan_digits") == path


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_ckpt_path(str(tmp_path / "nope.ckpt"), tmp_path, "infogan_digits")


def test_last_is_the_most_recently_written_of_the_same_model_and_data(tmp_path):
    _last(tmp_path, "2026-01-02_00-00-00_infogan_digits", 100.0)
    newest = _last(tmp_path, "2026-01-01_00-00-00_infogan_digits", 200.0)  # older name, newer checkpoint
    _last(tmp_path, "2026-01-03_00-00-00_infogan_mnist", 300.0)  # other data
    assert resolve_ckpt_path("last", tmp_path, "infogan_digits") == newest


def test_last_without_a_matching_run_names_the_folder(tmp_path):
    _last(tmp_path, "2026-01-03_00-00-00_infogan_mnist", 300.0)
    with pytest.raises(ConfigError, match=f"no earlier run of infogan_digits .* under {tmp_path}"):
        resolve_ckpt_path("last", tmp_path, "infogan_digits")
