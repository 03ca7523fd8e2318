"""Two real ranks (``trainer=ddp_cpu``) through the command line: what each rank draws, a NaN on one rank, and FID of
a checkpoint under DDP against one process."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from conftest import NO_VALIDATION, ROOT, overrides
from test_run import _assert_equal_nested, _assert_user_error, _checkpoint

@pytest.mark.timeout(300)
def test_ranks_start_from_the_same_weights_and_draw_their_own_latents(run_cli, fault_env, tmp_path):
    draws = tmp_path / "draws"
    result = run_cli({"trainer": "ddp_cpu", "+callbacks.probe._target_": "fault_helpers.RecordRankDraws",
                      "+callbacks.probe.dirpath": str(draws)}, NO_VALIDATION)
    assert result.returncode == 0, str(result)
    init = [torch.load(draws / f"init_rank{r}.pt") for r in (0, 1)]
    _assert_equal_nested(init[0], init[1], "initial weights")  # built identically, not only synced by DDP
    latents = [torch.load(draws / f"latents_rank{r}.pt") for r in (0, 1)]
    for name, first, second in zip(("noise", "categorical", "continuous"), *latents):
        assert first.shape == second.shape and not torch.equal(first, second), f"both ranks drew the same {name}"

    # Every rank's RNG state is in the checkpoint, each its own.
    states = _checkpoint(result.run_dir)["ganzoo_rng_state"]["ranks"]
    assert len(states) == 2 and not torch.equal(states[0]["torch"], states[1]["torch"])


@pytest.mark.timeout(300)
def test_nan_on_one_rank_stops_both_with_one_message(run_cli, fault_env):
    result = run_cli({"trainer": "ddp_cpu", "trainer.max_epochs": "2",
                      "+callbacks.nan._target_": "fault_helpers.NaNImagesOnRank", "+callbacks.nan.rank": "1",
                      "+callbacks.nan.batch": "1"}, NO_VALIDATION, timeout=240)
    output = _assert_user_error(result, "error: Non-finite loss at epoch 0, batch 1", "model.optimizer_d.lr")
    assert "'loss_d': nan} on rank 1" in output or "on another rank" in output, str(result)
    assert not (result.run_dir / "checkpoints" / "last.ckpt").exists()  # nothing saved from after the NaN


def _evaluate(run_env, cache_dir, tmp_path, ckpt, name: str, trainer: str) -> dict:
    # 10 fakes in chunks of 4: rank 0 makes chunks 0 and 2, rank 1 chunk 1. KID subsets hold every sample, so
    # that KID, like FID, does not depend on the order in which the ranks' features are gathered.
    settings = {"ckpt_path": str(ckpt), "metrics.num_fake_cpu": "10", "metrics.num_real_cpu": "10",
                "metrics.batch_size": "4", "metrics.kid_subsets": "2", "metrics.kid_subset_size": "10",
                "trainer": trainer, "paths.cache_dir": str(cache_dir), "hydra.run.dir": str(tmp_path / name)}
    done = subprocess.run([sys.executable, "-m", "src.evaluate", *overrides(settings)], cwd=ROOT,
                          env=run_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=280)
    assert done.returncode == 0, done.stdout[-6000:]
    return json.loads((tmp_path / name / "metrics.json").read_text())


@pytest.mark.timeout(600)
def test_fid_of_a_checkpoint_under_ddp_equals_one_process(run_cli, run_env, cache_dir, tmp_path):
    trained = run_cli(NO_VALIDATION)
    assert trained.returncode == 0, str(trained)
    ckpt = trained.run_dir / "checkpoints" / "last.ckpt"
    single = _evaluate(run_env, cache_dir, tmp_path, ckpt, "single", "cpu")
    ddp = _evaluate(run_env, cache_dir, tmp_path, ckpt, "ddp", "ddp_cpu")
    assert single["val/fid_n"] == ddp["val/fid_n"] == 10 and single["val/fid_n_real"] == 10
    for key in ("val/fid", "val/fid/samples", "val/kid", "val/kid/samples"):
        assert ddp[key] == pytest.approx(single[key], rel=1e-6), key
    assert single["val/fid"] == single["val/fid/samples"] > 0
