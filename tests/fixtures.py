"""Tiny datasets written in their native on-disk formats, with seeded random content.

Plain functions, so any test can import them (``from fixtures import write_mnist``; pytest
puts ``tests/`` on ``sys.path``; ``tests.fixtures`` would not work because torch-fidelity
installs a top-level ``tests`` package). The DataModules then read these files through the
same code path as the real datasets.
"""

import pickle
from pathlib import Path

import numpy as np
from PIL import Image

_IDX_UBYTE = 0x08  # idx type code for unsigned bytes


def _write_idx(path: Path, array: np.ndarray) -> None:
    """An idx file (the MNIST format): magic (0, 0, type, ndim), big-endian int32 dims, raw bytes."""
    header = bytes([0, 0, _IDX_UBYTE, array.ndim]) + np.array(array.shape, dtype=">i4").tobytes()
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist(root: Path, n_train: int = 16, n_test: int = 8, fashion: bool = False) -> Path:
    """MNIST (or Fashion-MNIST) in torchvision's raw layout: ``<root>/MNIST/raw/*-ubyte``.

    Images 28×28 uint8, labels 0..9. Returns the raw folder.
    """
    rng = np.random.default_rng(0)
    raw = Path(root) / ("FashionMNIST" if fashion else "MNIST") / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, size=(n, 28, 28)))
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, size=n))
    return raw


def write_cifar10(root: Path, n_per_batch: int = 4) -> Path:
    """CIFAR-10's python version: pickled ``data_batch_1..5``, ``test_batch``, ``batches.meta``
    in ``<root>/cifar-10-batches-py``.

    Each batch holds ``n_per_batch`` images as uint8 rows of 3072 (R, G, B planes of 32×32),
    labels 0..9. Returns the batches folder.
    """
    rng = np.random.default_rng(0)
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {
            "batch_label": name,
            "labels": rng.integers(0, 10, size=n_per_batch).tolist(),
            "data": rng.integers(0, 256, size=(n_per_batch, 3 * 32 * 32), dtype=np.uint8),
            "filenames": [f"{name}_{i}.png" for i in range(n_per_batch)],
        }
        # Protocol 2, as the original files were pickled by Python 2.
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {
        "num_cases_per_batch": n_per_batch,
        "label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
        "num_vis": 3 * 32 * 32,
    }
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return folder


def write_image_folder(
    root: Path, n: int = 8, size: int = 20, classes: tuple[str, ...] = ("a", "b")
) -> list[Path]:
    """``n`` RGB images in ``root``, alternating PNG and JPEG, returned as paths.

    With ``classes``, image i goes in subfolder ``classes[i % len(classes)]``, every third
    one a level deeper (``<class>/nested/``) to exercise recursive discovery; with
    ``classes=()`` all lie directly in ``root``. Heights are ``size``, widths ``size`` or
    ``size + 6``, so both square and non-square images go through resize and crop.
    """
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        folder = Path(root)
        if classes:
            folder = folder / classes[i % len(classes)] / ("nested" if i % 3 == 2 else "")
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, size=(size, size + 6 * (i % 2), 3), dtype=np.uint8)
        path = folder / f"img{i}.{'png' if i % 2 == 0 else 'jpg'}"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


def write_corrupt_image(path: Path) -> Path:
    """A PNG cut off halfway, like an interrupted download: it opens, but does not decode."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(0).integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="PNG")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


#: The 40 attribute names of CelebA's list_attr_celeba.txt, in its column order.
CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair Blond_Hair "
    "Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup High_Cheekbones "
    "Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose Receding_Hairline "
    "Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick "
    "Wearing_Necklace Wearing_Necktie Young"
).split()


def write_celeba(root: Path, n_train: int = 6, n_val: int = 3, n_test: int = 3) -> Path:
    """CelebA in torchvision's layout: ``<root>/celeba/img_align_celeba/000001.jpg …`` (178×218 RGB JPEGs of seeded
    noise) and the five annotation files in the published formats. Returns the ``celeba`` folder.

    - ``list_attr_celeba.txt``: the image count, the 40 names (with the trailing space some copies have), then
      ``<file>`` and 40 values of 1 or -1, each right-aligned in 2 characters (so runs of spaces before the 1s);
    - ``list_eval_partition.txt``: ``<file> <0|1|2>``, the splits interleaved (seeded order), ``n_train`` 0s,
      ``n_val`` 1s, ``n_test`` 2s;
    - ``identity_CelebA.txt`` (``<file> <identity>``), ``list_bbox_celeba.txt`` (count, ``image_id x_1 y_1 width
      height``, rows) and ``list_landmarks_align_celeba.txt`` (count, the 10 coordinate names, rows), aligned with
      runs of spaces.
    """
    rng = np.random.default_rng(0)
    folder = Path(root) / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True, exist_ok=True)
    n = n_train + n_val + n_test
    files = [f"{i:06d}.jpg" for i in range(1, n + 1)]
    for name in files:
        pixels = rng.integers(0, 256, size=(218, 178, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / "img_align_celeba" / name, quality=95)

    def rows(values: np.ndarray, width: int) -> str:
        return "".join(f"{name} " + " ".join(f"{v:>{width}d}" for v in row) + "\n" for name, row in zip(files, values))

    attrs = rng.choice([-1, 1], size=(n, len(CELEBA_ATTRIBUTES)))
    (folder / "list_attr_celeba.txt").write_text(f"{n}\n" + " ".join(CELEBA_ATTRIBUTES) + " \n" + rows(attrs, 2))
    partition = rng.permutation([0] * n_train + [1] * n_val + [2] * n_test)
    (folder / "list_eval_partition.txt").write_text(rows(partition[:, None], 1))
    (folder / "identity_CelebA.txt").write_text(rows(rng.integers(1, 10178, size=(n, 1)), 1))
    bbox = np.concatenate([rng.integers(50, 120, size=(n, 2)), rng.integers(150, 300, size=(n, 2))], axis=1)
    (folder / "list_bbox_celeba.txt").write_text(f"{n}\nimage_id x_1 y_1 width height\n" + rows(bbox, 4))
    landmarks = rng.integers(60, 160, size=(n, 10))
    names = "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y"
    (folder / "list_landmarks_align_celeba.txt").write_text(f"{n}\n{names}\n" + rows(landmarks, 4))
    return folder
