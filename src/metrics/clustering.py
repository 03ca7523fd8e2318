"""Unsupervised clustering accuracy, e.g. of InfoGAN's categorical code against the digit labels."""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from torch import Tensor


def _as_ids(values: Tensor | np.ndarray) -> np.ndarray:
    """Any 1-D integer ids (tensor or array, any device) → contiguous ids 0..K-1 in a numpy array."""
    array = values.detach().cpu().numpy() if isinstance(values, Tensor) else np.asarray(values)
    return np.unique(array.reshape(-1), return_inverse=True)[1].reshape(-1)


def cluster_accuracy(pred: Tensor | np.ndarray, labels: Tensor | np.ndarray) -> float:
    """Accuracy in [0, 1] of cluster ids `pred` (N) against `labels` (N) under the best one-to-one id matching.

    The matching maximises agreement on the clusters × labels confusion matrix (Hungarian algorithm). With more
    clusters than labels the surplus clusters match nothing and count as errors, and vice versa.
    """
    clusters, classes = _as_ids(pred), _as_ids(labels)
    if clusters.shape != classes.shape or clusters.size == 0:
        raise ValueError(f"pred and labels must be non-empty and of equal length, "
                         f"got {clusters.size} and {classes.size}.")
    confusion = np.zeros((clusters.max() + 1, classes.max() + 1), dtype=np.int64)
    np.add.at(confusion, (clusters, classes), 1)
    rows, cols = linear_sum_assignment(confusion, maximize=True)
    return float(confusion[rows, cols].sum() / clusters.size)
