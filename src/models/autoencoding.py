"""What the families with an encoder share (VAE-GAN, VAE, BiGAN, twin autoencoder): an encoder E(x) → z and a
decoder/generator G(z) → x, reached the same way in every one of them, and how they are evaluated.

- ``self.generator`` is ``nn.ModuleDict(encoder=E, decoder=G)``, so the EMA shadow copy (``model.ema_decay``) and
  every checkpoint hold both; :meth:`encode` and :meth:`decode` use the evaluation copies (EMA when on), in
  whatever mode the module is (eval during validation). Inversion and editing reach any family through them.
- Evaluation streams: ``samples`` (primary: G(z) for z from the prior against real training images; the papers'
  headline is sample quality) and ``reconstructions`` (G(E(x)) of each held-out image against the real held-out
  images).
- Grids: ``reconstruction_pairs`` (real | reconstruction of the first held-out images, side by side) and
  ``prior_samples`` (fixed prior draws); named apart from the streams, whose grids ``src.sample`` also writes.
- Metrics of their own, at every validation: ``val/recon_l1``, the mean absolute pixel error of G(E(x)) on the
  held-out images (images in [-1, 1]); on labelled data ``val/knn_acc``, the leave-one-out 1-nearest-neighbour
  accuracy of the codes E(x) of the held-out images among themselves (Euclidean; a cheap measure of how much of the
  class the code keeps, no training pass needed; chance is about 1/classes).
"""
from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from typing import Annotated

import torch
from torch import Tensor, nn

from src.models.base import EvalStream, GANModule, RealSet
from src.utils.arguments import Meaning

GridColumns = Annotated[int, Meaning("pairs (and samples) per grid row", at_least=1)]
#: Held-out images in the reconstruction grid: its first batch, up to this many.
GRID_IMAGES = 32


def leave_one_out_1nn_accuracy(codes: Tensor, labels: Tensor) -> float:
    """Share of items whose nearest other item (Euclidean, N×M codes) has the same label; nan for fewer than 2."""
    if len(codes) < 2:
        return float("nan")
    distances = torch.cdist(codes.float(), codes.float())
    distances.fill_diagonal_(float("inf"))
    return (labels[distances.argmin(dim=1)] == labels).float().mean().item()


class AutoencodingModule(GANModule):
    """Base of the families with an encoder E and a decoder G.

    Args:
        encoder: images N×C×H×W in [-1, 1] → the family's code (its :meth:`code_of` reads z from it).
        decoder: z N×latent_dim → images N×C×H×W in [-1, 1] (the generator).
        latent_dim: the size of z.
        grid_columns: pairs real | reconstruction per row of the reconstruction grid, samples per row of the other.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, latent_dim: int, grid_columns: int = 8,
                 ema_decay: float | None = None, schedulers: Mapping | None = None):
        super().__init__(nn.ModuleDict({"encoder": encoder, "decoder": decoder}), ema_decay=ema_decay,
                         schedulers=schedulers)
        self.latent_dim = latent_dim
        self.grid_columns = grid_columns
        self._grid_images: Tensor | None = None
        self._val_l1: list[Tensor] = []
        self._val_codes: list[Tensor] = []
        self._val_labels: list[Tensor] = []

    # ----- the family's latent ------------------------------------------------------------------------
    @abstractmethod
    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n codes N×latent_dim from the prior p(z), drawn from ``generator`` (default: the training RNG)."""

    def code_of(self, encoded) -> Tensor:
        """z from the encoder's output (a VAE's posterior mean; a deterministic encoder's output itself)."""
        return encoded

    # ----- uniform access for inversion, editing, evaluation -----------------------------------------
    @property
    def encoder(self) -> nn.Module:
        """The trained encoder E."""
        return self.generator["encoder"]

    @property
    def decoder(self) -> nn.Module:
        """The trained decoder / generator G."""
        return self.generator["decoder"]

    def encode(self, images: Tensor) -> Tensor:
        """E(x): images N×C×H×W in [-1, 1] → codes N×latent_dim, by the evaluation encoder."""
        return self.code_of(self.eval_generator["encoder"](images))

    def decode(self, z: Tensor) -> Tensor:
        """G(z): codes N×latent_dim → images N×C×H×W in [-1, 1], by the evaluation decoder."""
        return self.eval_generator["decoder"](z)

    @torch.no_grad()
    def reconstruct(self, batch: Mapping[str, Tensor], generator: torch.Generator | None = None) -> Tensor:
        """G(E(x)) of a batch's ``"image"``s (deterministic: the generator is not drawn from)."""
        return self.decode(self.encode(batch["image"]))

    @torch.no_grad()
    def draw(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n prior samples G(z), z ~ p(z) from ``generator``."""
        return self.decode(self.sample_prior(n, generator))

    # ----- evaluation ---------------------------------------------------------------------------------
    def evaluation_streams(self) -> list[EvalStream]:
        return [EvalStream("samples", make=self.draw),
                EvalStream("reconstructions", make=self.reconstruct, real=RealSet("val"), inputs=RealSet("val"))]

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        images = batch["image"]
        if batch_idx == 0:
            self._grid_images = images[:GRID_IMAGES]
        codes = self.encode(images)
        self._val_l1.append((self.decode(codes) - images).abs().flatten(1).mean(1))
        if "label" in batch:
            self._val_codes.append(codes)
            self._val_labels.append(batch["label"])

    def on_validation_epoch_end(self) -> None:
        if self._val_l1:
            self.log("val/recon_l1", torch.cat(self._val_l1).mean(), sync_dist=True)
        if self._val_codes:
            codes = self.all_gather(torch.cat(self._val_codes)).flatten(0, -2)
            labels = self.all_gather(torch.cat(self._val_labels)).flatten()
            self.log("val/knn_acc", leave_one_out_1nn_accuracy(codes.cpu(), labels.cpu()), prog_bar=True)
        self._val_l1.clear()
        self._val_codes.clear()
        self._val_labels.clear()

    @torch.no_grad()
    def visualizations(self) -> dict[str, tuple[Tensor, int]]:
        """``reconstruction_pairs``: real | G(E(x)) pairs of the first held-out images of the last validation,
        ``grid_columns`` pairs a row; ``prior_samples``: G(z) of fixed prior draws (the ``grid_z`` buffer)."""
        grids = {"prior_samples": (self.decode(self.grid_z), self.grid_columns)}
        if self._grid_images is not None:
            real = self._grid_images
            pairs = torch.stack([real, self.decode(self.encode(real))], dim=1).flatten(0, 1)
            grids["reconstruction_pairs"] = (pairs, 2 * self.grid_columns)
        return grids

    def register_grid_latents(self) -> None:
        """Fixed prior draws for the samples grid, stored with the model (comparable across epochs and resumes);
        call once the prior is set up."""
        self.register_buffer("grid_z", self.sample_prior(4 * self.grid_columns,
                                                         torch.Generator().manual_seed(0)))
