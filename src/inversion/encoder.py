"""Inversion by an encoder trained with G frozen (Zhu et al. 2016, §3.1): E(x) ≈ z such that G(E(x)) ≈ x.

Two losses per step, both on E's parameters only:

    L_code = E_{z~p(z)} code_loss(E(G(z)), z)          generated pairs: E learns G's inverse where G is defined
    L_rec  = E_{x real} L(G(code(E(x))), x)              real images: E learns what is closest on G's manifold

weighted by ``code_weight`` and ``reconstruction_weight`` (L: the pixel + feature loss). E starts from D's body where
the family has one that maps images to a vector (InfoGAN, VAE-GAN, BiGAN; the paper initialises E from D), with a
new linear head onto the code; otherwise (ProGAN) from a fresh stride-2 conv encoder. The families that trained an
encoder with G (VAE-GAN, VAE, BiGAN, twin autoencoder) need none of this: ``methods`` uses their own E by default.
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import torch
from torch import Tensor, nn

from src.inversion.adapters import GeneratorAdapter
from src.nets.conv import ConvEncoder
from src.utils.arguments import Meaning

Weight = Annotated[float, Meaning("a loss weight", at_least=0)]


@dataclass(frozen=True)
class EncoderSettings:
    """use_own: take the family's own E where it has one (else train one); steps, batch_size, lr: Adam's training of
    a new E; code_weight, reconstruction_weight: the weights of L_code and L_rec; init_from_discriminator: start from
    D's body where its shapes allow; seed: E's initialisation, the prior draws and the real batches."""

    use_own: bool = True
    steps: Annotated[int, Meaning("encoder training steps", at_least=0)] = 500
    batch_size: Annotated[int, Meaning("images per encoder training step", at_least=2)] = 32
    lr: Annotated[float, Meaning("the learning rate", at_least=0)] = 1e-3
    code_weight: Weight = 1.0
    reconstruction_weight: Weight = 1.0
    init_from_discriminator: bool = True
    seed: int = 0


class TrainedEncoder(nn.Module):
    """images N×C×S×S in [-1, 1] → free codes N×free_dim: a body (D's, copied, or a conv encoder's) and a linear
    head."""

    def __init__(self, body: nn.Module, features: int, free_dim: int):
        super().__init__()
        self.body = body
        self.head = nn.Linear(features, free_dim)

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.body(images).flatten(1))


def new_encoder(adapter: GeneratorAdapter, from_discriminator: bool = True) -> TrainedEncoder:
    """An untrained encoder for ``adapter``'s codes: D's body (a copy, trainable) where the family lends one, else
    stride-2 5×5 conv blocks (32, 64, 128 channels, as many as the side allows) and an FC of 256."""
    lent = adapter.discriminator_body() if from_discriminator else None
    if lent is not None:
        body, features = lent
        body = copy.deepcopy(body).requires_grad_(True)
    else:
        side = adapter.image_shape[-1]
        stages = max(1, min(3, (side & -side).bit_length() - 3))  # halvings that leave an even side ≥ 2
        conv = ConvEncoder(adapter.image_shape, 1, widths=(32, 64, 128)[:stages], fc_dim=256, act="lrelu",
                           first_norm=False)
        body, features = conv.body, 256
    return TrainedEncoder(body, features, adapter.free_dim).to(adapter.device)


def train_encoder(adapter: GeneratorAdapter, real: Tensor, loss: Callable[[Tensor, Tensor], Tensor],
                  settings: EncoderSettings = EncoderSettings()) -> TrainedEncoder:
    """Train a new encoder with G frozen on prior samples and on ``real`` images (N×C×S×S in [-1, 1], at G's size;
    may be empty: generated pairs only); ``loss(generated, target)`` is the per-item reconstruction loss. Returns
    it in eval mode. Deterministic given ``settings.seed``; the global RNG is not moved."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        encoder = new_encoder(adapter, settings.init_from_discriminator).train()
    generator = torch.Generator(adapter.device).manual_seed(settings.seed)
    order_generator = torch.Generator().manual_seed(settings.seed)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=settings.lr)
    real = real.to(adapter.device)
    with torch.enable_grad():
        for _ in range(settings.steps):
            z = adapter.sample_prior(settings.batch_size, generator)
            with torch.no_grad():
                fake = adapter.decode(z)
            objective = settings.code_weight * adapter.code_loss(encoder(fake), z).mean()
            if len(real) and settings.reconstruction_weight > 0:
                index = torch.randint(len(real), (min(settings.batch_size, len(real)),), generator=order_generator)
                batch = real[index.to(real.device)]
                if len(batch) == 1:  # batch norm in D's body needs two items
                    batch = batch.repeat(2, 1, 1, 1)
                rebuilt = adapter.decode(adapter.code(encoder(batch)))
                objective = objective + settings.reconstruction_weight * loss(rebuilt, batch).mean()
            optimizer.zero_grad(set_to_none=True)
            objective.backward()
            optimizer.step()
    return encoder.eval().requires_grad_(False)
