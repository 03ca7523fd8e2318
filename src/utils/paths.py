"""ganzoo's cache directory, where everything computed once is kept: converted FID weights, real-image features,
attribute judges and the procedural faces."""
from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """``$GANZOO_CACHE`` if set, else ``~/.cache/ganzoo``."""
    return Path(os.environ.get("GANZOO_CACHE", Path.home() / ".cache" / "ganzoo")).expanduser()


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """``cache_dir`` (a configured ``paths.cache_dir``, ``~`` expanded), or :func:`default_cache_dir` when None."""
    return Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
