"""Inversion: the family adapters, the three methods on generators whose true codes are known, the Inception
feature distance, and ``python -m src.invert`` end to end on a tiny checkpoint (outputs and one-line errors).

Untrained generators with batch norm in eval mode make nearly the same image for every z (running variance 1 on
activations far smaller), which would make any code "recover" any image. :func:`calibrated` sets each batch norm's
statistics from a batch of prior codes, so G's output depends on z as much as a trained G's does."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from conftest import ROOT
from PIL import Image
from test_autoencoders import _bigan
from test_infogan import _model as _infogan

from src.inversion.adapters import adapter_for
from src.inversion.encoder import EncoderSettings, new_encoder, train_encoder
from src.inversion.methods import Inverter
from src.inversion.optimize import OptimizeSettings
from src.inversion.reconstruction import DistanceSettings, ReconstructionLoss
from src.metrics.perceptual import InceptionDistance
from src.models.bigan import TwinAutoencoder
from src.utils.errors import ConfigError

PIXELS = ReconstructionLoss(DistanceSettings(feature_weight=0))


pytestmark = pytest.mark.usefixtures("single_thread")


def calibrated(model, generator_net, n: int = 256):
    """``model`` with the batch-norm statistics of ``generator_net`` (its G) set from n prior codes."""
    adapter = adapter_for(model)
    codes = adapter.sample_prior(n, torch.Generator().manual_seed(123))
    for layer in generator_net.modules():
        if isinstance(layer, torch.nn.modules.batchnorm._BatchNorm):
            layer.reset_running_stats()
            layer.momentum = None  # a plain average over the calibration batch
    with torch.no_grad():
        generator_net.train()(codes)
    return model.eval()


def bigan():
    model = _bigan()
    return calibrated(model, model.generator["decoder"])


def infogan():
    model = _infogan()
    return calibrated(model, model.generator)


def _known(adapter, n=8, seed=5):
    z = adapter.sample_prior(n, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return z, adapter.decode(z)


def _pixel_error(adapter, codes, images) -> float:
    with torch.no_grad():
        return PIXELS(adapter.decode(codes), images).mean().item()


def _random_baseline(adapter, images) -> float:
    return _pixel_error(adapter, adapter.sample_prior(len(images), torch.Generator().manual_seed(99)), images)


@pytest.mark.parametrize("method, optimizer", [("optimize", "lbfgs"), ("hybrid", "adam")])
def test_optimisation_and_hybrid_recover_the_known_code(method, optimizer):
    adapter = adapter_for(bigan())
    z, images = _known(adapter)
    assert _random_baseline(adapter, images) > 0.05  # the images differ: recovering them means something
    settings = OptimizeSettings(optimizer=optimizer, steps=50 if optimizer == "lbfgs" else 200, lr=0.05,
                                prior_weight=0.0)
    inverter = Inverter(adapter, method, PIXELS, settings, EncoderSettings(use_own=False, steps=150))
    codes = inverter(images)
    assert (codes - z).abs().max() < 1e-2
    assert _pixel_error(adapter, codes, images) < 1e-6


def test_random_start_is_seeded_and_a_larger_prior_weight_pulls_codes_inside_the_prior():
    adapter = adapter_for(bigan())
    _, images = _known(adapter, n=4)
    run = lambda seed, prior: Inverter(adapter, "optimize", PIXELS,  # noqa: E731
                                       OptimizeSettings(steps=30, seed=seed, prior_weight=prior))(images)
    assert torch.equal(run(0, 0.0), run(0, 0.0)) and not torch.allclose(run(0, 0.0), run(1, 0.0))
    # Without the prior term the codes drift outside U(-1, 1) on these images; a heavy one keeps them in.
    free, held = run(0, 0.0), run(0, 1e3)
    assert free.abs().max() > 1.05 and held.abs().max() < free.abs().max()


def test_encoder_trained_with_g_frozen_reconstructs_far_better_than_a_random_code():
    model = infogan()
    adapter = adapter_for(model)
    before = {name: p.clone() for name, p in model.state_dict().items()}
    encoder = new_encoder(adapter)
    body = model.discriminator.body.state_dict()
    assert all(torch.equal(v, encoder.body.state_dict()[k]) for k, v in body.items())  # starts from D's body
    _, images = _known(adapter, n=16)
    trained = train_encoder(adapter, images, PIXELS, EncoderSettings(use_own=False, steps=200, batch_size=16))
    with torch.no_grad():
        codes = adapter.code(trained(images))
    assert _pixel_error(adapter, codes, images) < 0.3 * _random_baseline(adapter, images)
    after = model.state_dict()
    assert all(torch.equal(before[name], after[name]) for name in before)  # G, D and Q untouched (BN stats too)
    assert not any(p.requires_grad for p in model.parameters())


def test_own_encoder_is_used_by_default_for_families_that_have_one():
    model = bigan()
    adapter = adapter_for(model)
    _, images = _known(adapter, n=4)
    inverter = Inverter(adapter, "encoder", PIXELS)
    assert torch.allclose(inverter(images), model.encode(images)) and inverter.encoder is None


def test_infogan_code_is_noise_categorical_probabilities_continuous():
    adapter = adapter_for(infogan())
    z = adapter.sample_prior(6, torch.Generator().manual_seed(0))
    noise, categorical, continuous = adapter._split(z)
    assert z.shape[1] == adapter.latent_dim and torch.equal(categorical.sum(1), torch.ones(6))
    relaxed = adapter.code(adapter.free(z))
    _, probabilities, _ = adapter._split(relaxed)
    assert torch.equal(probabilities.argmax(1), categorical.argmax(1))
    assert torch.allclose(probabilities.sum(1), torch.ones(6)) and (probabilities < 1).all()  # not saturated
    # The category behind a generated image is found by optimising the logits through the softmax.
    truth, images = _known(adapter, n=8)
    codes = Inverter(adapter, "optimize", PIXELS, OptimizeSettings(steps=300, prior_weight=0.0))(images)
    found = adapter._split(codes)[1].argmax(1) == adapter._split(truth)[1].argmax(1)
    assert found.float().mean() >= 0.75
    assert _pixel_error(adapter, codes, images) < 0.1 * _random_baseline(adapter, images)


def test_progan_adapter_uses_the_ema_generator_at_the_checkpoints_phase(hydra_config, tmp_path):
    from hydra.utils import instantiate
    from omegaconf import open_dict

    cfg = hydra_config(["model=progan", "data=faces", "data.image_size=16", "model.latent_dim=6",
                        "model.generator.fmap_base=16", "model.generator.fmap_max=4",
                        "model.discriminator.fmap_base=16", "model.discriminator.fmap_max=4",
                        "model.growth.fade_images=10", "model.growth.stable_images=10"], output_dir=tmp_path)
    with open_dict(cfg):
        cfg.dataset = {"name": "faces", "kind": "image", "image_shape": [3, 16, 16], "num_classes": None}
    model = instantiate(cfg.model)
    model.images_seen.fill_(15)  # stage 1 (8×8), halfway through its fade-in
    adapter = adapter_for(model)
    assert adapter.image_shape == (3, 8, 8) and adapter.phase.alpha == pytest.approx(0.5)
    z = adapter.sample_prior(3, torch.Generator().manual_seed(0))
    assert torch.allclose(z.pow(2).mean(1), torch.ones(3))  # on G's sphere
    expected = model.generator_ema.module(z, 1, 0.5).clamp(-1, 1)
    assert torch.equal(adapter.decode(z), expected)
    assert adapter.discriminator_body() is None and new_encoder(adapter)(adapter.decode(z)).shape == (3, 6)


def test_a_family_without_an_unconditional_generator_is_refused_naming_the_supported_ones():
    class Conditioned(TwinAutoencoder):
        pass

    with pytest.raises(ConfigError, match=r"Conditioned is not one of the supported families \(VAEGAN, VAE, BiGAN"):
        adapter_for(Conditioned.__new__(Conditioned))
    with pytest.raises(ConfigError, match="method=nearest is not an inversion method; use one of encoder, optimize"):
        Inverter(adapter_for(bigan()), "nearest", PIXELS)


def test_inception_distance_is_zero_for_the_same_image_grows_with_noise_and_has_gradients(cache_dir):
    distance = InceptionDistance(size=80, cache_dir=cache_dir)
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    noise = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    small, large = distance((images + 0.1 * noise).clamp(-1, 1), images), distance((images + noise).clamp(-1, 1), images)
    assert torch.equal(distance(images, images), torch.zeros(2)) and (small > 0).all() and (large > small).all()
    gray = images[:, :1].clone().requires_grad_(True)  # one channel is repeated to RGB, as the FID path does
    distance(gray, images[:, :1] * 0.5).sum().backward()
    assert gray.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in distance.parameters())


# ----- the entry point ---------------------------------------------------------------------------------------------

#: A BiGAN on 16-px digits with narrow nets: a checkpoint in milliseconds.
TINY_BIGAN = ["model=bigan", "data=digits", "data.image_size=16", "model.latent_dim=6",
              "model.encoder.widths=[8,8,8]", "model.encoder.fc_dim=16", "model.decoder.widths=[16,8,8]",
              "model.discriminator.widths=[8,8,8]", "model.discriminator.z_dim=8", "model.discriminator.joint_dim=8"]


def tiny_checkpoint(hydra_config, tmp_path, layers=TINY_BIGAN, dataset=None):
    """A checkpoint of an untrained (batch-norm calibrated) model from the composed ``layers``, as a run writes it
    (config inside); returns (path, model)."""
    import pytorch_lightning as pl
    from hydra.utils import instantiate
    from omegaconf import OmegaConf, open_dict

    from src.callbacks.config_in_checkpoint import ConfigInCheckpoint

    cfg = hydra_config(layers, output_dir=tmp_path / "run")
    with open_dict(cfg):
        cfg.dataset = dataset or {"name": "digits", "kind": "image", "image_shape": [1, 16, 16], "num_classes": 10}
    torch.manual_seed(0)
    model = instantiate(cfg.model)
    calibrated(model, model.generator["decoder"])
    path = tmp_path / "model.ckpt"
    torch.save({ConfigInCheckpoint.KEY: OmegaConf.to_container(cfg, resolve=True), "state_dict": model.state_dict(),
                "pytorch-lightning_version": pl.__version__}, path)
    return path, model


def write_pngs(images: torch.Tensor, folder, names) -> None:
    for image, name in zip(images, names):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels = ((image + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
        Image.fromarray(pixels.squeeze(0).numpy() if pixels.shape[0] == 1 else pixels.permute(1, 2, 0).numpy()).save(path)


def run_module(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args, "device=cpu"], cwd=ROOT, capture_output=True,
                          text=True, timeout=180, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})


def test_invert_cli_writes_reconstructions_codes_and_pairs_and_recovers_the_images(hydra_config, tmp_path):
    ckpt, model = tiny_checkpoint(hydra_config, tmp_path)
    adapter = adapter_for(model)
    z, images = _known(adapter, n=3)
    names = ["a.png", "sub/b.png", "c.png"]
    write_pngs(images, tmp_path / "in", names)
    out = tmp_path / "out"
    done = run_module("src.invert", f"ckpt_path={ckpt}", f"images={tmp_path / 'in'}", "method=optimize",
                      "optimize.optimizer=lbfgs", "optimize.steps=60", "optimize.prior_weight=0",
                      "distance.feature_weight=0", "per_row=3", f"output_dir={out}", f"hydra.run.dir={tmp_path / 'log'}")
    assert done.returncode == 0, done.stderr
    saved = torch.load(out / "codes.pt", weights_only=True)
    order = [saved["names"].index(name) for name in names]
    assert sorted(saved["names"]) == sorted(names) and saved["codes"].shape == (3, 6)
    written = sorted(p.relative_to(out / "reconstructions").as_posix() for p in (out / "reconstructions").rglob("*.png"))
    assert written == sorted(names)
    # The PNGs were quantised to 8 bits; the codes still give back those images, far closer than random codes do.
    read = torch.stack([torch.from_numpy(__import__("numpy").array(Image.open(tmp_path / "in" / n))).float()[None]
                        / 127.5 - 1 for n in names])
    recovered = _pixel_error(adapter, saved["codes"][order], read)
    assert recovered < 1e-3 < _random_baseline(adapter, read) / 10
    with Image.open(out / "pairs.png") as grid:  # one row of 3 input | reconstruction pairs of 16 px, 2 px padding
        assert grid.size == (6 * 18 + 2, 18 + 2)

    own = run_module("src.invert", f"ckpt_path={ckpt}", f"images={tmp_path / 'in'}", "method=encoder",
                     f"output_dir={tmp_path / 'own'}", f"hydra.run.dir={tmp_path / 'log2'}")
    assert own.returncode == 0, own.stderr
    codes = torch.load(tmp_path / "own" / "codes.pt", weights_only=True)["codes"]
    order = [torch.load(tmp_path / "own" / "codes.pt", weights_only=True)["names"].index(n) for n in names]
    assert torch.allclose(codes[order], model.encode(read), atol=1e-5)  # BiGAN's own E, not a new one
    assert not (tmp_path / "own" / "encoder.pt").exists()


@pytest.mark.parametrize("case, message", [
    ("missing_ckpt", "nope.ckpt does not exist"),
    ("empty_folder", "holds no images"),
    ("unknown_method", "method=nearest is not an inversion method; use one of encoder, optimize, hybrid"),
])
def test_invert_cli_bad_input_is_one_line_without_traceback(case, message, hydra_config, tmp_path):
    ckpt, _ = tiny_checkpoint(hydra_config, tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    folder = tmp_path / "in"
    write_pngs(torch.zeros(1, 1, 16, 16), folder, ["x.png"])
    args = {"missing_ckpt": [f"ckpt_path={tmp_path / 'nope.ckpt'}", f"images={folder}"],
            "empty_folder": [f"ckpt_path={ckpt}", f"images={empty}"],
            "unknown_method": [f"ckpt_path={ckpt}", f"images={folder}", "method=nearest"]}[case]
    done = run_module("src.invert", *args, f"hydra.run.dir={tmp_path / 'log'}")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], done.stderr


def test_invert_config_composes_and_its_settings_are_checked(hydra_config, tmp_path):
    from src.utils.config_check import check_config

    cfg = hydra_config(["ckpt_path=some.ckpt", "images=in", f"output_dir={tmp_path}"], config_name="invert")
    check_config(cfg)
    assert (cfg.method, cfg.optimize.optimizer, cfg.encoder.use_own) == ("hybrid", "adam", True)
    bad = hydra_config(["ckpt_path=some.ckpt", "images=in", f"output_dir={tmp_path}", "distance.feature_size=32",
                        "optimize.optimizer=sgd"], config_name="invert")
    with pytest.raises(ConfigError, match=r"distance.feature_size=32"):
        check_config(bad)
