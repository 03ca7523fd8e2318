"""The one way ganzoo hashes things for cache keys: 16 hex characters of SHA-256."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

DIGEST_LENGTH = 16


def digest(parts: Any) -> str:
    """Hash of ``parts`` (any JSON-serialisable value; dict key order does not matter; other objects by ``str``)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:DIGEST_LENGTH]


def file_digest(path: str | os.PathLike) -> str:
    """Hash of a file's whole content, then its size in bytes: ``<16 hex>-<size>``.

    The whole file, not a prefix: a weights file can change only in its last layers. Hashing the 96 MB FID
    Inception weights takes about 0.06 s here.
    """
    with open(path, "rb") as f:
        content = hashlib.file_digest(f, "sha256").hexdigest()[:DIGEST_LENGTH]
    return f"{content}-{Path(path).stat().st_size}"
