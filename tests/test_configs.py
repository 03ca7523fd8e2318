"""Every config composes, resolves and builds what ``src.run.train`` builds from it; wrong choices fail at start."""
from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from conftest import CONF, compose_config, group_option
from hydra.core.hydra_config import HydraConfig
from hydra.errors import ConfigCompositionException, MissingConfigException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from src.data.base import GANDataModule
from src.run import dataset_info
from src.models.base import GANModule
from src.utils.compat import data_kinds
from src.utils.checkpoint_io import AtomicCheckpointIO
from src.utils.errors import DatasetNotFoundError
from src.utils.loggers import build_loggers

GROUPS = sorted(p.name for p in CONF.iterdir() if p.is_dir())
OPTIONS = [(group, f.stem) for group in GROUPS for f in sorted((CONF / group).glob("*.yaml"))]
EXPERIMENTS = sorted(f.stem for f in (CONF / "experiment").glob("*.yaml"))


@pytest.fixture
def compose(tmp_path, monkeypatch):
    """compose(*overrides): the config as ``main`` receives it, with paths in tmp_path and no W&B key."""
    for name in ("WANDB_API_KEY", "WANDB_MODE", "GANZOO_DATA_DIR", "GANZOO_CACHE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    defaults = [f"paths.data_dir={tmp_path / 'data'}", f"paths.cache_dir={tmp_path / 'cache'}"]
    yield lambda *layers: compose_config(defaults, *layers, output_dir=tmp_path / "run")
    HydraConfig.instance().cfg = None


def _build(cfg: DictConfig, tmp_path: Path) -> dict:
    """What train() builds before fitting, in its order; asserts the whole config then resolves."""
    if OmegaConf.is_missing(cfg.data, "root"):  # image_folder: the one value a user must give
        cfg.data.root = str(tmp_path / "images")
    datamodule = instantiate(cfg.data)
    assert isinstance(datamodule, GANDataModule)
    with open_dict(cfg):
        try:
            cfg.dataset = dataset_info(datamodule, with_text="captioned" in get_class(cfg.model._target_).data_kinds)
        except DatasetNotFoundError:
            pytest.skip("composed; a text model's vocabulary is read from the captions on disk, which are not here")
    resolved = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    assert resolved["paths"]["output_dir"] == str(tmp_path / "run")

    model = instantiate(cfg.model)
    assert isinstance(model, GANModule)
    stream = model.evaluation_streams()[0]
    if stream.inputs is None:  # a stream made from held-out inputs needs the data on disk
        fake = stream.make(2, torch.Generator())
        assert fake.shape[:2] == (2, datamodule.image_shape[0])
        assert fake.shape[2:] == (stream.real.size or datamodule.image_shape[1],) * 2
    callbacks = [instantiate(c) for c in cfg.callbacks.values()] + [instantiate(cfg.metrics)]
    assert all(isinstance(c, pl.Callback) for c in callbacks)
    loggers = build_loggers(cfg.get("logger"), tmp_path / "run")
    built = {"datamodule": datamodule, "model": model, "callbacks": callbacks, "loggers": loggers}
    if cfg.trainer.accelerator == "gpu" and not torch.cuda.is_available():
        pytest.skip("composed and resolved; building this trainer needs a GPU")
    built["trainer"] = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    assert isinstance(built["trainer"].strategy.checkpoint_io, AtomicCheckpointIO)
    return built


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_of_every_group_composes_and_builds(group, option, compose, tmp_path):
    # Two-domain data is built with a model that takes it (InfoGAN at 256 px alone would take gigabytes).
    unpaired = group == "data" and "image" not in data_kinds(CONF / "data" / f"{option}.yaml")
    cfg = compose([*group_option(group, option), *(["model=cyclegan"] if unpaired else [])])
    assert HydraConfig.get().runtime.choices[group] == option
    built = _build(cfg, tmp_path)
    if group == "trainer":
        trainer = built["trainer"]
        assert (trainer.max_epochs, trainer.check_val_every_n_epoch) == (cfg.trainer.max_epochs,
                                                                          cfg.trainer.check_val_every_n_epoch)
        if option in ("cpu", "ddp_cpu"):
            assert isinstance(trainer.accelerator, pl.accelerators.CPUAccelerator)
        if option == "ddp_cpu":
            assert trainer.world_size == 2 and trainer.strategy.process_group_backend == "gloo"
    if group == "logger":
        assert len(built["loggers"]) == len(cfg.logger)
    if group == "hydra":
        assert HydraConfig.get().run.dir.endswith(f"_{cfg.run_name}")


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_and_builds(experiment, compose, tmp_path):
    cfg = compose([f"experiment={experiment}"])
    assert HydraConfig.get().runtime.choices.experiment == experiment
    _build(cfg, tmp_path)


def test_sample_config_composes(compose, tmp_path):
    cfg = compose_config(["ckpt_path=some.ckpt", f"output_dir={tmp_path}"], config_name="sample")
    assert (cfg.ckpt_path, cfg.output_dir, cfg.num_samples) == ("some.ckpt", str(tmp_path), 64)


def test_model_alone_picks_its_natural_dataset(compose):
    cfg = compose(["model=infogan"])
    assert HydraConfig.get().runtime.choices.data == "digits"
    assert cfg.data._target_ == "src.data.digits.DigitsDataModule"
    assert cfg.run_name == "infogan_digits"


def test_data_choice_overrides_the_models_dataset(compose):
    cfg = compose(["model=infogan", "data=mnist"])
    assert HydraConfig.get().runtime.choices.data == "mnist"
    assert cfg.data._target_ == "src.data.torchvision_sets.MNISTDataModule"
    assert cfg.run_name == "infogan_mnist"


# ----- recipes: the model file holds the paper's settings, conf/recipe/<model>_<data>.yaml one dataset's tuning ----

#: The digits tuning (conf/recipe/infogan_digits.yaml) and the paper's values (conf/model/infogan.yaml).
DIGITS_TUNING = {"lambda_cont": 0.1, "r1_gamma": 1.0, "fc_dim": 512, "base_channels": 32, "max_epochs": 80,
                 "check_val_every_n_epoch": 40}
PAPER = {"lambda_cont": 1.0, "r1_gamma": 0.0, "fc_dim": 1024, "base_channels": 64}


def _tuned_values(cfg: DictConfig) -> dict:
    """The values a recipe may tune, after asserting G and D agree on their widths."""
    g, d = cfg.model.generator, cfg.model.discriminator
    assert (g.fc_dim, g.base_channels) == (d.fc_dim, d.base_channels)
    return {"lambda_cont": cfg.model.lambda_cont, "r1_gamma": cfg.model.r1_gamma, "fc_dim": g.fc_dim,
            "base_channels": g.base_channels, "max_epochs": cfg.trainer.max_epochs,
            "check_val_every_n_epoch": cfg.trainer.check_val_every_n_epoch}


def test_model_alone_runs_the_tuned_digits_recipe(compose):
    cfg = compose(["model=infogan"])
    assert HydraConfig.get().runtime.choices.recipe == "infogan_digits"
    assert _tuned_values(cfg) == DIGITS_TUNING
    assert (cfg.model.lambda_cat, cfg.model.discriminator.q_dim, cfg.data.batch_size) == (1.0, 128, 64)


def test_mnist_recipe_is_the_paper_job_and_the_experiment_is_the_same(compose):
    cfg = compose(["model=infogan", "data=mnist"])
    assert HydraConfig.get().runtime.choices.recipe == "infogan_mnist"
    assert _tuned_values(cfg) == PAPER | {"max_epochs": 50, "check_val_every_n_epoch": 5}
    assert (cfg.model.optimizer_g.lr, cfg.model.optimizer_d.lr) == (1e-3, 2e-4)
    assert cfg.data.batch_size == 128
    assert OmegaConf.to_container(compose(["experiment=infogan_mnist"])) == OmegaConf.to_container(cfg)


@pytest.mark.parametrize("data", sorted(f.stem for f in (CONF / "data").glob("*.yaml")
                                        if not (CONF / "recipe" / f"infogan_{f.stem}.yaml").exists()))
def test_dataset_without_a_recipe_gets_the_papers_settings_and_the_generic_trainer(data, compose):
    cfg = compose(["model=infogan", f"data={data}"])
    generic = OmegaConf.load(CONF / "trainer" / "default.yaml")
    assert _tuned_values(cfg) == PAPER | {"max_epochs": generic.max_epochs,
                                          "check_val_every_n_epoch": generic.check_val_every_n_epoch}
    assert (generic.max_epochs, generic.check_val_every_n_epoch) != (80, 40)  # not the digits budget


def test_the_recipe_can_be_switched_off(compose):
    cfg = compose(["model=infogan", "~recipe=infogan_digits"])  # conftest.overrides needs a value
    assert cfg.data._target_ == "src.data.digits.DigitsDataModule"
    assert _tuned_values(cfg)["lambda_cont"] == PAPER["lambda_cont"]


def test_infogan_mnist_experiment_is_the_paper_setup(compose, tmp_path):
    cfg = compose(["experiment=infogan_mnist"])
    assert cfg.data._target_ == "src.data.torchvision_sets.MNISTDataModule" and cfg.data.batch_size == 128
    for net in (cfg.model.generator, cfg.model.discriminator):
        assert (net.fc_dim, net.base_channels) == (1024, 64)
    assert cfg.model.discriminator.q_dim == 128
    assert (cfg.model.optimizer_g.lr, cfg.model.optimizer_d.lr) == (1e-3, 2e-4)
    assert (cfg.model.lambda_cat, cfg.model.lambda_cont) == (1.0, 1.0)
    model = _build(cfg, tmp_path)["model"]
    assert model.generator.fc[0].out_features == 1024
    assert model.discriminator.body[0].out_channels == 64
    assert model.discriminator.body[-3].out_features == 1024
    assert model.generator(torch.zeros(2, 62 + 10 + 2)).shape == (2, 1, 28, 28)


def test_unknown_model_lists_the_valid_ones(compose):
    with pytest.raises(MissingConfigException) as error:
        compose(["model=nope"])
    message = str(error.value)
    assert "model/nope" in message
    assert "Available options in 'model'" in message and "infogan" in message


def test_unknown_key_is_rejected(compose):
    with pytest.raises(ConfigCompositionException, match="model.nonexistent"):
        compose(["model.nonexistent=1"])


def test_evaluate_config_composes(compose, tmp_path):
    cfg = compose_config(["ckpt_path=some.ckpt", "trainer=ddp_cpu", f"paths.cache_dir={tmp_path}"], config_name="evaluate")
    assert (cfg.ckpt_path, cfg.trainer.devices, cfg.metrics.cache_dir) == ("some.ckpt", 2, str(tmp_path))
