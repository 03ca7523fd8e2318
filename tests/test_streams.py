"""The shared module's parts every family builds on: evaluation streams scored by the FID callback (with test doubles
of a conditional and a two-domain family), the generator EMA, and learning-rate schedules counted in images."""
from __future__ import annotations

import functools

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from test_infogan import _fit_one_batch, _Images, _model, _params, _trainer
from torch import nn
from torch.utils.data import Dataset

from src.callbacks.fid import FIDCallback
from src.data.base import GANDataModule
from src.data.digits import DigitsDataModule
from src.metrics.fid import InceptionMetrics
from src.metrics.inception import resolve_inception_weights
from src.models.base import EvalStream, GANModule, RealSet
from src.models.schedules import ConstantThenLinearDecay
from src.utils.errors import ConfigError

# ----- test doubles -------------------------------------------------------------------------------------------


class _Pairs(Dataset):
    """Two-domain items {"a", "b"}: A dark noise images, B bright ones (3×16×16 in [-1, 1])."""

    def __init__(self, n: int, seed: int):
        generator = torch.Generator().manual_seed(seed)
        self.a = torch.rand(n, 3, 16, 16, generator=generator) - 1
        self.b = torch.rand(n, 3, 16, 16, generator=generator)

    def __len__(self):
        return len(self.a)

    def __getitem__(self, i):
        return {"a": self.a[i], "b": self.b[i]}


class TwoDomainData(GANDataModule):
    kinds = ("unpaired",)
    name = "two_domains"
    image_shape = (3, 16, 16)
    num_classes = None

    def build_splits(self):
        return _Pairs(16, seed=0), _Pairs(self.val_size, seed=1)


class _NoTraining(GANModule):
    """What a family double needs beyond its streams: nothing to train, an empty validation step."""

    def build_optimizers(self):
        return {"g": torch.optim.SGD(self.generator.parameters(), lr=0.1)}

    def visualizations(self):
        return {}

    def validation_step(self, batch, batch_idx):
        pass


class Translator(_NoTraining):
    """A two-domain family double: G (A→B) flips the sign, F (B→A) halves; scored A→B against real B, and back."""

    data_kinds = ("unpaired",)

    def __init__(self):
        super().__init__(nn.ModuleDict({"a2b": nn.Identity(), "b2a": nn.Identity()}))

    def evaluation_streams(self):
        return [EvalStream("a2b", make=lambda batch, g: -batch["a"], real=RealSet("val", "b"), inputs=RealSet("val")),
                EvalStream("b2a", make=lambda batch, g: batch["b"] / 2, real=RealSet("val", "a"), inputs=RealSet("val"))]


class LabelConditioned(_NoTraining):
    """A conditional family double on the digits: a fake per held-out label (one-hot + noise from the stream's
    generator → G), plus an unconditional stream; it records the labels it was asked for."""

    def __init__(self):
        super().__init__(nn.Sequential(nn.Linear(10 + 4, 32 * 32), nn.Tanh(), nn.Unflatten(1, (1, 32, 32))))
        self.asked: list[torch.Tensor] = []

    def _fake(self, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        noise = torch.randn(len(labels), 4, generator=generator, device=self.device)
        return self.eval_generator(torch.cat([F.one_hot(labels, 10).float(), noise], dim=1))

    def _from_labels(self, batch, generator):
        self.asked.append(batch["label"].cpu())
        return self._fake(batch["label"], generator)

    def evaluation_streams(self):
        return [EvalStream("labels", make=self._from_labels, real=RealSet("val"), inputs=RealSet("val")),
                EvalStream("prior", make=lambda n, g: self._fake(torch.randint(0, 10, (n,), generator=g), g))]


def _validate(model: GANModule, datamodule: GANDataModule, tmp_path, cache_dir, **fid) -> dict[str, float]:
    callback = FIDCallback(cache_dir=cache_dir, batch_size=4, kid_subsets=2, kid_subset_size=4, **fid)
    trainer = _trainer(tmp_path, limit_val_batches=None, callbacks=[callback])
    trainer.validate(model, datamodule=datamodule, verbose=False)
    return {name: float(value) for name, value in trainer.callback_metrics.items()}


# ----- evaluation streams ---------------------------------------------------------------------------------------


def test_two_domain_streams_score_each_direction_against_the_other_domain(tmp_path, cache_dir):
    data = TwoDomainData(batch_size=4, val_size=6)
    scores = _validate(Translator(), data, tmp_path, cache_dir, num_fake_cpu=10, num_real_cpu=5)
    # One fake per held-out input (6 < the budget of 10); the real reference set is 5 held-out images of the other domain.
    for stream in ("a2b", "b2a"):
        assert (scores[f"val/fid_n/{stream}"], scores[f"val/fid_n_real/{stream}"]) == (6, 5)
    assert scores["val/fid"] == scores["val/fid/a2b"] and scores["val/kid"] == scores["val/kid/a2b"]

    metrics = InceptionMetrics(weights_path=resolve_inception_weights(None, cache_dir), batch_size=8)
    val = data.split("val")
    order = data.eval_subset("val", 6).indices
    for stream, fakes, real in (("a2b", -val.a[order], val.b), ("b2a", val.b[order] / 2, val.a)):
        metrics.reset()
        metrics.update(metrics.extract(real[data.eval_subset("val", 5).indices]), real=True)
        metrics.update(metrics.extract(fakes), real=False)
        assert scores[f"val/fid/{stream}"] == pytest.approx(metrics.compute()["fid"], rel=1e-6), stream


def test_conditional_stream_makes_one_fake_per_held_out_input_in_chunks(tmp_path, cache_dir):
    torch.manual_seed(0)
    model = LabelConditioned()
    data = DigitsDataModule(batch_size=4, val_size=10)
    training_rng = torch.get_rng_state()
    scores = _validate(model, data, tmp_path, cache_dir, num_fake_cpu=9, num_real_cpu=6)
    # The first 9 held-out items, in chunks of the callback's batch size, each fake made from its own label.
    expected = torch.stack([data.eval_subset("val", 9)[i]["label"] for i in range(9)])
    assert [len(labels) for labels in model.asked] == [4, 4, 1]
    assert torch.equal(torch.cat(model.asked), expected)
    assert scores["val/fid_n/labels"] == 9 and scores["val/fid_n/prior"] == 9
    assert scores["val/fid"] == scores["val/fid/labels"] != scores["val/fid/prior"]
    assert torch.equal(torch.get_rng_state(), training_rng)  # evaluation drew nothing from the training RNG

    # The same fakes every validation: scoring again gives the same numbers.
    again = _validate(model, data, tmp_path, cache_dir, num_fake_cpu=9, num_real_cpu=6)
    assert again["val/fid/prior"] == scores["val/fid/prior"] and again["val/fid/labels"] == scores["val/fid/labels"]


# ----- generator EMA --------------------------------------------------------------------------------------------


class _GeneratorAfterEachBatch(pl.Callback):
    def __init__(self):
        self.weights = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):  # runs before the module's hook
        self.weights.append(_params(pl_module.generator))


def test_ema_is_a_shadow_average_used_for_evaluation_and_kept_in_checkpoints(tmp_path):
    model = _model(ema_decay=0.75)
    assert model.generator_ema.module is not model.generator
    recorder = _GeneratorAfterEachBatch()
    trainer = _trainer(tmp_path, max_steps=4, callbacks=[recorder])  # 2 batches
    trainer.fit(model, train_dataloaders=torch.utils.data.DataLoader(_Images(n=16), batch_size=8))

    first, second = recorder.weights
    ema = dict(model.generator_ema.module.named_parameters())
    for name, value in second.items():
        # torch's AveragedModel starts from the first update, then ema ← 0.75·ema + 0.25·new.
        assert torch.allclose(ema[name], 0.75 * first[name] + 0.25 * value, atol=1e-6), name
        assert torch.equal(dict(model.generator.named_parameters())[name], value)  # the trained G is not overwritten
    assert not any(p.requires_grad for p in model.generator_ema.parameters())

    generator = torch.Generator().manual_seed(3)
    codes = model.sample_codes(2, torch.Generator().manual_seed(3))
    assert torch.equal(model.draw(2, generator), model.generate(*codes, net=model.generator_ema.module))
    assert not torch.equal(model.draw(2, torch.Generator().manual_seed(3)), model.generate(*codes))

    restored = _model(ema_decay=0.75)
    restored.load_state_dict(model.state_dict())
    assert torch.equal(restored.visualizations()["categorical"][0], model.visualizations()["categorical"][0])


def test_ema_decay_outside_0_1_is_refused():
    with pytest.raises(ConfigError, match="model.ema_decay=1.5"):
        _model(ema_decay=1.5)


# ----- learning-rate schedules ----------------------------------------------------------------------------------


def test_constant_then_linear_decay_factor():
    schedule = ConstantThenLinearDecay(torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0), 100, 50)
    assert [schedule.factor(i) for i in (0, 100, 125, 150, 1000)] == [1.0, 1.0, 0.5, 0.0, 0.0]
    with pytest.raises(ConfigError, match="decay_images=0"):
        ConstantThenLinearDecay(torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0), 10, 0)


def test_schedule_counts_images_seen_and_resumes_from_the_checkpoint(tmp_path):
    decay = {"g": functools.partial(ConstantThenLinearDecay, constant_images=8, decay_images=16)}
    model = _model(schedulers=decay)
    trainer = _trainer(tmp_path, max_steps=4)  # 2 batches of 8
    trainer.fit(model, train_dataloaders=torch.utils.data.DataLoader(_Images(n=16), batch_size=8))
    optimizer_g, optimizer_d = trainer.optimizers
    assert int(model.images_seen) == 16
    assert optimizer_g.param_groups[0]["lr"] == pytest.approx(1e-3 * 0.5)  # 8 images into the 16-image decay
    assert optimizer_d.param_groups[0]["lr"] == 2e-4  # no schedule for D
    trainer.save_checkpoint(tmp_path / "mid.ckpt")

    resumed = _model(schedulers=decay)
    trainer = _trainer(tmp_path, max_steps=6)
    trainer.fit(resumed, train_dataloaders=torch.utils.data.DataLoader(_Images(n=16), batch_size=8),
                ckpt_path=tmp_path / "mid.ckpt")
    assert int(resumed.images_seen) == 24
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(1e-3 * 0.0)


def test_schedule_for_an_unknown_optimizer_is_refused(tmp_path):
    model = _model(schedulers={"q": functools.partial(ConstantThenLinearDecay, constant_images=1, decay_images=1)})
    with pytest.raises(ConfigError, match=r"names \['q'\].*optimizers are \['d', 'g'\]"):
        _fit_one_batch(model, tmp_path)
