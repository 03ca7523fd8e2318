"""What a DataModule's fingerprint (a cache key, e.g. of the FID features of its real images) is made of."""

from collections.abc import Iterable
from pathlib import Path



def file_signature(root: Path, relative_paths: Iterable[str | Path]) -> list[tuple[str, int, int]]:
    """(relative path, size in bytes, mtime in ns) of each existing file, sorted by path.

    Size and mtime stand in for the content: hashing every byte of a large image
    folder would cost more than the FID statistics the fingerprint caches.
    """
    signature = []
    for relative in sorted(Path(p).as_posix() for p in relative_paths):
        path = root / relative
        if path.is_file():
            stat = path.stat()
            signature.append((relative, stat.st_size, stat.st_mtime_ns))
    return signature
