"""A user's own captioned images: a folder of images (any nesting) and a captions file in it.

``captions.jsonl``: one JSON object per line, ``{"image": "<path relative to the folder>", "caption": "…"}``
(blank lines are skipped). ``captions.csv``: a header naming the columns ``image`` and ``caption`` (others are
ignored), then one row per caption, standard CSV quoting (a caption with commas, quotes or newlines in double
quotes, ``""`` for a quote). Both: UTF-8 (a byte-order mark is fine); an image may have several lines or rows,
one per caption; an image named but not on disk is skipped, an empty caption dropped (counted in one warning).
"""
from __future__ import annotations

import csv
import json
from pathlib import Path, PurePosixPath
from typing import Annotated

from src.data.base import BatchSize, ImageSize, NumWorkers, ValSize
from src.data.caption_records import CaptionedFilesDataModule, Channels, TestSize
from src.utils.arguments import Meaning, checked
from src.utils.errors import ConfigError, DatasetNotFoundError

#: The captions files looked for in the folder when ``captions_file`` is not given, by format.
CAPTIONS_FILES = {".jsonl": "captions.jsonl", ".csv": "captions.csv"}
_FORMATS = {
    ".jsonl": 'one JSON object per line: {"image": "<path relative to the folder>", "caption": "…"}',
    ".csv": "a header image,caption, then one row per caption: <path relative to the folder>,<caption> "
            "(a caption holding commas or quotes in double quotes)",
}


class CaptionsFolderDataModule(CaptionedFilesDataModule):
    """The images below ``root`` that its captions file names, with their captions (see the module docstring).

    Args:
        root: the folder of images, which holds the captions file.
        captions_file: the captions file (``.jsonl`` or ``.csv``), relative to ``root`` or absolute; null: whichever
            of ``captions.jsonl`` and ``captions.csv`` is in ``root``.
        image_size, channels, val_size, test_size, batch_size, num_workers, seed: see
            :class:`~src.data.caption_records.CaptionedFilesDataModule` (val and test are counted in images).
    """

    name = "captions"

    @checked
    def __init__(
        self,
        root: Annotated[str | Path, Meaning("the folder that holds the images and their captions file",
                                            example="/path/to/images")],
        captions_file: Annotated[str | Path | None, Meaning("the captions file, .jsonl or .csv",
                                                            example="captions.jsonl")] = None,
        image_size: ImageSize = 64,
        channels: Channels = 3,
        batch_size: BatchSize = 64,
        num_workers: NumWorkers = 0,
        val_size: ValSize = 64,
        test_size: TestSize = 0,
        seed: int = 0,
    ):
        super().__init__(image_size=image_size, channels=channels, val_size=val_size, test_size=test_size,
                         seed=seed, batch_size=batch_size, num_workers=num_workers)
        self.save_hyperparameters()
        self.root = Path(root).expanduser().absolute()
        self.captions_file = None if captions_file is None else Path(captions_file).expanduser()

    @property
    def image_root(self) -> Path:
        return self.root

    @property
    def annotation_file(self) -> Path:
        if not self.root.is_dir():
            raise self.not_found(f"the folder {self.root} does not exist")
        if self.captions_file is not None:
            path = self.root / self.captions_file
            if path.suffix.lower() not in CAPTIONS_FILES:
                raise ConfigError(f"data.captions_file={self.captions_file}: a captions file ends in .jsonl or .csv "
                                  f"({_FORMATS['.jsonl']}; or {_FORMATS['.csv']}).")
            if not path.is_file():
                raise self.not_found(f"the captions file {path} does not exist")
            return path
        present = [self.root / name for name in CAPTIONS_FILES.values() if (self.root / name).is_file()]
        if len(present) > 1:
            raise ConfigError(f"{self.root} holds both captions.jsonl and captions.csv; say which to read: "
                              "data.captions_file=captions.jsonl or data.captions_file=captions.csv.")
        if not present:
            raise self.not_found(f"{self.root} holds neither captions.jsonl nor captions.csv")
        return present[0]

    def read_annotations(self) -> list[tuple[str, list[str]]]:
        path = self.annotation_file
        suffix = path.suffix.lower()
        try:
            # utf-8-sig: spreadsheet programs start their UTF-8 exports with a byte-order mark.
            with path.open(encoding="utf-8-sig", newline="") as lines:
                rows = _read_jsonl(path, lines) if suffix == ".jsonl" else _read_csv(path, lines)
        except UnicodeDecodeError as error:
            raise ConfigError(f"{path} is not UTF-8 text ({error}). Save it as UTF-8.") from None
        return [(image, [caption]) for image, caption in rows]

    def not_found(self, problem: str) -> DatasetNotFoundError:
        return DatasetNotFoundError(
            f"Captioned images not found: {problem}. data=captions reads a folder of images (any nesting) and a "
            f"captions file in it: captions.jsonl, {_FORMATS['.jsonl']}; or captions.csv, {_FORMATS['.csv']}. An "
            "image may have several lines, one per caption. Set data.root=/path/to/folder (and "
            "data.captions_file if the file has another name)."
        )


def _malformed(path: Path, line: int, problem: str) -> ConfigError:
    return ConfigError(f"{path}, line {line}: {problem}. Expected {_FORMATS[path.suffix.lower()]}.")


def _image_name(path: Path, line: int, image: str) -> str:
    """The annotated image path, checked: a non-empty path relative to the folder."""
    if not image.strip() or PurePosixPath(image).is_absolute() or Path(image).is_absolute():
        raise _malformed(path, line, f"the image {image!r} is not a path relative to the folder")
    return image


def _read_jsonl(path: Path, lines) -> list[tuple[str, str]]:
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise _malformed(path, number, f"not valid JSON ({error.msg}, column {error.colno})") from None
        if not (isinstance(row, dict) and isinstance(row.get("image"), str) and isinstance(row.get("caption"), str)):
            raise _malformed(path, number, f"not an object with the strings \"image\" and \"caption\": "
                                           f"{line.strip()[:100]}")
        rows.append((_image_name(path, number, row["image"]), row["caption"]))
    return rows


def _read_csv(path: Path, lines) -> list[tuple[str, str]]:
    reader = csv.reader(lines, strict=True)
    rows = []
    try:
        header = next(reader, None)
        columns = [name.strip() for name in header or []]
        if "image" not in columns or "caption" not in columns:
            raise _malformed(path, 1, f"the header must name the columns image and caption; it is "
                                      f"{','.join(header or []) or 'empty'}")
        image, caption = columns.index("image"), columns.index("caption")
        for row in reader:
            if not row:  # a blank line
                continue
            if len(row) != len(columns):
                raise _malformed(path, reader.line_num, f"{len(row)} fields where the header has {len(columns)} "
                                                        f"({','.join(columns)})")
            rows.append((_image_name(path, reader.line_num, row[image]), row[caption]))
    except csv.Error as error:
        raise _malformed(path, reader.line_num, str(error)) from None
    return rows
