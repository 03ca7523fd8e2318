"""ProGAN and T2F: the growing nets' units (equalized lr, pixel norm, minibatch stddev, fades), the gradient penalty's
per-sample norm, the growth schedule, the text side, and short end-to-end runs (resume mid-fade, ddp_cpu, sampling)."""
from __future__ import annotations

import functools
import math
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from conftest import ROOT, SINGLE_THREAD, cli_env, overrides, run_src
from fault_helpers import assert_ranks_drew_their_own, probe_layer

from src.data.text import Vocabulary
from src.metrics.ms_ssim import ms_ssim_settings, pairwise_ms_ssim
from src.models.growing import GrowthSchedule
from src.models.progan import slerp
from src.nets.losses import WGANGP, NonSaturating, gaussian_kl, gradient_penalty
from src.nets.progan import (EqualizedConv2d, EqualizedLinear, ProGANDiscriminator, ProGANGenerator, downsample,
                             feature_maps, minibatch_stddev, pixel_norm, real_at, upsample)
from src.nets.t2f import TextToImageGenerator
from src.nets.text_encoder import ConditioningAugmentation, TextEncoder
from src.utils.errors import ConfigError

TINY_NETS = {"fmap_base": 32, "fmap_max": 8}


# ----- units ----------------------------------------------------------------------------------------------

def test_equalized_layers_scale_unit_normal_weights_by_gain_over_root_fan_in():
    conv = EqualizedConv2d(6, 4, 3)
    assert conv.scale == pytest.approx(math.sqrt(2) / math.sqrt(6 * 9))
    x = torch.randn(2, 6, 5, 5)
    assert torch.allclose(conv(x), F.conv2d(x, conv.weight * conv.scale, conv.bias, padding=1), atol=1e-6)
    dense = EqualizedLinear(100, 3000, gain=1.0)
    assert dense.scale == pytest.approx(0.1)
    assert dense.weight.std().item() == pytest.approx(1.0, abs=0.02)  # stored N(0, 1): the scale is applied at run time
    assert (dense(torch.randn(64, 100)) - dense.bias).std().item() == pytest.approx(1.0, abs=0.05)


def test_pixel_norm_gives_unit_rms_per_pixel_and_latents_on_the_sphere():
    x = torch.randn(3, 7, 4, 4) * 5
    assert torch.allclose(pixel_norm(x).pow(2).mean(1), torch.ones(3, 4, 4), atol=1e-4)
    z = pixel_norm(torch.randn(5, 16) * 3)
    assert torch.allclose(z.norm(dim=1), torch.full((5,), 4.0), atol=1e-4)


def test_minibatch_stddev_is_the_groups_mean_feature_std():
    x = torch.randn(8, 3, 2, 2)
    out = minibatch_stddev(x, group_size=4)
    assert out.shape == (8, 4, 2, 2) and torch.equal(out[:, :3], x)
    for n in range(8):  # groups are samples n ≡ m (mod 2)
        group = x[n % 2::2]
        expected = group.std(dim=0, unbiased=False).mean()
        assert torch.allclose(out[n, 3], expected.expand(2, 2), atol=1e-4)
    # A group of identical samples has (almost) zero spread; a batch of 6 uses groups of 3.
    same = torch.randn(1, 3, 2, 2).repeat(6, 1, 1, 1)
    assert minibatch_stddev(same, 4)[:, 3].max() < 1e-3


def test_feature_maps_follow_fmap_base_over_two_to_the_stage():
    assert [feature_maps(s, 8192, 512) for s in (1, 4, 5, 6, 8)] == [512, 512, 256, 128, 32]
    assert ProGANGenerator(8, 64, **{"fmap_base": 256, "fmap_max": 64}).widths == [64, 64, 32, 16, 8]


@pytest.mark.parametrize("depth", range(4))
def test_shapes_at_every_stage_and_fade(depth):
    g, d = ProGANGenerator(8, 32, 3, **TINY_NETS), ProGANDiscriminator(32, 3, **TINY_NETS)
    for alpha in (0.0, 0.5, 1.0):
        images = g(torch.randn(4, 8), depth, alpha)
        assert images.shape == (4, 3, 4 << depth, 4 << depth)
        assert d(images, depth, alpha).shape == (4,)


def test_fade_in_is_the_lerp_of_the_old_and_new_outputs():
    g = ProGANGenerator(8, 16, 3, **TINY_NETS)
    z = torch.randn(4, 8)
    old = upsample(g(z, 1, 1.0))
    new = g(z, 2, 1.0)
    assert torch.allclose(g(z, 2, 0.0), old, atol=1e-5)
    assert torch.allclose(g(z, 2, 0.3), torch.lerp(old, new, 0.3), atol=1e-5)
    d = ProGANDiscriminator(16, 3, **TINY_NETS)
    x = torch.randn(4, 3, 16, 16)
    # At α = 0 D sees only the pooled image through the previous stage's fromRGB.
    assert torch.allclose(d(x, 2, 0.0), d(downsample(x), 1, 1.0), atol=1e-5)


def test_real_images_are_pooled_and_blended_like_the_fakes():
    x = torch.randn(2, 3, 32, 32)
    x8 = F.avg_pool2d(x, 4)
    assert torch.allclose(real_at(x, 8, 1.0), x8)
    coarse = F.interpolate(F.avg_pool2d(x8, 2), scale_factor=2, mode="nearest")
    assert torch.allclose(real_at(x, 8, 0.25), 0.75 * coarse + 0.25 * x8, atol=1e-6)


def test_discriminator_takes_the_text_condition_in_its_last_block():
    d = ProGANDiscriminator(16, 3, condition_dim=5, compressed_dim=4, **TINY_NETS)
    x, text = torch.randn(4, 3, 16, 16), torch.randn(4, 5)
    assert not torch.allclose(d(x, 2, 1.0, text), d(x, 2, 1.0, torch.randn(4, 5)))
    with pytest.raises(ValueError, match="needs a condition"):
        d(x, 2, 1.0)


def test_discriminator_can_take_the_condition_at_a_larger_block_too():
    # condition_resolutions (4, 8): the compressed text also tiled onto the 8×8 block's input (its first conv
    # widens by compressed_dim), at every depth and through a fade.
    d = ProGANDiscriminator(16, 3, condition_dim=5, compressed_dim=4, condition_resolutions=(4, 8), **TINY_NETS)
    assert d.blocks[0][0].weight.shape[1] == d.widths[1] + 4 and d.blocks[1][0].weight.shape[1] == d.widths[2]
    text = torch.randn(4, 5)
    for depth, side in ((0, 4), (1, 8), (2, 16)):
        x = torch.randn(4, 3, side, side)
        assert d(x, depth, 0.5, text).shape == (4,)
    # Only at 8×8: the final block's conv takes no condition, and the score still depends on the text there.
    only8 = ProGANDiscriminator(16, 3, condition_dim=5, compressed_dim=4, condition_resolutions=(8,), **TINY_NETS)
    assert only8.final[0].weight.shape[1] == only8.widths[0] + 1
    x = torch.randn(4, 3, 16, 16)
    assert not torch.allclose(only8(x, 2, 1.0, text), only8(x, 2, 1.0, torch.randn(4, 5)))
    with pytest.raises(ConfigError, match="condition_resolutions"):
        ProGANDiscriminator(16, 3, condition_dim=5, condition_resolutions=(32,), **TINY_NETS)


def test_projection_term_adds_the_inner_product_of_the_condition_and_ds_features():
    torch.manual_seed(0)
    plain = ProGANDiscriminator(8, 3, condition_dim=5, compressed_dim=4, **TINY_NETS)
    projected = ProGANDiscriminator(8, 3, condition_dim=5, compressed_dim=4, projection=True, **TINY_NETS)
    projected.load_state_dict(plain.state_dict(), strict=False)
    x, text = torch.randn(4, 3, 8, 8), torch.randn(4, 5)
    features = plain.final[:-1](torch.cat([minibatch_stddev(plain.blocks[0](plain.from_rgb[1](x))),
                                           F.leaky_relu(plain.compress(text), 0.2)[:, :, None, None]
                                           .expand(-1, -1, 4, 4)], dim=1))
    expected = plain(x, 1, 1.0, text) + (projected.project(text) * features).sum(1)
    assert torch.allclose(projected(x, 1, 1.0, text), expected, atol=1e-5)
    projected(x, 1, 1.0, text).sum().backward()
    assert projected.project.weight.grad.abs().sum() > 0


def test_gradient_penalty_takes_each_samples_norm_over_c_h_w():
    # A linear critic D(x) = <w, x>: every sample's gradient is w, so the penalty is (‖w‖ − 1)² exactly. Norms over
    # channels only (the T2F reference) would give a per-pixel mean of (‖w_ij‖ − 1)² instead.
    w = torch.randn(3, 4, 4)
    critic = lambda x: (x * w).flatten(1).sum(1)  # noqa: E731
    real, fake = torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4)
    assert torch.allclose(gradient_penalty(critic, real, fake), (w.norm() - 1) ** 2, rtol=1e-5)
    channels_only = (w.norm(dim=0) - 1).pow(2).mean()
    assert not torch.allclose(gradient_penalty(critic, real, fake), channels_only, rtol=1e-2)
    # Per sample, not over the batch: a critic whose gradient differs by sample (D(x) = ½‖x‖², ∇ = x̂).
    quadratic = lambda x: 0.5 * x.pow(2).flatten(1).sum(1)  # noqa: E731
    same = torch.randn(4, 3, 4, 4)
    expected = (same.flatten(1).norm(dim=1) - 1).pow(2).mean()
    assert torch.allclose(gradient_penalty(quadratic, same, same), expected, rtol=1e-5)


def test_losses_terms():
    scores = torch.tensor([1.0, -3.0])
    wgan = WGANGP(gp_lambda=10, drift=0.001)
    assert wgan.real_term(scores).item() == pytest.approx(1.0 + 0.001 * 5.0)
    assert wgan.fake_term(scores).item() == pytest.approx(-1.0)
    assert wgan.generator_loss(scores).item() == pytest.approx(1.0)
    ns = NonSaturating()
    assert ns.fake_term(scores).item() == pytest.approx(F.softplus(scores).mean().item())
    assert ns.penalty(None, scores, scores).item() == 0.0


def test_growth_schedule_alpha_is_linear_in_images_and_stage_0_has_no_fade():
    g = GrowthSchedule(16, fade_images=[0, 10, 20], stable_images=[5, 5, 5], batch_size=[2, 4, 8])
    assert g.starts == [0, 5, 20] and g.total_images == 45
    phases = {n: g.at(n) for n in (0, 4, 5, 10, 14, 15, 20, 25, 40, 10**9)}
    assert [(p.resolution, p.alpha, p.fading, p.batch_size) for p in phases.values()] == [
        (4, 1.0, False, 2), (4, 1.0, False, 2), (8, 0.0, True, 4), (8, 0.5, True, 4), (8, 0.9, True, 4),
        (8, 1.0, False, 4), (16, 0.0, True, 8), (16, 0.25, True, 8), (16, 1.0, False, 8), (16, 1.0, False, 8)]
    fixed = GrowthSchedule(16, 10, 10, 4, start_resolution=16)
    assert fixed.at(0) == fixed.at(10**6) and fixed.at(0).resolution == 16 and fixed.at(0).alpha == 1.0


def test_growth_schedule_refuses_bad_settings_naming_the_keys():
    with pytest.raises(ConfigError, match="model.growth.batch_size=.*list of 3"):
        GrowthSchedule(16, batch_size=[4, 4])
    with pytest.raises(ConfigError, match="power of 2"):
        GrowthSchedule(24)
    with pytest.raises(ConfigError, match=r"do not divide data.batch_size=12"):
        GrowthSchedule(16, batch_size=[4, 4, 8]).check_loader_batch(12)


def test_ms_ssim_is_one_for_identical_pairs_and_defined_at_every_stage():
    assert ms_ssim_settings(256)[0] == 11 and len(ms_ssim_settings(256)[1]) == 5
    for side in (4, 8, 16, 32, 64):
        a = torch.rand(4, 3, side, side) * 2 - 1
        window, betas = ms_ssim_settings(side)
        assert sum(betas) == pytest.approx(1.0) and len(betas) >= 2
        assert pairwise_ms_ssim(a, a) == pytest.approx(1.0, abs=1e-4)
        assert pairwise_ms_ssim(a, torch.rand(4, 3, side, side) * 2 - 1) < 0.5


def test_slerp_stays_on_the_sphere_between_its_ends():
    a, b = torch.randn(3, 16), torch.randn(3, 16)
    path = slerp(a, b, torch.linspace(0, 1, 5))
    assert torch.allclose(path.norm(dim=2), torch.full((3, 5), 4.0), atol=1e-4)
    assert torch.allclose(path[:, 0], pixel_norm(a), atol=1e-4) and torch.allclose(path[:, -1], pixel_norm(b), atol=1e-4)


# ----- the text side ---------------------------------------------------------------------------------------

def test_text_encoder_ignores_padding_and_reads_up_to_each_length():
    vocabulary = Vocabulary.build(["a smiling man with red hair", "a woman"])
    encoder = TextEncoder(len(vocabulary), embedding_dim=4, hidden_size=6, num_layers=2).eval()
    short, n_short = vocabulary.encode("a woman", 8)
    long, n_long = vocabulary.encode("a smiling man with red hair", 8)
    assert n_short.item() == 2 and short[2:].eq(0).all()
    both = encoder(torch.stack([short, long]), torch.stack([n_short, n_long]))
    alone = encoder(short[None, :2], n_short[None])
    assert both.shape == (2, 6) and torch.allclose(both[0], alone[0], atol=1e-6)  # padding changes nothing
    tokens, length = vocabulary.encode("a zorgish man", 8)
    assert tokens[1].item() == vocabulary.unk_id and vocabulary.unknown_words("a zorgish man") == ["zorgish"]


def test_normalized_text_encoder_keeps_captions_apart_however_close_the_lstm_puts_them():
    # The LSTM's gates saturated so that every caption ends in nearly the same state (the spread across captions a
    # few per cent of the size, as training drove it on the faces, where it fell to 1%): standardised over the batch,
    # the captions are ~unit-variance apart (BatchNorm's eps keeps it a little under 1), and a single caption encodes.
    torch.manual_seed(0)
    encoder = TextEncoder(10, 4, 6, 1, normalize=True)
    with torch.no_grad():
        encoder.lstm.bias_ih_l0.fill_(3.0)
        encoder.lstm.weight_ih_l0.mul_(0.5)
    tokens, lengths = torch.randint(2, 10, (8, 5)), torch.full((8,), 5)
    raw = TextEncoder(10, 4, 6, 1)
    raw.load_state_dict({k: v for k, v in encoder.state_dict().items() if not k.startswith("norm.")})
    raw_phi = raw(tokens, lengths)
    assert (raw_phi.std(0) / raw_phi.abs().mean(0)).max() < 0.05 and raw_phi.std(0).max() < 0.03
    phi = encoder(tokens, lengths)
    assert phi.std(0, unbiased=False).min() > 0.7 and phi.std(0, unbiased=False).max() <= 1.0
    assert encoder(tokens[:1], lengths[:1]).shape == (1, 6)
    assert encoder.eval()(tokens, lengths).shape == (8, 6)


def test_kl_term_trains_the_text_encoder_and_the_conditioning():
    encoder, augmentation = TextEncoder(10, 4, 6, 1), ConditioningAugmentation(6, 3)
    tokens, lengths = torch.randint(2, 10, (5, 7)), torch.tensor([7, 3, 1, 5, 2])
    _, mu, log_var = augmentation(encoder(tokens, lengths))
    kl = gaussian_kl(mu, log_var)
    expected = torch.distributions.kl_divergence(torch.distributions.Normal(mu, (0.5 * log_var).exp()),
                                                 torch.distributions.Normal(0.0, 1.0)).sum(1).mean()
    assert torch.allclose(kl, expected, atol=1e-5)
    kl.backward()
    assert encoder.embedding.weight.grad.abs().sum() > 0 and encoder.lstm.weight_ih_l0.grad.abs().sum() > 0
    assert augmentation.linear.weight.grad.abs().sum() > 0


def test_text_to_image_generator_chains_the_sizes():
    image = ProGANGenerator(9, 16, 3, **TINY_NETS)
    net = TextToImageGenerator(TextEncoder(10, 4, 6, 1), ConditioningAugmentation(6, 5), image)
    assert net.noise_dim == 4
    out = net(torch.randint(2, 10, (3, 4)), torch.tensor([4, 2, 1]), torch.randn(3, 4), 1, 0.5)
    assert out.images.shape == (3, 3, 8, 8) and out.embedding.shape == (3, 6) and out.mu.shape == (3, 5)
    with pytest.raises(ConfigError, match="do not chain"):
        TextToImageGenerator(TextEncoder(10, 4, 6, 1), ConditioningAugmentation(6, 12), image)


def _tiny_t2f(**kwargs):
    from src.models.t2f import T2F

    generator = TextToImageGenerator(TextEncoder(10, 4, 6, 1), ConditioningAugmentation(6, 5),
                                     ProGANGenerator(9, 8, 3, **TINY_NETS))
    return T2F(generator, ProGANDiscriminator(8, 3, condition_dim=6, compressed_dim=4, **TINY_NETS),
               functools.partial(torch.optim.Adam), functools.partial(torch.optim.Adam), GrowthSchedule(8),
               WGANGP(), latent_dim=9, vocabulary=["<pad>", "<unk>"], text_acc=False, **kwargs)


@pytest.mark.parametrize("trained_by", ["discriminator", "generator"])
def test_t2f_text_encoder_learns_only_from_the_loss_it_is_assigned(trained_by):
    # "discriminator": D's loss (its matching-aware term) trains the encoder, and neither L_G nor the KL reaches it
    # (under the KL, the paper's route shrank φ to ~3e-4 on the faces and D never read the text); "generator": the
    # paper's route, the reverse.
    model = _tiny_t2f(text_encoder_loss=trained_by)
    encoder = model.generator.text_encoder
    groups = {name: {id(p) for group in opt.param_groups for p in group["params"]}
              for name, opt in model.build_optimizers().items()}
    assert all((id(p) in groups["d"]) == (trained_by == "discriminator") != (id(p) in groups["g"])
               for p in encoder.parameters())
    tokens, lengths = torch.randint(2, 10, (4, 5)), torch.tensor([5, 3, 1, 2])
    phase, real = model.growth.at(0), torch.randn(4, 3, 4, 4)

    def reaches_encoder(loss_of) -> bool:
        encoder.zero_grad(set_to_none=True)
        fake, extras = model.make_fakes(model.sample_inputs({"tokens": tokens, "length": lengths}), phase,
                                        model.generator)
        loss_of(fake, extras).backward()
        return any(p.grad is not None and p.grad.abs().sum() > 0 for p in encoder.parameters())

    def loss_d(fake, extras):
        real_scores = model.critic(real, phase, extras)
        mismatch = model.extra_d_loss(real, real_scores, phase, extras)["mismatch"]
        return -real_scores.mean() + model.critic(fake.detach(), phase, extras).mean() + mismatch

    by_d = trained_by == "discriminator"
    assert reaches_encoder(loss_d) == by_d
    assert reaches_encoder(lambda fake, extras: -model.critic(fake, phase, extras, for_generator=True).mean()) != by_d
    assert reaches_encoder(lambda fake, extras: sum(model.extra_g_loss(extras).values())) != by_d


def test_t2f_matching_aware_term_shares_the_fakes_weight():
    # L_D = −D(x, φ) + (1 − w)·D(G, φ) + w·D(x, φ̃): lowering every score by b leaves it unchanged (but for the
    # drift), where the reference's 1 + 1 let it fall by b, and D's scores sank to −1/(2·drift) = −500.
    model = _tiny_t2f(mismatch_weight=0.25)
    assert model.fake_weight() == 0.75
    _, extras = model.make_fakes(model.sample_inputs({"tokens": torch.randint(2, 10, (4, 5)),
                                                      "length": torch.tensor([5, 3, 1, 2])}), model.growth.at(0),
                                 model.generator)
    real = torch.randn(4, 3, 4, 4)
    real_scores = model.critic(real, model.growth.at(0), extras)
    mismatch = model.extra_d_loss(real, real_scores, model.growth.at(0), extras)["mismatch"]
    expected = 0.25 * model.discriminator(real, 0, 1.0, extras["embedding"].roll(1, dims=0)).mean()
    assert torch.allclose(mismatch, expected)
    assert model._text_margin is not None
    with pytest.raises(ConfigError, match="mismatch_weight=1.5"):
        _tiny_t2f(mismatch_weight=1.5)


def test_t2f_nearest_mismatch_takes_the_closest_other_caption_and_skips_identical_ones():
    model = _tiny_t2f(mismatch="nearest")
    text = torch.tensor([[0.0, 0.0], [0.0, 0.1], [5.0, 5.0], [5.0, 5.0], [9.0, 0.0]])
    # 0 ↔ 1 are nearest; 2 and 3 hold the same caption (not a mismatch), so each takes the nearest other one, 4
    # (distance 6.4, against 7.0 to 1); 4's nearest is 2 (6.4, against 9.0 to 1).
    assert model.mismatch_index(text).tolist() == [1, 0, 4, 4, 2]
    assert model.mismatch_index(torch.ones(3, 2)).tolist() == [2, 0, 1]  # all identical: the previous item's
    assert _tiny_t2f().mismatch_index(text).tolist() == [4, 0, 1, 2, 3]


# ----- end to end ----------------------------------------------------------------------------------------------

#: A tiny ProGAN/T2F run on 16 faces of 32 px: 2 batches of 8 per epoch, stages 4 → 32 px in 4 + (4 + 4)·3 images.
TINY_GROWING = {
    "trainer": "cpu", "trainer.max_epochs": "1", "+trainer.limit_train_batches": "2", "logger": "csv",
    "+trainer.limit_val_batches": "0", "trainer.check_val_every_n_epoch": "1",
    "data.image_size": "32", "data.train_size": "16", "data.val_size": "4", "data.test_size": "4",
    "data.batch_size": "8", "model.growth.fade_images": "8", "model.growth.stable_images": "4",
    "model.growth.batch_size": "4", "model.latent_dim": "10",
    "model.generator.fmap_base": "32", "model.generator.fmap_max": "8",
    "model.discriminator.fmap_base": "32", "model.discriminator.fmap_max": "8",
    "model.ms_ssim_pairs": "4", "model.grid_rows": "2", "model.grid_columns": "3",
    "metrics.num_fake_cpu": "8", "metrics.num_real_cpu": "8", "metrics.kid_subset_size": "8",
    "metrics.kid_subsets": "2",
}
T2F_NETS = {
    "model": "t2f", "model.generator.fmap_base": None, "model.generator.fmap_max": None,
    "model.generator.image.fmap_base": "32", "model.generator.image.fmap_max": "8",
    "model.generator.text_encoder.embedding_dim": "8", "model.generator.text_encoder.hidden_size": "8",
    "model.generator.text_encoder.num_layers": "1", "model.generator.augmentation.output_dim": "6",
    "model.discriminator.compressed_dim": "4", "model.judge": "{epochs:1,batch_size:64,base_width:4,max_width:8}",
}
VALIDATE = {"+trainer.limit_val_batches": "1"}


def _layers(*layers: dict) -> list[str]:
    merged = overrides(TINY_GROWING, *[{k: v for k, v in layer.items() if v is not None} for layer in layers])
    dropped = {k for layer in layers for k, v in layer.items() if v is None}
    return [item for item in merged if item.split("=", 1)[0] not in dropped]


@pytest.fixture
def grow(tmp_path, cache_dir, run_env):
    def run(*layers: dict, run_dir=None):
        return run_src(_layers({"model": "progan"}, *layers), run_dir=run_dir or tmp_path / "run",
                       cache_dir=cache_dir, env=run_env, tiny=False)
    return run


@pytest.fixture
def grow_in_process(tmp_path, cache_dir, hydra_config, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("WANDB_MODE", "WANDB_API_KEY", "GANZOO_CACHE"):
        monkeypatch.delenv(name, raising=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)

    def run(*layers: dict, output_dir):
        from src.run import train

        cfg = hydra_config(_layers({"model": "progan", "paths.cache_dir": str(cache_dir)}, *layers),
                           output_dir=output_dir)
        return train(cfg)

    yield run
    torch.set_num_threads(threads)


def test_progan_resumes_mid_fade_at_the_same_stage_alpha_and_weights(grow_in_process, tmp_path):
    # Stage 0 takes 4 images, stage 1 fades in over the next 16: the checkpoint after epoch 1 (16 images) is mid-fade.
    fade = {"model.growth.fade_images": "16"}
    _, first = grow_in_process(fade, output_dir=tmp_path / "first")
    phase = first["model"].phase
    assert int(first["model"].images_seen) == 16
    assert (phase.stage, phase.fading, phase.alpha) == (1, True, 0.75)
    ckpt = tmp_path / "first" / "checkpoints" / "last.ckpt"
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    assert int(state["state_dict"]["images_seen"]) == 16
    assert state["state_dict"]["trained_phase"].tolist() == [1, 1]
    _, resumed = grow_in_process(fade, {"ckpt_path": str(ckpt), "trainer.max_epochs": "2"},
                                 output_dir=tmp_path / "resumed")
    _, straight = grow_in_process(fade, {"trainer.max_epochs": "2"}, output_dir=tmp_path / "straight")
    a, b = resumed["model"], straight["model"]
    assert int(a.images_seen) == int(b.images_seen) == 32
    assert a.phase == b.phase and (a.phase.stage, a.phase.alpha) == (2, 0.5)  # stage 2 began at 4 + 16 + 4
    assert torch.equal(a.trained_phase, b.trained_phase)
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name  # the same weights, EMA and optimizer phase, bit for bit


def test_progan_ema_steps_after_every_generator_step_not_every_loader_batch(grow_in_process, tmp_path):
    # 2 loader batches of 8, each cut into 2 slices of 4: 4 G steps. The EMA's 0.999 is the paper's decay per
    # minibatch (G step); stepped once per loader batch, it lagged the 6k-image phases of the faces recipe so far
    # that the evaluation generator drew noise while the trained one drew faces.
    _, result = grow_in_process(output_dir=tmp_path / "run")
    model = result["model"]
    assert int(model.images_seen) == 16
    assert int(model.generator_ema.n_averaged) == 16 // 4


def _sample(run_dir, tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "src.sample", f"ckpt_path={run_dir}/checkpoints/last.ckpt",
                           f"output_dir={tmp_path / 'drawn'}", *args], cwd=ROOT, env=cli_env(tmp_path / "home"),
                          capture_output=True, text=True)


def test_progan_under_ddp_cpu_validates_its_stream_ms_ssim_and_grids_then_samples(grow, tmp_path, fault_env):
    result = grow(VALIDATE, {"trainer": "ddp_cpu"}, probe_layer(tmp_path))
    assert result.returncode == 0, str(result)
    assert_ranks_drew_their_own(tmp_path / "draws", "z")
    for name in ("val/fid/samples", "val/ms_ssim", "val/ms_ssim_real", "val/resolution"):
        assert name in result.output, name
    state = torch.load(result.run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert int(state["state_dict"]["images_seen"]) == 16  # each rank: 1 batch of 8 (its half of 16 faces)
    assert (result.run_dir / "samples" / "interpolation_last.png").is_file()
    sample = _sample(result.run_dir, tmp_path, "num_samples=4")
    assert sample.returncode == 0, sample.stderr[-3000:]
    assert {p.name for p in (tmp_path / "drawn").iterdir()} >= {"samples.png", "interpolation.png"}


def test_progan_refuses_a_stage_batch_that_does_not_divide_the_loader_batch(grow_in_process, tmp_path):
    with pytest.raises(ConfigError, match="do not divide data.batch_size=8"):
        grow_in_process({"model.growth.batch_size": "3"}, output_dir=tmp_path / "run")


def test_t2f_under_ddp_cpu_validates_text_acc_then_samples_typed_captions(grow, tmp_path, fault_env):
    result = grow(T2F_NETS, VALIDATE, {"trainer": "ddp_cpu"}, probe_layer(tmp_path))
    assert result.returncode == 0, str(result)
    assert_ranks_drew_their_own(tmp_path / "draws", "noise")
    for name in ("val/fid/captions", "val/text_acc", "val/text_acc/gender", "train/kl", "train/mismatch"):
        assert name in result.output, name
    assert (result.run_dir / "samples" / "caption_rows_last.png").is_file()
    sample = _sample(result.run_dir, tmp_path, "per_caption=3",
                     'captions=["a smiling man with short red hair", "a zorgish woman"]')
    assert sample.returncode == 0, sample.stderr[-3000:]
    assert "zorgish" in sample.stderr and (tmp_path / "drawn" / "typed_captions.png").is_file()
