"""The project's errors, in one place. Those in USER_ERRORS are the user's to fix (a setting, the data on disk, a
full disk, a diverged run): the entry points print them as one line, without a traceback (:func:`user_message`).
Each message names the problem and the fix."""
from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from omegaconf.errors import InterpolationResolutionError


class ConfigError(ValueError):
    """An invalid or incompatible configuration, detected before training starts."""


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite; training stops before the weights are overwritten with NaNs."""


class WriteError(RuntimeError):
    """A file could not be written (full disk, file-size or quota limit); the previous version is intact."""


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


#: What the entry points print as one line: the user's to fix. Anything else is a bug and keeps its traceback.
USER_ERRORS = (ConfigError, DatasetNotFoundError, CorruptImageError, NonFiniteLossError, WriteError)


def first_line(error: BaseException) -> str:
    text = str(getattr(error, "msg", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def unresolved(error: InterpolationResolutionError) -> str:
    """An interpolation that failed, in one line with the fix (also for one that fails once ``dataset`` is filled)."""
    return f"{first_line(error)}. Fix: point it at a key that exists, or set {error.full_key} directly."


def user_message(error: BaseException | None) -> str | None:
    """The one line to print when ``error`` is the user's to fix, else None (a bug keeps its traceback).

    Looks through the causes: Hydra's instantiate wraps what a constructor raised in an InstantiationException.
    """
    while error is not None:
        if isinstance(error, USER_ERRORS):
            return str(error)
        if isinstance(error, InterpolationResolutionError):  # of ${dataset.…}: only resolvable once train() fills it
            return f"{error.full_key}: {unresolved(error)}"
        error = error.__cause__
    return None


@contextmanager
def exit_on_user_error() -> Iterator[None]:
    """For an entry point's main(): a user's error becomes ``error: <one line>`` on stderr and exit status 1."""
    try:
        yield
    except Exception as error:
        message = user_message(error)
        if message is None:
            raise
        print(f"\nerror: {message}", file=sys.stderr)
        raise SystemExit(1) from None
