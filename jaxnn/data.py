"""Data helpers: the bundled iris data, a shuffled train/test split, standardisation, one-hot labels.

Nothing here imports scikit-learn: a script that trains on iris starts without its import (about
0.7 s).  The iris table is a copy of Fisher's data as scikit-learn ships it (UCI Machine Learning
Repository, CC BY 4.0), and :func:`shuffle_split` draws the same split as scikit-learn's
``train_test_split(test_size=..., random_state=seed)``; the tests check both against scikit-learn.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = ["Dataset", "Split", "Standardiser", "iris_split", "load_iris", "one_hot", "shuffle_split", "standardise"]

IRIS_CSV = Path(__file__).parent / "datasets" / "iris.csv"


class Standardiser(NamedTuple):
    """Per-feature mean and scale learnt on the training split: ``(x − mean) / scale``."""

    mean: np.ndarray
    scale: np.ndarray

    def __call__(self, x) -> np.ndarray:
        return (np.asarray(x, dtype=float) - self.mean) / self.scale


def standardise(x_train) -> Standardiser:
    """Learn the standardisation from training data; constant features keep scale 1 (no division by 0)."""
    x_train = np.asarray(x_train, dtype=float)
    scale = x_train.std(axis=0)
    return Standardiser(x_train.mean(axis=0), np.where(scale > 0, scale, 1.0))


def one_hot(labels, n_classes: int | None = None) -> np.ndarray:
    """Integer labels ``0..k−1`` to a ``(n, k)`` one-hot float matrix."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"one_hot needs a 1-D array of integer labels, got dtype {labels.dtype} shape {labels.shape}")
    if labels.size and labels.min() < 0:
        raise ValueError("one_hot needs non-negative labels 0..k-1")
    n_classes = int(labels.max()) + 1 if n_classes is None else n_classes
    if labels.size and labels.max() >= n_classes:
        raise ValueError(f"label {labels.max()} does not fit {n_classes} classes")
    return np.eye(n_classes)[labels]


class Dataset(NamedTuple):
    x: np.ndarray  # (n_samples, n_features) float64
    y: np.ndarray  # (n_samples,) class indices 0..k−1
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]  # class_names[i] is the name of label i


def load_iris() -> Dataset:
    """Fisher's iris data: 150 flowers, 4 measurements in cm, 3 species (labels 0, 1, 2), as scikit-learn has it."""
    with open(IRIS_CSV, newline="", encoding="utf-8") as file:
        header, *rows = list(csv.reader(file))
    class_names = tuple(dict.fromkeys(row[-1] for row in rows))  # in order of first appearance
    x = np.array([[float(cell) for cell in row[:-1]] for row in rows])
    y = np.array([class_names.index(row[-1]) for row in rows])
    return Dataset(x, y, tuple(header[:-1]), class_names)


def shuffle_split(n_samples: int, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(train, test)`` of a shuffled split, the same as scikit-learn's ``train_test_split``.

    ``ceil(test_size · n)`` rows go to the test part, the rest to training; the order is
    ``numpy.random.RandomState(seed).permutation(n)``: test rows first, then training rows.
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, int | np.integer) or n_samples < 2:
        raise ValueError(f"a train/test split needs at least 2 rows, got {n_samples!r}")
    if isinstance(test_size, bool) or not isinstance(test_size, float | int | np.floating) or not 0 < test_size < 1:
        raise ValueError(f"test_size must be a fraction between 0 and 1 (exclusive), got {test_size!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    n_test = math.ceil(test_size * n_samples)
    if n_test >= n_samples:
        raise ValueError(
            f"test_size {test_size} of {n_samples} rows leaves no training rows; use a smaller test_size or more rows"
        )
    order = np.random.RandomState(seed).permutation(n_samples)
    return order[n_test:], order[:n_test]


class Split(NamedTuple):
    x_train: np.ndarray
    x_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray


def iris_split(test_size: float = 0.25, random_state: int = 42) -> Split:
    """The seed's iris split (``train_test_split(test_size=0.25, random_state=42)``), inputs standardised on
    the training split."""
    iris = load_iris()
    train, test = shuffle_split(len(iris.x), test_size, random_state)
    scaler = standardise(iris.x[train])
    return Split(scaler(iris.x[train]), scaler(iris.x[test]), iris.y[train], iris.y[test])
