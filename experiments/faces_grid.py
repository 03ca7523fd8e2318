"""The picture of the procedural faces in the docs: the first training faces of ``data=faces`` with one of their
captions each (``docs/faces.png``), drawn exactly as the DataModule draws them.

    python experiments/faces_grid.py [--size 64] [--count 16] [--columns 4] [--seed 0] [--out docs/faces.png]
"""
from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from src.data.faces.datamodules import SPLIT_START, face_captions
from src.data.faces.render import render, sample_face

ROOT = Path(__file__).resolve().parents[1]
#: Pixels per face pixel in the picture (nearest neighbour, so the pixels stay visible), and caption lines per face.
ZOOM, LINES, CHARS_PER_LINE = 2, 3, 30


def grid(size: int, count: int, columns: int, seed: int) -> Image.Image:
    font = ImageFont.load_default()
    line_height = font.getbbox("Ag")[3] + 3
    cell_width = max(size * ZOOM, font.getbbox("x" * CHARS_PER_LINE)[2]) + 12
    cell_height = size * ZOOM + LINES * line_height + 12
    rows = -(-count // columns)
    picture = Image.new("RGB", (columns * cell_width, rows * cell_height), "white")
    draw = ImageDraw.Draw(picture)
    for i in range(count):
        spec = sample_face(seed, SPLIT_START["train"] + i)
        face = Image.fromarray(render(spec, size)).resize((size * ZOOM, size * ZOOM), Image.NEAREST)
        x, y = (i % columns) * cell_width, (i // columns) * cell_height
        picture.paste(face, (x + (cell_width - size * ZOOM) // 2, y + 4))
        caption = face_captions(spec.attrs, seed, SPLIT_START["train"] + i, 1, held_out=False)[0]
        for k, line in enumerate(textwrap.wrap(caption, CHARS_PER_LINE)[:LINES]):
            draw.text((x + 6, y + size * ZOOM + 8 + k * line_height), line, fill="black", font=font)
    return picture


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=64, choices=(32, 64, 128))
    parser.add_argument("--count", type=int, default=16)
    parser.add_argument("--columns", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "faces.png")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    grid(args.size, args.count, args.columns, args.seed).save(args.out)
    print(args.out)


if __name__ == "__main__":
    main()
