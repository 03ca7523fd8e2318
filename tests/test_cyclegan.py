"""CycleGAN and pix2pix: the identity loss' channel check, who updates what in one step, the learning-rate schedule
(constant, then linear to 0 at the configured images, across a resume), a few steps of each end to end under
ddp_cpu (FID per direction, the judge's flip and kept shares, grids), and `python -m src.translate`."""
from __future__ import annotations

import functools
import json
import subprocess
import sys

import pytest
import pytorch_lightning as pl
import torch
from PIL import Image

from conftest import NO_VALIDATION, ROOT, TINY
from src.callbacks.config_in_checkpoint import ConfigInCheckpoint
from src.models.cyclegan import CycleGAN
from src.models.pix2pix import Pix2Pix
from src.nets.patchgan import PatchGAN
from src.nets.resnet_generator import ResnetGenerator
from src.nets.unet_generator import UnetGenerator
from src.translate import input_images
from src.utils.errors import ConfigError

#: The shared tiny run, with these families' nets instead of InfoGAN's and tiny faces at 16 px.
FAMILY_TINY = {key: value for key, value in TINY.items() if not key.startswith("model.")} | {
    "data.image_size": "32", "data.train_size": "32", "data.val_size": "8", "data.test_size": "8",
    "data.batch_size": "4", "data.judge_faces": "32", "model.eval_size": "8", "model.grid_size": "2",
    "+model.judge_settings.epochs": "1", "+model.judge_settings.base_width": "4",
    "+model.judge_settings.max_width": "8",
}
CYCLEGAN = FAMILY_TINY | {"model": "cyclegan", "model.generator_a2b.base_channels": "4",
                          "model.generator_a2b.n_blocks": "1", "model.discriminator_a.base_channels": "4"}
PIX2PIX = FAMILY_TINY | {"model": "pix2pix", "model.generator.base_channels": "4",
                         "model.discriminator.base_channels": "4"}
ADAM = functools.partial(torch.optim.Adam, lr=2e-4, betas=(0.5, 0.999))


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _cyclegan(channels_a=3, channels_b=3, **kwargs) -> CycleGAN:
    torch.manual_seed(0)
    return CycleGAN(ResnetGenerator(channels_a, channels_b, 4, 1), ResnetGenerator(channels_b, channels_a, 4, 1),
                    PatchGAN(channels_a, 4, 2), PatchGAN(channels_b, 4, 2), ADAM, ADAM, image_shape=(3, 16, 16),
                    judge_settings=None, **kwargs)


def test_identity_loss_needs_as_many_channels_in_as_out():
    with pytest.raises(ConfigError, match=r"model.lambda_identity=0.5 .* model.generator_a2b takes 1 channels and "
                                          r"gives 3. Set model.lambda_identity=0"):
        _cyclegan(channels_a=1)
    assert _cyclegan(channels_a=1, lambda_identity=0).hparams.lambda_identity == 0


def test_generator_losses_are_the_papers_weighted_terms():
    model = _cyclegan(lambda_a=10, lambda_b=5, lambda_identity=0.5)
    a, b = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        terms, fake_b, fake_a = model.generator_losses(a, b)
    terms = {name: value.item() for name, value in terms.items()}
    G, F = model.generator["a2b"], model.generator["b2a"]
    l1 = torch.nn.functional.l1_loss
    assert torch.allclose(fake_b, G(a)) and torch.allclose(fake_a, F(b))
    assert terms["cycle_a"] == pytest.approx(10 * l1(F(G(a)), a).item(), rel=1e-5)
    assert terms["cycle_b"] == pytest.approx(5 * l1(G(F(b)), b).item(), rel=1e-5)
    assert terms["identity_b"] == pytest.approx(0.5 * 5 * l1(G(b), b).item(), rel=1e-5)  # ‖G(b) − b‖, weight λ_B
    assert terms["identity_a"] == pytest.approx(0.5 * 10 * l1(F(a), a).item(), rel=1e-5)
    assert terms["gan_a2b"] == pytest.approx((model.discriminator_b(G(a)) - 1).pow(2).mean().item(), rel=1e-5)
    assert terms["gan_b2a"] == pytest.approx((model.discriminator_a(F(b)) - 1).pow(2).mean().item(), rel=1e-5)
    assert "identity_a" not in _cyclegan(lambda_identity=0).generator_losses(a, b)[0]


def test_discriminator_loss_is_half_real_plus_fake():
    model = _cyclegan()
    real, fake = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    d = model.discriminator_a
    expected = 0.5 * ((d(real) - 1).pow(2).mean() + d(fake).pow(2).mean())
    assert model.discriminator_loss(d, real, fake).item() == pytest.approx(expected.item(), rel=1e-6)


def test_pix2pix_discriminator_must_see_input_and_output():
    with pytest.raises(ConfigError, match=r"model.discriminator.in_channels=3: .* set it to 6"):
        Pix2Pix(UnetGenerator(3, 3, 4, 4), PatchGAN(3, 4, 2), ADAM, ADAM, image_shape=(3, 16, 16), judge_settings=None)


def _lr(built, name: str) -> list[float]:
    return [group["lr"] for group in built["model"].optimizers()[["g", "d"].index(name)].param_groups]


def test_schedule_is_constant_then_linear_to_zero_across_a_resume(run_in_process, tmp_path):
    """8 images per epoch (2 batches of 4); 8 constant, then 16 decaying: 2e-4 after epoch 1, 1e-4 after epoch 2
    (8 of 16 decayed), 0 after epoch 3 — the last one in a resumed run."""
    schedule = ["model.schedulers.g.constant_images=8", "model.schedulers.g.decay_images=16",
                "model.optimizer_g.lr=2e-4", "model.judge_settings=null"]  # the paper's lr (the faces recipe: 1e-3)
    _, built = run_in_process(CYCLEGAN, NO_VALIDATION, schedule, ["trainer.max_epochs=1"], output_dir=tmp_path / "one",
                              tiny=False)
    assert _lr(built, "g") == _lr(built, "d") == [pytest.approx(2e-4)]
    _, built = run_in_process(CYCLEGAN, NO_VALIDATION, schedule, ["trainer.max_epochs=2"], output_dir=tmp_path / "two",
                              tiny=False)
    assert int(built["model"].images_seen) == 16
    assert _lr(built, "g") == _lr(built, "d") == [pytest.approx(1e-4)]
    resume = [f"ckpt_path={tmp_path / 'two/checkpoints/last.ckpt'}", "trainer.max_epochs=3"]
    _, built = run_in_process(CYCLEGAN, NO_VALIDATION, schedule, resume, output_dir=tmp_path / "three", tiny=False)
    assert int(built["model"].images_seen) == 24
    assert _lr(built, "g") == _lr(built, "d") == [0.0]
    pools = built["model"].pool_a, built["model"].pool_b
    assert all(int(pool.count) == 24 for pool in pools)  # the history survived the resume (8 fakes per epoch)


def _metrics(run_dir):
    return json.loads((run_dir / "metrics.json").read_text())


def _check_figures(metrics: dict, names: set[str], num_fake: int) -> None:
    for name in {"val/fid", "val/fid/a2b", "val/flip_a2b", "val/kept_a2b", "train/loss_g"} | names:
        assert name in metrics, (name, sorted(metrics))
    assert 0 <= metrics["val/flip_a2b"] <= 1 and 0 <= metrics["val/kept_a2b"] <= 1
    # each other attribute's kept share is logged, and kept is their mean (every face has every attribute)
    each = [value for name, value in metrics.items() if name.startswith("val/kept_a2b/")]
    assert len(each) == 8 and "val/kept_a2b/eyeglasses" not in metrics
    assert abs(sum(each) / len(each) - metrics["val/kept_a2b"]) < 1e-5
    assert metrics["val/fid_n"] == num_fake  # every held-out input translated once


def _check_grids(run_dir, grids: set[str]) -> None:
    assert {p.name for p in (run_dir / "samples").glob("*_last.png")} == {f"{g}_last.png" for g in grids}
    with Image.open(run_dir / "samples" / f"{sorted(grids)[0]}_last.png") as grid:
        assert grid.size == (2 + 3 * 34, 2 + 2 * 34)  # 2 rows (grid_size) of 3 columns (A | G(A) | …), 32 px each


@pytest.mark.timeout(300)
def test_cyclegan_under_ddp_cpu_logs_every_figure_each_way(run_cli):
    result = run_cli(CYCLEGAN, {"trainer": "ddp_cpu"}, tiny=False)
    assert result.returncode == 0, str(result)
    # The 8 held-out faces hold 3 pairs (min of the domains); the figures are gathered from both ranks.
    _check_figures(_metrics(result.run_dir), {"val/cycle_l1_a", "val/cycle_l1_b", "val/flip_b2a", "val/kept_b2a",
                                              "val/fid/b2a"}, num_fake=3)
    _check_grids(result.run_dir, {"cycle_a", "cycle_b"})


@pytest.mark.timeout(300)
def test_pix2pix_trains_under_ddp_cpu(run_cli):
    result = run_cli(PIX2PIX, NO_VALIDATION, {"trainer": "ddp_cpu"}, tiny=False)
    assert result.returncode == 0, str(result)
    assert (result.run_dir / "checkpoints" / "last.ckpt").is_file()


def test_pix2pix_logs_l1_ssim_flip_and_its_grid(run_in_process, tmp_path):
    metrics, _ = run_in_process(PIX2PIX, tiny=False)
    _check_figures(metrics, {"val/l1", "val/ssim"}, num_fake=8)  # 8 held-out pairs
    assert 0 < metrics["val/l1"] < 2 and -1 <= metrics["val/ssim"] <= 1
    _check_grids(tmp_path / "run", {"translation"})


def test_translate_keeps_names_and_sizes_and_names_the_unreadable_file(hydra_config, tmp_path):
    cfg = hydra_config(CYCLEGAN, ["model.judge_settings=null"], output_dir=tmp_path / "run")
    from hydra.utils import instantiate
    from omegaconf import OmegaConf, open_dict

    with open_dict(cfg):
        cfg.dataset = {"name": "faces_unpaired", "kind": "unpaired", "image_shape": [3, 32, 32], "num_classes": None}
    model = instantiate(cfg.model)
    ckpt = tmp_path / "model.ckpt"
    torch.save({ConfigInCheckpoint.KEY: OmegaConf.to_container(cfg, resolve=True), "state_dict": model.state_dict(),
                "pytorch-lightning_version": pl.__version__}, ckpt)
    source = tmp_path / "in"
    (source / "sub").mkdir(parents=True)
    Image.new("L", (37, 53), 128).save(source / "gray.png")
    Image.new("RGBA", (20, 21), (10, 200, 30, 100)).save(source / "sub" / "alpha.png")
    Image.new("RGB", (64, 40), (255, 0, 0)).save(source / "photo.jpg")
    (source / "broken.jpg").write_bytes(b"not an image")
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "src.translate", f"ckpt_path={ckpt}", f"input={source}",
                           "direction=b2a", f"output={out}", "device=cpu", f"hydra.run.dir={tmp_path / 'log'}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "broken.jpg" in done.stderr and "could not translate 1 of 4 images" in done.stderr
    sizes = {p.relative_to(out).as_posix(): Image.open(p).size for p in out.rglob("*.*")}
    assert sizes == {"gray.png": (37, 53), "sub/alpha.png": (20, 21), "photo.jpg": (64, 40)}
    with pytest.raises(ConfigError, match=r"^input=.*nope is not a folder"):
        input_images(tmp_path / "nope")
