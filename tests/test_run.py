"""``python -m src.run`` end to end: every dataset config, resume, DDP on CPU, W&B offline, and user errors.

Each subprocess run costs ~8 s of imports plus, where it validates, one FID eigen-decomposition (5–35 s), so
only the runs that check FID or sample grids validate (see conftest.TINY / NO_VALIDATION).
"""
from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import yaml
from conftest import NO_VALIDATION, RunResult, cli_env, run_src
from fixtures import write_celeba, write_cifar10, write_corrupt_image, write_image_folder, write_mnist
from fixtures_captions import caption_records, face2text_entries, write_captions_folder, write_face2text
from PIL import Image


GRID_COLUMNS, N_CATEGORIES = 10, 10  # InfoGAN's defaults: the categorical grid is 10 rows of 10


def _fid(output: str) -> float | None:
    """val/fid as printed in the summary table (None when it is not there)."""
    found = re.search(r"val/fid\s*│\s*([-+0-9.eE]+|nan|inf)\s*│", output)
    return float(found.group(1)) if found else None


def _checkpoint(run_dir: Path, name: str = "last.ckpt") -> dict:
    return torch.load(run_dir / "checkpoints" / name, map_location="cpu", weights_only=False)


def _assert_user_error(result: RunResult, *expected: str) -> str:
    """A non-zero exit with ``expected`` in the message and no Python traceback."""
    assert result.returncode != 0, str(result)
    assert "Traceback" not in result.output, str(result)
    for text in expected:
        assert text in result.output, f"{text!r} not in the output\n{result}"
    return result.output


# ----- every dataset config ----------------------------------------------------------------------------------

def _digits(tmp_path: Path) -> list[str]:
    return ["data=digits", "data.val_size=4"]


def _mnist(tmp_path: Path, fashion: bool = False) -> list[str]:
    write_mnist(tmp_path / "data", n_train=16, n_test=8, fashion=fashion)
    name = "fashion_mnist" if fashion else "mnist"
    return [f"data={name}", f"paths.data_dir={tmp_path / 'data'}", "data.download=false", "data.val_size=4"]


def _cifar10(tmp_path: Path) -> list[str]:
    write_cifar10(tmp_path / "data", n_per_batch=4)
    return ["data=cifar10", f"paths.data_dir={tmp_path / 'data'}", "data.download=false", "data.val_size=4"]


def _image_folder(tmp_path: Path) -> list[str]:
    write_image_folder(tmp_path / "images", n=20, size=20)  # 16 to train: 2 batches of 8
    return ["data=image_folder", f"data.root={tmp_path / 'images'}", "data.image_size=16", "data.val_size=4"]


def _faces(tmp_path: Path) -> list[str]:
    # Drawn and cached in the run's cache dir (paths.cache_dir): 16 to train, 2 batches of 8.
    return ["data=faces", "data.image_size=32", "data.train_size=16", "data.val_size=4", "data.test_size=4"]


def _celeba(tmp_path: Path) -> list[str]:
    write_celeba(tmp_path / "data", n_train=16, n_val=4, n_test=2)
    return ["data=celeba", f"paths.data_dir={tmp_path / 'data'}", "data.image_size=16", "data.val_size=4"]


def _face2text(tmp_path: Path) -> list[str]:
    write_face2text(tmp_path / "data", face2text_entries(24))
    return ["data=face2text", f"paths.data_dir={tmp_path / 'data'}", "data.image_size=16", "data.val_size=4",
            "data.test_size=4"]


def _captions(tmp_path: Path) -> list[str]:
    write_captions_folder(tmp_path / "captioned", caption_records(20))
    return ["data=captions", f"data.root={tmp_path / 'captioned'}", "data.image_size=16", "data.val_size=4"]


# name → (overrides writing its fixture, image shape, whether it has labels)
DATASETS = {
    "digits": (_digits, (1, 32, 32), True),
    "mnist": (_mnist, (1, 28, 28), True),
    "fashion_mnist": (lambda p: _mnist(p, fashion=True), (1, 28, 28), True),
    "cifar10": (_cifar10, (3, 32, 32), True),
    "image_folder": (_image_folder, (3, 16, 16), False),
    "faces": (_faces, (3, 32, 32), False),
    "celeba": (_celeba, (3, 16, 16), False),
    "face2text": (_face2text, (3, 16, 16), False),
    "captions": (_captions, (3, 16, 16), False),
}


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_infogan_trains_on_every_dataset(dataset, run_cli, tmp_path):
    make, shape, labelled = DATASETS[dataset]
    result = run_cli(make(tmp_path))
    returncode, output, run_dir = result
    assert returncode == 0, str(result)

    checkpoint = _checkpoint(run_dir)
    assert checkpoint["global_step"] == 4  # 2 batches × (one D and one G optimizer step)
    assert checkpoint["ganzoo_config"]["dataset"]["image_shape"] == list(shape)
    resolved = yaml.safe_load((run_dir / "config_resolved.yaml").read_text())
    assert resolved["dataset"]["image_shape"] == list(shape)
    assert resolved["paths"]["output_dir"] == str(run_dir)

    grid = run_dir / "samples" / "categorical_last.png"
    side = shape[1]
    assert Image.open(grid).size == (GRID_COLUMNS * (side + 2) + 2, N_CATEGORIES * (side + 2) + 2)

    assert "ganzoo run summary" in output
    fid = _fid(output)
    assert fid is not None and 0 < fid < float("inf"), str(result)
    assert ("val/cat_acc" in output) == labelled
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert (metrics["val/fid_n"], metrics["val/fid_n_real"]) == (8, 8)  # tiny runs: 8 fakes, 8 real images


# ----- resume --------------------------------------------------------------------------------------------------

class CaptureTrainStart(pl.Callback):
    """Records what a (resumed) trainer holds when training starts."""

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.global_step, self.epoch = trainer.global_step, trainer.current_epoch
        self.optimizer_states = [copy.deepcopy(o.state_dict()) for o in trainer.optimizers]
        self.weights = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}


def _assert_equal_nested(a, b, where: str = "") -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            _assert_equal_nested(a[key], b[key], f"{where}/{key}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_equal_nested(x, y, f"{where}/{i}")
    elif isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), where
    else:
        assert type(a) is type(b) and a == b, where


def test_resume_continues_step_epoch_weights_and_optimizers(run_in_process, tmp_path):
    run_in_process(NO_VALIDATION, ["trainer.max_epochs=2"], output_dir=tmp_path / "first")
    first = _checkpoint(tmp_path / "first")
    # Saved at the end of epoch 1 (no validation): 2 epochs × 2 batches × 2 optimizer steps.
    assert (first["global_step"], first["epoch"]) == (8, 1)
    assert len(first["optimizer_states"]) == 2 and all(s["state"] for s in first["optimizer_states"])

    resume = [f"ckpt_path={tmp_path / 'first/checkpoints/last.ckpt'}", "trainer.max_epochs=3",
              f"+callbacks.capture._target_={__name__}.{CaptureTrainStart.__name__}"]
    _, built = run_in_process(NO_VALIDATION, resume, output_dir=tmp_path / "second")
    [start] = [c for c in built["trainer"].callbacks if isinstance(c, CaptureTrainStart)]
    assert (start.global_step, start.epoch) == (8, 2)  # continues where the first run stopped
    _assert_equal_nested(start.optimizer_states, first["optimizer_states"], "optimizer_states")
    _assert_equal_nested(start.weights, first["state_dict"], "state_dict")

    second = _checkpoint(tmp_path / "second")
    assert (second["global_step"], second["epoch"]) == (12, 2)  # and trains only the one epoch left, epoch 2


def test_resume_from_last_picks_the_newest_run_of_the_same_model_and_data(run_in_process, tmp_path):
    runs = tmp_path / "runs"
    run_in_process(NO_VALIDATION, ["trainer.max_epochs=1"], output_dir=runs / "2026-01-01_00-00-00_infogan_digits")
    run_in_process(NO_VALIDATION, ["trainer.max_epochs=2"], output_dir=runs / "2026-01-01_00-00-01_infogan_digits")
    newest = runs / "2026-01-01_00-00-01_infogan_digits" / "checkpoints" / "last.ckpt"
    _, built = run_in_process(NO_VALIDATION, ["ckpt_path=last", "trainer.max_epochs=3"],
                              output_dir=runs / "2026-01-01_00-00-02_infogan_digits")
    assert built["cfg"].ckpt_path == str(newest)  # the saved config names the file, not `last`
    assert _checkpoint(runs / "2026-01-01_00-00-02_infogan_digits")["global_step"] == 12  # 2 epochs + 1 more


def test_resume_from_last_without_earlier_runs_says_what_to_pass(run_cli, tmp_path):
    result = run_cli(["ckpt_path=last"], run_dir=tmp_path / "runs" / "2026-01-01_00-00-00_infogan_digits")
    _assert_user_error(result, "ckpt_path=last: no earlier run of infogan_digits", "Pass a checkpoint file")


# ----- DDP on CPU -----------------------------------------------------------------------------------------------

def _assert_ddp_run(result: RunResult) -> None:
    returncode, output, run_dir = result
    assert returncode == 0, str(result)
    assert _checkpoint(run_dir)["global_step"] == 4  # each rank: 2 batches × 2 optimizer steps
    # Both ranks write into the one run directory, and only rank 0 prints the summary.
    assert (run_dir / "train_ddp_process_1.log").is_file()
    assert output.count("ganzoo run summary") == 1
    fid = _fid(output)
    assert fid is not None and 0 < fid < float("inf"), str(result)


@pytest.mark.timeout(300)
def test_ddp_cpu_trains_one_epoch(run_cli):
    _assert_ddp_run(run_cli({"trainer": "ddp_cpu"}))



@pytest.mark.timeout(300)
def test_multirun_with_ddp_cpu_runs_each_job_once_in_its_own_directory(run_cli, tmp_path):
    """The trap of lightning-hydra-template #393: DDP's extra ranks must not start the whole sweep again."""
    result = run_cli({"trainer": "ddp_cpu", "seed": "0,1", "hydra.sweep.dir": str(tmp_path / "sweep")},
                     NO_VALIDATION, multirun=True, timeout=280)
    assert result.returncode == 0, str(result)
    # Rank 1 shares the terminal: had it re-run the command line, it would have launched the sweep a second time.
    assert result.output.count("Launching 2 jobs locally") == 1, str(result)
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.is_dir()) == ["0", "1"]
    for job, seed in (("0", 0), ("1", 1)):
        run_dir = tmp_path / "sweep" / job
        assert _checkpoint(run_dir)["global_step"] == 4  # each rank: 2 batches × 2 optimizer steps
        assert (run_dir / "train_ddp_process_1.log").is_file()
        assert yaml.safe_load((run_dir / "config_resolved.yaml").read_text())["seed"] == seed
    assert result.output.count("ganzoo run summary") == 2


# ----- W&B ------------------------------------------------------------------------------------------------------

#: The run id a W&B sweep agent gives the run it launches (in WANDB_RUN_ID).
AGENT_RUN_ID = "agentrun1"


@pytest.fixture(scope="module")
def wandb_run(tmp_path_factory, cache_dir) -> RunResult:
    """One run with logger=wandb and no API key, validating once (val/fid, grids), launched as a W&B sweep agent
    would (WANDB_RUN_ID set); shared by the W&B tests: a run costs ~15 s."""
    tmp = tmp_path_factory.mktemp("wandb")
    return run_src({"logger": "wandb"}, run_dir=tmp / "first", cache_dir=cache_dir,
                   env=cli_env(tmp / "home") | {"WANDB_RUN_ID": AGENT_RUN_ID})


def _wandb_stored(run_dir: Path) -> tuple[dict, list[dict]]:
    """What W&B stored for the offline run in ``run_dir``, read back with W&B's own reader of its transaction log
    (``wandb leet inspect``; an offline run writes no config.yaml or summary file): the run's final state (config,
    summary, id) and its history rows."""
    [log] = (run_dir / "wandb").glob("offline-run-*/run-*.wandb")

    def inspect(*flags: str) -> str:
        return subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", "--json", *flags, str(log)],
                              check=True, capture_output=True, text=True, timeout=60).stdout

    records = [json.loads(line) for line in inspect().splitlines() if line.strip()]
    return json.loads(inspect("--summary")), [r["history"]["item"] for r in records if r["type"] == "history"]


def test_wandb_without_key_runs_offline(wandb_run):
    assert wandb_run.returncode == 0, str(wandb_run)
    assert len(list((wandb_run.run_dir / "wandb").glob("offline-run-*"))) == 1, str(wandb_run)
    assert "W&B runs offline: no W&B API key" in wandb_run.output
    assert f"wandb sync {wandb_run.run_dir}/wandb/offline-run-" in wandb_run.output


def test_wandb_run_holds_the_whole_config_the_final_metrics_and_grids_at_the_validation_step(wandb_run):
    assert wandb_run.returncode == 0, str(wandb_run)
    stored, history = _wandb_stored(wandb_run.run_dir)
    config = stored["config"]  # nested as resolved, so runs group and filter by e.g. model.optimizer_g.lr
    assert config["model"]["optimizer_g"]["lr"] == 1e-3
    assert config["model"]["generator"]["fc_dim"] == 32  # TINY's width
    assert config["trainer"]["max_epochs"] == 1 and config["trainer"]["accelerator"] == "cpu"
    assert config["data"]["_target_"] == "src.data.digits.DigitsDataModule"

    final = json.loads((wandb_run.run_dir / "metrics.json").read_text())
    assert stored["summary"]["val/fid"] == pytest.approx(final["val/fid"])
    # 2 batches never reach log_every_n_steps, so train/loss_g is in no history row: only the final summary has it.
    assert not any("train/loss_g" in row for row in history)
    assert stored["summary"]["train/loss_g"] == pytest.approx(final["train/loss_g"])

    [validation] = [row for row in history if "val/fid" in row]
    grids = [row for row in history if any(key.startswith("samples/") for key in row)]
    assert len(grids) == 3  # InfoGAN's categorical grid and one traversal per continuous code
    assert {row["trainer/global_step"] for row in grids} == {validation["trainer/global_step"]}


def test_wandb_run_started_by_a_sweep_agent_keeps_the_agents_id(wandb_run):
    assert wandb_run.returncode == 0, str(wandb_run)
    assert _wandb_stored(wandb_run.run_dir)[0]["run_id"] == AGENT_RUN_ID
    assert (wandb_run.run_dir / "wandb_id").read_text().strip() == AGENT_RUN_ID


def test_wandb_resume_continues_the_same_run(wandb_run, run_cli, tmp_path):
    assert wandb_run.returncode == 0, str(wandb_run)
    run_id = (wandb_run.run_dir / "wandb_id").read_text().strip()
    [offline] = (wandb_run.run_dir / "wandb").glob("offline-run-*")
    assert run_id and offline.name.endswith(f"-{run_id}")

    resumed = run_cli({"logger": "wandb", "trainer.max_epochs": "2",
                       "ckpt_path": str(wandb_run.run_dir / "checkpoints" / "last.ckpt")}, NO_VALIDATION)
    assert resumed.returncode == 0, str(resumed)
    assert (resumed.run_dir / "wandb_id").read_text().strip() == run_id
    [offline] = (resumed.run_dir / "wandb").glob("offline-run-*")
    assert offline.name.endswith(f"-{run_id}")
    assert _checkpoint(resumed.run_dir)["global_step"] == 8


# ----- user errors ------------------------------------------------------------------------------------------------

def test_missing_dataset_names_folder_and_files(run_cli, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli(["data=mnist", "data.download=false", f"paths.data_dir={empty}"])
    _assert_user_error(result, "error:", str(empty / "MNIST" / "raw"), "train-images-idx3-ubyte",
                       "t10k-labels-idx1-ubyte", "download=False")


def test_corrupt_image_names_the_file(run_cli, tmp_path):
    # 8 images, 4 held out, batches of 4: every image is read in the one training batch or in validation.
    write_image_folder(tmp_path / "images", n=7, size=20, classes=())
    broken = write_corrupt_image(tmp_path / "images" / "broken.png")
    result = run_cli(["data=image_folder", f"data.root={tmp_path / 'images'}", "data.image_size=16",
                      "data.val_size=4", "data.batch_size=4"])
    _assert_user_error(result, "error:", str(broken))


def test_missing_checkpoint_is_refused_at_start(run_cli, tmp_path):
    missing = tmp_path / "nowhere" / "last.ckpt"
    result = run_cli([f"ckpt_path={missing}"])
    _assert_user_error(result, f"ckpt_path={missing} does not exist")
    assert not (result.run_dir / "checkpoints").exists()


def test_unknown_model_lists_the_valid_ones(run_cli):
    result = run_cli(["model=nope"], tiny=False)
    _assert_user_error(result, "Could not find 'model/nope'", "Available options in 'model'", "infogan")
