"""One view of every trained generator for inversion and editing: a code z (N×latent_dim) in, images out.

Inversion (Zhu et al. 2016) and editing only need a few things of a family, and each family has them under other
names; :func:`adapter_for` wraps a checkpoint's model in the adapter of its family:

- ``latent_dim``, ``image_shape``: the size of a code and of G's images (C, S, S).
- ``decode(z)``: G(z), images in [-1, 1], by the evaluation generator (the EMA copy where there is one).
- ``sample_prior(n, generator)``: codes drawn from the family's prior, from ``generator``.
- ``encode(x)`` where the family trains an encoder (``has_encoder``).
- The *free* parameterisation an optimiser moves: ``code(free)`` → z and ``free(z)`` → a start for it. It is z
  itself except for InfoGAN's categorical part (below) and ProGAN (whose G puts z on the sphere of radius √D first:
  ``code`` does the same, so codes are points G can tell apart).
- ``prior_penalty(z)``: −log p(z) per item, up to a constant, averaged over the code's dimensions (so its weight
  means the same at any latent size); the "λ‖z‖²" term of the optimisation.
- ``code_loss(free, z)``: how far an encoder's output is from the code behind a generated image, per item.
- ``realism(images, z)``: the realism term of constrained edits from D, per item (the non-saturating −log D(x) for
  a logistic D, −D(x) for ProGAN's WGAN critic); None for the families without D (VAE, twin autoencoder).
- ``discriminator_body()``: D's image → feature-vector body, to initialise a new encoder from, or None.

InfoGAN's code is (noise, categorical, continuous) flattened into one vector of noise_dim + n_categories +
n_continuous, the categorical part as probabilities over the classes (a one-hot for a prior draw): exactly what its
G reads. An optimiser moves the categorical part as free logits through a softmax, so the code stays on the
simplex and the gradient reaches every class; ``free`` starts those logits from log(½·p + ½/K), which prefers the
given class K+1 : 1 without saturating the softmax. The most probable class of a code is its category.

Adapters put the model they wrap in eval mode and freeze it (no parameter records gradients): inversion and
editing never train G or D.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.models.autoencoding import AutoencodingModule
from src.models.base import GANModule
from src.models.bigan import BiGAN, TwinAutoencoder
from src.models.infogan import InfoGAN
from src.models.progan import ProGAN
from src.models.vae import VAE
from src.models.vaegan import REAL, VAEGAN
from src.nets.losses import WGANGP
from src.nets.progan import pixel_norm
from src.utils.errors import ConfigError


def _mean_square(x: Tensor) -> Tensor:
    return x.pow(2).flatten(1).mean(1)


def logistic_realism(logits: Tensor) -> Tensor:
    """−log σ(D(x)) per item: the non-saturating generator loss of a logistic D's logits N."""
    return F.softplus(-logits)


class GeneratorAdapter:
    """The common part; a family's adapter fills in its G, its prior and, where it has them, E and D."""

    has_encoder = False

    def __init__(self, model: GANModule):
        self.model = model.eval().requires_grad_(False)

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def free_dim(self) -> int:
        """The size of the vector an optimiser or a trained encoder produces (= latent_dim for most families)."""
        return self.latent_dim

    def code(self, free: Tensor) -> Tensor:
        return free

    def free(self, z: Tensor) -> Tensor:
        return z.clone()

    def code_loss(self, free: Tensor, z: Tensor) -> Tensor:
        return _mean_square(self.code(free) - z)

    def encode(self, images: Tensor) -> Tensor:
        raise ConfigError(f"{type(self.model).__name__} has no encoder of its own; use method=optimize, or "
                          "method=encoder with an encoder trained for it (encoder.use_own=false).")

    def realism(self, images: Tensor, z: Tensor) -> Tensor | None:
        return None

    def discriminator_body(self) -> tuple[nn.Module, int] | None:
        return None

    def parameters(self) -> list[Tensor]:
        """Every parameter of the wrapped model (to check that nothing trained them)."""
        return list(self.model.parameters())


class AutoencodingAdapter(GeneratorAdapter):
    """VAE-GAN, VAE, BiGAN, twin autoencoder: G is the decoder, E their own encoder (a VAE's posterior mean)."""

    has_encoder = True
    model: AutoencodingModule

    def __init__(self, model: AutoencodingModule):
        super().__init__(model)
        self.latent_dim = model.latent_dim
        self.image_shape = tuple(self.decode(model.grid_z[:1]).shape[1:])

    def decode(self, z: Tensor) -> Tensor:
        return self.model.decode(z)

    def encode(self, images: Tensor) -> Tensor:
        return self.model.encode(images)

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return self.model.sample_prior(n, generator)


class GaussianPriorAdapter(AutoencodingAdapter):
    """VAE and VAE-GAN: z ~ N(0, I), so −log p(z) = ½‖z‖² + const."""

    def prior_penalty(self, z: Tensor) -> Tensor:
        return 0.5 * _mean_square(z)


class UniformPriorAdapter(AutoencodingAdapter):
    """BiGAN and the twin autoencoder: z ~ U(−1, 1); the penalty is a quadratic wall outside the box (flat inside,
    where the density is)."""

    def prior_penalty(self, z: Tensor) -> Tensor:
        return 0.5 * _mean_square(F.relu(z.abs() - 1))


class VAEGANAdapter(GaussianPriorAdapter):
    """Dis(x) is binary (real vs generated) or three-class (real / reconstruction / prior sample): realism is
    −log σ(Dis(x)), or −log softmax(Dis(x))_real."""

    model: VAEGAN

    def realism(self, images: Tensor, z: Tensor) -> Tensor:
        logits, _ = self.model.discriminator(images)
        if logits.ndim == 1:
            return logistic_realism(logits)
        return F.cross_entropy(logits, torch.full((len(logits),), REAL, device=logits.device), reduction="none")

    def discriminator_body(self) -> tuple[nn.Module, int]:
        """Dis up to its last hidden layer (FC 512 → BN → ReLU): images → N×fc_dim."""
        d = self.model.discriminator
        return nn.Sequential(d.features, *list(d.head)[:-1]), d.head[-1].in_features


class BiGANAdapter(UniformPriorAdapter):
    """D scores joint pairs: the realism of G(z) is −log σ(D(G(z), z)), with the code being edited."""

    model: BiGAN

    def realism(self, images: Tensor, z: Tensor) -> Tensor:
        return logistic_realism(self.model.discriminator(images, z))

    def discriminator_body(self) -> tuple[nn.Module, int]:
        """D's image path (its conv layers, flattened): images → N×features."""
        d = self.model.discriminator
        return d.x_path, d.joint[1].in_features - d.z_path[-2].out_features


class InfoGANAdapter(GeneratorAdapter):
    """G(noise, categorical, continuous); see the module docstring for the code's layout and the categorical part."""

    model: InfoGAN

    def __init__(self, model: InfoGAN):
        super().__init__(model)
        hp = model.hparams
        self.noise_dim, self.n_categories, self.n_continuous = hp.noise_dim, hp.n_categories, hp.n_continuous
        self.latent_dim = self.noise_dim + self.n_categories + self.n_continuous
        self.image_shape = tuple(self.decode(self.sample_prior(1)).shape[1:])

    def _split(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return z.split([self.noise_dim, self.n_categories, self.n_continuous], dim=1)

    def decode(self, z: Tensor) -> Tensor:
        return self.model.eval_generator(z)

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        noise, categorical, continuous = self.model.sample_codes(n, generator)
        return torch.cat([noise, F.one_hot(categorical, self.n_categories).to(noise.dtype), continuous], dim=1)

    def code(self, free: Tensor) -> Tensor:
        noise, logits, continuous = self._split(free)
        return torch.cat([noise, logits.softmax(1), continuous], dim=1)

    def free(self, z: Tensor) -> Tensor:
        noise, probabilities, continuous = self._split(z)
        logits = torch.log(0.5 * probabilities.clamp(0, 1) + 0.5 / self.n_categories)
        return torch.cat([noise, logits, continuous], dim=1)

    def code_loss(self, free: Tensor, z: Tensor) -> Tensor:
        """Squared error of the noise and continuous parts, cross-entropy of the logits to the code's class."""
        noise, logits, continuous = self._split(free)
        target_noise, probabilities, target_continuous = self._split(z)
        squared = torch.cat([noise - target_noise, continuous - target_continuous], dim=1)
        return _mean_square(squared) + F.cross_entropy(logits, probabilities.argmax(1), reduction="none")

    def prior_penalty(self, z: Tensor) -> Tensor:
        """The noise's −log p (½‖·‖² when normal, the box wall when uniform) and the continuous codes' box wall;
        none on the categorical part (the softmax keeps it on the simplex)."""
        noise, _, continuous = self._split(z)
        noise_term = noise if self.model.hparams.noise_distribution == "normal" else F.relu(noise.abs() - 1)
        outside = torch.cat([noise_term, F.relu(continuous.abs() - 1)], dim=1)
        return 0.5 * outside.pow(2).sum(1) / max(1, outside.shape[1])

    def realism(self, images: Tensor, z: Tensor) -> Tensor:
        logits, _ = self.model.discriminator(images)
        return logistic_realism(logits)

    def discriminator_body(self) -> tuple[nn.Module, int]:
        """D's body shared with Q (conv, conv, FC → BN → lrelu): images → N×fc_dim."""
        d = self.model.discriminator
        return d.body, d.d_head.in_features


class ProGANAdapter(GeneratorAdapter):
    """The EMA generator at the checkpoint's stage and fade-in α (``model.phase``), images clamped to [−1, 1] as
    ProGAN's sampling does; codes live on G's sphere (|z|² = latent_dim), so the prior term is constant there.
    ProGAN's D grows and ends in minibatch statistics, so it lends no body to an encoder."""

    model: ProGAN

    def __init__(self, model: ProGAN):
        super().__init__(model)
        self.latent_dim = model.hparams.latent_dim
        self.phase = model.phase
        self.image_shape = tuple(self.decode(self.sample_prior(1)).shape[1:])

    def decode(self, z: Tensor) -> Tensor:
        return self.model.eval_generator(z, self.phase.stage, self.phase.alpha).clamp(-1, 1)

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return pixel_norm(torch.randn(n, self.latent_dim, device=self.device, generator=generator))

    def code(self, free: Tensor) -> Tensor:
        return pixel_norm(free)

    def prior_penalty(self, z: Tensor) -> Tensor:
        return 0.5 * (_mean_square(z) - 1).pow(2)

    def realism(self, images: Tensor, z: Tensor) -> Tensor:
        scores = self.model.critic(images, self.phase, {})
        return -scores if isinstance(self.model.loss, WGANGP) else logistic_realism(scores)


#: The adapter of each family, by the model's exact class (a subclass such as T2F needs more than a code).
ADAPTERS: dict[type[GANModule], type[GeneratorAdapter]] = {
    VAEGAN: VAEGANAdapter, VAE: GaussianPriorAdapter, BiGAN: BiGANAdapter, TwinAutoencoder: UniformPriorAdapter,
    InfoGAN: InfoGANAdapter, ProGAN: ProGANAdapter,
}


def adapter_for(model: GANModule) -> GeneratorAdapter:
    """The adapter of ``model``'s family; a ConfigError naming the supported families for any other model."""
    adapter = ADAPTERS.get(type(model))
    if adapter is None:
        supported = ", ".join(cls.__name__ for cls in ADAPTERS)
        raise ConfigError(f"Inversion and editing need an unconditional generator; {type(model).__name__} is not one "
                          f"of the supported families ({supported}). Pass a checkpoint of one of them.")
    return adapter(model)

