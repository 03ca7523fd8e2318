"""CycleGAN (Zhu et al. 2017): unpaired image-to-image translation with cycle consistency.

Names, ours → the paper's → the reference code's (junyanz/pytorch-CycleGAN-and-pix2pix ``cycle_gan_model.py``):
``generator["a2b"]`` = G: X→Y = ``netG_A``; ``generator["b2a"]`` = F: Y→X = ``netG_B``; ``discriminator_a`` = D_X
(real A vs F(B)) = ``netD_B``; ``discriminator_b`` = D_Y (real B vs G(A)) = ``netD_A`` (the reference names each D
after the generator it judges; ours after the domain it judges). Images N×C×H×W in [-1, 1]; D's output N×1×H'×W'
patch scores.

Losses (paper eq. 1–3, 6; §7.1 for the least-squares form and the identity term), a = batch["a"], b = batch["b"]:
- generators, one step for G and F together, D's frozen:
    L_G = L_gan(D_B(G(a)), real) + L_gan(D_A(F(b)), real)
        + λ_A·‖F(G(a)) − a‖₁ + λ_B·‖G(F(b)) − b‖₁                          (cycle, λ = 10 each way)
        + λ_idt·(λ_B·‖G(b) − b‖₁ + λ_A·‖F(a) − a‖₁)                       (identity, λ_idt = 0.5: 0.5·λ)
- discriminators, one step for both after the generators', on fakes from the history pools (50 each, §4):
    L_D_B = ½·(L_gan(D_B(b), real) + L_gan(D_B(pool_b(G(a))), fake)),   L_D_A likewise with F(b) and a.
with L_gan least squares by default (``gan_loss``: (D(x) − 1)² for real, D(x)² for fake) and ‖·‖₁ a mean.
Adam(2e-4, β = (0.5, 0.999)) for both optimizers; the learning rate constant, then linearly down to 0 (``schedulers``,
counted in images: src/models/schedules.py).

Evaluation: see :mod:`src.models.translation`; per image also ``val/cycle_l1_a`` = ‖F(G(a)) − a‖₁ and
``val/cycle_l1_b`` = ‖G(F(b)) − b‖₁. Grids ``cycle_a``: rows A | G(A) | F(G(A)), ``cycle_b``: B | F(B) | G(F(B)).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Annotated

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.metrics.attribute_judge import JudgeSettings
from src.models.translation import Direction, EvalSize, GridSize, TranslationModule, per_image_l1
from src.nets.image_pool import ImagePool
from src.nets.losses import LeastSquaresGANLoss
from src.utils.arguments import Meaning, checked
from src.utils.errors import ConfigError

Weight = Annotated[float, Meaning("a loss weight", at_least=0)]


class CycleGAN(TranslationModule):
    """Args:
    generator_a2b, generator_b2a: G and F (e.g. :class:`src.nets.resnet_generator.ResnetGenerator`).
    discriminator_a, discriminator_b: D_X and D_Y (:class:`src.nets.patchgan.PatchGAN`).
    optimizer_g, optimizer_d: optimizer factories (``_partial_``) for both generators / both discriminators.
    image_shape: (C, H, W) of both domains' images.
    gan_loss: a pair ``real(scores)``, ``fake(scores)`` (:mod:`src.nets.losses`; least squares in the paper).
    lambda_a, lambda_b: the cycle loss weights (10).
    lambda_identity: the identity loss weight relative to the cycle weights (0.5; 0 for none).
    pool_size: the fakes each history pool keeps (50; 0: D's see the newest fakes only).
    The others: see :class:`TranslationModule` and :class:`src.models.base.GANModule`.
    """

    @checked
    def __init__(
        self,
        generator_a2b: nn.Module,
        generator_b2a: nn.Module,
        discriminator_a: nn.Module,
        discriminator_b: nn.Module,
        optimizer_g: partial,
        optimizer_d: partial,
        image_shape: Sequence[int],
        gan_loss=LeastSquaresGANLoss(),
        lambda_a: Weight = 10.0,
        lambda_b: Weight = 10.0,
        lambda_identity: Weight = 0.5,
        pool_size: Annotated[int, Meaning("the fakes each history pool keeps", at_least=0)] = 50,
        primary: Direction = "a2b",
        eval_split: str = "val",
        eval_size: EvalSize = 500,
        grid_size: GridSize = 8,
        judge_settings: JudgeSettings | None = JudgeSettings(),
        judge_cache_dir: str | None = None,
        ema_decay: float | None = None,
        schedulers: Mapping | None = None,
    ):
        if lambda_identity > 0:
            for name, net in (("generator_a2b", generator_a2b), ("generator_b2a", generator_b2a)):
                c_in, c_out = getattr(net, "in_channels", None), getattr(net, "out_channels", None)
                if c_in != c_out:
                    raise ConfigError(
                        f"model.lambda_identity={lambda_identity} feeds each generator images of its output domain, "
                        f"but model.{name} takes {c_in} channels and gives {c_out}. Set model.lambda_identity=0, or "
                        f"give both domains the same channels.")
        super().__init__({"a2b": generator_a2b, "b2a": generator_b2a}, image_shape, primary, eval_split, eval_size, grid_size,
                         judge_settings, judge_cache_dir, ema_decay, schedulers)
        self.save_hyperparameters(ignore=["generator_a2b", "generator_b2a", "discriminator_a", "discriminator_b",
                                          "optimizer_g", "optimizer_d", "gan_loss", "schedulers", "judge_settings",
                                          "image_shape"])  # a ListConfig from Hydra; the grids keep the shape
        self.discriminator_a, self.discriminator_b = discriminator_a, discriminator_b
        self.optimizer_g, self.optimizer_d = optimizer_g, optimizer_d
        self.gan_loss = gan_loss
        self.pool_a, self.pool_b = ImagePool(pool_size, image_shape), ImagePool(pool_size, image_shape)

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        # One optimizer per role, over both nets of it (the reference's itertools.chain): the two D losses touch
        # disjoint parameters, so one step on their sum is a step of each.
        return {"g": self.optimizer_g(self.generator.parameters()),
                "d": self.optimizer_d([*self.discriminator_a.parameters(), *self.discriminator_b.parameters()])}

    def generator_losses(self, a: Tensor, b: Tensor) -> tuple[dict[str, Tensor], Tensor, Tensor]:
        """(the terms of L_G, G(a), F(b)); the terms are already weighted."""
        h = self.hparams
        fake_b, fake_a = self.translate("a2b", a), self.translate("b2a", b)
        terms = {
            "gan_a2b": self.gan_loss.real(self.discriminator_b(fake_b)),
            "gan_b2a": self.gan_loss.real(self.discriminator_a(fake_a)),
            "cycle_a": h.lambda_a * F.l1_loss(self.translate("b2a", fake_b), a),
            "cycle_b": h.lambda_b * F.l1_loss(self.translate("a2b", fake_a), b),
        }
        if h.lambda_identity > 0:
            terms["identity_b"] = h.lambda_identity * h.lambda_b * F.l1_loss(self.translate("a2b", b), b)
            terms["identity_a"] = h.lambda_identity * h.lambda_a * F.l1_loss(self.translate("b2a", a), a)
        return terms, fake_b, fake_a

    def discriminator_loss(self, discriminator: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        """½·(L_gan(D(real), real) + L_gan(D(fake), fake)): the reference halves D's loss to slow it down."""
        return 0.5 * (self.gan_loss.real(discriminator(real)) + self.gan_loss.fake(discriminator(fake)))

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        optimizer_g, optimizer_d = self.optimizers()
        a, b = batch["a"], batch["b"]
        terms, fake_b, fake_a = self.generator_losses(a, b)
        loss_g = sum(terms.values())
        self.check_finite({"loss_g": loss_g})
        self.step(optimizer_g, loss_g)  # D's are frozen in this step (toggle_optimizer)

        loss_d_b = self.discriminator_loss(self.discriminator_b, b, self.pool_b.query(fake_b.detach()))
        loss_d_a = self.discriminator_loss(self.discriminator_a, a, self.pool_a.query(fake_a.detach()))
        self.check_finite({"loss_d_a": loss_d_a, "loss_d_b": loss_d_b})
        self.step(optimizer_d, loss_d_a + loss_d_b)

        self.log_dict({"train/loss_g": loss_g.detach(), "train/loss_d_a": loss_d_a.detach(),
                       "train/loss_d_b": loss_d_b.detach(), "train/lr_g": optimizer_g.param_groups[0]["lr"],
                       **{f"train/{name}": value.detach() for name, value in terms.items()}})

    def per_image_figures(self, batch: Mapping[str, Tensor], translations: Mapping[str, Tensor]) -> dict[str, Tensor]:
        net = self.eval_generator
        return {"cycle_l1_a": per_image_l1(self.translate("b2a", translations["a2b"], net), batch["a"]),
                "cycle_l1_b": per_image_l1(self.translate("a2b", translations["b2a"], net), batch["b"])}

    @torch.no_grad()
    def visualizations(self) -> dict[str, tuple[Tensor, int]]:
        net = self.eval_generator
        fake_b, fake_a = self.translate("a2b", self.grid_a, net), self.translate("b2a", self.grid_b, net)
        return {"cycle_a": self.rows(self.grid_a, fake_b, self.translate("b2a", fake_b, net)),
                "cycle_b": self.rows(self.grid_b, fake_a, self.translate("a2b", fake_a, net))}
