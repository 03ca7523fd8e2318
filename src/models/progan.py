"""ProGAN (Karras et al. 2018): a GAN grown from 4×4 to its final resolution, each new block faded in.

Training (tkarras/progressive_growing_of_gans `train.py`, `loss.py`), per slice of a loader batch:
- phase = growth.at(images seen) (:mod:`src.models.growing`): stage d (resolution R = 2^(d+2)), α, batch size b.
- Real images x are average-pooled to R×R and, during a fade-in, blended with their 2× coarser version:
  x_R = lerp(upsample(avgpool(x_R)), x_R, α) (:func:`src.nets.progan.real_at`), as G's and D's outputs are.
- D step, with the selected loss (``loss``: :class:`src.nets.losses.WGANGP`, the paper's, or NonSaturating):
      WGAN-GP: L_D = E[D(G(z))] − E[D(x_R)] + λ·E[(‖∇D(x̂)‖ − 1)²] + 0.001·E[D(x_R)²]   (norm over C·H·W)
- G step: L_G = −E[D(G(z))]; then the EMA shadow copy of G (0.999) is updated (base class).
- z ∼ N(0, I)^latent_dim; G pixel-normalises it first: the latent lives on the hypersphere (paper).
- With ``reset_optimizers`` the Adam moments are reset whenever a fade-in or a stabilisation begins (the
  reference's ``reset_opt_for_new_lod``); the phase is in the checkpoint, so a resume does not reset again.

Per-stage batch sizes without rebuilding data loaders: the loader batch is ``data.batch_size`` (per process); a
stage of batch size b (which must divide it: checked when fitting starts) makes data.batch_size / b iterations, each
a D step and a G step, on consecutive slices of the loader batch, each at the phase of the images seen before it.

Evaluation (by the EMA generator, at the current stage and α): the ``samples`` stream (fakes at R×R against the
real training images average-pooled to R×R); ``val/ms_ssim``, the mean MS-SSIM of ``ms_ssim_pairs`` pairs of
samples (lower = more diverse; :mod:`src.metrics.ms_ssim` says how small sides are handled) and ``val/ms_ssim_real``,
the same of pairs of real images at R×R for reference; ``val/resolution`` and ``val/alpha``. Grids: ``samples`` and
``interpolation`` (rows of spherical interpolations between two fixed latents). G's output is linear; evaluation,
grids and sampling clamp it to [−1, 1].

Subclass hooks (T2F, :mod:`src.models.t2f`, adds text conditioning with them): :meth:`sample_inputs`,
:meth:`make_fakes`, :meth:`critic`, :meth:`extra_d_loss`, :meth:`extra_g_loss`.
"""
from __future__ import annotations

from functools import partial
from typing import Annotated, Any

import torch
from torch import Tensor

from src.metrics.ms_ssim import pairwise_ms_ssim
from src.models.base import EvalStream, GANModule, RealSet
from src.models.growing import GrowthSchedule, Phase
from src.nets.losses import NonSaturating, WGANGP
from src.nets.progan import ProGANDiscriminator, ProGANGenerator, pixel_norm, real_at
from src.utils.arguments import Meaning, checked
from src.utils.errors import ConfigError

Count = Annotated[int, Meaning("a number of images", at_least=1)]


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation between latents a, b (N×D, pixel-normalised onto the sphere of radius √D) at t (T):
    N×T×D on the same sphere."""
    a, b = pixel_norm(a), pixel_norm(b)
    cos = ((a * b).sum(1) / a.shape[1]).clamp(-1 + 1e-7, 1 - 1e-7)
    omega = torch.acos(cos)[:, None, None]
    t = t[None, :, None]
    return (torch.sin((1 - t) * omega) * a[:, None] + torch.sin(t * omega) * b[:, None]) / torch.sin(omega)


def slice_batch(batch: dict[str, Any], start: int, stop: int) -> dict[str, Any]:
    """Items start…stop−1 of a collated batch dict (tensors and lists)."""
    return {key: value[start:stop] for key, value in batch.items()}


class ProGAN(GANModule):
    """Args:
        generator, discriminator: :class:`ProGANGenerator`, :class:`ProGANDiscriminator` of the same resolution.
        optimizer_g, optimizer_d: ``_partial_`` optimizers (paper: Adam lr 1e-3, β (0, 0.99), ε 1e-8).
        growth: the :class:`GrowthSchedule` (fade/stable images and batch size per stage).
        loss: :class:`WGANGP` (paper) or :class:`NonSaturating`.
        latent_dim: the size of z (paper 512).
        reset_optimizers: reset Adam's moments at every new fade-in and stabilisation (reference code).
        ms_ssim_pairs: pairs of samples (and of real images) for ``val/ms_ssim``; 0: not computed.
        grid_rows, grid_columns: the sample grid; the interpolation grid has ``grid_rows`` rows of ``grid_columns``.
        ema_decay: the generator EMA used for evaluation (paper 0.999); schedulers: see :class:`GANModule`.
    """

    data_kinds = ("image",)
    ema_each_batch = False  # the EMA steps after every G step (each slice), the paper's 0.999 per minibatch

    @checked
    def __init__(
        self,
        generator: ProGANGenerator,
        discriminator: ProGANDiscriminator,
        optimizer_g: partial,
        optimizer_d: partial,
        growth: GrowthSchedule,
        loss: WGANGP | NonSaturating,
        latent_dim: Annotated[int, Meaning("the size of the latent z", at_least=1)] = 512,
        reset_optimizers: bool = True,
        ms_ssim_pairs: Annotated[int, Meaning("pairs of images for val/ms_ssim, 0 for none", at_least=0)] = 64,
        grid_rows: Annotated[int, Meaning("rows of the sample grids", at_least=1)] = 8,
        grid_columns: Annotated[int, Meaning("columns of the sample grids", at_least=2)] = 8,
        ema_decay: float | None = 0.999,
        schedulers: dict | None = None,
    ):
        super().__init__(generator, ema_decay=ema_decay, schedulers=schedulers)
        self.save_hyperparameters(ignore=["generator", "discriminator", "optimizer_g", "optimizer_d", "growth", "loss",
                                          "schedulers"])
        self.discriminator = discriminator
        self.optimizer_g, self.optimizer_d = optimizer_g, optimizer_d
        self.growth, self.loss = growth, loss
        image_generator = self.image_generator(generator)
        for name, net in (("generator", image_generator), ("discriminator", discriminator)):
            if net.resolution != growth.resolution:
                raise ConfigError(f"model.{name} grows to {net.resolution}×{net.resolution} but model.growth.resolution"
                                  f"={growth.resolution}; both follow data.image_size.")
        # The phase last trained at (stage, fading), to reset the optimizers when it changes; -1: none yet.
        self.register_buffer("trained_phase", torch.full((2,), -1, dtype=torch.int64))
        self._grid_buffers()

    # ----- what T2F changes ---------------------------------------------------------------------------------
    @staticmethod
    def image_generator(generator: torch.nn.Module) -> ProGANGenerator:
        """The growing image generator inside ``generator`` (ProGAN: itself)."""
        return generator

    def _grid_buffers(self) -> None:
        rows, columns, dim = self.hparams.grid_rows, self.hparams.grid_columns, self.hparams.latent_dim
        generator = torch.Generator().manual_seed(0)
        self.register_buffer("grid_latents", torch.randn(rows * columns, dim, generator=generator))
        self.register_buffer("grid_ends", torch.randn(2, rows, dim, generator=generator))

    def sample_inputs(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """G's random inputs for the items of ``batch`` (ProGAN: z only), from ``generator`` (default: training RNG)."""
        n = self.batch_size_of(batch)
        return {"z": torch.randn(n, self.hparams.latent_dim, device=self.device, generator=generator)}

    def make_fakes(self, inputs: dict[str, Tensor], phase: Phase, net: torch.nn.Module,
                   generator: torch.Generator | None = None) -> tuple[Tensor, dict]:
        """(fakes N×C×R×R, what the critic and the extra losses need) by ``net`` at ``phase``; any randomness inside
        the net from ``generator`` (default: the training RNG)."""
        return net(inputs["z"], phase.stage, phase.alpha), {}

    def critic(self, images: Tensor, phase: Phase, extras: dict, for_generator: bool = False) -> Tensor:
        """D's scores N of ``images`` at ``phase`` (given what :meth:`make_fakes` returned), in D's step or, with
        ``for_generator``, in G's."""
        return self.discriminator(images, phase.stage, phase.alpha)

    def fake_weight(self) -> float:
        """The weight of the fakes' term in D's loss (T2F: 1 − the matching-aware term's weight)."""
        return 1.0

    def extra_d_loss(self, real: Tensor, real_scores: Tensor, phase: Phase, extras: dict) -> dict[str, Tensor]:
        """Terms added to D's loss, by name (T2F: the matching-aware term), given D's scores of the real images."""
        return {}

    def extra_g_loss(self, extras: dict) -> dict[str, Tensor]:
        """Terms added to G's loss, by name (T2F: the KL of the conditioning augmentation)."""
        return {}

    # ----- training ---------------------------------------------------------------------------------------
    @property
    def phase(self) -> Phase:
        """The growing phase at the images seen so far."""
        return self.growth.at(int(self.images_seen))

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"g": self.optimizer_g(self.generator.parameters()),
                "d": self.optimizer_d(self.discriminator.parameters())}

    def on_fit_start(self) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None:
            self.growth.check_loader_batch(datamodule.batch_size)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        n, world = self.batch_size_of(batch), self.trainer.world_size
        self.growth.check_loader_batch(n)
        start, logged = 0, {}
        while start < n:
            phase = self.growth.at(int(self.images_seen) + start * world)
            stop = min(n, start + phase.batch_size)
            logged = self.train_slice(slice_batch(batch, start, stop), phase)
            start = stop
        self.log_dict(logged)  # the last slice's figures: one value per key and batch

    def _enter(self, phase: Phase) -> None:
        key = torch.tensor([phase.stage, int(phase.fading)], device=self.trained_phase.device)
        if torch.equal(key, self.trained_phase):
            return
        if self.hparams.reset_optimizers and self.trained_phase[0] >= 0:
            for optimizer in self.optimizers():
                optimizer.optimizer.state.clear()
        self.trained_phase.copy_(key)

    def train_slice(self, batch: dict[str, Any], phase: Phase) -> dict[str, Tensor]:
        """One D step and one G step on ``batch`` at ``phase``; returns what to log."""
        self._enter(phase)
        optimizer_g, optimizer_d = self.optimizers()
        inputs = self.sample_inputs(batch)
        fake, extras = self.make_fakes(inputs, phase, self.generator)
        real = real_at(batch["image"], phase.resolution, phase.alpha)

        critic = partial(self.critic, phase=phase, extras=extras)
        real_scores, fake_scores = critic(real), critic(fake.detach())
        penalty = self.loss.penalty(critic, real, fake)
        extra_d = self.extra_d_loss(real, real_scores, phase, extras)
        loss_d = (self.loss.real_term(real_scores) + self.fake_weight() * self.loss.fake_term(fake_scores) + penalty
                  + sum(extra_d.values()))
        self.check_finite({"loss_d": loss_d})
        self.step(optimizer_d, loss_d)

        extra_g = self.extra_g_loss(extras)
        loss_g = self.loss.generator_loss(critic(fake, for_generator=True)) + sum(extra_g.values())
        self.check_finite({"loss_g": loss_g})
        self.step(optimizer_g, loss_g)
        self.update_ema()
        return {
            "train/loss_d": loss_d.detach(), "train/loss_g": loss_g.detach(), "train/penalty": penalty.detach(),
            "train/d_real": real_scores.mean().detach(), "train/d_fake": fake_scores.mean().detach(),
            **{f"train/{name}": value.detach() for name, value in {**extra_d, **extra_g}.items()},
            "train/resolution": float(phase.resolution), "train/alpha": float(phase.alpha),
            "train/batch_size": float(phase.batch_size),
        }

    # ----- evaluation ---------------------------------------------------------------------------------------
    def evaluation_streams(self) -> list[EvalStream]:
        """``samples``: fakes of the EMA generator at the current stage and α, against real training images at the
        current resolution."""
        return [EvalStream("samples", make=self.draw, real=RealSet("train", size=self.phase.resolution))]

    @torch.no_grad()
    def draw(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n fakes (N×C×R×R in [−1, 1]) of the evaluation generator at the current phase, drawn from ``generator``."""
        inputs = {"z": torch.randn(n, self.hparams.latent_dim, device=self.device, generator=generator)}
        return self.make_fakes(inputs, self.phase, self.eval_generator)[0].clamp(-1, 1)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Nothing per batch: the figures are made at the epoch's end (and by the FID callback)."""

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        phase = self.phase
        figures = {"val/resolution": float(phase.resolution), "val/alpha": float(phase.alpha)}
        pairs = self.hparams.ms_ssim_pairs
        if pairs:
            generator = torch.Generator(self.device).manual_seed(0)
            fakes = self.draw(2 * pairs, generator)
            figures["val/ms_ssim"] = pairwise_ms_ssim(fakes[:pairs], fakes[pairs:])
            real = self._real_images(2 * pairs)
            if len(real) >= 2:
                half = len(real) // 2
                real = real_at(real[: 2 * half].to(self.device), phase.resolution, 1.0)
                figures["val/ms_ssim_real"] = pairwise_ms_ssim(real[:half], real[half:])
        self.log_dict(figures, sync_dist=True)

    def _real_images(self, n: int) -> Tensor:
        """The first ``n`` images of the training split's evaluation subset (those FID uses), N×C×S×S."""
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is None:
            return torch.empty(0)
        subset = datamodule.eval_subset("train", n)
        return torch.stack([subset[i]["image"] for i in range(len(subset))])

    @torch.no_grad()
    def visualizations(self) -> dict[str, tuple[Tensor, int]]:
        """``samples``: fixed latents; ``interpolation``: each row slerps between two fixed latents (columns: t from
        0 to 1), by the evaluation generator at the current phase."""
        phase, net, columns = self.phase, self.eval_generator, self.hparams.grid_columns
        t = torch.linspace(0, 1, columns, device=self.device)
        path = slerp(self.grid_ends[0], self.grid_ends[1], t).flatten(0, 1)
        grids = {"samples": self.make_fakes({"z": self.grid_latents}, phase, net)[0],
                 "interpolation": self.make_fakes({"z": path}, phase, net)[0]}
        return {name: (images.clamp(-1, 1), columns) for name, images in grids.items()}
