"""InfoGAN: net shapes, Q's outputs, the code losses, who updates what in one training step, grids, val/cat_acc."""
from __future__ import annotations

import functools

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

import src.models.infogan as infogan_module
from src.metrics.clustering import cluster_accuracy
from src.models.base import NonFiniteLossError, RealSet
from src.models.infogan import InfoGAN
from src.nets.infogan import InfoGANDiscriminator, InfoGANGenerator
from src.nets.losses import gaussian_nll, r1_penalty

NOISE, K, M = 5, 4, 3
TINY_G = {"fc_dim": 16, "base_channels": 4}
TINY_D = {"base_channels": 4, "fc_dim": 16, "q_dim": 8}


def _nets(shape=(1, 16, 16), fixed_std=True):
    generator = InfoGANGenerator(NOISE, K, M, shape, **TINY_G)
    discriminator = InfoGANDiscriminator(shape, K, M, fixed_std=fixed_std, **TINY_D)
    return generator, discriminator


def _model(shape=(1, 16, 16), fixed_std=True, **kwargs) -> InfoGAN:
    torch.manual_seed(0)
    generator, discriminator = _nets(shape, fixed_std)
    return InfoGAN(generator, discriminator,
                   optimizer_g=functools.partial(torch.optim.Adam, lr=1e-3, betas=(0.5, 0.999)),
                   optimizer_d=functools.partial(torch.optim.Adam, lr=2e-4, betas=(0.5, 0.999)),
                   noise_dim=NOISE, n_categories=K, n_continuous=M, **kwargs)


class _Images(Dataset):
    """Random batch-dict items in [-1, 1], with labels or without."""

    def __init__(self, n=8, shape=(1, 16, 16), labels=None, fill=None):
        generator = torch.Generator().manual_seed(1)
        self.images = torch.rand(n, *shape, generator=generator) * 2 - 1
        if fill is not None:
            self.images.fill_(fill)
        self.labels = labels

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        item = {"image": self.images[i]}
        if self.labels is not None:
            item["label"] = self.labels[i]
        return item


def _trainer(tmp_path, **kwargs) -> pl.Trainer:
    settings = dict(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                    enable_model_summary=False, default_root_dir=tmp_path, limit_val_batches=0)
    return pl.Trainer(**{**settings, **kwargs})


def _params(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def _changed(before: dict[str, torch.Tensor], module: torch.nn.Module) -> bool:
    return any(not torch.equal(before[name], p) for name, p in module.named_parameters())


# ----- nets -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 28, 28), (1, 32, 32), (3, 32, 32)], ids=str)
def test_net_shapes(shape):
    generator, discriminator = _nets(shape)
    images = generator(torch.rand(6, NOISE + K + M))
    assert images.shape == (6, *shape)
    assert images.min() >= -1 and images.max() <= 1
    logits, q = discriminator(images)
    assert logits.shape == (6,)
    assert q.cat_logits.shape == (6, K) and q.cont_mean.shape == (6, M) and q.cont_log_std.shape == (6, M)


@pytest.mark.parametrize("shape", [(1, 30, 30), (1, 28, 30), (3, 18, 16)], ids=str)
def test_sides_not_divisible_by_4_are_refused(shape):
    for make in (lambda: InfoGANGenerator(NOISE, K, M, shape, **TINY_G),
                 lambda: InfoGANDiscriminator(shape, K, M, **TINY_D)):
        with pytest.raises(ValueError, match="divisible by 4"):
            make()


def test_q_with_fixed_std_predicts_logits_and_means_only():
    _, discriminator = _nets(fixed_std=True)
    assert discriminator.q_head[-1].out_features == K + M
    _, q = discriminator(torch.rand(5, 1, 16, 16) * 2 - 1)
    assert torch.equal(q.cont_log_std, torch.zeros(5, M))
    assert q.cat_logits.shape == (5, K) and q.cont_mean.shape == (5, M)


def test_q_with_learned_std_splits_its_output_in_order():
    _, discriminator = _nets(fixed_std=False)
    discriminator.eval()  # batch-independent outputs, so the same images give the same parameters
    assert discriminator.q_head[-1].out_features == K + 2 * M
    images = torch.rand(5, 1, 16, 16) * 2 - 1
    _, q = discriminator(images)
    params = discriminator.q_head(discriminator.body(images))
    assert torch.equal(q.cat_logits, params[:, :K])
    assert torch.equal(q.cont_mean, params[:, K:K + M])
    assert torch.equal(q.cont_log_std, params[:, K + M:])
    assert q.cont_log_std.abs().sum() > 0 and q.cont_log_std.requires_grad


def test_gaussian_nll_is_the_normal_log_prob():
    generator = torch.Generator().manual_seed(0)
    x, mean, log_std = (torch.randn(7, 3, generator=generator) for _ in range(3))
    expected = -torch.distributions.Normal(mean, log_std.exp()).log_prob(x).sum(dim=1).mean()
    assert torch.allclose(gaussian_nll(x, mean, log_std), expected, atol=1e-6)
    assert torch.allclose(gaussian_nll(x, mean, torch.zeros_like(mean)),
                          -torch.distributions.Normal(mean, 1.0).log_prob(x).sum(dim=1).mean(), atol=1e-6)


# ----- one training step ------------------------------------------------------------------------------------

def _record_steps(model: InfoGAN, monkeypatch) -> list[dict]:
    """Wraps model.step: for each optimizer step, which optimizer and the G/D parameters before and after."""
    calls = []
    original = model.step

    def step(optimizer, loss):
        before = {"g": _params(model.generator), "d": _params(model.discriminator)}
        original(optimizer, loss)
        calls.append({"optimizer": optimizer, "before": before, "loss": loss.detach()})

    monkeypatch.setattr(model, "step", step)
    return calls


def _fit_one_batch(model: InfoGAN, tmp_path, data=None) -> pl.Trainer:
    trainer = _trainer(tmp_path, max_steps=2)  # manual optimisation: one G + one D step = 2 global steps
    trainer.fit(model, train_dataloaders=DataLoader(data or _Images(), batch_size=8))
    return trainer


def test_one_step_d_then_g_each_updating_only_its_own(tmp_path, monkeypatch):
    model = _model()
    calls = _record_steps(model, monkeypatch)
    trainer = _fit_one_batch(model, tmp_path)
    assert trainer.global_step == 2
    optimizer_g, optimizer_d = trainer.optimizers
    # model.step receives Lightning's wrappers around the optimizers.
    assert [c["optimizer"].optimizer for c in calls] == [optimizer_d, optimizer_g]
    d_step, g_step = calls

    # The D step: D's body, real/fake head and Q head move; G stays as it was.
    g_after_d = g_step["before"]["g"]
    assert all(torch.equal(p, g_after_d[n]) for n, p in d_step["before"]["g"].items())
    after_d = g_step["before"]["d"]
    for part in ("body", "d_head", "q_head"):
        before = {n: p for n, p in d_step["before"]["d"].items() if n.startswith(part + ".")}
        assert any(not torch.equal(p, after_d[n]) for n, p in before.items()), f"D step left {part} unchanged"

    # The G step: G moves (both its FC and deconv parts); D is untouched by it.
    assert not _changed(g_step["before"]["d"], model.discriminator)
    for part in ("fc", "deconv"):
        before = {n: p for n, p in g_step["before"]["g"].items() if n.startswith(part + ".")}
        assert any(not torch.equal(p, dict(model.generator.named_parameters())[n]) for n, p in before.items())
    assert all(torch.isfinite(c["loss"]) for c in calls)


def _zero_adversarial(monkeypatch):
    """Make the non-saturating 'score as real' loss (G's adversarial term) contribute nothing, gradient included."""
    monkeypatch.setattr(infogan_module, "bce_real", lambda logits: 0.0 * logits.sum())


@pytest.mark.parametrize(("lambda_cat", "lambda_cont"), [(1.0, 0.0), (0.0, 1.0)], ids=["categorical", "continuous"])
def test_mutual_information_term_trains_the_generator(lambda_cat, lambda_cont, tmp_path, monkeypatch):
    _zero_adversarial(monkeypatch)
    model = _model(lambda_cat=lambda_cat, lambda_cont=lambda_cont)
    calls = _record_steps(model, monkeypatch)
    _fit_one_batch(model, tmp_path)
    assert _changed(calls[1]["before"]["g"], model.generator)


def test_without_adversarial_or_mi_term_the_generator_stays(tmp_path, monkeypatch):
    """The control for the test above: its G update comes from the MI term and nothing else."""
    _zero_adversarial(monkeypatch)
    model = _model(lambda_cat=0.0, lambda_cont=0.0)
    calls = _record_steps(model, monkeypatch)
    _fit_one_batch(model, tmp_path)
    assert not _changed(calls[1]["before"]["g"], model.generator)


def test_r1_penalty_of_a_linear_critic_is_its_squared_weight_norm():
    weight = torch.randn(1, 3 * 4 * 4)
    images = torch.randn(5, 3, 4, 4, requires_grad=True)
    logits = images.flatten(1) @ weight.T
    assert torch.allclose(r1_penalty(logits.squeeze(1), images), weight.pow(2).sum(), rtol=1e-5)


def _independent_r1(discriminator_state: dict, real: torch.Tensor) -> torch.Tensor:
    """‖∇ₓD(x)‖² by autograd's jacobian, of a fresh D with the given parameters (train-mode BN, as in the step;
    the running statistics, absent from the state, play no part in train mode)."""
    _, discriminator = _nets()
    discriminator.load_state_dict(discriminator_state, strict=False)
    per_sample = torch.autograd.functional.jacobian(lambda x: discriminator(x)[0].sum(), real)
    return per_sample.pow(2).flatten(1).sum(1).mean()


@pytest.mark.parametrize("every", [1, 3])
def test_r1_adds_half_gamma_times_the_penalty_to_the_d_loss(every, tmp_path, monkeypatch):
    losses = {}
    for gamma in (0.0, 4.0):
        model = _model(r1_gamma=gamma, r1_every=every)
        calls = _record_steps(model, monkeypatch)
        _fit_one_batch(model, tmp_path)
        losses[gamma] = [c["loss"] for c in calls]
        d_before = calls[0]["before"]["d"]
    expected = 0.5 * 4.0 * every * _independent_r1(d_before, _Images().images)
    assert expected > 0
    assert torch.allclose(losses[4.0][0] - losses[0.0][0], expected, rtol=1e-4)  # the D step (batch 0)


def test_lazy_r1_regularises_every_nth_batch_across_epochs(tmp_path, monkeypatch):
    batches = []
    original = infogan_module.r1_penalty

    def counting(logits, images):
        batches.append(model.trainer.fit_loop.total_batch_idx)
        return original(logits, images)

    monkeypatch.setattr(infogan_module, "r1_penalty", counting)
    model = _model(r1_gamma=1.0, r1_every=2)
    trainer = _trainer(tmp_path, max_epochs=2)  # 3 batches per epoch: batches 0-5 in all
    trainer.fit(model, train_dataloaders=DataLoader(_Images(n=24), batch_size=8))
    assert batches == [0, 2, 4]


def test_non_finite_loss_stops_before_the_step_and_names_the_learning_rates(tmp_path):
    model = _model()
    before = _params(model.discriminator)
    with pytest.raises(NonFiniteLossError, match="learning rate") as error:
        _fit_one_batch(model, tmp_path, data=_Images(fill=float("nan")))
    assert "loss_d" in str(error.value) and "model.optimizer_d.lr" in str(error.value)
    assert not _changed(before, model.discriminator)


def test_check_finite_accepts_finite_losses(tmp_path):
    model = _model()
    model.trainer = _trainer(tmp_path)
    model.check_finite({"loss_d": torch.tensor(3.0), "loss_g": torch.tensor(-1.0)})
    with pytest.raises(NonFiniteLossError, match="loss_g.*learning rate"):
        model.check_finite({"loss_d": torch.tensor(3.0), "loss_g": torch.tensor(float("inf"))})


# ----- evaluation ---------------------------------------------------------------------------------------------

def test_visualizations_are_one_row_per_category(tmp_path):
    model = _model(grid_columns=5).eval()
    grids = model.visualizations()
    assert set(grids) == {"categorical"} | {f"traversal_c{j}" for j in range(1, M + 1)}
    for name, (images, per_row) in grids.items():
        assert per_row == 5 and images.shape == (K * 5, 1, 16, 16), name
        assert images.min() >= -1 and images.max() <= 1
        rows = images.view(K, 5, -1)
        assert not torch.allclose(rows[0], rows[1]), f"{name}: categories give identical rows"
    # A traversal keeps noise and category within a row, so its columns differ only by the swept code.
    row = grids["traversal_c1"][0].view(K, 5, -1)[0]
    assert not torch.allclose(row[0], row[-1])
    # Grids are drawn from stored latents: the same model draws the same grids again.
    assert torch.equal(model.visualizations()["categorical"][0], grids["categorical"][0])


def test_validation_logs_cat_acc_with_labels(tmp_path):
    model = _model().eval()
    data = _Images(n=12)
    with torch.no_grad():
        predicted = model.discriminator(data.images)[1].cat_logits.argmax(dim=1)
    # Labels that are Q's predictions under a permutation: one-to-one matching makes them all correct.
    data.labels = (predicted + 1) % K
    trainer = _trainer(tmp_path, limit_val_batches=None)
    trainer.validate(model, dataloaders=DataLoader(data, batch_size=5), verbose=False)
    assert trainer.callback_metrics["val/cat_acc"].item() == pytest.approx(1.0)
    assert cluster_accuracy(predicted, data.labels) == pytest.approx(1.0)

    # Labels unrelated to Q's prediction score lower: the metric reads the labels.
    data.labels = torch.arange(12) % K
    trainer = _trainer(tmp_path, limit_val_batches=None)
    trainer.validate(model, dataloaders=DataLoader(data, batch_size=5), verbose=False)
    expected = cluster_accuracy(predicted, data.labels)
    assert trainer.callback_metrics["val/cat_acc"].item() == pytest.approx(float(expected))
    assert model._val_predictions == [] and model._val_labels == []


def test_validation_without_labels_logs_nothing(tmp_path):
    model = _model()
    trainer = _trainer(tmp_path, limit_val_batches=None)
    trainer.validate(model, dataloaders=DataLoader(_Images(n=6), batch_size=4), verbose=False)
    assert "val/cat_acc" not in trainer.callback_metrics


def test_samples_stream_draws_from_its_own_generator_only():
    model = _model().eval()
    [stream] = model.evaluation_streams()
    assert (stream.name, stream.real, stream.inputs) == ("samples", RealSet("train"), None)
    training_rng = torch.get_rng_state()
    first = stream.make(3, torch.Generator().manual_seed(1))
    assert torch.equal(torch.get_rng_state(), training_rng)  # evaluation fakes never move the training RNG
    assert first.shape == (3, 1, 16, 16) and first.min() >= -1 and first.max() <= 1
    assert torch.equal(stream.make(3, torch.Generator().manual_seed(1)), first)
    assert not torch.equal(stream.make(3, torch.Generator().manual_seed(2)), first)
