"""InfoGAN (Chen et al. 2016): a GAN whose latent carries codes c that Q must recover from G(z, c).

Objective (paper eq. 5): min_{G,Q} max_D  V(D, G) − λ·L_I(G, Q), with the variational MI lower bound
L_I = E_{c∼P(c), x∼G(z,c)}[log Q(c | x)] + H(c). Following openai/InfoGAN `infogan_trainer.py`:

- D step:  L_D = BCE(D(x), real) + BCE(D(G(z, c)), fake) + λ_cat·CE(Q_cat, c_cat) + λ_cont·NLL(Q_cont, c_cont)
           updates D's body, its real/fake head and the Q head (Q lives with D and trains with its optimizer).
- G step:  L_G = BCE(D(G(z, c)), real) + the same λ-weighted code losses, updating G only.

Beyond the paper (off by default): an R1 gradient penalty on real images in the D step, γ/2·E‖∇ₓD(x)‖²
(``r1_gamma``; Mescheder et al. 2018), optionally lazy (every ``r1_every`` batches, StyleGAN2). The embedded
digits job uses it: on 1,500 training images the unregularised D overfits (its loss → 0.1), G's fakes and
with them the categorical code stay entangled (cat_acc ≈ 0.75, experiments/results/infogan_digits_paper_losses.json).

Latent: noise (``noise_dim``, Uniform(−1, 1) as in openai's MNIST spec, or normal), one categorical code
(``n_categories`` classes, uniform), ``n_continuous`` codes ∼ Uniform(−1, 1).
Metric of its own: ``val/cat_acc``, Q's categorical prediction on held-out real images matched
one-to-one to the labels (Hungarian), the paper's "5% error on MNIST" measure.
"""
from __future__ import annotations

import math
from functools import partial
from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from src.metrics.clustering import cluster_accuracy
from src.models.base import EvalStream, GANModule
from src.nets.infogan import InfoGANDiscriminator, InfoGANGenerator, QOutput
from src.nets.losses import bce_fake, bce_real, gaussian_nll, r1_penalty
from src.utils.arguments import Meaning, checked

Weight = Annotated[float, Meaning("a loss weight", at_least=0)]


class InfoGAN(GANModule):
    @checked
    def __init__(
        self,
        generator: InfoGANGenerator,
        discriminator: InfoGANDiscriminator,
        optimizer_g: partial,
        optimizer_d: partial,
        noise_dim: Annotated[int, Meaning("the size of the noise z", at_least=0)] = 62,
        n_categories: Annotated[int, Meaning("the classes of the categorical code", at_least=1)] = 10,
        n_continuous: Annotated[int, Meaning("the number of continuous codes", at_least=0)] = 2,
        lambda_cat: Weight = 1.0,
        lambda_cont: Weight = 1.0,
        noise_distribution: Annotated[Literal["uniform", "normal"], Meaning("the distribution of z")] = "uniform",
        r1_gamma: Annotated[float, Meaning("the R1 penalty weight, 0 for none", at_least=0)] = 0.0,
        r1_every: Annotated[int, Meaning("apply R1 every this many batches", at_least=1)] = 1,
        traversal_range: float = 2.0,
        grid_columns: Annotated[int, Meaning("columns of the sample grids", at_least=1)] = 10,
        ema_decay: float | None = None,
        schedulers: dict | None = None,
    ):
        super().__init__(generator, ema_decay=ema_decay, schedulers=schedulers)
        self.save_hyperparameters(ignore=["generator", "discriminator", "optimizer_g", "optimizer_d", "schedulers"])
        self.discriminator = discriminator
        self.optimizer_g, self.optimizer_d = optimizer_g, optimizer_d
        # Fixed draws for the grids, stored with the model so grids stay comparable across epochs and resumes.
        self.register_buffer("grid_noise", self._noise(grid_columns))
        self.register_buffer("grid_continuous", self._uniform(grid_columns, n_continuous))
        self._val_predictions: list[Tensor] = []
        self._val_labels: list[Tensor] = []

    # ----- latent ---------------------------------------------------------------------------------
    def _uniform(self, n: int, dim: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.rand(n, dim, device=self.device, generator=generator) * 2 - 1

    def _noise(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        if self.hparams.noise_distribution == "uniform":
            return self._uniform(n, self.hparams.noise_dim, generator)
        return torch.randn(n, self.hparams.noise_dim, device=self.device, generator=generator)

    def sample_codes(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """(noise N×noise_dim, categorical N int64, continuous N×n_continuous in [−1, 1]), drawn from
        ``generator`` (default: the global RNG, the training stream)."""
        categorical = torch.randint(0, self.hparams.n_categories, (n,), device=self.device, generator=generator)
        return self._noise(n, generator), categorical, self._uniform(n, self.hparams.n_continuous, generator)

    def generate(self, noise: Tensor, categorical: Tensor, continuous: Tensor, net: torch.nn.Module | None = None) -> Tensor:
        """G(z, c): images N×C×H×W in [-1, 1], by ``net`` (default: the trained generator)."""
        one_hot = F.one_hot(categorical, self.hparams.n_categories).to(noise.dtype)
        return (net or self.generator)(torch.cat([noise, one_hot, continuous], dim=1))

    def code_losses(self, q: QOutput, categorical: Tensor, continuous: Tensor) -> dict[str, Tensor]:
        """−log Q(c | x) per code type: cross-entropy (categorical), Gaussian NLL (continuous)."""
        return {
            "cat": F.cross_entropy(q.cat_logits, categorical),
            "cont": gaussian_nll(continuous, q.cont_mean, q.cont_log_std),
        }

    def info_penalty(self, losses: dict[str, Tensor]) -> Tensor:
        return self.hparams.lambda_cat * losses["cat"] + self.hparams.lambda_cont * losses["cont"]

    # ----- training ---------------------------------------------------------------------------------
    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"g": self.optimizer_g(self.generator.parameters()),
                "d": self.optimizer_d(self.discriminator.parameters())}  # D: body, D head and Q head

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        optimizer_g, optimizer_d = self.optimizers()
        real = batch["image"]
        noise, categorical, continuous = self.sample_codes(real.shape[0])
        fake = self.generate(noise, categorical, continuous)

        regularize = self.hparams.r1_gamma > 0 and self.trainer.fit_loop.total_batch_idx % self.hparams.r1_every == 0
        if regularize:
            real = real.detach().requires_grad_(True)
        real_logits, _ = self.discriminator(real)
        fake_logits, q = self.discriminator(fake.detach())
        code_d = self.code_losses(q, categorical, continuous)
        loss_d = bce_real(real_logits) + bce_fake(fake_logits) + self.info_penalty(code_d)
        if regularize:
            # Lazy regularisation (StyleGAN2): every r1_every-th batch, weighted by r1_every to keep the average.
            r1 = r1_penalty(real_logits, real)
            loss_d = loss_d + 0.5 * self.hparams.r1_gamma * self.hparams.r1_every * r1
            self.log("train/r1", r1.detach())
        self.check_finite({"loss_d": loss_d})
        self.step(optimizer_d, loss_d)

        fake_logits, q = self.discriminator(fake)
        code_g = self.code_losses(q, categorical, continuous)
        loss_g = bce_real(fake_logits) + self.info_penalty(code_g)
        self.check_finite({"loss_g": loss_g})
        self.step(optimizer_g, loss_g)

        self.log_dict(
            {
                "train/loss_d": loss_d.detach(),
                "train/loss_g": loss_g.detach(),
                # L_I's categorical part: log K − CE is a lower bound on I(c_cat; G(z, c)), at most log K.
                "train/mi_cat": math.log(self.hparams.n_categories) - code_g["cat"].detach(),
                "train/nll_cont": code_g["cont"].detach(),
                "train/d_real": torch.sigmoid(real_logits).mean().detach(),
            }
        )

    # ----- evaluation ---------------------------------------------------------------------------------
    def evaluation_streams(self) -> list[EvalStream]:
        """``samples``: G(z, c) with z and c from the prior, against real training images."""
        return [EvalStream("samples", make=self.draw)]

    @torch.no_grad()
    def draw(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n fresh fakes from the prior by the evaluation generator (the EMA copy when on)."""
        return self.generate(*self.sample_codes(n, generator), net=self.eval_generator)

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        if "label" not in batch:
            return
        _, q = self.discriminator(batch["image"])
        self._val_predictions.append(q.cat_logits.argmax(dim=1))
        self._val_labels.append(batch["label"])

    def on_validation_epoch_end(self) -> None:
        if not self._val_predictions:
            return
        predictions = self.all_gather(torch.cat(self._val_predictions)).flatten()
        labels = self.all_gather(torch.cat(self._val_labels)).flatten()
        self._val_predictions.clear()
        self._val_labels.clear()
        self.log("val/cat_acc", cluster_accuracy(predictions.cpu(), labels.cpu()), prog_bar=True)

    @torch.no_grad()
    def visualizations(self) -> dict[str, tuple[Tensor, int]]:
        """``categorical``: row k draws categorical value k, columns vary the noise and continuous codes.
        ``traversal_c<j>``: row k is categorical value k, columns sweep code j over ±traversal_range
        with the noise and the other codes fixed (the paper's Figure 2)."""
        k, columns = self.hparams.n_categories, self.hparams.grid_columns
        rows = torch.arange(k, device=self.device).repeat_interleave(columns)
        net = self.eval_generator
        grids = {
            "categorical": self.generate(self.grid_noise.repeat(k, 1), rows, self.grid_continuous.repeat(k, 1), net),
        }
        sweep = torch.linspace(-self.hparams.traversal_range, self.hparams.traversal_range, columns, device=self.device)
        noise = self.grid_noise[:1].expand(k * columns, -1)
        for j in range(self.hparams.n_continuous):
            continuous = torch.zeros(k * columns, self.hparams.n_continuous, device=self.device)
            continuous[:, j] = sweep.repeat(k)
            grids[f"traversal_c{j + 1}"] = self.generate(noise, rows, continuous, net)
        return {name: (images, columns) for name, images in grids.items()}
