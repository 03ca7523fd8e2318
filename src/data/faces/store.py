"""Blocks of procedural faces, drawn once and kept on disk: ``<cache_dir>/faces/<key>/``.

A block (:class:`FaceBlock`) is faces ``first … first + count - 1`` of the stream ``seed`` at one image size,
drawn with one set of attribute frequencies; a paired block draws every face twice, without and with one binary
attribute. Its folder holds one ``.npy`` file per array (:meth:`FaceBlock.arrays`: images N×S×S×3 uint8, attribute
vectors N×K int64) and ``meta.json``. The key hashes everything that decides the pixels, :data:`GENERATOR_VERSION`
included, so a changed drawing never reuses old faces. Arrays are memory-mapped when read: DataLoader workers and
DDP ranks on one machine share the pages instead of each holding a copy (about 250 MB for 20,000 faces at 64 px).

A block is written into a temporary folder beside its final place and renamed into place when complete, so a
killed run leaves no half block; a folder that does not read back as the block it should be (truncated, missing
or foreign files) is drawn again, with a warning. Drawing uses several processes; every face depends only on
(seed, index), so the arrays do not depend on their number.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import shutil
import time
import uuid
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from src.data.faces.attributes import ATTRIBUTES, with_value
from src.data.faces.render import render, sample_face
from src.utils.errors import WriteError
from src.utils.hashing import digest
from src.utils.paths import cache_root

#: Raise it whenever a change could alter the faces drawn for the same settings (drawing, sampling, storage).
GENERATOR_VERSION = 3
#: Faces per task handed to a drawing process.
CHUNK = 256
#: What reading a damaged block raises: json and .npy header errors, truncated or missing files.
UNREADABLE = (OSError, ValueError, EOFError)


@dataclass(frozen=True)
class FaceBlock:
    """Faces ``first … first + count - 1`` of stream ``seed``, at ``image_size``, drawn with ``probs``.

    ``probs``: per attribute, the probability of each value (as :func:`src.data.faces.attributes.frequencies`
    gives, as tuples). ``paired_on``: a binary attribute; each face is then drawn as ``"a"`` (without it) and
    ``"b"`` (with it), whatever it was drawn with. What ``"b"`` needs comes along in both (a beard needs a man: both
    renderings of a woman drawn for a bearded pair are men), so the two differ only where the attribute is drawn.
    """

    seed: int
    first: int
    count: int
    image_size: int
    probs: tuple[tuple[str, tuple[float, ...]], ...]
    paired_on: str | None = None

    @classmethod
    def of(cls, seed: int, first: int, count: int, image_size: int, probs: Mapping[str, np.ndarray],
           paired_on: str | None = None) -> "FaceBlock":
        as_tuples = tuple((name, tuple(float(p) for p in probs[name])) for name in sorted(probs))
        return cls(seed, first, count, image_size, as_tuples, paired_on)

    @property
    def key(self) -> str:
        """The cache key: a digest of everything that decides the arrays."""
        return digest({"version": GENERATOR_VERSION, **dataclasses.asdict(self),
                       "attributes": [(a.name, a.values) for a in ATTRIBUTES]})

    def arrays(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        """Name → (shape, dtype) of every array the block holds."""
        images = ((self.count, self.image_size, self.image_size, 3), np.dtype(np.uint8))
        attrs = ((self.count, len(ATTRIBUTES)), np.dtype(np.int64))
        if self.paired_on is None:
            return {"images": images, "attrs": attrs}
        return {"images_a": images, "images_b": images, "attrs_a": attrs, "attrs_b": attrs}

    def draw(self, start: int, stop: int) -> dict[str, np.ndarray]:
        """The arrays of faces ``start … stop - 1`` of the block (positions within it)."""
        probs = {name: np.asarray(p) for name, p in self.probs}
        out = {name: np.empty((stop - start, *shape[1:]), dtype) for name, (shape, dtype) in self.arrays().items()}
        for row, position in enumerate(range(start, stop)):
            spec = sample_face(self.seed, self.first + position, probs)
            if self.paired_on is None:
                out["images"][row], out["attrs"][row] = render(spec, self.image_size), spec.attrs
                continue
            with_it = with_value(spec.attrs, self.paired_on, "yes")
            for side, attrs in (("b", with_it), ("a", with_value(with_it, self.paired_on, "no"))):
                out[f"images_{side}"][row] = render(dataclasses.replace(spec, attrs=attrs), self.image_size)
                out[f"attrs_{side}"][row] = attrs
        return out


def _draw_chunk(block: FaceBlock, start: int, stop: int) -> tuple[int, dict[str, np.ndarray]]:
    return start, block.draw(start, stop)


def default_processes() -> int:
    """The CPUs this process may use (its affinity, as under SLURM or taskset), at most 16."""
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(16, available))


def load(place: Path, block: FaceBlock) -> dict[str, np.ndarray]:
    """The block's arrays, memory-mapped read-only from ``place``; raises ValueError or OSError when it
    is not that block, complete."""
    meta = json.loads((place / "meta.json").read_text())
    if meta.get("key") != block.key:
        raise ValueError(f"meta.json names key {meta.get('key')!r}, not {block.key!r}")
    arrays = {}
    for name, (shape, dtype) in block.arrays().items():
        array = np.load(place / f"{name}.npy", mmap_mode="r", allow_pickle=False)
        if array.shape != shape or array.dtype != dtype:
            raise ValueError(f"{name}.npy holds {array.dtype} {array.shape}, not {dtype} {shape}")
        arrays[name] = array
    return arrays


def folder(block: FaceBlock, cache_dir: str | os.PathLike | None = None) -> Path:
    """``<cache_dir>/faces/<key>``; ``cache_dir`` defaults to ``$GANZOO_CACHE`` or ``~/.cache/ganzoo``."""
    return cache_root(cache_dir) / "faces" / block.key


def read(block: FaceBlock, cache_dir: str | os.PathLike | None = None) -> dict[str, np.ndarray] | None:
    """The block's cached arrays, or None when the cache has no readable copy (nothing is drawn)."""
    try:
        return load(folder(block, cache_dir), block)
    except UNREADABLE:
        return None


def faces(block: FaceBlock, cache_dir: str | os.PathLike | None = None,
          processes: int | None = None) -> dict[str, np.ndarray]:
    """The block's arrays: read from the cache, else drawn (with a progress bar) and cached first.

    ``cache_dir``: default ``$GANZOO_CACHE`` or ``~/.cache/ganzoo``. ``processes``: drawing processes, default
    :func:`default_processes`.
    """
    place = folder(block, cache_dir)
    if place.exists():
        try:
            return load(place, block)
        except UNREADABLE as error:
            warnings.warn(f"The face cache {place} is unreadable ({type(error).__name__}: {error}); drawing it "
                          f"again.", stacklevel=2)
    return _generate(block, place, processes or default_processes())


def _generate(block: FaceBlock, place: Path, processes: int) -> dict[str, np.ndarray]:
    tmp = place.with_name(f".{place.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.mkdir(parents=True)
        started = time.perf_counter()
        outputs = {name: np.lib.format.open_memmap(tmp / f"{name}.npy", mode="w+", dtype=dtype, shape=shape)
                   for name, (shape, dtype) in block.arrays().items()}
        _fill(block, outputs, processes)
        for array in outputs.values():
            array.flush()
        del outputs
        meta = {"key": block.key, "generator_version": GENERATOR_VERSION, **dataclasses.asdict(block),
                "seconds": round(time.perf_counter() - started, 2), "processes": processes}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        for path in tmp.iterdir():
            with open(path, "rb+") as f:
                os.fsync(f.fileno())
        if place.exists():
            # Another process (a second DDP rank, a parallel job) may have put a good copy in place meanwhile:
            # use it; remove only what is still unreadable (the block found above), never a copy being read.
            try:
                arrays = load(place, block)
            except UNREADABLE:
                shutil.rmtree(place, ignore_errors=True)
            else:
                shutil.rmtree(tmp, ignore_errors=True)
                return arrays
        try:
            os.replace(tmp, place)
        except OSError:
            if not place.exists():
                raise
            # Another process (a second DDP node, a parallel job) put the same block in place first: use theirs.
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException as error:
        shutil.rmtree(tmp, ignore_errors=True)
        if not isinstance(error, OSError):
            raise
        free = shutil.disk_usage(place.parent).free / 2**20 if place.parent.exists() else float("nan")
        raise WriteError(f"Could not write the face cache {place} ({type(error).__name__}: {error}; {free:.0f} MiB "
                         f"free there). Fix: free disk space, or point data.cache_dir (paths.cache_dir) elsewhere."
                         ) from error
    return load(place, block)


def _fill(block: FaceBlock, outputs: dict[str, np.ndarray], processes: int) -> None:
    chunks = [(start, min(start + CHUNK, block.count)) for start in range(0, block.count, CHUNK)]
    what = f"Drawing {block.count} faces at {block.image_size} px" + (
        f", each without and with {block.paired_on}" if block.paired_on else "")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task(what, total=block.count)

        def store(start: int, arrays: dict[str, np.ndarray]) -> None:
            for name, array in arrays.items():
                outputs[name][start:start + len(array)] = array
            progress.advance(task, len(arrays[next(iter(arrays))]))

        if processes == 1 or len(chunks) == 1:
            for start, stop in chunks:
                store(*_draw_chunk(block, start, stop))
            return
        with concurrent.futures.ProcessPoolExecutor(max_workers=min(processes, len(chunks))) as pool:
            futures = [pool.submit(_draw_chunk, block, start, stop) for start, stop in chunks]
            for future in concurrent.futures.as_completed(futures):
                store(*future.result())
