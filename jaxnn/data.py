"""Data helpers: the bundled scikit-learn datasets, standardisation, one-hot labels."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Split", "Standardiser", "iris_split", "one_hot", "standardise"]


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


class Split(NamedTuple):
    x_train: np.ndarray
    x_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray


def iris_split(test_size: float = 0.25, random_state: int = 42) -> Split:
    """The seed's iris split, inputs standardised on the training split."""
    from sklearn.datasets import load_iris
    from sklearn.model_selection import train_test_split

    x, y = load_iris(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=test_size, random_state=random_state)
    scaler = standardise(x_train)
    return Split(scaler(x_train), scaler(x_test), y_train, y_test)
