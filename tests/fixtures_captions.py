"""Tiny captioned datasets in their published on-disk layouts, with seeded random images.

Plain functions (``from fixtures_captions import write_face2text``), like ``fixtures.py``. The DataModules read
these files through the same code path as the real data:

- Face2Text: ``<root>/face2text/clean.json`` in the release's format (``img_id``, ``image`` naming a ``.bmp``,
  ``descriptions`` of ``desc_id`` and ``text``) and ``<root>/face2text/lfw/<Person_Name>/<Person_Name>_NNNN.jpg``.
- a captions folder: images in nested subfolders and ``captions.jsonl`` or ``captions.csv``.
"""
from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

_FIRST = ("Anna", "Boris", "Carla", "Dmitri", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Kara", "Luis")
_LAST = ("Berg", "Costa", "Dunn", "Ekberg", "Fox", "Gray")
_WORDS = ("young", "old", "woman", "man", "smiling", "serious", "dark", "blond", "grey", "hair", "short", "long",
          "glasses", "beard", "round", "face", "eyes", "brown")

#: A Face2Text entry: the image name as clean.json writes it and its description texts.
Entry = tuple[str, Sequence[str]]


def write_image(path: Path, size: int | tuple[int, int], seed: int) -> Path:
    """Random RGB pixels at ``path`` (H×W = ``size``), in the format of its extension."""
    height, width = (size, size) if isinstance(size, int) else size
    pixels = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    # PIL picks the format from the extension, whatever its case (.JPG).
    Image.fromarray(pixels).save(path, format=Image.registered_extensions()[path.suffix.lower()])
    return path


def random_captions(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` distinct captions of 3 to 8 face words, each ending in a number word so that no two are equal."""
    return [" ".join([*rng.choice(_WORDS, size=int(rng.integers(2, 8))), f"n{int(rng.integers(1e9))}"])
            for _ in range(n)]


def face2text_entries(n: int, seed: int = 0) -> list[Entry]:
    """``n`` entries as in the release: LFW names (``First_Last/First_Last_0001.bmp``; every fifth person gets a
    second image, ``_0002``) with 1 to 4 descriptions each."""
    rng = np.random.default_rng(seed)
    entries = []
    for i in range(n):
        person = f"{_FIRST[i % len(_FIRST)]}_{_LAST[i // len(_FIRST) % len(_LAST)]}{'' if i < 72 else i}"
        number = 2 if i % 5 == 4 else 1
        entries.append((f"{person}/{person}_{number:04d}.bmp", random_captions(rng, int(rng.integers(1, 5)))))
    return entries


def write_face2text(root: Path, entries: Sequence[Entry], size: int = 40,
                    on_disk: Mapping[str, str | None] | None = None) -> Path:
    """Face2Text under ``<root>/face2text``: clean.json of ``entries`` in the release's format (4-space indented,
    ids from 1) and one JPEG per entry at LFW's name for it (the ``.bmp`` name with ``.jpg``), ``size``×``size``.

    ``on_disk`` overrides where an entry's image is written (its name in clean.json → a path relative to
    ``lfw/``), or leaves it out (None). Returns the ``face2text`` folder.
    """
    folder = Path(root) / "face2text"
    folder.mkdir(parents=True, exist_ok=True)
    on_disk = on_disk or {}
    records, desc_id = [], 0
    for img_id, (image, texts) in enumerate(entries, 1):
        descriptions = []
        for text in texts:
            desc_id += 1
            descriptions.append({"desc_id": desc_id, "text": text})
        records.append({"img_id": img_id, "image": image, "descriptions": descriptions})
        disk = on_disk.get(image, str(Path(image).with_suffix(".jpg")))
        if disk is not None:
            write_image(folder / "lfw" / disk, size, seed=img_id)
    (folder / "clean.json").write_text(json.dumps(records, indent=4), encoding="utf-8")
    return folder


def caption_records(n: int, seed: int = 0) -> list[Entry]:
    """``n`` images of a user's folder, nested (``set<k>/``, every third one level deeper), PNG and JPEG
    alternating, with 1 to 3 distinct captions each (one with a comma and quotes, for CSV quoting)."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        folder = f"set{i % 2}/" + ("deep/" if i % 3 == 2 else "")
        captions = random_captions(rng, int(rng.integers(1, 4)))
        if i == 1:
            captions[0] = f'a "quoted" face, with a comma {captions[0]}'
        records.append((f"{folder}img{i}.{'png' if i % 2 == 0 else 'jpg'}", captions))
    return records


def write_captions_folder(root: Path, records: Sequence[Entry], fmt: str = "jsonl", size: int = 24,
                          missing: Sequence[str] = ()) -> Path:
    """The images of ``records`` under ``root`` (heights ``size``, widths ``size`` or ``size + 8``), except those
    in ``missing``, and their captions in ``root/captions.<fmt>`` (``jsonl`` or ``csv``), one line per caption,
    the images' lines interleaved (round-robin) as a file built by hand would be. Returns the captions file."""
    root = Path(root)
    for i, (image, _) in enumerate(records):
        if image not in missing:
            write_image(root / image, (size, size + 8 * (i % 2)), seed=i)
    longest = max(len(captions) for _, captions in records)
    lines = [(image, captions[k]) for k in range(longest) for image, captions in records if k < len(captions)]
    path = root / f"captions.{fmt}"
    if fmt == "jsonl":
        path.write_text("".join(json.dumps({"image": image, "caption": caption}) + "\n" for image, caption in lines),
                        encoding="utf-8")
    else:
        with path.open("w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow(["image", "caption"])
            writer.writerows(lines)
    return path
