"""VAE-GAN, VAE, BiGAN and the twin autoencoder: net shapes, the losses, who updates what (checked on the gradients
each optimizer actually receives in a real training step, against gradients computed independently), the streams,
grids and metrics of the autoencoding base, and a few steps of each model through ``src.run`` (DDP included)."""
from __future__ import annotations

import copy
import functools
import math

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from conftest import NO_VALIDATION, TINY
from fault_helpers import assert_ranks_drew_their_own, probe_layer
from test_infogan import _changed, _Images, _params, _trainer
from torch.utils.data import DataLoader

from src.models.autoencoding import leave_one_out_1nn_accuracy
from src.models.base import RealSet
from src.models.bigan import BiGAN, TwinAutoencoder
from src.models.vae import VAE
from src.models.vaegan import DISCRIMINATOR_MODES, PRIOR, REAL, RECONSTRUCTION, VAEGAN
from src.nets.bigan import JointDiscriminator
from src.nets.conv import ConvDecoder, ConvEncoder, conv_block
from src.nets.losses import bce_fake, bce_real, cross_entropy_to, fixed_gaussian_nll, kl_to_standard_normal
from src.nets.vaegan import GaussianEncoder, VAEGANDiscriminator
from src.utils.errors import ConfigError

LATENT = 4
RGB, GRAY = (3, 16, 16), (1, 16, 16)
RMSPROP = functools.partial(torch.optim.RMSprop, lr=3e-4)
ADAM = functools.partial(torch.optim.Adam, lr=2e-4, betas=(0.5, 0.999))


# ----- builders -------------------------------------------------------------------------------------------------

def _gaussian_nets(shape=RGB):
    return GaussianEncoder(LATENT, shape, widths=(4, 8, 8), fc_dim=8), ConvDecoder(LATENT, shape, widths=(8, 4, 4))


def _vaegan(mode="binary", gamma=0.5, **gating) -> VAEGAN:
    torch.manual_seed(0)
    encoder, decoder = _gaussian_nets()
    discriminator = functools.partial(VAEGANDiscriminator, RGB, widths=(4, 4, 8, 8), fc_dim=8)
    return VAEGAN(encoder, decoder, discriminator, RMSPROP, RMSPROP, RMSPROP, latent_dim=LATENT, gamma=gamma,
                  discriminator_mode=mode, grid_columns=3, **gating)


def _vae(pixel_sigma=0.5) -> VAE:
    torch.manual_seed(0)
    return VAE(*_gaussian_nets(), optimizer_g=RMSPROP, latent_dim=LATENT, pixel_sigma=pixel_sigma, grid_columns=3)


def _uniform_nets():
    encoder = ConvEncoder(GRAY, LATENT, widths=(4, 8, 8), fc_dim=8, act="lrelu", first_norm=False)
    return encoder, ConvDecoder(LATENT, GRAY, widths=(8, 4, 4))


def _bigan() -> BiGAN:
    torch.manual_seed(0)
    discriminator = JointDiscriminator(LATENT, GRAY, widths=(4, 8, 8), z_dim=8, joint_dim=8, dropout=0.0)
    return BiGAN(*_uniform_nets(), discriminator, ADAM, ADAM, latent_dim=LATENT, grid_columns=3)


def _twin_ae(latent_weight=0.5) -> TwinAutoencoder:
    torch.manual_seed(0)
    return TwinAutoencoder(*_uniform_nets(), ADAM, latent_dim=LATENT, latent_weight=latent_weight, grid_columns=3)


# ----- nets -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kernel", [3, 5])
def test_conv_block_halves_and_transposed_block_doubles_the_side(kernel):
    x = torch.rand(2, 3, 12, 12)
    assert conv_block(3, 5, kernel, 2)(x).shape == (2, 5, 6, 6)
    assert conv_block(3, 5, kernel, 1, norm=False)(x).shape == (2, 5, 12, 12)
    assert conv_block(3, 5, kernel, 2, transpose=True)(x).shape == (2, 5, 24, 24)


@pytest.mark.parametrize("side", [32, 64])
def test_vaegan_nets_at_the_papers_widths(side):
    shape = (3, side, side)
    encoder, decoder = GaussianEncoder(128, shape), ConvDecoder(128, shape)
    mu, log_var = encoder(torch.rand(2, *shape) * 2 - 1)
    assert mu.shape == log_var.shape == (2, 128)
    images = decoder(mu)
    assert images.shape == (2, *shape) and images.min() >= -1 and images.max() <= 1
    assert decoder.fc[0].out_features == 256 * (side // 8) ** 2  # FC 8·8·256 at 64 px
    for n_classes, logits_shape in ((1, (2,)), (3, (2, 3))):
        discriminator = VAEGANDiscriminator(shape, n_classes=n_classes)
        logits, features = discriminator(images)
        assert logits.shape == logits_shape and features.shape == (2, 256, side // 8, side // 8)
    # Dis_l is the 4th conv's raw output: the head starts with that conv's batch norm.
    assert isinstance(discriminator.features[-1], torch.nn.Conv2d) and discriminator.features[-1].stride == (2, 2)
    assert isinstance(discriminator.head[0], torch.nn.BatchNorm2d)
    assert discriminator.features[0][0].stride == (1, 1)  # the first conv keeps the side


def test_vaegan_similarity_layer_takes_an_earlier_conv_before_its_batch_norm():
    shape, widths = (3, 32, 32), (4, 8, 12, 16)
    discriminator = VAEGANDiscriminator(shape, widths=widths, fc_dim=8, similarity_layer=3).eval()
    images = torch.rand(2, *shape) * 2 - 1
    logits, features = discriminator(images)
    assert logits.shape == (2,) and features.shape == (2, 12, 8, 8)  # the 3rd conv: 12 channels at S/4
    # The features are the bare 3rd conv's output (two conv blocks, then the conv without its BN and ReLU).
    assert len(discriminator.features) == 3 and isinstance(discriminator.features[-1], torch.nn.Conv2d)
    assert (features < 0).any()  # no ReLU after it
    assert isinstance(discriminator.head[0], torch.nn.BatchNorm2d) and discriminator.head[0].num_features == 12
    # Only where Dis_l is read moves: the same layers and parameters as the paper's layout.
    paper = VAEGANDiscriminator(shape, widths=widths, fc_dim=8)
    assert [p.shape for p in paper.parameters()] == [p.shape for p in discriminator.parameters()]
    with pytest.raises(ConfigError, match="similarity_layer=5"):
        VAEGANDiscriminator(shape, widths=widths, similarity_layer=5)


def test_joint_discriminator_sees_both_x_and_z():
    discriminator = JointDiscriminator(LATENT, GRAY, widths=(4, 8, 8), z_dim=8, joint_dim=8, dropout=0.0).eval()
    x, z = torch.rand(3, *GRAY), torch.rand(3, LATENT)
    assert discriminator(x, z).shape == (3,)
    assert not torch.allclose(discriminator(x, z), discriminator(x, -z))
    assert not torch.allclose(discriminator(x, z), discriminator(-x, z))


@pytest.mark.parametrize("make", [lambda: ConvDecoder(4, (3, 20, 20)), lambda: GaussianEncoder(4, (3, 28, 28)),
                                  lambda: VAEGANDiscriminator((3, 36, 36)), lambda: JointDiscriminator(4, (1, 12, 12))],
                         ids=["decoder", "encoder", "vaegan_d", "joint_d"])
def test_sides_not_divisible_by_8_are_refused(make):
    with pytest.raises(ConfigError, match="divisible by 8.*data.image_size"):
        make()


# ----- losses ---------------------------------------------------------------------------------------------------

def test_kl_matches_torch_distributions():
    generator = torch.Generator().manual_seed(0)
    mu, log_var = torch.randn(5, 3, generator=generator), torch.randn(5, 3, generator=generator)
    posterior = torch.distributions.Normal(mu, (0.5 * log_var).exp())
    expected = torch.distributions.kl_divergence(posterior, torch.distributions.Normal(0.0, 1.0)).sum(1).mean()
    assert torch.allclose(kl_to_standard_normal(mu, log_var), expected, atol=1e-6)
    assert kl_to_standard_normal(torch.zeros(2, 3), torch.zeros(2, 3)) == 0


@pytest.mark.parametrize("sigma", [1.0, 0.1])
def test_fixed_gaussian_nll_is_the_log_likelihood_without_its_constant(sigma):
    generator = torch.Generator().manual_seed(0)
    prediction, target = torch.randn(4, 2, 3, 3, generator=generator), torch.randn(4, 2, 3, 3, generator=generator)
    log_prob = torch.distributions.Normal(prediction, sigma).log_prob(target).flatten(1).sum(1).mean()
    constant = 18 * 0.5 * math.log(2 * math.pi * sigma**2)
    assert torch.allclose(fixed_gaussian_nll(prediction, target, sigma), -log_prob - constant, atol=1e-4)
    if sigma == 1.0:  # half the squared error, summed per image
        assert torch.allclose(fixed_gaussian_nll(prediction, target), 0.5 * (prediction - target).pow(2).sum() / 4)


def test_cross_entropy_to_one_class():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 3.0, 0.0]])
    for k in (REAL, RECONSTRUCTION, PRIOR):
        assert torch.allclose(cross_entropy_to(logits, k), -logits.log_softmax(1)[:, k].mean())


# ----- who updates what -------------------------------------------------------------------------------------------

class _StepRecorder(pl.Callback):
    """For every optimizer step, just before it: the gradient of every parameter (None where none was recorded) and
    the model's state (what the step's loss was computed from)."""

    def __init__(self):
        self.steps: list[dict] = []

    def on_train_start(self, trainer, pl_module):
        for optimizer in trainer.optimizers:
            optimizer.register_step_pre_hook(functools.partial(self._record, pl_module))

    def _record(self, model, optimizer, args, kwargs):
        grads = {name: None if p.grad is None else p.grad.detach().clone() for name, p in model.named_parameters()}
        self.steps.append({"grads": grads, "state": copy.deepcopy(model.state_dict())})


def _spy(model, name: str) -> list:
    """Record what ``model.<name>`` returns, calling the real method."""
    calls, original = [], getattr(model, name)

    def spy(*args, **kwargs):
        calls.append(original(*args, **kwargs))
        return calls[-1]

    setattr(model, name, spy)
    return calls


def _fit_one_batch(model, images, tmp_path, optimizers: int) -> list[dict]:
    recorder = _StepRecorder()
    trainer = _trainer(tmp_path, max_steps=optimizers, callbacks=[recorder])  # global_step counts optimizer steps
    trainer.fit(model, train_dataloaders=DataLoader(images, batch_size=8))
    assert len(recorder.steps) == optimizers
    return recorder.steps


def _grads_of(step: dict, prefix: str) -> list:
    return [g for name, g in step["grads"].items() if name.startswith(prefix)]


def _assert_only(steps: list[dict], k: int, prefix: str, expected: tuple[torch.Tensor, ...]) -> None:
    """Step k's gradients: ``expected`` on the parameters under ``prefix``; its backward left every other parameter's
    gradient as it was before (None, or what an earlier step of that net left there)."""
    step, before = steps[k], steps[k - 1]["grads"] if k else {}
    others = [name for name, g in step["grads"].items() if not name.startswith(prefix) and g is not None
              and not (before.get(name) is not None and torch.equal(before[name], g))]
    assert not others, f"the step of {prefix} also filled {others[:3]}…"
    got = _grads_of(step, prefix)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g is not None and torch.allclose(g, e, rtol=1e-4, atol=1e-6)


def _grad(loss, module) -> tuple[torch.Tensor, ...]:
    return torch.autograd.grad(loss, list(module.parameters()), retain_graph=True, allow_unused=True)


def _norm(grads) -> float:
    return sum(float(g.pow(2).sum()) for g in grads if g is not None)


def _discriminate(dis, batches: str, *sets):
    """D's (logits, features) of each set: one forward of the sets stacked (joint) or one per set (separate)."""
    if batches == "separate":
        return [dis(images) for images in sets]
    logits, features = dis(torch.cat(sets))
    n = len(sets[0])
    return [(logits[k * n:(k + 1) * n], features[k * n:(k + 1) * n]) for k in range(len(sets))]


@pytest.mark.parametrize("mode, batches, real_weight", [
    ("binary", "joint", None), ("three_class", "joint", None), ("binary", "separate", 1 / 3),
    ("three_class", "separate", 0.5)])
def test_vaegan_routes_each_loss_only_to_its_nets(mode, batches, real_weight, tmp_path):
    # every net steps (gating: below)
    model = _vaegan(mode, equilibrium=None, discriminator_batches=batches, real_weight=real_weight)
    reference = copy.deepcopy(model)  # the weights every loss of the batch is computed from (Algorithm 1)
    noise = _spy(model, "sample_noise")
    data = _Images(shape=RGB)
    steps = _fit_one_batch(model, data, tmp_path, optimizers=3)
    [(eps, z_prior)] = noise
    assert model.discriminator.n_classes == DISCRIMINATOR_MODES[mode].n_classes
    enc, dec, dis, adversarial = reference.encoder, reference.decoder, reference.discriminator, reference.adversarial
    x = data.images

    def d(*sets):
        return _discriminate(dis, batches, *sets)

    mu, log_var = enc(x)
    z = mu + (0.5 * log_var).exp() * eps
    (_, recon_features_e), (_, real_features) = d(dec(z), x)
    llike = fixed_gaussian_nll(recon_features_e, real_features.detach())
    kl = kl_to_standard_normal(mu, log_var)
    # Encoder ← L_prior + L_llike; the GAN loss of the decoder would reach it too, were it not kept out.
    (_, _), (recon_logits_e, _), (prior_logits_e, _) = d(x, dec(z), dec(z_prior))
    assert _norm(_grad(adversarial.decoder(recon_logits_e, prior_logits_e), enc)) > 0
    _assert_only(steps, 0, "generator.encoder.", _grad(kl + llike, enc))

    reconstruction, prior = dec(z.detach()), dec(z_prior)
    (_, _), (recon_logits, _), (prior_logits, _) = d(x, reconstruction, prior)
    gan_g = adversarial.decoder(recon_logits, prior_logits)
    (_, recon_features), (_, real_features) = d(reconstruction, x)
    decoder_llike = fixed_gaussian_nll(recon_features, real_features.detach())
    _assert_only(steps, 1, "generator.decoder.", _grad(0.5 * decoder_llike + gan_g, dec))  # γ = 0.5

    logits_d = [logits for logits, _ in d(x, reconstruction.detach(), prior.detach())]
    # D's loss weighs real images w and each generated set (1 − w)/2, times 3 (w = 1/3: the plain sum); null: the
    # mode's own, binary 0.66 (the reference code), three-class 1/3.
    w = {"binary": 0.66, "three_class": 1 / 3}[mode] if real_weight is None else real_weight
    gan_d = 3 * (torch.tensor([w, (1 - w) / 2, (1 - w) / 2]) * adversarial.discriminator(*logits_d)).sum()
    assert _norm(_grad(decoder_llike, dis)) > 0  # L_llike would move D, were it not kept out
    _assert_only(steps, 2, "discriminator.", _grad(gan_d, dis))
    # The modes' losses are what they say: binary BCEs, or the three classes.
    if mode == "binary":
        assert real_weight is None or torch.allclose(
            gan_d, bce_real(logits_d[0]) + bce_fake(logits_d[1]) + bce_fake(logits_d[2]))
    else:
        assert torch.allclose(gan_g, cross_entropy_to(recon_logits, REAL) + cross_entropy_to(prior_logits, REAL))


def test_joint_batches_give_d_one_set_of_batch_statistics_for_all_three_sets():
    """The reference code stacks real images, reconstructions and prior samples into one batch for D: a set's
    logits and Dis_l features then depend on the other sets (through D's batch norms); separately they do not."""
    x, other, shifted = torch.randn(4, *RGB), torch.randn(4, *RGB), torch.randn(4, *RGB) + 3
    for batches in ("joint", "separate"):
        model = _vaegan(discriminator_batches=batches)
        (logits_a, features_a), _ = model.discriminate(x, other)
        (logits_b, features_b), _ = model.discriminate(x, shifted)
        assert (batches == "joint") != torch.allclose(features_a, features_b), batches
        assert (batches == "joint") != torch.allclose(logits_a, logits_b), batches
    # The joint forward is D on the stacked batch, split back in order.
    joint = _vaegan(discriminator_batches="joint")
    logits, features = joint.discriminator(torch.cat([x, other]))
    (logits_x, _), (logits_o, features_o) = joint.discriminate(x, other)
    assert torch.allclose(torch.cat([logits_x, logits_o]), logits) and torch.allclose(features_o, features[4:])


def test_equilibrium_gating_holds_back_whichever_of_d_and_dec_is_winning():
    model = _vaegan()  # the reference code's equilibrium 0.68, margin 0.35: errors outside [0.33, 1.03] gate
    sure, unsure = torch.full((4,), 6.0), torch.zeros(4)
    assert model.equilibrium_gates(sure, -sure, -sure) == {"g": True, "d": False}  # D right everywhere: D waits
    assert model.equilibrium_gates(-sure, sure, sure) == {"g": False, "d": True}  # D wrong everywhere: Dec waits
    assert model.equilibrium_gates(unsure, unsure, unsure) == {"g": True, "d": True}  # errors ln 2: both train
    assert model.equilibrium_gates(sure, sure, sure) == {"g": True, "d": True}  # both rules fire: neither waits
    # e_gen is the mean over reconstructions and prior samples: 0.31 on one and 1.31 on the other make 0.81.
    one = torch.ones(4)
    assert model.equilibrium_gates(unsure, -one, one) == {"g": True, "d": True}
    assert model.equilibrium_gates(unsure, -one, -one) == {"g": True, "d": False}  # 0.31 on both: D waits
    three = _vaegan("three_class")
    right = torch.eye(3)[[REAL, RECONSTRUCTION, PRIOR]] * 12
    assert three.equilibrium_gates(right[[0] * 4], right[[1] * 4], right[[2] * 4]) == {"g": True, "d": False}
    uniform = torch.zeros(4, 3)  # a three-class D at chance errs ln 3, read as ln 2: both train
    assert three.equilibrium_gates(uniform, uniform, uniform) == {"g": True, "d": True}
    assert _vaegan(equilibrium=None).equilibrium_gates(sure, -sure, -sure) == {"g": True, "d": True}


@pytest.mark.parametrize("equilibrium, margin, waits", [(5.0, 1.0, "discriminator"), (0.1, 0.05, "decoder")])
def test_a_gated_net_keeps_its_weights_through_a_batch(equilibrium, margin, waits, tmp_path):
    # An untrained D's errors are near ln 2: below 5 − 1 (D counts as winning), above 0.1 + 0.05 (as losing).
    model = _vaegan(equilibrium=equilibrium, margin=margin)
    before = {name: _params(getattr(model, name)) for name in ("encoder", "decoder", "discriminator")}
    forwards = []
    model.discriminator.register_forward_hook(lambda module, args, output: forwards.append(len(args[0])))
    trainer = _trainer(tmp_path, max_epochs=1, limit_train_batches=1)
    trainer.fit(model, train_dataloaders=DataLoader(_Images(shape=RGB), batch_size=8))
    assert trainer.global_step == 2  # the encoder's step and one of the other two
    # D's forwards: [X̃, X] for the encoder, [X, X̃, X_p] and [X̃, X] for the decoder, [X, X̃, X_p] for D when it steps
    assert forwards == [16, 24, 16] + ([] if waits == "discriminator" else [24])
    for name, params in before.items():
        assert _changed(params, getattr(model, name)) == (name != waits), name


def test_vae_trains_encoder_and_decoder_on_pixels_and_kl_only(tmp_path):
    model = _vae(pixel_sigma=0.5)
    reference = copy.deepcopy(model)
    noise = _spy(model, "sample_noise")
    data = _Images(shape=RGB)
    [step] = _fit_one_batch(model, data, tmp_path, optimizers=1)
    [(eps, _)] = noise
    mu, log_var = reference.encoder(data.images)
    z = mu + (0.5 * log_var).exp() * eps
    loss = kl_to_standard_normal(mu, log_var) + fixed_gaussian_nll(reference.decoder(z), data.images, 0.5)
    _assert_only([step], 0, "generator.", _grad(loss, reference.generator))
    assert not hasattr(model, "discriminator")


def test_bigan_d_scores_joint_pairs_and_g_e_learn_only_adversarially(tmp_path):
    model = _bigan()
    priors = _spy(model, "sample_prior")
    data = _Images(shape=GRAY)
    d_step, g_step = _fit_one_batch(model, data, tmp_path, optimizers=2)
    [z] = priors
    x = data.images

    reference = _bigan()
    reference.load_state_dict(d_step["state"])
    enc, dec, dis = reference.encoder, reference.decoder, reference.discriminator
    loss_d = bce_real(dis(x, enc(x).detach())) + bce_fake(dis(dec(z).detach(), z))
    _assert_only([d_step, g_step], 0, "discriminator.", _grad(loss_d, dis))

    reference.load_state_dict(g_step["state"])  # D as its step left it; G and E still as before the batch
    flipped = bce_fake(dis(x, enc(x))) + bce_real(dis(dec(z), z))
    # Nothing but the flipped-label loss: a reconstruction error would change E's and G's gradients.
    expected = _grad(flipped, reference.generator)
    with_reconstruction = _grad(flipped + F.mse_loss(dec(enc(x)), x), reference.generator)
    assert _norm([a - b for a, b in zip(expected, with_reconstruction)]) > 0
    _assert_only([d_step, g_step], 1, "generator.", expected)
    assert _norm(_grads_of(g_step, "generator.encoder.")) > 0 and _norm(_grads_of(g_step, "generator.decoder.")) > 0


def test_twin_autoencoder_trains_on_both_reconstruction_errors(tmp_path):
    model = _twin_ae(latent_weight=0.5)
    reference = copy.deepcopy(model)
    priors = _spy(model, "sample_prior")
    data = _Images(shape=GRAY)
    [step] = _fit_one_batch(model, data, tmp_path, optimizers=1)
    [z] = priors
    enc, dec = reference.encoder, reference.decoder
    image_error, code_error = F.mse_loss(dec(enc(data.images)), data.images), F.mse_loss(enc(dec(z)), z)
    assert _norm(_grad(code_error, enc)) > 0  # the reverse autoencoder's term matters
    _assert_only([step], 0, "generator.", _grad(image_error + 0.5 * code_error, reference.generator))


# ----- streams, grids, metrics -----------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [_vaegan, _vae, _bigan, _twin_ae], ids=["vaegan", "vae", "bigan", "twin_ae"])
def test_streams_are_prior_samples_then_reconstructions_of_held_out_images(make):
    model = make().eval()
    samples, reconstructions = model.evaluation_streams()
    assert (samples.name, samples.real, samples.inputs) == ("samples", RealSet("train"), None)
    assert (reconstructions.name, reconstructions.real, reconstructions.inputs) == (
        "reconstructions", RealSet("val"), RealSet("val"))
    shape = model.decoder(torch.zeros(1, LATENT)).shape[1:]
    training_rng = torch.get_rng_state()
    drawn = samples.make(5, torch.Generator().manual_seed(1))
    assert torch.equal(torch.get_rng_state(), training_rng)
    assert drawn.shape == (5, *shape) and torch.equal(samples.make(5, torch.Generator().manual_seed(1)), drawn)
    images = torch.rand(5, *shape) * 2 - 1
    made = reconstructions.make({"image": images}, torch.Generator())
    assert torch.equal(made, model.decode(model.encode(images)))
    assert torch.equal(made, model.decoder(model.code_of(model.encoder(images))))
    assert not torch.equal(made, reconstructions.make({"image": -images}, torch.Generator()))


def test_gaussian_codes_are_the_posterior_mean_and_the_prior_is_normal():
    model = _vaegan().eval()
    images = torch.rand(3, *RGB)
    assert torch.equal(model.encode(images), model.encoder(images)[0])
    assert model.sample_prior(4000, torch.Generator().manual_seed(0)).std().item() == pytest.approx(1, abs=0.05)
    uniform = _bigan().sample_prior(4000, torch.Generator().manual_seed(0))
    assert uniform.min() >= -1 and uniform.max() <= 1 and uniform.std().item() == pytest.approx(3**-0.5, abs=0.02)


def test_leave_one_out_1nn_accuracy():
    codes = torch.tensor([[0.0], [0.1], [5.0], [5.2], [9.0]])
    assert leave_one_out_1nn_accuracy(codes, torch.tensor([0, 0, 1, 1, 1])) == pytest.approx(1.0)
    # Item 4's nearest neighbour (item 3) has another label: 4 of 5 right.
    assert leave_one_out_1nn_accuracy(codes, torch.tensor([0, 0, 1, 1, 2])) == pytest.approx(0.8)
    assert math.isnan(leave_one_out_1nn_accuracy(codes[:1], torch.tensor([0])))


def test_validation_logs_recon_l1_and_knn_acc_and_grids_pair_real_with_reconstruction(tmp_path):
    model = _bigan()
    data = _Images(n=10, shape=GRAY, labels=torch.arange(10) % 3)
    trainer = _trainer(tmp_path, limit_val_batches=None)
    trainer.validate(model, dataloaders=DataLoader(data, batch_size=4), verbose=False)
    model.eval()
    with torch.no_grad():
        codes = model.encode(data.images)
        l1 = (model.decode(codes) - data.images).abs().mean()
    assert trainer.callback_metrics["val/recon_l1"].item() == pytest.approx(l1.item(), rel=1e-5)
    assert trainer.callback_metrics["val/knn_acc"].item() == pytest.approx(
        leave_one_out_1nn_accuracy(codes, data.labels))

    grids = model.visualizations()
    pairs, per_row = grids["reconstruction_pairs"]
    assert per_row == 6 and pairs.shape == (8, *GRAY)  # the first validation batch: 4 images, each with its copy
    assert torch.equal(pairs[0::2], data.images[:4])
    assert torch.allclose(pairs[1::2], model.decode(model.encode(data.images[:4])), atol=1e-6)
    prior, per_row = grids["prior_samples"]
    assert per_row == 3 and prior.shape == (12, *GRAY)
    assert torch.equal(model.visualizations()["prior_samples"][0], prior)  # fixed draws


def test_unknown_discriminator_mode_is_refused():
    with pytest.raises(ConfigError, match="discriminator_mode=four_class: must be one of binary, three_class"):
        _vaegan(mode="four_class")
    with pytest.raises(ConfigError, match="discriminator_batches=mixed: must be one of joint, separate"):
        _vaegan(discriminator_batches="mixed")
    with pytest.raises(ConfigError, match="real_weight=1.5: the share of real images in D's loss is at most 1"):
        _vaegan(real_weight=1.5)


# ----- through src.run ---------------------------------------------------------------------------------------------

#: The tiny run of conftest without InfoGAN's net keys, and tiny nets for these families.
_RUN = {k: v for k, v in TINY.items() if not k.startswith("model.")}
_NETS = {"model.latent_dim": "8", "model.encoder.widths": "[4,8,8]", "model.encoder.fc_dim": "16",
         "model.decoder.widths": "[8,8,4]"}
_FAMILIES = {
    "vaegan": {**_NETS, "data.train_size": "32", "data.val_size": "8", "data.test_size": "4",
               "model.discriminator.widths": "[4,8,8,8]", "model.discriminator.fc_dim": "16"},
    "bigan": {**_NETS, "data.val_size": "8", "model.discriminator.widths": "[4,8,8]", "model.discriminator.z_dim": "8",
              "model.discriminator.joint_dim": "16"},
}
_RUNS = {"vaegan": ("vaegan", 6), "vaegan_three_class": ("vaegan", 6), "vae": ("vaegan", 2), "bigan": ("bigan", 4),
         "twin_ae": ("bigan", 2)}  # model → (its family's overrides, optimizer steps in 2 batches)


def _family_overrides(model: str) -> dict[str, str]:
    family = _FAMILIES[_RUNS[model][0]]
    if model in ("vae", "twin_ae"):  # no discriminator
        family = {k: v for k, v in family.items() if not k.startswith("model.discriminator")}
    name = "vaegan" if model.startswith("vaegan") else model
    extra = {"model.discriminator_mode": "three_class"} if model == "vaegan_three_class" else {}
    if name == "vaegan":  # every net steps on every batch (the gating: the tests above)
        extra["model.equilibrium"] = "null"
    return {"model": name, **family, **extra}


@pytest.mark.parametrize("model", list(_RUNS))
def test_a_few_steps_of_each_model_through_src_run(model, run_in_process):
    metrics, built = run_in_process(_RUN, _family_overrides(model), NO_VALIDATION, tiny=False)
    assert built["trainer"].global_step == _RUNS[model][1]
    assert all(math.isfinite(v) for k, v in metrics.items() if k.startswith("train/"))
    shape = (3, 32, 32) if _RUNS[model][0] == "vaegan" else (1, 32, 32)  # faces at 32 px (the recipe), digits
    assert built["model"].evaluation_streams()[0].make(2, torch.Generator()).shape == (2, *shape)


@pytest.mark.timeout(300)
def test_vaegan_trains_under_ddp_cpu(run_cli, fault_env, tmp_path):
    result = run_cli(_RUN, _family_overrides("vaegan"), {"trainer": "ddp_cpu"}, NO_VALIDATION, probe_layer(tmp_path),
                     tiny=False)
    assert result.returncode == 0, str(result)
    assert_ranks_drew_their_own(tmp_path / "draws", "ε and prior codes")
    checkpoint = torch.load(result.run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert checkpoint["global_step"] == 6  # each rank: 2 batches × 3 optimizers


@pytest.mark.timeout(300)
def test_bigan_trains_under_ddp_cpu(run_cli, fault_env, tmp_path):
    result = run_cli(_RUN, _family_overrides("bigan"), {"trainer": "ddp_cpu"}, NO_VALIDATION, probe_layer(tmp_path),
                     tiny=False)
    assert result.returncode == 0, str(result)
    assert_ranks_drew_their_own(tmp_path / "draws", "prior codes")
    checkpoint = torch.load(result.run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert checkpoint["global_step"] == 4  # each rank: 2 batches × 2 optimizers


def test_a_run_scores_both_streams_and_writes_the_grids(run_in_process, tmp_path):
    metrics, _ = run_in_process(_RUN, _family_overrides("bigan"), tiny=False)
    for name in ("fid", "fid/samples", "fid/reconstructions", "recon_l1", "knn_acc"):
        assert math.isfinite(metrics[f"val/{name}"]), name
    assert metrics["val/fid"] == metrics["val/fid/samples"] != metrics["val/fid/reconstructions"]
    assert metrics["val/fid_n/reconstructions"] == 8  # one reconstruction per held-out digit (data.val_size=8)
    for grid in ("reconstruction_pairs", "prior_samples"):
        assert (tmp_path / "run" / "samples" / f"{grid}_last.png").is_file()
