"""Draw images from a checkpoint: ``python -m src.sample ckpt_path=<run>/checkpoints/last.ckpt``.

Writes ``samples.png`` (``num_samples`` fresh draws) and each of the model's own grids (InfoGAN: the
categorical rows and the continuous-code traversals) to ``output_dir``. Needs nothing but the checkpoint.
"""
from __future__ import annotations

import sys
from pathlib import Path

import hydra
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torchvision.utils import save_image

from src.callbacks.config_in_checkpoint import ConfigInCheckpoint
from src.models.base import GANModule
from src.utils.config_check import check_config
from src.utils.errors import ConfigError
from src.utils.resume import load_checkpoint


def load_model(ckpt_path: str | Path, device: str = "cpu") -> GANModule:
    """Rebuild the model from the config stored in the checkpoint and load its weights (eval mode)."""
    if not Path(ckpt_path).is_file():
        raise ConfigError(f"ckpt_path={ckpt_path} does not exist; pass <run dir>/checkpoints/last.ckpt or best-*.ckpt.")
    checkpoint = load_checkpoint(ckpt_path)
    config = OmegaConf.create(checkpoint[ConfigInCheckpoint.KEY])
    model: GANModule = instantiate(config.model)
    model.load_state_dict(checkpoint["state_dict"])
    return model.to(device).eval()


def grid(images: torch.Tensor, path: Path, per_row: int) -> Path:
    save_image(images.float().cpu(), path, nrow=per_row, normalize=True, value_range=(-1, 1))
    return path


@hydra.main(version_base="1.3", config_path="../conf", config_name="sample")
def main(cfg: DictConfig) -> None:
    try:
        check_config(cfg)
        device = ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device
        model = load_model(cfg.ckpt_path, device)
    except ConfigError as error:
        print(f"\nerror: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    pl.seed_everything(cfg.seed)
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        images = torch.cat(list(model.sample_batches(cfg.num_samples, 256)))
        written = [grid(images, out / "samples.png", cfg.per_row)]
        written += [grid(imgs, out / f"{name}.png", per_row) for name, (imgs, per_row) in model.visualizations().items()]
    print("\n".join(f"wrote {path}" for path in written))


if __name__ == "__main__":
    main()
