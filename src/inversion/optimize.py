"""Inversion by optimisation (Zhu et al. 2016, eq. 1): z* = argmin_z L(G(z), x) + λ·(−log p(z)).

L is the pixel + feature loss (:class:`~src.inversion.reconstruction.ReconstructionLoss`), −log p(z) the adapter's
``prior_penalty`` (½‖z‖² per dimension for a Gaussian prior; see :mod:`src.inversion.adapters`). The variable
moved is the adapter's free parameterisation (InfoGAN's categorical part as logits through a softmax), G is
frozen. Each item's code gets the gradient of its own loss only: the batch objective is the sum of the per-item
losses, so a code does not depend on the batch it was inverted in (G is in eval mode: no batch statistics).

Adam (steps of ``lr``) or L-BFGS (``steps`` iterations with a strong-Wolfe line search: fewer, costlier steps that
converge tightly on smooth objectives) is picked by ``optimizer``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Literal

import torch
from torch import Tensor

from src.inversion.adapters import GeneratorAdapter
from src.utils.arguments import Meaning


@dataclass(frozen=True)
class OptimizeSettings:
    """optimizer: ``adam`` or ``lbfgs``; steps: Adam steps or L-BFGS iterations; lr: Adam's learning rate (L-BFGS
    uses 1 with its line search); prior_weight: λ on −log p(z); seed: the random start's generator (``optimize``)."""

    optimizer: Literal["adam", "lbfgs"] = "adam"
    steps: Annotated[int, Meaning("optimisation steps", at_least=1)] = 300
    lr: Annotated[float, Meaning("the learning rate", at_least=0)] = 0.05
    prior_weight: Annotated[float, Meaning("the weight of the prior term", at_least=0)] = 1e-3
    seed: int = 0


def objective(adapter: GeneratorAdapter, free: Tensor, loss: Callable[[Tensor, Tensor], Tensor],
              prior_weight: float) -> Tensor:
    """Per item: ``loss(G(z), z)`` + prior_weight·prior_penalty(z) with z = code(free), N."""
    z = adapter.code(free)
    return loss(adapter.decode(z), z) + prior_weight * adapter.prior_penalty(z)


def minimise(adapter: GeneratorAdapter, start: Tensor, loss: Callable[[Tensor, Tensor], Tensor],
             settings: OptimizeSettings) -> Tensor:
    """The free codes (N×free_dim) reached from ``start`` by minimising :func:`objective` summed over the items;
    ``loss`` maps the images G makes and their codes (N×latent_dim) to a loss per item (inversion reads the images
    only; constrained edits also the codes, :mod:`src.inversion.editing`). G's parameters are never touched."""
    free = start.detach().clone().requires_grad_(True)
    total = lambda: objective(adapter, free, loss, settings.prior_weight).sum()  # noqa: E731
    with torch.enable_grad():
        if settings.optimizer == "lbfgs":
            optimizer = torch.optim.LBFGS([free], lr=1.0, max_iter=settings.steps, line_search_fn="strong_wolfe")

            def closure() -> Tensor:
                optimizer.zero_grad(set_to_none=True)
                value = total()
                value.backward()
                return value

            optimizer.step(closure)
        else:
            optimizer = torch.optim.Adam([free], lr=settings.lr)
            for _ in range(settings.steps):
                optimizer.zero_grad(set_to_none=True)
                total().backward()
                optimizer.step()
    return free.detach()


def random_start(adapter: GeneratorAdapter, n: int, seed: int) -> Tensor:
    """n free codes from the prior, drawn from a generator seeded with ``seed`` (same start for the same seed)."""
    generator = torch.Generator(adapter.device).manual_seed(seed)
    return adapter.free(adapter.sample_prior(n, generator))
