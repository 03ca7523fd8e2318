"""Find the codes of a folder of images with a checkpoint's generator:
``python -m src.invert ckpt_path=<run>/checkpoints/last.ckpt images=<folder> method=hybrid output_dir=<folder>``.

Works for every unconditional family (VAE-GAN, VAE, BiGAN, twin autoencoder, InfoGAN, ProGAN at the checkpoint's
resolution and fade-in; :mod:`src.inversion.adapters`). ``method``: ``encoder`` (the family's own E, or one trained
now with G frozen), ``optimize`` (from a seeded prior draw) or ``hybrid`` (the encoder's code as the start);
:mod:`src.inversion.methods`. Every image below ``images`` (any depth, size and mode, as ``src.translate`` reads
them) is resized to G's square size. Writes to ``output_dir``:

- ``reconstructions/<relative path>``: G(z) of each image, at G's size, under the image's own relative path;
- ``codes.pt``: ``{"names": [relative paths], "codes": N×latent_dim float tensor, "method", "ckpt_path"}``;
- ``pairs.png``: input | reconstruction side by side, ``per_row`` pairs a row;
- ``encoder.pt`` when an encoder was trained (pass it back as ``encoder_path`` to skip the training next time).

An unreadable image is named in a warning and skipped; the exit status is then 1, with one line naming them.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch.utils.data import default_collate
from torchvision.utils import save_image

from src.data.input_folder import input_images, readable_images
from src.data.unpaired_folder import resize_and_crop
from src.inversion.adapters import GeneratorAdapter, adapter_for
from src.inversion.encoder import new_encoder
from src.inversion.methods import METHODS, Inverter
from src.inversion.reconstruction import ReconstructionLoss
from src.sample import grid, load_model
from src.utils.config_check import check_config
from src.utils.errors import ConfigError, exit_on_user_error


def device_of(cfg: DictConfig) -> str:
    return ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device


def load_adapter(cfg: DictConfig) -> tuple[GeneratorAdapter, DictConfig]:
    """The adapter of ``cfg.ckpt_path``'s model (on ``cfg.device``) and the run config stored in the checkpoint."""
    model, run_config = load_model(cfg.ckpt_path, device_of(cfg))
    return adapter_for(model), run_config


def read_folder(folder: str, adapter: GeneratorAdapter, key: str = "images"
                ) -> tuple[list[Path], torch.Tensor, dict[Path, str]]:
    """The readable images below ``folder`` at G's size: (relative paths, N×C×S×S in [-1, 1] on G's device,
    unreadable relative path → reason)."""
    channels, side = adapter.image_shape[0], adapter.image_shape[-1]
    resize = resize_and_crop(side, side, flip=False, train=False)
    source = Path(folder).expanduser()
    failed: dict[Path, str] = {}
    read = [(relative, resize(image)) for relative, image in
            readable_images(source, input_images(folder, key), channels, failed)]
    if not read:
        raise ConfigError(f"{key}={folder}: none of its {len(failed)} images could be read; see the warnings above.")
    names, images = zip(*read)
    return list(names), torch.stack(images).to(adapter.device), failed


def training_images(run_config: DictConfig, adapter: GeneratorAdapter, n: int) -> torch.Tensor:
    """The first ``n`` images of the checkpoint's training split (its dataset rebuilt from the run config), at G's
    size, for training a new encoder; empty for ``n`` = 0."""
    if n == 0:
        return torch.empty(0, *adapter.image_shape, device=adapter.device)
    subset = instantiate(run_config.data).eval_subset("train", n)
    images = default_collate([subset[i] for i in range(len(subset))])["image"]
    side = adapter.image_shape[-1]
    return resize_and_crop(side, side, flip=False, train=False)(images).to(adapter.device)


def build_inverter(cfg: DictConfig, adapter: GeneratorAdapter, run_config: DictConfig) -> Inverter:
    """The :class:`Inverter` that ``cfg`` (``method``, ``distance``, ``optimize``, ``encoder``, ``encoder_path``,
    ``encoder_real``) describes."""
    encoding = instantiate(cfg.encoder)
    encoder = None
    if cfg.get("encoder_path"):
        encoder = load_encoder(cfg.encoder_path, adapter)
    needs_training = cfg.method != "optimize" and encoder is None and not (adapter.has_encoder and encoding.use_own)
    real = training_images(run_config, adapter, cfg.encoder_real) if needs_training else None
    return Inverter(adapter, cfg.method, ReconstructionLoss(instantiate(cfg.distance)).to(adapter.device),
                    instantiate(cfg.optimize), encoding, encoder, real)


def save_encoder(inverter: Inverter, path: Path) -> None:
    torch.save({"state_dict": inverter.encoder.state_dict(),
                "init_from_discriminator": inverter.encoding.init_from_discriminator}, path)


def load_encoder(path: str, adapter: GeneratorAdapter) -> torch.nn.Module:
    """An encoder written by an earlier ``src.invert`` run (``encoder.pt``) for this checkpoint's generator."""
    if not Path(path).is_file():
        raise ConfigError(f"encoder_path={path} does not exist; pass the encoder.pt an earlier run wrote, or null.")
    state = torch.load(path, map_location=adapter.device, weights_only=True)
    encoder = new_encoder(adapter, state["init_from_discriminator"])
    try:
        encoder.load_state_dict(state["state_dict"])
    except RuntimeError:
        raise ConfigError(f"encoder_path={path} was trained for another generator (its shapes differ); "
                          "leave encoder_path=null to train one for this checkpoint.") from None
    return encoder.eval().requires_grad_(False)


def invert_in_batches(inverter: Inverter, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Codes N×latent_dim of ``images``, ``batch_size`` at a time (a new encoder is trained on the first batch
    and reused)."""
    return torch.cat([inverter(chunk) for chunk in images.split(batch_size)])


def write_images(images: torch.Tensor, names: list[Path], folder: Path) -> None:
    """Each image (C×S×S in [-1, 1]) under ``folder`` at its relative path."""
    for image, name in zip(images, names):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(image.float().cpu(), path, normalize=True, value_range=(-1, 1))


def pairs(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """before₁, after₁, before₂, after₂, …: for side-by-side grids."""
    return torch.stack([before, after], dim=1).flatten(0, 1)


def report_failed(folder: str, failed: dict[Path, str], total: int) -> None:
    if failed:
        print(f"error: could not read {len(failed)} of {total} images: "
              f"{', '.join(str(Path(folder) / p) for p in failed)}", file=sys.stderr)
        raise SystemExit(1)


@dataclass
class InvertedFolder:
    """The readable images below ``cfg.images`` (at G's size) and their codes, with what found them."""

    adapter: GeneratorAdapter
    run_config: DictConfig
    names: list[Path]
    images: torch.Tensor
    failed: dict[Path, str]
    inverter: Inverter
    codes: torch.Tensor


def invert_folder(cfg: DictConfig) -> InvertedFolder:
    """Check ``cfg``, load its checkpoint's generator, read ``cfg.images`` and invert them by ``cfg.method`` (raises
    ConfigError on a user's mistake; call it inside :func:`exit_on_user_error`)."""
    check_config(cfg)
    if cfg.method not in METHODS:
        raise ConfigError(f"method={cfg.method} is not an inversion method; use one of {', '.join(METHODS)}.")
    adapter, run_config = load_adapter(cfg)
    names, images, failed = read_folder(cfg.images, adapter)
    inverter = build_inverter(cfg, adapter, run_config)
    return InvertedFolder(adapter, run_config, names, images, failed, inverter,
                          invert_in_batches(inverter, images, cfg.batch_size))


def decode(adapter: GeneratorAdapter, codes: torch.Tensor, batch_size: int) -> torch.Tensor:
    """G(z) of codes N×latent_dim, ``batch_size`` at a time, without gradients."""
    with torch.no_grad():
        return torch.cat([adapter.decode(chunk) for chunk in codes.split(batch_size)])


@hydra.main(version_base="1.3", config_path="../conf", config_name="invert")
def main(cfg: DictConfig) -> None:
    with exit_on_user_error():
        folder = invert_folder(cfg)
    adapter, names, images, failed, inverter, codes = (folder.adapter, folder.names, folder.images, folder.failed,
                                                       folder.inverter, folder.codes)
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    reconstructions = decode(adapter, codes, cfg.batch_size)
    write_images(reconstructions, names, out / "reconstructions")
    torch.save({"names": [n.as_posix() for n in names], "codes": codes.cpu(), "method": cfg.method,
                "ckpt_path": str(cfg.ckpt_path)}, out / "codes.pt")
    grid(pairs(images, reconstructions), out / "pairs.png", 2 * cfg.per_row)
    if inverter.encoder is not None and cfg.method != "optimize" and not cfg.get("encoder_path"):
        save_encoder(inverter, out / "encoder.pt")
    error = (reconstructions - images).pow(2).flatten(1).mean(1)
    print(f"inverted {len(names)} images by {cfg.method}: pixel MSE {error.mean().item():.4g} (images in [-1, 1]); "
          f"wrote {out / 'reconstructions'}, {out / 'codes.pt'}, {out / 'pairs.png'}")
    report_failed(cfg.images, failed, len(names) + len(failed))


if __name__ == "__main__":
    main()
