"""VAE-GAN (Larsen et al. 2016, "Autoencoding beyond pixels using a learned similarity metric", Algorithm 1).

Names (paper → here): Enc → ``encoder`` (μ, log σ²), Dec → ``decoder`` (also the GAN's generator), Dis →
``discriminator``, Dis_l(x) → the features D returns beside its logits (a conv layer's output before its BN: the
4th, the paper's, unless ``discriminator.similarity_layer`` picks another).
Per batch X of real images (N×C×H×W in [-1, 1]), with ε, Z_p ~ N(0, I) (N×latent_dim):

    Z = μ(X) + σ(X) ⊙ ε,   X̃ = Dec(Z),   X_p = Dec(Z_p)
    L_prior = KL(q(Z|X) ‖ N(0, I))                                  (sum over code dims, batch mean)
    L_llike = −log N(Dis_l(X); Dis_l(X̃), I) = ½ ‖Dis_l(X̃) − Dis_l(X)‖²   (σ = 1; sum over C·H·W of the features,
                                                                     batch mean, the constant dropped)
    Enc ← ∇(L_prior + L_llike)                                      no GAN gradient reaches the encoder
    Dec ← ∇(γ·L_llike + L_GAN^Dec)                                  γ: the paper's convention (Alg. 1), the weight
                                                                     on L_llike in the decoder's loss
    Dis ← ∇ L_GAN^Dis                                               GAN loss only: L_llike never trains D

``discriminator_mode`` (``binary`` | ``three_class``) picks the GAN losses:
- binary (the paper): L_GAN^Dis = BCE(D(X), real) + BCE(D(X̃), fake) + BCE(D(X_p), fake);
  L_GAN^Dec = BCE(D(X̃), real) + BCE(D(X_p), real), the non-saturating form of −L_GAN.
- three_class (the lecture's variant): D's 3 logits are real / reconstruction / prior sample; L_GAN^Dis =
  CE(D(X), real) + CE(D(X̃), reconstruction) + CE(D(X_p), prior); L_GAN^Dec = CE(D(X̃), real) + CE(D(X_p), real).
With ``real_weight`` w, D's three terms (real, X̃, X_p) are weighed 3·(w, (1 − w)/2, (1 − w)/2) (w = 1/3: the sums);
null takes the mode's own: binary 0.66 (the reference code's CelebA setting), three_class 1/3 (the classes alike;
0.66 held its D back: experiments/results/vaegan_faces_three_class_equal_weights.json).

On γ: the reference code (andersbll/autoencoding_beyond_pixels `model/aegan.py`) scales the decoder's gradients as
w·∇L_llike − (1 − w)·∇L_GAN with w = ``recon_vs_gan_weight`` = 1e-5 for CelebA, so its weight sits on the
reconstruction term as in Algorithm 1 (not the other way); (1 − w) ≈ 1 is left out here. Its losses, like ours, are
per-image sums of ½·squared feature error, so γ carries over. Also from that code: ``real_weight``, the share of
real images in D's loss (its ``real_vs_gen_weight``, 0.66 for CelebA; the rest split between X̃ and X_p), and
``discriminator_batches=joint``: D sees [X, X̃, X_p] as one batch, and Dis_l(X̃), Dis_l(X) come from one forward of
[X̃, X], so D's batch norms normalise them together (``separate``: one forward per set, batch-norm statistics per
set, DCGAN's practice).

Equilibrium gating (the reference code's ``equilibrium`` 0.68 and ``margin`` 0.35; ``equilibrium=None`` turns it
off): D's errors on this batch, before any update, are e_real (its loss on X, as real) and e_gen (the mean of its
losses on X̃ and X_p, as generated; three-class: each set's cross-entropy to its own class, scaled by ln 2 / ln 3
so that a D at chance errs ln 2 ≈ 0.69 in both modes). When either is below
equilibrium − margin, D is winning and skips its update; when either is above equilibrium + margin, D is losing
and Dec skips its update; never both (both then train). Without it, D wins within an epoch on the 32-px faces and
Dec collapses to one texture (experiments/results/vaegan_faces_ungated.json). The errors are averaged over ranks
first, so every rank takes the same decision (a rank that skipped a backward the others ran would hang DDP).

Every update uses the quantities of this batch computed before any of the three nets moved (as Algorithm 1, which
takes all gradients from one forward pass): the encoder step first (its forward toggled to the encoder, so no other
net records gradients), then the decoder step from the same Z (detached) and Z_p, then the D step on the same X̃ and
X_p (detached). Dis_l(X), the target of L_llike, passes no gradient. Three RMSProp optimizers, ``e``, ``g`` (the
decoder) and ``d`` (lr 3e-4, the paper).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Literal

import torch
from torch import Tensor

from src.models.autoencoding import GridColumns
from src.models.vae import GaussianAutoencoder
from src.nets.conv import ConvDecoder, LatentDim
from src.nets.losses import bce_fake, bce_real, cross_entropy_to, fixed_gaussian_nll, kl_to_standard_normal
from src.nets.vaegan import GaussianEncoder, VAEGANDiscriminator
from src.utils.arguments import Meaning, checked
from src.utils.errors import ConfigError

#: The three-class discriminator's classes.
REAL, RECONSTRUCTION, PRIOR = 0, 1, 2


def _binary_d(real: Tensor, reconstruction: Tensor, prior: Tensor) -> Tensor:
    return torch.stack([bce_real(real), bce_fake(reconstruction), bce_fake(prior)])


def _binary_g(reconstruction: Tensor, prior: Tensor) -> Tensor:
    return bce_real(reconstruction) + bce_real(prior)


def _three_class_d(real: Tensor, reconstruction: Tensor, prior: Tensor) -> Tensor:
    return torch.stack([cross_entropy_to(real, REAL), cross_entropy_to(reconstruction, RECONSTRUCTION),
                        cross_entropy_to(prior, PRIOR)])


def _three_class_g(reconstruction: Tensor, prior: Tensor) -> Tensor:
    return cross_entropy_to(reconstruction, REAL) + cross_entropy_to(prior, REAL)


@dataclass(frozen=True)
class AdversarialLosses:
    """One discriminator mode: D's number of logits, D's losses on (real, reconstruction, prior-sample) logits (one
    per set, stacked), the decoder's loss of (reconstruction, prior-sample) logits, D's errors (e_real, e_gen) for
    equilibrium gating, and the share of real images in D's loss when ``real_weight`` is null."""

    n_classes: int
    discriminator: Callable[[Tensor, Tensor, Tensor], Tensor]
    decoder: Callable[[Tensor, Tensor], Tensor]
    errors: Callable[[Tensor, Tensor, Tensor], Tensor]
    real_weight: float


def _binary_errors(real: Tensor, reconstruction: Tensor, prior: Tensor) -> Tensor:
    return torch.stack([bce_real(real), 0.5 * (bce_fake(reconstruction) + bce_fake(prior))])


def _three_class_errors(real: Tensor, reconstruction: Tensor, prior: Tensor) -> Tensor:
    """Each set's cross-entropy to its own class, times ln 2 / ln 3: a D at chance errs ln 2, as a binary one."""
    errors = torch.stack([cross_entropy_to(real, REAL),
                          0.5 * (cross_entropy_to(reconstruction, RECONSTRUCTION) + cross_entropy_to(prior, PRIOR))])
    return errors * (math.log(2) / math.log(3))


DISCRIMINATOR_MODES = {
    "binary": AdversarialLosses(1, _binary_d, _binary_g, _binary_errors, real_weight=0.66),
    "three_class": AdversarialLosses(3, _three_class_d, _three_class_g, _three_class_errors, real_weight=1 / 3),
}
DiscriminatorMode = Annotated[Literal["binary", "three_class"],
                              Meaning("the discriminator: real vs generated, or real / reconstruction / prior sample")]


DiscriminatorBatches = Annotated[Literal["joint", "separate"],
                                 Meaning("how D sees real images, reconstructions and prior samples: as one batch "
                                         "(the reference code) or each as its own")]


class VAEGAN(GaussianAutoencoder):
    """Args:
        encoder, decoder: Enc and Dec (:class:`~src.nets.vaegan.GaussianEncoder`, :class:`~src.nets.conv.ConvDecoder`).
        discriminator: a factory ``n_classes → VAEGANDiscriminator`` (a ``_partial_`` config): the mode sets n_classes.
        optimizer_e, optimizer_g, optimizer_d: ``_partial_`` optimizers of Enc, Dec and Dis.
        gamma: γ, the weight of L_llike in the decoder's loss (paper convention, see the module docstring).
        discriminator_mode: ``binary`` or ``three_class``.
        equilibrium, margin: the equilibrium gating of the reference code (module docstring); ``equilibrium=None``:
            every net updates at every batch (Algorithm 1 as printed).
    """

    @checked
    def __init__(self, encoder: GaussianEncoder, decoder: ConvDecoder, discriminator: partial,
                 optimizer_e: partial, optimizer_g: partial, optimizer_d: partial, latent_dim: LatentDim,
                 gamma: Annotated[float, Meaning("γ, the weight of the feature reconstruction in the decoder's loss",
                                                 at_least=0)] = 1e-5,
                 discriminator_mode: DiscriminatorMode = "binary", grid_columns: GridColumns = 8,
                 ema_decay: float | None = None, schedulers: dict | None = None,
                 equilibrium: Annotated[float | None, Meaning("D's error at balance", at_least=0)] = 0.68,
                 margin: Annotated[float, Meaning("the gating margin", at_least=0)] = 0.35,
                 discriminator_batches: DiscriminatorBatches = "joint",
                 real_weight: Annotated[float | None, Meaning("the share of real images in D's loss",
                                                              at_least=0)] = None):
        super().__init__(encoder, decoder, latent_dim, grid_columns, ema_decay, schedulers)
        self.save_hyperparameters(ignore=["encoder", "decoder", "discriminator", "optimizer_e", "optimizer_g",
                                          "optimizer_d", "schedulers"])
        self.adversarial = DISCRIMINATOR_MODES[discriminator_mode]
        self.discriminator: VAEGANDiscriminator = discriminator(n_classes=self.adversarial.n_classes)
        self.optimizer_e, self.optimizer_g, self.optimizer_d = optimizer_e, optimizer_g, optimizer_d
        self.register_grid_latents()
        # D's loss: Σ over (real, reconstructions, prior samples) of weight × that set's mean loss; the weights are
        # 3·(w, (1 − w)/2, (1 − w)/2) for real_weight w (1/3: each set weighs 1, Algorithm 1 as printed).
        w = self.adversarial.real_weight if real_weight is None else real_weight
        if w > 1:
            raise ConfigError(f"model.real_weight={real_weight}: the share of real images in D's loss is at most 1 "
                              "(null: the mode's own, binary 0.66 as the reference code, three_class 1/3).")
        self.register_buffer("set_weights", 3 * torch.tensor([w, (1 - w) / 2, (1 - w) / 2]), persistent=False)

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"e": self.optimizer_e(self.encoder.parameters()),
                "g": self.optimizer_g(self.decoder.parameters()),
                "d": self.optimizer_d(self.discriminator.parameters())}

    def _finite(self, name: str, loss: Tensor) -> Tensor:
        self.check_finite({name: loss})
        return loss

    def equilibrium_gates(self, real: Tensor, reconstruction: Tensor, prior: Tensor) -> dict[str, bool]:
        """Whether Dec (``"g"``) and D (``"d"``) update on this batch, from D's logits on X, X̃ and X_p before any
        update (module docstring); both always when ``equilibrium`` is None."""
        if self.hparams.equilibrium is None:
            return {"g": True, "d": True}
        errors = self.adversarial.errors(real, reconstruction, prior)
        errors = self.trainer.strategy.reduce(errors, reduce_op="mean") if self._trainer is not None else errors
        low, high = self.hparams.equilibrium - self.hparams.margin, self.hparams.equilibrium + self.hparams.margin
        train_d, train_g = not bool((errors < low).any()), not bool((errors > high).any())
        return {"g": True, "d": True} if not (train_d or train_g) else {"g": train_g, "d": train_d}

    def discriminate(self, *sets: Tensor) -> list[tuple[Tensor, Tensor]]:
        """D's (logits, Dis_l features) of each set of images: with ``discriminator_batches=joint`` from one forward
        of the sets concatenated (batch-norm statistics over all of them, as the reference code), else one forward
        per set."""
        if self.hparams.discriminator_batches == "separate":
            return [self.discriminator(images) for images in sets]
        sizes = [len(images) for images in sets]
        logits, features = self.discriminator(torch.cat(sets))
        return list(zip(logits.split(sizes), features.split(sizes)))

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        optimizer_e, optimizer_g, optimizer_d = self.optimizers()
        real = batch["image"]
        eps, z_prior = self.sample_noise(real.shape[0])
        saved: dict[str, Tensor] = {}

        def similarity(reconstruction: Tensor) -> Tensor:
            """L_llike of X̃ against X, D's features of both taken together (reference code: one forward of
            [X̃, X]); the real features are the target only."""
            (_, recon_features), (_, real_features) = self.discriminate(reconstruction, real)
            return fixed_gaussian_nll(recon_features, real_features.detach())

        def encoder_loss() -> Tensor:
            mu, log_var = self.encoder(real)
            z = self.posterior_sample(mu, log_var, eps)
            saved.update(z=z.detach(), kl=kl_to_standard_normal(mu, log_var), llike=similarity(self.decoder(z)))
            return self._finite("loss_e", saved["kl"] + saved["llike"])

        def decoder_loss() -> Tensor:
            reconstruction, prior = self.decoder(saved["z"]), self.decoder(z_prior)
            (real_logits, _), (recon_logits, _), (prior_logits, _) = self.discriminate(real, reconstruction, prior)
            saved.update(reconstruction=reconstruction.detach(), prior=prior.detach(),
                         gan_g=self.adversarial.decoder(recon_logits, prior_logits),
                         loss_d=d_loss([real_logits, recon_logits, prior_logits]).detach())
            gates.update(self.equilibrium_gates(real_logits.detach(), recon_logits.detach(), prior_logits.detach()))
            return self._finite("loss_g", self.hparams.gamma * similarity(reconstruction) + saved["gan_g"])

        def d_loss(logits: list[Tensor]) -> Tensor:
            return (self.set_weights * self.adversarial.discriminator(*logits)).sum()

        def discriminator_loss() -> Tensor:
            logits = [logits for logits, _ in self.discriminate(real, saved["reconstruction"], saved["prior"])]
            return self._finite("loss_d", d_loss(logits))

        gates: dict[str, bool] = {}
        loss_e = self.step(optimizer_e, encoder_loss)
        loss_g = self.step(optimizer_g, decoder_loss, when=lambda: gates["g"])
        # D's loss on this batch is known from the decoder's step (the same D on the same images); D's forward runs
        # again, recording gradients, only when D steps (the binary D is held back on most batches).
        loss_d = self.step(optimizer_d, discriminator_loss) if gates["d"] else self._finite("loss_d", saved["loss_d"])
        self.log_dict({
            "train/trains_g": float(gates["g"]), "train/trains_d": float(gates["d"]),
            "train/loss_e": loss_e.detach(), "train/loss_g": loss_g.detach(), "train/loss_d": loss_d.detach(),
            "train/kl": saved["kl"].detach(), "train/llike": saved["llike"].detach(),
            "train/gan_g": saved["gan_g"].detach(),
        })
