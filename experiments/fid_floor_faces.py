"""Reference point for FID on the procedural faces (data=faces, 64×64): real vs. real at the CPU sample count.

FID is biased in N, so an N = 500 FID of generated faces is only readable next to the FID between two disjoint
sets of 500 real faces, measured through the same path (the FID callback's Inception weights,
`InceptionMetrics.extract_dataset`): the benchmarks' real reference set (the first N of the train split's
evaluation order, `eval_subset`) against N held-out test faces.

    python experiments/fid_floor_faces.py [--n 500]
"""
from __future__ import annotations

import argparse
import time

import torch

from record import write_result
from src.data.faces.datamodules import FacesDataModule
from src.metrics.fid import InceptionMetrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    datamodule = FacesDataModule(image_size=args.image_size)
    metrics = InceptionMetrics(kid_subset_size=args.n)
    metrics.update(metrics.extract_dataset(datamodule.eval_subset("train", args.n)), real=True)
    metrics.update(metrics.extract_dataset(datamodule.eval_subset("test", args.n)), real=False)
    scores = metrics.compute()
    figures = {"n_each": args.n, "image_size": args.image_size, "fid_real_vs_real": scores["fid"],
               "kid_real_vs_real": scores["kid"],  # subsets of all n: no spread to report
               "what": f"{args.n} real train faces (the FID reference set) vs {args.n} real test faces, "
                       f"{args.image_size}x{args.image_size}, same FID path as the benchmarks"}
    print(write_result("fid_floor_faces", figures, time.perf_counter() - start))


if __name__ == "__main__":
    main()
