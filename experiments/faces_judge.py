"""The attribute judge of the procedural faces (data=faces, 64×64): its accuracy per attribute on held-out real faces.

The faces benchmarks (T2F's caption consistency, VAE-GAN / BiGAN edits, CycleGAN / pix2pix translations) read the
attributes of generated faces with this judge, so its accuracy on real faces bounds what their scores can say. The
judge trains on the train split (`load_judge`, which also caches it for those benchmarks), is scored by its own
training on the val split, and here on the test split, which neither touched. Target: at least 0.97 on every
attribute. Misclassified test faces of every attribute that has any are saved as grids under
experiments/results/faces_judge/ (with their true and predicted values in the JSON), to see what is ambiguous.

    python experiments/faces_judge.py [--threads 2]
"""
from __future__ import annotations

import argparse
import time

import torch
from torch.utils.data import DataLoader
from torchvision.utils import save_image

from record import RESULTS, write_result
from src.data.faces.datamodules import FacesDataModule
from src.metrics.attribute_judge import attribute_accuracy, load_judge

TARGET = 0.97
#: Misclassified faces kept per attribute (a grid of 8 per row).
EXAMPLES = 16


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache-dir", default=None, help="the ganzoo cache the judge is written to (default: "
                                                          "$GANZOO_CACHE or ~/.cache/ganzoo)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    datamodule = FacesDataModule(image_size=args.image_size)
    datamodule.setup()
    data_seconds = time.perf_counter() - start
    judge = load_judge(datamodule, args.cache_dir, retrain=True)  # always trained here: this measures the training

    batches = list(DataLoader(datamodule.split("test"), batch_size=256, shuffle=False, generator=torch.Generator()))
    images, attrs = torch.cat([b["image"] for b in batches]), torch.cat([b["attrs"] for b in batches])
    predicted = judge.predict(images)
    accuracy = attribute_accuracy(predicted, attrs, judge.names)

    out = RESULTS / "faces_judge"
    out.mkdir(exist_ok=True)
    for old in out.glob("errors_*.png"):
        old.unlink()
    confusion, errors = {}, {}
    for k, (name, values) in enumerate(judge.spec):
        table = torch.zeros(len(values), len(values), dtype=torch.int64)
        table.index_put_((attrs[:, k], predicted[:, k]), torch.ones(len(attrs), dtype=torch.int64), accumulate=True)
        confusion[name] = {"rows: true, columns: predicted": list(values), "counts": table.tolist()}
        wrong = (predicted[:, k] != attrs[:, k]).nonzero().flatten()[:EXAMPLES]
        if len(wrong):
            save_image(images[wrong] * 0.5 + 0.5, out / f"errors_{name}.png", nrow=8, padding=2)
            errors[name] = [{"test_index": int(i), "true": values[attrs[i, k]], "predicted": values[predicted[i, k]]}
                            for i in wrong]

    record = judge.record
    figures = {
        "image_size": args.image_size,
        "n_train": record["n_train"], "n_val": record["n_val"], "n_test": len(images),
        "train_seconds": record["train_seconds"], "data_seconds": round(data_seconds, 1), "threads": args.threads,
        "target": TARGET,
        "below_target": [name for name in judge.names if accuracy[name] < TARGET],
        "test_accuracy_min": min(accuracy[name] for name in judge.names),
        "test_accuracy_mean": accuracy["mean"],
        **{f"test_accuracy_{name}": accuracy[name] for name in judge.names},
        "val_accuracy": record["val_accuracy"],
        "settings": record["settings"],
        "confusion": confusion,
        "misclassified": errors,
        "misclassified_grids": f"experiments/results/faces_judge/errors_<attribute>.png (first {EXAMPLES} each)",
    }
    print(write_result("faces_judge", figures, time.perf_counter() - start))


if __name__ == "__main__":
    main()
