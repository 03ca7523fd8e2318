"""Errors the DataModules raise when the data on disk is missing or broken.

Each message names the problem and the fix, so a user reading only the last
line of a traceback knows which files to put where.
"""

from collections.abc import Sequence
from pathlib import Path


class DatasetNotFoundError(FileNotFoundError):
    """The dataset's files are not where the DataModule looked (and could not be downloaded)."""


class CorruptImageError(OSError):
    """One or more image files could not be decoded; build it with :meth:`for_files`.

    The constructor takes just the message, like any OSError, so that a DataLoader
    worker can re-raise it in the main process.
    """

    paths: tuple[Path, ...] = ()
    reason: str = ""

    @classmethod
    def for_files(cls, paths: Sequence[Path], reason: str) -> "CorruptImageError":
        """The error for the unreadable ``paths``; ``reason`` is what the image library said (first file)."""
        listed = "\n".join(f"  {p}" for p in paths)
        noun = "image" if len(paths) == 1 else f"{len(paths)} images"
        error = cls(
            f"Cannot read {noun} ({reason}):\n{listed}\n"
            "Remove the file(s) from the dataset folder or re-encode them "
            "(e.g. open and save again as PNG)."
        )
        error.paths = tuple(Path(p) for p in paths)
        error.reason = reason
        return error
