"""Benchmark: what drawing the procedural faces costs the first time (`data=faces`, `data=faces_paired`; the
unpaired domains reuse the faces of `data=faces`): wall time of `prepare_data` into an empty cache and the size of
the cached uint8 arrays, at 32, 64 and 128 px, default split sizes (20,000 / 2,000 / 2,000).

    python experiments/faces_generation.py [--sizes 32 64 128] [--paired-size 64]

Every later run reads the memory-mapped cache (under ${paths.cache_dir}/faces/) in well under a second.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from record import write_result

from src.data.faces.datamodules import FacesDataModule, FacesPairedDataModule
from src.data.faces.store import default_processes


def cost(datamodule_class, image_size: int) -> dict[str, float]:
    """Seconds to draw every split into an empty cache, the MiB it takes, and the seconds to read it back."""
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        datamodule_class(image_size=image_size, cache_dir=cache).prepare_data()
        seconds = time.perf_counter() - start
        mib = sum(f.stat().st_size for f in Path(cache).rglob("*") if f.is_file()) / 2**20
        start = time.perf_counter()
        again = datamodule_class(image_size=image_size, cache_dir=cache)
        again.setup()
        again.train_set[0]
        reread = time.perf_counter() - start
    return {"seconds": round(seconds, 1), "cache_mib": round(mib, 1), "cached_setup_seconds": round(reread, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--paired-size", type=int, default=64)
    args = parser.parse_args()
    start = time.perf_counter()
    figures: dict = {"processes": default_processes(), "splits": "20000/2000/2000"}
    for size in args.sizes:
        for name, value in cost(FacesDataModule, size).items():
            figures[f"faces_{size}_{name}"] = value
    for name, value in cost(FacesPairedDataModule, args.paired_size).items():
        figures[f"faces_paired_{args.paired_size}_{name}"] = value
    print(write_result("faces_generation", figures, time.perf_counter() - start).read_text())


if __name__ == "__main__":
    main()
