"""Translate a folder of images with a checkpoint:
``python -m src.translate ckpt_path=<run>/checkpoints/last.ckpt input=<folder> direction=a2b output=<folder>``.

Every image below ``input`` (jpg, jpeg, png, bmp, webp, any depth; any mode: converted to the model's channels; any
size: resized to the model's square image size as the evaluation data is) goes through the checkpoint's generator
for ``direction`` (the EMA copy where there is one) and is written under ``output`` with the same relative path and
file name, resized back to the input's size (``keep_size``). A file that cannot be read is named in a warning and
skipped; the others are still written; the exit status is then 1, with one line listing the files that failed.
"""
from __future__ import annotations

import sys
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig
from torchvision.transforms import v2
from torchvision.utils import save_image

from src.data.input_folder import input_images, readable_images
from src.data.unpaired_folder import resize_and_crop
from src.models.translation import TranslationModule
from src.sample import load_model
from src.utils.config_check import check_config
from src.utils.errors import ConfigError, exit_on_user_error


def translation_model(ckpt_path: str, direction: str, device: str) -> TranslationModule:
    """The checkpoint's model, checked to translate ``direction``."""
    model, _ = load_model(ckpt_path, device)
    if not isinstance(model, TranslationModule):
        raise ConfigError(f"ckpt_path={ckpt_path} holds a {type(model).__name__}, not an image-to-image model; "
                          f"pass a CycleGAN or pix2pix checkpoint.")
    if direction not in model.generator:
        raise ConfigError(f"direction={direction}: this {type(model).__name__} translates "
                          f"{', '.join(model.generator)} only.")
    return model


def translate_folder(model: TranslationModule, direction: str, source: Path, target: Path, keep_size: bool = True,
                     batch_size: int = 16) -> tuple[list[Path], dict[Path, str]]:
    """Translate every image below ``source`` into ``target`` (same relative paths); returns (written, failed:
    relative path → reason)."""
    channels, side = model.grid_a.shape[1], model.grid_a.shape[-1]
    resize = resize_and_crop(side, side, flip=False, train=False)
    written, failed, pending = [], {}, []
    relative_paths = input_images(source)

    def flush() -> None:
        if not pending:
            return
        with torch.no_grad():
            batch = torch.stack([resize(image) for _, image in pending]).to(model.device)
            outputs = model.translate(direction, batch, model.eval_generator).float().cpu()
        for (relative, image), output in zip(pending, outputs):
            if keep_size:
                output = v2.functional.resize(output, list(image.shape[-2:]), antialias=True).clamp(-1, 1)
            path = target / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            save_image(output, path, normalize=True, value_range=(-1, 1))
            written.append(path)
        pending.clear()

    for relative, image in readable_images(source, relative_paths, channels, failed):
        pending.append((relative, image))
        if len(pending) == batch_size:
            flush()
    flush()
    return written, failed


@hydra.main(version_base="1.3", config_path="../conf", config_name="translate")
def main(cfg: DictConfig) -> None:
    with exit_on_user_error():
        check_config(cfg)
        device = ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device
        model = translation_model(cfg.ckpt_path, cfg.direction, device)
        source, target = Path(cfg.input).expanduser(), Path(cfg.output).expanduser()
        written, failed = translate_folder(model, cfg.direction, source, target, cfg.keep_size, cfg.batch_size)
    print(f"wrote {len(written)} images to {target}")
    if failed:
        print(f"error: could not translate {len(failed)} of {len(written) + len(failed)} images: "
              f"{', '.join(str(source / p) for p in failed)}", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
