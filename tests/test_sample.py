"""The sampling entry point: `python -m src.sample ckpt_path=...` needs nothing but the checkpoint."""
from __future__ import annotations

import subprocess
import sys

import torch
from conftest import NO_VALIDATION, ROOT
from PIL import Image

from src.sample import load_model


def _sample(env, *args):
    return subprocess.run([sys.executable, "-m", "src.sample", *args], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)


def test_sample_from_checkpoint_alone(run_cli, run_env, tmp_path):
    trained = run_cli(NO_VALIDATION)
    assert trained.returncode == 0, str(trained)
    ckpt = trained.run_dir / "checkpoints" / "last.ckpt"

    model, config = load_model(ckpt)
    assert config.model._target_ == "src.models.infogan.InfoGAN"
    state = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    assert not model.training

    out = tmp_path / "drawn"
    done = _sample(run_env, f"ckpt_path={ckpt}", "num_samples=12", "per_row=4", f"hydra.run.dir={out}")
    assert done.returncode == 0, done.stdout
    with Image.open(out / "samples.png") as grid:  # 3 rows × 4 columns of 32 px digits, 2 px padding
        assert grid.size == (4 * 34 + 2, 3 * 34 + 2)
    for name in ("categorical", "traversal_c1", "traversal_c2"):
        assert (out / f"{name}.png").is_file(), done.stdout


def test_sample_with_missing_checkpoint_says_so(run_env, tmp_path):
    done = _sample(run_env, f"ckpt_path={tmp_path / 'nope.ckpt'}", f"hydra.run.dir={tmp_path / 'out'}")
    assert done.returncode == 1
    assert "nope.ckpt does not exist" in done.stdout and "Traceback" not in done.stdout
