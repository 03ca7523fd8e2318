"""Bad input stops at start with one line naming the setting and its fix, exit code 1, no traceback.

The command-line tests run ``python -m src.run`` / ``python -m src.sample`` as a user would (~10 s each, one
per case: each run stops at its first error). The checker itself is tested in process, on the type matrix.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import pytest
import torch
from conftest import CONF, ROOT
from fixtures import write_image_folder
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from src.data.digits import DigitsDataModule
from src.nets.infogan import InfoGANGenerator
from src.utils.arguments import Meaning, fits, problem
from src.utils.config_check import check_config
from src.utils.errors import ConfigError
from src.utils.resume import CHECKPOINT_KEYS, load_checkpoint

NOT_A_CHECKPOINT = "is not a checkpoint written by `python -m src.run`"


def _one_error_line(output: str, returncode: int, *expected: str) -> str:
    """The single ``error:`` line of a run that exited 1 without a traceback; asserts ``expected`` is in it."""
    assert returncode == 1, output[-6000:]
    assert "Traceback" not in output, output[-6000:]
    [line] = [line for line in output.splitlines() if line.startswith("error:")]
    for text in expected:
        assert text in line, f"{text!r} not in {line!r}"
    return line


# ----- through the command line ---------------------------------------------------------------------------------

def _small_folder(tmp_path: Path, n: int) -> list[str]:
    write_image_folder(tmp_path / "images", n=n, size=20, classes=())
    return ["data=image_folder", f"data.root={tmp_path / 'images'}", "data.image_size=16"]


# name → (overrides for the run given tmp_path, what the error line must say, whether it stops before train()
# writes anything to the run directory; the small image folders are found out only when the data is read)
CLI_CASES = {
    "negative_batch_size": (lambda p: ["data.batch_size=-4"],
                            ["data.batch_size=-4: must be a positive integer", "Fix: data.batch_size=64"], True),
    "no_categories": (lambda p: ["model.n_categories=0"],
                      ["model.n_categories=0: must be a positive integer", "Fix: model.n_categories=10"], True),
    "image_folder_without_root": (lambda p: ["data=image_folder"],
                                  ["data.root is not set", "data=image_folder needs data.root=/path/to/images"], True),
    "max_epochs_not_a_number": (lambda p: ["trainer.max_epochs=abc"],
                                ["trainer.max_epochs=abc: must be an integer or null"], True),
    # ${dataset.…} is filled by train(), so this typo can only be found once it is: still one line.
    "dataset_interpolation_typo": (lambda p: ["model.generator.image_shape=${dataset.imageshape}"],
                                   ["model.generator.image_shape: Interpolation key 'dataset.imageshape' not found"],
                                   False),
    "folder_smaller_than_val_size": (lambda p: _small_folder(p, 5),
                                     ["has 5 images; val_size=64", "Set data.val_size between 1 and 4"], False),
    "folder_smaller_than_batch_size": (lambda p: _small_folder(p, 6) + ["data.val_size=2"],
                                       ["4 images, fewer than batch_size=8", "data.batch_size"], False),
}


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_bad_setting_is_one_line_before_any_work(case, run_cli, tmp_path):
    make, expected, before_train_writes = CLI_CASES[case]
    result = run_cli(make(tmp_path))
    _one_error_line(result.output, result.returncode, *expected)
    assert not (result.run_dir / "checkpoints").exists()
    if before_train_writes:
        assert not (result.run_dir / "config_resolved.yaml").exists(), sorted(os.listdir(result.run_dir))


def _garbage(path: Path) -> Path:
    path.write_bytes(os.urandom(4096))
    return path


def _empty(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def _torch_file(path: Path) -> Path:
    torch.save({"a": 1}, path)
    return path


# One kind of non-checkpoint per entry point here (~10 s each); every kind is tested on load_checkpoint below.

def test_run_refuses_a_file_that_is_not_a_checkpoint_before_any_work(run_cli, tmp_path):
    ckpt = _garbage(tmp_path / "garbage.ckpt")
    result = run_cli([f"ckpt_path={ckpt}"])
    _one_error_line(result.output, result.returncode, f"ckpt_path={ckpt} {NOT_A_CHECKPOINT}",
                    "not a file torch.save wrote")
    assert not (result.run_dir / "config_resolved.yaml").exists()


def test_sample_refuses_a_file_that_is_not_a_checkpoint(run_env, tmp_path):
    ckpt = _empty(tmp_path / "garbage.ckpt")  # e.g. a copy that failed; torch.load raised EOFError
    reason = "the file is empty"
    args = [f"ckpt_path={ckpt}", f"hydra.run.dir={tmp_path / 'out'}"]
    done = subprocess.run([sys.executable, "-m", "src.sample", *args], cwd=ROOT, env=run_env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    _one_error_line(done.stdout, done.returncode, f"ckpt_path={ckpt} {NOT_A_CHECKPOINT}", reason)
    assert not (tmp_path / "out" / "samples.png").exists()


# ----- the checker, in process ----------------------------------------------------------------------------------

Positive = Annotated[int, Meaning("a count", at_least=1)]


@pytest.mark.parametrize(
    ("value", "annotation", "ok"),
    [
        (3, int, True), (True, int, False), (2.5, int, False), ("abc", int, False),
        (3, float, True), (2.5, float, True), (False, float, False), ("1e-3", float, False),
        (True, bool, True), (1, bool, False),
        ("x", str, True), (3, str, False),
        (None, Optional[int], True), (4, Optional[int], True), ("abc", Optional[int], False), (None, int, False),
        (3, int | str, True), (1.5, int | str, False),
        ("normal", Literal["uniform", "normal"], True), ("gauss", Literal["uniform", "normal"], False),
        (1, Literal[1, 3], True), (True, Literal[1, 3], False), ("1", Literal[1, 3], False),
        ([0.5, 0.9], tuple[float, float], True), ([0.5], tuple[float, float], False), ("ab", tuple[str, str], False),
        ([1, 2, 3], list[int], True), ([1, "x"], list[int], False), ([1, 2], tuple[int, ...], True),
        ({"a": 1}, dict[str, int], True), ([1], dict[str, int], False),
        ("/tmp", Path, True), (3, Path, False),
        (1, Positive, True), (0, Positive, False), (-4, Optional[Positive], False), (None, Optional[Positive], True),
        ("fast", torch.Tensor, False), ([1, 2], torch.Tensor, True),  # a class: only a scalar can be judged
        ("anything", Any, True),
    ],
)
def test_value_against_annotation(value, annotation, ok):
    assert fits(value, annotation) is ok


def test_problem_names_the_bound_and_the_meaning():
    assert problem(-4, Positive) == "must be a positive integer (a count)"
    assert problem("abc", Optional[int]) == "must be an integer or null"
    assert problem("gauss", Literal["uniform", "normal"]) == "must be one of uniform, normal"
    assert problem(5, Positive) is None


def _check(config: dict, **choices: str) -> None:
    check_config(OmegaConf.create(config), choices)


GENERATOR = {"_target_": "src.nets.infogan.InfoGANGenerator", "noise_dim": 4, "n_categories": 2, "n_continuous": 1,
             "image_shape": "${dataset.image_shape}", "fc_dim": 8}


def test_nested_target_is_checked_under_its_own_key():
    model = {"_target_": "src.models.infogan.InfoGAN", "generator": {**GENERATOR, "fc_dim": 0}}
    with pytest.raises(ConfigError, match=r"^model\.generator\.fc_dim=0: must be a positive integer \(a layer width\)"
                                          r"\. Fix: model\.generator\.fc_dim=1024$"):
        _check({"model": model})
    _check({"model": {**model, "generator": GENERATOR}})  # ${dataset…} is filled at run time: not judged here


def test_partial_optimizer_is_checked_without_its_params():
    adam = {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3, "betas": [0.5, 0.999]}
    _check({"optimizer": adam})
    with pytest.raises(ConfigError, match=r"^optimizer\.lr=fast: must be a number or a Tensor\. "
                                          r"Fix: optimizer\.lr=0\.001$"):
        _check({"optimizer": {**adam, "lr": "fast"}})
    with pytest.raises(ConfigError, match=r"^optimizer\.betas=\[0\.5\]: must be a list of 2"):
        _check({"optimizer": {**adam, "betas": [0.5]}})


def test_trainer_setting_of_the_wrong_type():
    with pytest.raises(ConfigError, match=r"^trainer\.max_epochs=abc: must be an integer or null\."):
        _check({"trainer": {"_target_": "pytorch_lightning.Trainer", "max_epochs": "abc"}})


def test_unknown_argument_is_named_with_the_valid_ones():
    with pytest.raises(ConfigError, match=r"^data\.batchsize: .*DigitsDataModule takes no argument 'batchsize'\. "
                                          r"Fix: remove data\.batchsize, or use one of image_size, batch_size"):
        _check({"data": {"_target_": "src.data.digits.DigitsDataModule", "batchsize": 8}})


def test_missing_value_names_the_choice_and_an_example():
    data = {"_target_": "src.data.image_folder.ImageFolderDataModule", "root": "???"}
    with pytest.raises(ConfigError, match=r"^data\.root is not set \(the folder that holds the images\)\. "
                                          r"Fix: data=image_folder needs data\.root=/path/to/images$"):
        _check({"data": data}, data="image_folder")


def test_interpolation_that_cannot_resolve_is_named():
    with pytest.raises(ConfigError, match=r"^run_name=\$\{nope\}: Interpolation key 'nope' not found"):
        _check({"run_name": "${nope}"})


def test_target_that_cannot_be_imported_is_named():
    with pytest.raises(ConfigError, match=r"^model\._target_=src\.models\.nope\.Model: cannot be imported"):
        _check({"model": {"_target_": "src.models.nope.Model"}})


def test_constructors_refuse_impossible_values_themselves():
    with pytest.raises(ConfigError, match=r"^batch_size=0: must be a positive integer "
                                          r"\(the number of images per batch\)"):
        DigitsDataModule(batch_size=0)
    with pytest.raises(ConfigError, match=r"^n_continuous=-1: must be a non-negative integer"):
        InfoGANGenerator(noise_dim=4, n_categories=2, n_continuous=-1, image_shape=(1, 8, 8))


GROUP_OPTIONS = [(g.name, f.stem) for g in sorted(CONF.iterdir()) if g.is_dir() for f in sorted(g.glob("*.yaml"))]


@pytest.mark.parametrize(("group", "option"), GROUP_OPTIONS, ids=[f"{g}={o}" for g, o in GROUP_OPTIONS])
def test_every_shipped_config_passes_the_check(group, option, hydra_config, tmp_path):
    # A recipe <model>_<data> is checked with its own model and data.
    recipe = ["model={}".format(option.split("_")[0]), "data={}".format(option.split("_", 1)[1])] if group == "recipe" else []
    cfg = hydra_config([f"{group}={option}", f"data.root={tmp_path}"] if option in ("image_folder", "captions") else
                       [f"{group}={option}", *recipe], output_dir=tmp_path / "run")
    check_config(cfg, HydraConfig.get().runtime.choices)


# ----- checkpoints ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("write", "reason"), [(_garbage, "not a file torch.save wrote"), (_empty, "the file is empty"),
                                               (_torch_file, "no state_dict, pytorch-lightning_version, ganzoo_config"),
                                               (lambda p: (torch.save([1, 2], p), p)[1], "it holds a list")],
                         ids=["random_bytes", "empty", "torch_dict", "torch_list"])
def test_a_file_that_is_not_a_checkpoint_is_refused_with_the_reason(write, reason, tmp_path):
    ckpt = write(tmp_path / "x.ckpt")
    with pytest.raises(ConfigError) as error:
        load_checkpoint(ckpt)
    assert str(error.value).startswith(f"ckpt_path={ckpt} {NOT_A_CHECKPOINT} ({reason}")


def test_a_truncated_checkpoint_is_refused(tmp_path):
    whole = tmp_path / "whole.ckpt"
    torch.save(dict.fromkeys(CHECKPOINT_KEYS, {"w": torch.zeros(1000)}), whole)
    assert set(load_checkpoint(whole)) == set(CHECKPOINT_KEYS)
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(ConfigError, match=re.escape(NOT_A_CHECKPOINT)):
        load_checkpoint(cut)
