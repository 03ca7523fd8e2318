"""pix2pix (Isola et al. 2017): paired image-to-image translation with a conditional GAN and an L1 term.

Names, ours → the paper's → the reference code's (junyanz/pytorch-CycleGAN-and-pix2pix ``pix2pix_model.py``):
``generator["a2b"]`` = G (a U-Net, :class:`src.nets.unet_generator.UnetGenerator`) = ``netG``; ``discriminator`` =
D, a PatchGAN on the input and output concatenated on channels (:class:`src.nets.patchgan.PatchGAN` with
``in_channels`` = C_a + C_b) = ``netD``. x = batch["a"], y = batch["b"] its pixel-aligned pair; images in [-1, 1].

Losses (paper eq. 1–4; G's noise is its dropout, no z):
- D first:  L_D = ½·(L_gan(D(x, y), real) + L_gan(D(x, G(x)), fake))   (halved, as the paper's §3.3 advises)
- then G:   L_G = L_gan(D(x, G(x)), real) + λ_L1·‖y − G(x)‖₁            (λ_L1 = 100)
with L_gan the original GAN loss with the non-saturating G term (BCE on logits; ``gan_loss``), ‖·‖₁ a mean.
Adam(2e-4, β = (0.5, 0.999)); constant then linearly decaying learning rate (``schedulers``).

Evaluation: see :mod:`src.models.translation` (direction a2b only); per image also ``val/l1`` = ‖G(x) − y‖₁ and
``val/ssim`` (SSIM of G(x) and y, Gaussian 11×11 window, both mapped to [0, 1]). Evaluation runs G in eval mode
(dropout off, batch norm's running statistics), so scores are deterministic; the paper keeps dropout and batch
statistics at test time, which at batch 1 is instance normalisation. Grid ``translation``: rows A | G(A) | B.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Annotated, ClassVar

import torch
from torch import Tensor, nn
from torchmetrics.functional.image import structural_similarity_index_measure

from src.metrics.attribute_judge import JudgeSettings
from src.models.translation import EvalSize, GridSize, TranslationModule, per_image_l1
from src.nets.losses import VanillaGANLoss
from src.utils.arguments import Meaning, checked
from src.utils.errors import ConfigError


def ground_truth_figures(fake: Tensor, real: Tensor) -> dict[str, Tensor]:
    """Per item of N×C×H×W translations and their ground truth (both in [-1, 1]): ``l1`` (mean absolute
    difference) and ``ssim`` (Gaussian 11×11 window, both mapped to [0, 1])."""
    ssim = structural_similarity_index_measure((fake.float() + 1) / 2, (real.float() + 1) / 2, data_range=1.0,
                                               reduction="none")
    return {"l1": per_image_l1(fake, real), "ssim": ssim}


class Pix2Pix(TranslationModule):
    """Args:
    generator: G: A → B.
    discriminator: the conditional PatchGAN, ``in_channels`` = G's input + output channels.
    optimizer_g, optimizer_d: optimizer factories (``_partial_``).
    image_shape: (C, H, W) of the images.
    gan_loss: a pair ``real(logits)``, ``fake(logits)`` (:mod:`src.nets.losses`; vanilla in the paper).
    lambda_l1: the L1 weight (100).
    The others: see :class:`TranslationModule` and :class:`src.models.base.GANModule`.
    """

    data_kinds: ClassVar[tuple[str, ...]] = ("paired",)

    @checked
    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        optimizer_g: partial,
        optimizer_d: partial,
        image_shape: Sequence[int],
        gan_loss=VanillaGANLoss(),
        lambda_l1: Annotated[float, Meaning("the L1 loss weight", at_least=0)] = 100.0,
        eval_split: str = "val",
        eval_size: EvalSize = 500,
        grid_size: GridSize = 8,
        judge_settings: JudgeSettings | None = JudgeSettings(),
        judge_cache_dir: str | None = None,
        ema_decay: float | None = None,
        schedulers: Mapping | None = None,
    ):
        pair = getattr(generator, "in_channels", 0) + getattr(generator, "out_channels", 0)
        if getattr(discriminator, "in_channels", pair) != pair:
            raise ConfigError(f"model.discriminator.in_channels={discriminator.in_channels}: pix2pix's D sees the "
                              f"input and the output together, {pair} channels; set it to {pair}.")
        super().__init__({"a2b": generator}, image_shape, "a2b", eval_split, eval_size, grid_size, judge_settings,
                         judge_cache_dir, ema_decay, schedulers)
        self.save_hyperparameters(ignore=["generator", "discriminator", "optimizer_g", "optimizer_d", "gan_loss",
                                          "schedulers", "judge_settings", "image_shape"])
        self.discriminator = discriminator
        self.optimizer_g, self.optimizer_d = optimizer_g, optimizer_d
        self.gan_loss = gan_loss

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"g": self.optimizer_g(self.generator.parameters()),
                "d": self.optimizer_d(self.discriminator.parameters())}

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        optimizer_g, optimizer_d = self.optimizers()
        x, y = batch["a"], batch["b"]
        fake = self.translate("a2b", x)

        d_real = self.discriminator(torch.cat([x, y], dim=1))
        d_fake = self.discriminator(torch.cat([x, fake.detach()], dim=1))
        loss_d = 0.5 * (self.gan_loss.real(d_real) + self.gan_loss.fake(d_fake))
        self.check_finite({"loss_d": loss_d})
        self.step(optimizer_d, loss_d)

        gan = self.gan_loss.real(self.discriminator(torch.cat([x, fake], dim=1)))
        l1 = torch.nn.functional.l1_loss(fake, y)
        loss_g = gan + self.hparams.lambda_l1 * l1
        self.check_finite({"loss_g": loss_g})
        self.step(optimizer_g, loss_g)

        self.log_dict({"train/loss_d": loss_d.detach(), "train/loss_g": loss_g.detach(), "train/gan": gan.detach(),
                       "train/l1": l1.detach(), "train/lr_g": optimizer_g.param_groups[0]["lr"]})

    def per_image_figures(self, batch: Mapping[str, Tensor], translations: Mapping[str, Tensor]) -> dict[str, Tensor]:
        return ground_truth_figures(translations["a2b"], batch["b"])

    @torch.no_grad()
    def visualizations(self) -> dict[str, tuple[Tensor, int]]:
        return {"translation": self.rows(self.grid_a, self.translate("a2b", self.grid_a, self.eval_generator),
                                         self.grid_b)}
