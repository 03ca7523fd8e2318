"""Edit a folder of images through a checkpoint's generator (:mod:`src.inversion.editing`):

    python -m src.edit ckpt_path=<run>/checkpoints/last.ckpt images=<folder> attribute=eyeglasses strength=1.5
    python -m src.edit ckpt_path=… images=<folder> stroke=<mask.png> color='[200,30,30]'
    python -m src.edit ckpt_path=… images=<folder> mode=constrained attribute=smiling target=yes

Each image is inverted first (``method``, as ``src.invert``: z₀). Then, by ``mode``:

- ``vector`` (the default without a stroke): G(z₀ + strength·v), v the attribute vector of ``attribute`` →
  ``target`` (``yes`` for a binary attribute): the mean code of ``vector_images`` labelled training images of the
  checkpoint's dataset that have it, minus that of those that do not, their codes found by ``vector_method``.
  A negative strength takes the value away.
- ``constrained`` (the default with ``stroke``): the code minimising λ_u·U + λ_s·‖z − z₀‖² + λ_d·realism from D
  (``edit.*``), U a colour stroke (``stroke``: a mask image, white where the colour goes, resized to G's size;
  ``color``: one 0–255 value per channel) and/or the attribute judge's loss on ``attribute`` = ``target``.

Attributes come from the checkpoint's dataset (the faces' or CelebA's labels); the judge is the dataset's (trained
on its real images once, cached). Writes to ``output_dir``: ``edited/<relative path>`` (G's size),
``before_after.png`` (input | reconstruction G(z₀) | edit, ``per_row`` triples a row) and ``codes.pt``
(``names``, ``codes`` z₀, ``edited`` codes, ``vector`` where there is one). An unreadable image is named and
skipped, with exit status 1.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import hydra
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch.utils.data import default_collate

from src.data.unpaired_folder import read_image, resize_and_crop
from src.inversion.adapters import GeneratorAdapter
from src.inversion.editing import (AttributeConstraint, StrokeConstraint, attribute_vector, constrained_edit, shift,
                                   value_index)
from src.inversion.methods import METHODS, Inverter
from src.invert import decode, invert_folder, invert_in_batches, report_failed, write_images
from src.metrics.attribute_judge import judge_spec, load_judge
from src.sample import grid
from src.utils.errors import ConfigError, CorruptImageError, exit_on_user_error

MODES = ("auto", "vector", "constrained")


def labelled_data(run_config: DictConfig):
    """The checkpoint's DataModule as labelled images (two-domain faces: its labelled faces), and its attributes."""
    datamodule = instantiate(run_config.data)
    if hasattr(datamodule, "labelled_faces"):
        datamodule = datamodule.labelled_faces()
    try:
        return datamodule, judge_spec(datamodule)
    except ValueError as error:
        raise ConfigError(f"Editing by attribute needs labelled images: {error}") from None


def labelled_images(datamodule, n: int, adapter: GeneratorAdapter, split: str = "train"
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` evaluation-order images of ``split`` (at G's size, on its device) and their labels N×K."""
    subset = datamodule.eval_subset(split, n)
    batch = default_collate([subset[i] for i in range(len(subset))])
    side = adapter.image_shape[-1]
    return resize_and_crop(side, side, flip=False, train=False)(batch["image"]).to(adapter.device), batch["attrs"]


def read_stroke(cfg: DictConfig, adapter: GeneratorAdapter) -> StrokeConstraint:
    """The stroke constraint of ``cfg.stroke`` (a mask image) and ``cfg.color`` (0–255 per channel)."""
    channels, side = adapter.image_shape[0], adapter.image_shape[-1]
    color = cfg.get("color")
    if color is None or isinstance(color, (str, int, float)) or len(color) not in {1, channels} or not all(
            isinstance(c, (int, float)) and 0 <= c <= 255 for c in color):
        raise ConfigError(f"color={color} is not a stroke colour; give {channels} values from 0 to 255, e.g. "
                          f"color='[{', '.join(['200', '30', '30'][:channels])}]'.")
    path = Path(cfg.stroke).expanduser()
    if not path.is_file():
        raise ConfigError(f"stroke={cfg.stroke} does not exist; pass a mask image, white where the colour goes.")
    try:
        mask = read_image(path, 1)  # [-1, 1]; any mode and size
    except CorruptImageError as error:
        raise ConfigError(f"stroke={cfg.stroke} cannot be read ({error.reason}); pass a PNG or JPEG mask.") from None
    mask = F.interpolate(mask[None], size=(side, side), mode="bilinear", align_corners=False, antialias=True)[0]
    values = [c / 127.5 - 1 for c in color] * (channels if len(color) == 1 else 1)
    return StrokeConstraint((mask > 0).float(), values)


def vector_codes(inverter: Inverter, cfg: DictConfig, images: torch.Tensor) -> torch.Tensor:
    """The codes of the labelled images by ``cfg.vector_method`` (sharing the inputs' encoder where one was
    trained)."""
    return invert_in_batches(dataclasses.replace(inverter, method=cfg.vector_method), images, cfg.batch_size)


def edit_codes(cfg: DictConfig, adapter: GeneratorAdapter, run_config: DictConfig, inverter: Inverter,
               codes: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """The edited codes of ``codes`` (z₀) by ``cfg``'s mode, and what to report and save about the edit."""
    mode = cfg.mode if cfg.mode != "auto" else ("constrained" if cfg.get("stroke") else "vector")
    if mode == "vector":
        if cfg.get("stroke"):
            raise ConfigError("stroke= is a constraint: use mode=constrained (or leave mode=auto) for it.")
        if not cfg.get("attribute"):
            raise ConfigError("Nothing to edit: pass attribute=<name> (with strength=) or stroke=<mask.png> with "
                              "color=[r,g,b].")
        datamodule, spec = labelled_data(run_config)
        column, value = value_index(spec, cfg.attribute, cfg.get("target"))
        images, attrs = labelled_images(datamodule, cfg.vector_images, adapter)
        vector = attribute_vector(vector_codes(inverter, cfg, images), attrs, column, value)
        return shift(codes, vector, cfg.strength), {"vector": vector.cpu(), "mode": mode}
    constraints, report = [], {"mode": mode}
    if cfg.get("stroke"):
        constraints.append(read_stroke(cfg, adapter))
    if cfg.get("attribute"):
        datamodule, spec = labelled_data(run_config)
        column, value = value_index(spec, cfg.attribute, cfg.get("target"))
        judge = load_judge(datamodule, run_config.paths.cache_dir, device=adapter.device)
        constraints.append(AttributeConstraint(judge, column, value))
    edited = torch.cat([constrained_edit(adapter, chunk, constraints, instantiate(cfg.edit))
                        for chunk in codes.split(cfg.batch_size)])
    report["constraints"] = constraints
    return edited, report


def summary(report: dict, before: torch.Tensor, after: torch.Tensor) -> str:
    """One line on what the edit reached: the stroke's masked error and the share of the judge's target reached,
    before (the reconstruction) and after."""
    parts = []
    for constraint in report.get("constraints", []):
        if isinstance(constraint, StrokeConstraint):
            parts.append(f"stroke error {constraint(before).mean().item():.3g} → {constraint(after).mean().item():.3g}")
        else:
            reached = lambda images: constraint.satisfied(images).float().mean().item()  # noqa: E731
            parts.append(f"judge reads the target in {reached(before):.0%} → {reached(after):.0%}")
    return "; ".join(parts)


@hydra.main(version_base="1.3", config_path="../conf", config_name="edit")
def main(cfg: DictConfig) -> None:
    with exit_on_user_error():
        if cfg.mode not in MODES:
            raise ConfigError(f"mode={cfg.mode} is not an edit mode; use one of {', '.join(MODES)}.")
        if cfg.vector_method not in METHODS:
            raise ConfigError(f"vector_method={cfg.vector_method} is not an inversion method; use one of "
                              f"{', '.join(METHODS)}.")
        folder = invert_folder(cfg)
        edited, report = edit_codes(cfg, folder.adapter, folder.run_config, folder.inverter, folder.codes)
    names, images, codes = folder.names, folder.images, folder.codes
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    before, after = decode(folder.adapter, codes, cfg.batch_size), decode(folder.adapter, edited, cfg.batch_size)
    write_images(after, names, out / "edited")
    torch.save({"names": [n.as_posix() for n in names], "codes": codes.cpu(), "edited": edited.cpu(),
                "mode": report["mode"], "ckpt_path": str(cfg.ckpt_path),
                **({"vector": report["vector"]} if "vector" in report else {})}, out / "codes.pt")
    grid(torch.stack([images, before, after], dim=1).flatten(0, 1), out / "before_after.png", 3 * cfg.per_row)
    reached = summary(report, before, after)
    print(f"edited {len(names)} images ({report['mode']}{'; ' + reached if reached else ''}); wrote "
          f"{out / 'edited'}, {out / 'before_after.png'}, {out / 'codes.pt'}")
    report_failed(cfg.images, folder.failed, len(names) + len(folder.failed))


if __name__ == "__main__":
    main()
