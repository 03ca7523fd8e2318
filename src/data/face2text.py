"""Face2Text (Gatt et al. 2018): crowd-sourced descriptions of faces from LFW, the captions T2F trains on.

Files, as published (nothing is downloaded):

- ``<root>/face2text/clean.json``: the cleaned captions of the Face2Text v0.1 release (University of Malta,
  RiVaL group): a JSON list of ``{"img_id": int, "image": "<Person_Name>/<Person_Name>_NNNN.bmp",
  "descriptions": [{"desc_id": int, "text": str}, …]}``, 400 images with 1–4 descriptions each (1,237 in all).
  The field names are the release's (its readme.txt and the clean.json that akanimax/T2F ships under
  ``data/LFW/Face2Text/face2text_v0.1/``); the names end in ``.bmp`` while LFW's files are JPEGs, which T2F's
  ``read_annotations`` handles by replacing the extension: here the file on disk with the same stem is read
  (without a warning for ``.bmp`` → ``.jpg``, the release's convention; any other mapping is counted in the one
  data warning).
- the LFW images (Labeled Faces in the Wild, UMass Amherst): ``<lfw_root>/<Person_Name>/<Person_Name>_NNNN.jpg``,
  250×250 RGB; ``lfw_root`` defaults to ``<root>/face2text/lfw``, where ``lfw.tgz`` extracts to.

Preprocessing: a center crop of ``crop_size`` pixels (default 150 of the 250: the face, with hair and chin, fills
the frame; LFW's faces are centered by its detector), then a resize to ``image_size`` (T2F: 64). T2F itself
resized the whole 250×250 frame (``data_processing/DataLoader.py``): ``crop_size=null`` does that.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from src.data.base import BatchSize, ImageSize, NumWorkers, ValSize
from src.data.caption_records import CaptionedFilesDataModule, Channels, TestSize
from src.utils.arguments import Meaning, checked
from src.utils.errors import ConfigError, DatasetNotFoundError

FACE2TEXT_URL = "http://rival.research.um.edu.mt/facedesc/"
LFW_URL = "http://vis-www.cs.umass.edu/lfw/"
_ENTRY = ('{"img_id": …, "image": "<Person_Name>/<Person_Name>_NNNN.bmp", '
          '"descriptions": [{"desc_id": …, "text": "…"}, …]}')


class Face2TextDataModule(CaptionedFilesDataModule):
    """Face2Text's captioned LFW faces; see the module docstring for the files and the preprocessing.

    Args:
        root: the data directory that holds ``face2text/`` (with ``clean.json``, and ``lfw/`` by default).
        lfw_root: the LFW folder holding the ``<Person_Name>/`` folders, if not ``<root>/face2text/lfw``.
        crop_size: side of the center crop taken from each 250×250 LFW image before resizing; null: the whole image.
        image_size, channels, val_size, test_size, batch_size, num_workers, seed: see
            :class:`~src.data.caption_records.CaptionedFilesDataModule` (val and test are counted in images;
            Face2Text has 400).
    """

    name = "face2text"
    renamed_by_convention = {".bmp": ".jpg"}  # the release's names for LFW's JPEGs: no warning for them

    @checked
    def __init__(
        self,
        root: Annotated[str | Path, Meaning("the data directory that holds face2text/",
                                            example="/path/to/data")] = "data",
        lfw_root: Annotated[str | Path | None, Meaning("the LFW folder of <Person_Name>/ folders",
                                                       example="/path/to/lfw")] = None,
        crop_size: Annotated[int | None, Meaning("the side of the center crop of the 250 px LFW images, in pixels",
                                                 at_least=1)] = 150,
        image_size: ImageSize = 64,
        channels: Channels = 3,
        batch_size: BatchSize = 64,
        num_workers: NumWorkers = 0,
        val_size: ValSize = 40,
        test_size: TestSize = 40,
        seed: int = 0,
    ):
        super().__init__(image_size=image_size, channels=channels, val_size=val_size, test_size=test_size,
                         seed=seed, batch_size=batch_size, num_workers=num_workers)
        self.save_hyperparameters()
        self.root = Path(root).expanduser().absolute()
        self.folder = self.root / "face2text"
        self.lfw_root = None if lfw_root is None else Path(lfw_root).expanduser().absolute()
        self.crop_size = crop_size

    @property
    def annotation_file(self) -> Path:
        return self.folder / "clean.json"

    @property
    def image_root(self) -> Path:
        return self.lfw_root or self.folder / "lfw"

    def read_annotations(self) -> list[tuple[str, list[str]]]:
        path = self.annotation_file
        if not path.is_file():
            raise self.not_found(f"{path} does not exist")
        try:
            entries = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ConfigError(f"{path}, line {error.lineno}, column {error.colno}: not valid JSON ({error.msg}). "
                              f"Put the clean.json of the Face2Text release there ({FACE2TEXT_URL}).") from None
        except UnicodeDecodeError as error:
            raise ConfigError(f"{path} is not UTF-8 text ({error}). Put the clean.json of the Face2Text release "
                              f"there ({FACE2TEXT_URL}).") from None
        if not isinstance(entries, list):
            raise ConfigError(f"{path} holds a JSON {type(entries).__name__}; Face2Text's clean.json is a list of "
                              f"{_ENTRY}.")
        return [_entry(path, index, entry) for index, entry in enumerate(entries)]

    def not_found(self, problem: str) -> DatasetNotFoundError:
        missing = [str(path) for path in (self.annotation_file, self.image_root) if not path.exists()]
        return DatasetNotFoundError(
            f"Face2Text not found: {problem}{' (missing: ' + ', '.join(missing) + ')' if missing else ''}. "
            f"data=face2text reads {self.annotation_file} (the Face2Text captions: "
            f"clean.json of the face2text_v0.1 release from the University of Malta's RiVaL group, {FACE2TEXT_URL}) "
            f"and the LFW images {self.image_root}/<Person_Name>/<Person_Name>_NNNN.jpg (lfw.tgz from the UMass "
            f"site, {LFW_URL}, extracted in {self.folder}). Nothing is downloaded: put the files there, or set "
            "data.root to the folder that holds face2text/ (and data.lfw_root to LFW's folder if it is elsewhere)."
        )


def _entry(path: Path, index: int, entry: Any) -> tuple[str, list[str]]:
    """(image, description texts) of one clean.json entry; a null text counts as an empty description."""
    descriptions = entry.get("descriptions") if isinstance(entry, dict) else None
    valid = (isinstance(entry, dict) and isinstance(entry.get("image"), str) and entry["image"].strip()
             and isinstance(descriptions, list)
             and all(isinstance(d, dict) and isinstance(d.get("text", 0), (str, type(None))) for d in descriptions))
    if not valid:
        shown = json.dumps(entry)[:120]
        img_id = entry.get("img_id") if isinstance(entry, dict) else None
        raise ConfigError(f"{path}, entry {index} (img_id {img_id}): expected {_ENTRY}, got {shown}.")
    return entry["image"], [d["text"] or "" for d in descriptions]
