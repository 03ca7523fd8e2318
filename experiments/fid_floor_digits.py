"""Reference point for FID on the embedded digits: real vs. real at the CPU sample count.

FID is biased in N, so the benchmark's N = 500 FID of generated digits is only readable next to the FID
between two disjoint sets of 500 real training digits, measured through the same path (FIDCallback's
Inception weights, `InceptionMetrics`).

    python experiments/fid_floor_digits.py [--n 500]
"""
from __future__ import annotations

import argparse
import time

from torch.utils.data import Subset

from record import write_result
from src.data.digits import DigitsDataModule
from src.metrics.fid import InceptionMetrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=500)
    args = parser.parse_args()
    start = time.perf_counter()
    reference = DigitsDataModule().eval_subset("train", 2 * args.n)  # the benchmark's real set is the first n
    metrics = InceptionMetrics(kid_subset_size=args.n)
    metrics.update(metrics.extract_dataset(Subset(reference, range(args.n))), real=True)
    metrics.update(metrics.extract_dataset(Subset(reference, range(args.n, 2 * args.n))), real=False)
    scores = metrics.compute()
    figures = {"n_each": args.n, "fid_real_vs_real": scores["fid"], "kid_real_vs_real": scores["kid"],
               "what": "two disjoint sets of real training digits (32x32), same FID path as the benchmark"}
    print(write_result("fid_floor_digits", figures, time.perf_counter() - start))


if __name__ == "__main__":
    main()
