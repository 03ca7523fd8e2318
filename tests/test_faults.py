"""Runs that survive faults, each met for real: ``kill -9``, SIGTERM, SLURM's requeue signal, a file-size limit.

The signals are real ``os.kill`` calls on a real ``python -m src.run``; ``fault_helpers.PauseAfterBatch`` (on
PYTHONPATH) only holds the run at a known batch until the signal has arrived.
"""
from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import NO_VALIDATION, ROOT, TINY, RunResult, overrides

from src.metrics.inception import resolve_inception_weights
from src.utils.errors import ConfigError
from src.utils.resume import resolve_ckpt_path

RUN_NAME = "infogan_digits"


def pause_after(epoch: int, batch: int) -> dict[str, str]:
    """Overrides that make the run print each batch and wait for a signal after ``batch`` of ``epoch``."""
    return {"+callbacks.pause._target_": "fault_helpers.PauseAfterBatch", "+callbacks.pause.epoch": str(epoch),
            "+callbacks.pause.batch": str(batch)}


class LiveRun:
    """``python -m src.run`` (tiny) started in the background, to be signalled while it trains."""

    started: list[LiveRun] = []

    def __init__(self, *layers, run_dir: Path | None, cache_dir: Path, env: dict[str, str], preexec_fn=None):
        where = {"hydra.run.dir": str(run_dir)} if run_dir else {}
        args = overrides(TINY, {"paths.cache_dir": str(cache_dir)}, *layers, where)
        self.run_dir = run_dir
        self.log = Path(env["HOME"]).parent / f"output-{time.monotonic_ns()}.txt"
        with open(self.log, "w") as out:
            # A session of its own, so that a failed test can end the run with all its ranks (see live_runs).
            self.process = subprocess.Popen([sys.executable, "-m", "src.run", *args], cwd=ROOT, env=env, stdout=out,
                                            stderr=subprocess.STDOUT, text=True, preexec_fn=preexec_fn,
                                            start_new_session=True)
        LiveRun.started.append(self)

    def output(self) -> str:
        return self.log.read_text()

    def wait_for(self, text: str, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            ended = self.process.poll()
            assert ended is None, f"the run ended (exit {ended}) before {text!r}:\n{self.output()[-6000:]}"
            assert time.monotonic() < deadline, f"no {text!r} after {timeout} s:\n{self.output()[-6000:]}"
            time.sleep(0.1)

    def finish(self, timeout: float = 240) -> RunResult:
        self.process.wait(timeout=timeout)
        return RunResult(self.process.returncode, self.output(), self.run_dir)


@pytest.fixture(autouse=True)
def live_runs():
    """Ends whatever a test left running (a hung DDP rank waits 30 min for its peer otherwise)."""
    yield
    while LiveRun.started:
        run = LiveRun.started.pop()
        if run.process.poll() is None:
            os.killpg(run.process.pid, signal.SIGKILL)
            run.process.wait()


def _checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def _resumed_from(output: str, path: Path) -> bool:
    return f"Restoring states from the checkpoint path at {path}" in output


# ----- kill -9 -------------------------------------------------------------------------------------------------


@pytest.mark.timeout(400)
def test_kill_9_between_validations_loses_at_most_the_current_epoch(tmp_path, cache_dir, fault_env, run_cli):
    runs = tmp_path / "runs"
    killed = runs / f"2026-01-01_00-00-00_{RUN_NAME}"
    # Validation only at epoch 50, as the main job validates at 40 and 80: none happens before the kill.
    run = LiveRun(pause_after(2, 0), {"trainer.max_epochs": "50", "trainer.check_val_every_n_epoch": "50"},
                  run_dir=killed, cache_dir=cache_dir, env=fault_env)
    run.wait_for("waiting for a signal")  # epochs 0 and 1 are complete
    run.process.kill()
    assert run.finish().returncode == -signal.SIGKILL
    last = killed / "checkpoints" / "last.ckpt"
    assert last.is_file(), run.output()[-3000:]
    saved = _checkpoint(last)
    assert (saved["epoch"], saved["global_step"]) == (1, 8)  # end of epoch 1: 2 epochs × 2 batches × 2 optimizers
    result = run_cli(NO_VALIDATION, {"ckpt_path": "last", "trainer.max_epochs": "3"},
                     run_dir=runs / f"2026-01-01_00-00-01_{RUN_NAME}")
    assert result.returncode == 0 and _resumed_from(result.output, last), str(result)
    assert _checkpoint(result.run_dir / "checkpoints" / "last.ckpt")["global_step"] == 12  # one more epoch


# ----- SIGTERM ----------------------------------------------------------------------------------------------------


@pytest.mark.timeout(500)
def test_sigterm_mid_epoch_saves_and_the_resume_is_exact(tmp_path, cache_dir, fault_env, run_cli):
    """2 epochs × 3 batches straight through equal the same run stopped by SIGTERM after batch 1 of epoch 1 and
    resumed with ckpt_path=last: the same weights, bit for bit (shuffle order and RNG streams continue). Both validate
    (FID with fakes, grids, cat_acc) after each epoch, so a validation lies between the checkpoint and the end, and
    the resumed run builds its Inception network later in its stream than the straight one: evaluation must leave the
    training RNG where it found it."""
    budget = [{"trainer.max_epochs": "2", "+trainer.limit_train_batches": "3"}]
    straight = run_cli(*budget, run_dir=tmp_path / "straight")
    assert straight.returncode == 0, str(straight)

    runs = tmp_path / "runs"
    stopped = runs / f"2026-01-01_00-00-00_{RUN_NAME}"
    run = LiveRun(*budget, pause_after(1, 0), run_dir=stopped, cache_dir=cache_dir, env=fault_env)
    run.wait_for("waiting for a signal")
    os.kill(run.process.pid, signal.SIGTERM)
    result = run.finish()
    last = stopped / "checkpoints" / "last.ckpt"
    assert result.returncode == 143, str(result)
    assert "Traceback" not in result.output, str(result)
    saved = _checkpoint(last)
    assert (saved["epoch"], saved["global_step"]) == (1, 8), str(result)  # mid-epoch: 3 + 1 batches × 2 optimizers
    resume_line = next(line for line in result.output.splitlines() if line.startswith("Stopped by SIGTERM"))
    assert f"saved {last}. Resume with: python -m src.run " in resume_line
    assert resume_line.endswith(f" ckpt_path={last}")

    resumed = run_cli(*budget, {"ckpt_path": "last"}, run_dir=runs / f"2026-01-01_00-00-01_{RUN_NAME}")
    assert resumed.returncode == 0 and _resumed_from(resumed.output, last), str(resumed)
    assert "dataloader is not resumable" not in resumed.output
    expected = _checkpoint(straight.run_dir / "checkpoints" / "last.ckpt")
    got = _checkpoint(resumed.run_dir / "checkpoints" / "last.ckpt")
    assert got["global_step"] == expected["global_step"] == 12
    assert expected["state_dict"].keys() == got["state_dict"].keys()
    differ = [name for name, value in expected["state_dict"].items() if not torch.equal(value, got["state_dict"][name])]
    assert differ == []
    fids = [json.loads((run.run_dir / "metrics.json").read_text())["val/fid"] for run in (straight, resumed)]
    assert fids[0] == pytest.approx(fids[1], rel=1e-9)


def _child_runs(pid: int) -> list[int]:
    """The processes ``pid`` started that run src.run: under DDP, Lightning's ranks > 0."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children if b"src.run" in Path(f"/proc/{c}/cmdline").read_bytes()]


@pytest.mark.timeout(300)
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds rank 1 through /proc (Linux)")
def test_sigterm_to_every_ddp_rank_saves_once_and_exits_143(tmp_path, cache_dir, fault_env):
    """As a scheduler does (scancel, a time limit): SIGTERM to every process of the job at once."""
    run = LiveRun(NO_VALIDATION, pause_after(1, 0), {"trainer": "ddp_cpu", "trainer.max_epochs": "3"},
                  run_dir=tmp_path / "run", cache_dir=cache_dir, env=fault_env)
    run.wait_for("waiting for a signal")
    ranks = [run.process.pid, *_child_runs(run.process.pid)]
    assert len(ranks) == 2
    for pid in ranks:
        os.kill(pid, signal.SIGTERM)
    result = run.finish(timeout=120)  # the ranks hung here before LastCheckpoint paired Lightning's broadcasts
    assert result.returncode == 143 and "Traceback" not in result.output, str(result)
    assert result.output.count("Received SIGTERM") >= 2 and result.output.count("Stopped by SIGTERM") == 1, str(result)
    assert _checkpoint(result.run_dir / "checkpoints" / "last.ckpt")["global_step"] == 6  # each rank: 2 + 1 batches


# ----- a full disk --------------------------------------------------------------------------------------------------

#: Above what a tiny run writes before its first checkpoint (configs, logs: tens of KiB), below one checkpoint
#: (about 1 MB with the tiny nets and their Adam states).
FILE_SIZE_LIMIT = 512 * 1024


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))


@pytest.mark.timeout(300)
def test_a_checkpoint_over_the_file_size_limit_is_one_clear_error(tmp_path, cache_dir, fault_env, monkeypatch):
    # The run resolves the FID weights at start; converted here first, the child finds them and writes no 95 MB file.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    resolve_inception_weights(None, cache_dir)
    run = LiveRun(NO_VALIDATION, run_dir=tmp_path / "run", cache_dir=cache_dir, env=fault_env,
                  preexec_fn=_limit_file_size)
    result = run.finish()
    last = result.run_dir / "checkpoints" / "last.ckpt"
    assert result.returncode == 1, str(result)
    assert "Traceback" not in result.output, str(result)
    assert f"error: Could not write {last} (RuntimeError: [enforce fail at inline_container" in result.output
    assert "MiB free on that filesystem); nothing was written. Fix: free disk space or point paths.log_dir" in result.output
    assert list((result.run_dir / "checkpoints").iterdir()) == []  # no half checkpoint, no temporary file
    assert (result.run_dir / "config_resolved.yaml").is_file()


# ----- SLURM requeue --------------------------------------------------------------------------------------------

#: What SLURM sets in a batch job, enough for Lightning to pick its SLURMEnvironment (auto-requeue on SIGUSR1).
SLURM_JOB = {"SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "train", "SLURM_NTASKS": "1", "SLURM_NODELIST": "localhost",
             "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODEID": "0"}
#: Records its arguments, then ends the job the hard way, as SLURM would once the grace time is over.
FAKE_SCONTROL = '#!/bin/sh\necho "$@" >> "$SCONTROL_LOG"\nkill -9 $PPID\n'


@pytest.mark.timeout(400)
def test_slurm_requeue_continues_in_the_same_run_directory(tmp_path, cache_dir, fault_env):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text(FAKE_SCONTROL)
    (bin_dir / "scontrol").chmod(0o755)
    env = {**fault_env, **SLURM_JOB, "PATH": f"{bin_dir}{os.pathsep}{fault_env['PATH']}",
           "SCONTROL_LOG": str(tmp_path / "scontrol.log")}
    # The same command both times, with no run directory given: the config names it after the job id.
    command = [NO_VALIDATION, pause_after(1, 0), {"trainer.max_epochs": "3", "paths.log_dir": str(tmp_path / "logs")}]
    run_dir = tmp_path / "logs" / "train" / "runs" / f"4242_{RUN_NAME}"

    run = LiveRun(*command, run_dir=None, cache_dir=cache_dir, env=env)
    run.wait_for("waiting for a signal")  # after batch 0 of epoch 1; last.ckpt of epoch 0 is written, at step 4
    os.kill(run.process.pid, signal.SIGUSR1)
    assert run.finish().returncode == -signal.SIGKILL, run.output()[-3000:]
    assert (tmp_path / "scontrol.log").read_text() == "requeue 4242\n"
    hpc = run_dir / "checkpoints" / "hpc_ckpt_1.ckpt"
    saved = _checkpoint(hpc)  # written through AtomicCheckpointIO: whole, and no temporary file beside it
    assert saved["global_step"] == 6 and {"ganzoo_config", "ganzoo_rng_state"} <= saved.keys()
    assert sorted(p.name for p in hpc.parent.iterdir()) == ["hpc_ckpt_1.ckpt", "last.ckpt"]

    requeued = LiveRun(*command, run_dir=None, cache_dir=cache_dir, env={**env, "SLURM_RESTART_COUNT": "1"}).finish()
    assert requeued.returncode == 0 and _resumed_from(requeued.output, hpc), str(requeued)
    assert "finished epoch=1 batch=1 step=8" in requeued.output  # the next batch: none repeated, none skipped
    assert _checkpoint(run_dir / "checkpoints" / "last.ckpt")["global_step"] == 12


def test_a_second_run_in_the_same_slurm_job_does_not_overwrite_the_first(tmp_path, monkeypatch):
    run_dir = tmp_path / f"4242_{RUN_NAME}"
    (run_dir / "checkpoints").mkdir(parents=True)
    for age, name in ((60, "last.ckpt"), (0, "hpc_ckpt_1.ckpt")):  # the hpc checkpoint is the newer one
        (run_dir / "checkpoints" / name).write_bytes(b"checkpoint")
        os.utime(run_dir / "checkpoints" / name, (time.time() - age,) * 2)
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.delenv("SLURM_RESTART_COUNT", raising=False)
    with pytest.raises(ConfigError, match="was not requeued .* hydra.run.dir=<dir>, or continue it with ckpt_path=.*hpc_ckpt_1.ckpt"):
        resolve_ckpt_path(None, tmp_path, RUN_NAME, run_dir)
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")  # requeued: its own newest checkpoint wins over the command line's
    assert resolve_ckpt_path(str(run_dir / "checkpoints" / "last.ckpt"), tmp_path, RUN_NAME, run_dir) == \
        run_dir / "checkpoints" / "hpc_ckpt_1.ckpt"
    monkeypatch.delenv("SLURM_JOB_ID")  # not under SLURM: as before
    assert resolve_ckpt_path(None, tmp_path, RUN_NAME, run_dir) is None
