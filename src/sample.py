"""Draw images from a checkpoint: ``python -m src.sample ckpt_path=<run>/checkpoints/last.ckpt``.

Writes, to ``output_dir``, a grid of ``num_samples`` fakes for each of the model's evaluation streams
(``<stream>.png``; InfoGAN: ``samples.png``, draws from the prior), the same fakes the FID callback scores, and
each of the model's own grids (InfoGAN: the categorical rows and the continuous-code traversals). A stream made
from held-out inputs (captions, images to translate or reconstruct) reads them from the run's dataset, rebuilt
from the config in the checkpoint; a count stream needs nothing but the checkpoint. ProGAN: ``samples.png`` and
``interpolation.png`` (spherical interpolations between latents) at the checkpoint's resolution.

Text to image (T2F): ``captions='["a smiling man with short red hair", "a woman with long black hair"]'
per_caption=8`` writes ``typed_captions.png`` instead of the streams' grids, a row of ``per_caption`` faces per caption with
the caption printed under it; words the model never saw are named in one warning and read as ``<unk>``.
"""
from __future__ import annotations

from pathlib import Path

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities import move_data_to_device
from torch.utils.data import default_collate
from torchvision.utils import save_image

from src.callbacks.config_in_checkpoint import ConfigInCheckpoint
from src.models.base import EvalStream, GANModule
from src.utils.config_check import check_config
from src.utils.errors import ConfigError, exit_on_user_error
from src.utils.image_grid import image_grid
from src.utils.resume import load_checkpoint


def load_model(ckpt_path: str | Path, device: str = "cpu") -> tuple[GANModule, DictConfig]:
    """The model rebuilt from the config stored in the checkpoint, with its weights (eval mode), and that config."""
    if not Path(ckpt_path).is_file():
        raise ConfigError(f"ckpt_path={ckpt_path} does not exist; pass <run dir>/checkpoints/last.ckpt or best-*.ckpt.")
    checkpoint = load_checkpoint(ckpt_path)
    config = OmegaConf.create(checkpoint[ConfigInCheckpoint.KEY])
    model: GANModule = instantiate(config.model)
    model.load_state_dict(checkpoint["state_dict"])
    return model.to(device).eval(), config


def grid(images: torch.Tensor, path: Path, per_row: int, labels: list[str] | None = None) -> Path:
    save_image(image_grid(images, per_row, labels), path)
    return path


@hydra.main(version_base="1.3", config_path="../conf", config_name="sample")
def main(cfg: DictConfig) -> None:
    with exit_on_user_error():
        check_config(cfg)
        device = ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device
        model, run_config = load_model(cfg.ckpt_path, device)
        if cfg.get("captions") and not hasattr(model, "caption_grid"):
            raise ConfigError(f"captions= needs a text-to-image checkpoint (model=t2f); {type(model).__name__} takes "
                              "no captions. Leave captions out.")
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator(model.device).manual_seed(cfg.seed)
    written = []
    with torch.no_grad():
        if cfg.get("captions"):  # faces for typed captions (T2F): a row per caption, the caption under it
            images, per_row, labels = model.caption_grid(list(cfg.captions), cfg.per_caption, generator)
            written.append(grid(images, out / "typed_captions.png", per_row, labels))
        else:
            for stream in model.evaluation_streams():
                written.append(grid(fakes_of(stream, model, run_config, cfg, generator), out / f"{stream.name}.png",
                                    cfg.per_row))
        written += [grid(imgs, out / f"{name}.png", per_row, *labels)
                    for name, (imgs, per_row, *labels) in model.visualizations().items()]
    print("\n".join(f"wrote {path}" for path in written))


def fakes_of(stream: EvalStream, model: GANModule, run_config: DictConfig, cfg: DictConfig,
             generator: torch.Generator) -> torch.Tensor:
    """``cfg.num_samples`` fakes of one stream: from a count, or from the first held-out inputs of its split."""
    if stream.inputs is None:
        return stream.make(cfg.num_samples, generator)
    datamodule = instantiate(run_config.data)
    inputs = datamodule.eval_subset(stream.inputs.split, cfg.num_samples)
    batch = default_collate([inputs[i] for i in range(len(inputs))])
    return stream.make(move_data_to_device(batch, model.device), generator)


if __name__ == "__main__":
    main()
