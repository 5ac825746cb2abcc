"""Data helpers: the bundled iris data, shuffled and stratified train/test splits, standardisation, one-hot labels.

Nothing here imports scikit-learn: a script that trains on iris starts without paying for its import.
The iris table is a copy of Fisher's data as scikit-learn ships it (UCI Machine Learning Repository,
CC BY 4.0); :func:`shuffle_split` draws the same split as scikit-learn's
``train_test_split(test_size=..., random_state=seed)`` and :func:`stratified_split` the same as
``train_test_split(..., stratify=labels)``; the tests check all three against scikit-learn.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np

from jaxnn._checks import finite_reals, is_int, is_real, positive_int, rectangular, seed_int

__all__ = [
    "Dataset",
    "Split",
    "Standardiser",
    "iris_split",
    "load_iris",
    "one_hot",
    "shuffle_split",
    "standardise",
    "stratified_split",
]

IRIS_CSV = Path(__file__).parent / "datasets" / "iris.csv"


class Standardiser(NamedTuple):
    """Per-feature mean and scale learnt on the training split: ``(x − mean) / scale``.  The difference is
    exact to one rounding (no cancellation, also for a column that varies little next to its size); where it
    would overflow (numbers near float64's limit, 1.8e308, of opposite signs) it is taken as
    ``x / scale − mean / scale`` instead, so no intermediate overflows where the result does not."""

    mean: np.ndarray
    scale: np.ndarray

    def __call__(self, x) -> np.ndarray:
        """``x`` standardised, in float64; it must hold real numbers (a TypeError if not) with the training data's
        features as its last axis (a ValueError if not).  NaN passes through as NaN, as in ``StandardScaler``."""
        try:
            x = np.asarray(x, dtype=float)
        except (TypeError, ValueError):  # numpy's "could not convert string to float: 'a'"
            raise TypeError(f"x must hold real numbers to standardise, got {x!r:.80}") from None
        if x.ndim == 0 or x.shape[-1] != self.mean.shape[-1]:
            raise ValueError(
                f"this standardisation was learnt on {self.mean.shape[-1]} features, but x has shape {x.shape}; "
                "pass rows with the same features as the training data"
            )
        return _centred(x, self.mean, self.scale)


def _centred(x: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``(x − mean) / scale`` without cancellation, and without overflow where the result is finite."""
    with np.errstate(over="ignore", invalid="ignore"):
        difference = x - mean
    return np.where(np.isfinite(difference), difference / scale, x / scale - mean / scale)


def standardise(x_train) -> Standardiser:
    """Learn the standardisation from training data; constant features keep scale 1 (no division by 0), and so
    do features constant up to rounding (scikit-learn's ``StandardScaler`` rule: a variance at most
    ``n·ε·var + (n·ε·mean)²``, ``ε`` float64's epsilon), which would otherwise be scaled up into noise.

    Overflow-safe: each column is measured in units of its largest magnitude, so the squares inside the
    standard deviation stay at most 1 (a column of magnitude 1e160 would otherwise square to infinity,
    get scale inf and be zeroed); the mean and scale are then multiplied back, and both are at most the
    column's largest magnitude, so they are finite whenever the data is.  Accurate: the mean is corrected by
    a second pass over the deviations, and the variance is taken of the deviations ``x − mean`` (computed
    exactly), not of the values, whose rounding would swamp a small spread around a large mean.
    """
    x_train = rectangular("x_train", x_train)
    if x_train.ndim != 2 or x_train.shape[0] == 0:  # 1-D gave one scalar mean; no rows gave NaN
        raise ValueError(
            f"x_train must be 2-D (n_samples, n_features) with at least one row, got shape {x_train.shape}"
        )
    x_train = finite_reals("x_train", x_train).astype(float)  # a NaN gave every column it touched a NaN mean
    largest = np.max(np.abs(x_train), axis=0) if x_train.size else np.ones(x_train.shape[1:])
    unit = np.where(largest > 0, largest, 1.0)
    mean = (x_train / unit).mean(axis=0) * unit
    mean = mean + _centred(x_train, mean, unit).mean(axis=0) * unit  # the second pass
    deviations = _centred(x_train, mean, unit)  # in units of the largest magnitude
    # less the square of their mean (the corrected two-pass formula, as StandardScaler's): the mean is only
    # known to its rounding, which added its square to the variance (a spread of 1e-6 around 1e8: scale 2e-4 off)
    variance = np.maximum(np.mean(deviations**2, axis=0) - np.mean(deviations, axis=0) ** 2, 0.0)
    n, eps = x_train.shape[0], np.finfo(np.float64).eps
    constant = variance <= n * eps * variance + (n * (mean / unit) * eps) ** 2
    scale = np.sqrt(variance) * unit
    return Standardiser(mean, np.where(constant | ~(scale > 0), 1.0, scale))


def one_hot(labels, n_classes: int | None = None) -> np.ndarray:
    """Integer labels ``0..k−1`` to a ``(n, k)`` one-hot float matrix (``k = n_classes``, default the largest label
    plus 1), the rows of ``sklearn.preprocessing.OneHotEncoder(categories=[range(k)])`` (also for k = 2, where
    ``label_binarize`` gives one column).  Memory is
    ``n · k`` (not the ``k · k`` of an identity matrix indexed by the labels); a matrix that cannot be allocated (a
    label of 10**12 means 10**12 + 1 classes: 7 TiB per row, 2**63 more than NumPy's dimensions hold) is a
    ValueError naming the label, or ``n_classes`` when given, and how to map labels to class indices."""
    labels = np.asarray(labels)
    if labels.size == 0 and labels.ndim == 1:
        labels = labels.astype(np.int64)  # [] is float64 to NumPy
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"one_hot needs a 1-D array of integer labels, got dtype {labels.dtype} shape {labels.shape}")
    if labels.size and labels.min() < 0:
        raise ValueError("one_hot needs non-negative labels 0..k-1")
    if n_classes is None and not labels.size:
        raise ValueError("one_hot of no labels cannot tell the number of classes: pass n_classes")
    given = n_classes
    n_classes = int(labels.max()) + 1 if n_classes is None else positive_int(n_classes, "n_classes")
    if labels.size and labels.max() >= n_classes:
        raise ValueError(f"label {labels.max()} does not fit {n_classes} classes")
    try:
        encoded = np.zeros((labels.size, n_classes))
    except (MemoryError, ValueError) as error:  # NumPy's "Unable to allocate", "Maximum allowed dimension exceeded"
        cause = f"label {labels.max()} means {n_classes} classes" if given is None else f"n_classes={n_classes}"
        raise ValueError(
            f"one_hot cannot allocate a ({labels.size}, {n_classes}) float64 matrix: {cause}, one column each; "
            "labels must be class indices 0..k-1 (map other labels with np.unique(labels, return_inverse=True)[1], "
            "or sklearn.preprocessing.LabelEncoder)"
        ) from error
    encoded[np.arange(labels.size), labels] = 1.0
    return encoded


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
    if not is_int(n_samples):
        raise ValueError(f"n_samples must be an integer (a number of rows), got {n_samples!r}")
    if n_samples < 2:
        raise ValueError(f"a train/test split needs at least 2 rows, got {n_samples!r}")
    if n_samples > np.iinfo(np.intp).max:  # NumPy's "Maximum allowed size exceeded" named nothing
        raise ValueError(f"n_samples {n_samples!r} is more rows than NumPy can index ({np.iinfo(np.intp).max})")
    if not is_real(test_size) or not 0 < test_size < 1:
        raise ValueError(f"test_size must be a fraction between 0 and 1 (exclusive), got {test_size!r}")
    seed_int(seed)
    n_test = math.ceil(test_size * n_samples)
    if n_test >= n_samples:
        raise ValueError(
            f"test_size {test_size} of {n_samples} rows leaves no training rows; use a smaller test_size or more rows"
        )
    order = np.random.RandomState(seed).permutation(n_samples)
    return order[n_test:], order[:n_test]


def _split_sizes(n_samples: int, test_size: float, seed: int) -> tuple[int, int]:
    """``(n_train, n_test)`` of a split, after the checks :func:`shuffle_split` makes."""
    shuffle_split(n_samples, test_size, seed)  # the argument checks, one place
    n_test = math.ceil(test_size * n_samples)
    return n_samples - n_test, n_test


def _approximate_mode(class_counts: np.ndarray, n_draws: int, rng: np.random.RandomState) -> np.ndarray:
    """How many of ``n_draws`` rows each class gets: its proportional share rounded down, then one more for
    the classes with the largest remainders (ties broken at random), as scikit-learn's helper of the same name."""
    continuous = class_counts / class_counts.sum() * n_draws
    floored = np.floor(continuous)
    need_to_add = int(n_draws - floored.sum())
    if need_to_add > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (candidates,) = np.where(remainder == value)
            add_now = min(len(candidates), need_to_add)
            floored[rng.choice(candidates, size=add_now, replace=False)] += 1
            need_to_add -= add_now
            if need_to_add == 0:
                break
    return floored.astype(int)


def stratified_split(labels, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(train, test)`` of a shuffled split that keeps each class's share on both sides.

    The same rows, in the same order, as scikit-learn's
    ``train_test_split(rows, test_size=test_size, random_state=seed, stratify=labels)``: the sizes are
    :func:`shuffle_split`'s (``ceil(test_size · n)`` test rows), each class gets its proportional share of
    both parts (rounded as scikit-learn rounds), and the draws come from one
    ``numpy.random.RandomState(seed)``.

    Raises:
      TypeError: labels that cannot be sorted (None, numbers mixed with text).
      ValueError: a NaN label (scikit-learn refuses it; NumPy would make it a class), a class has a single
        row (it cannot be on both sides), or either part has fewer rows than there are classes; the message
        names the problem.  The bad-argument errors are :func:`shuffle_split`'s.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"stratified_split needs a 1-D array of labels, got shape {labels.shape}")
    n_train, n_test = _split_sizes(len(labels), test_size, seed)
    if labels.dtype.kind in "fc" and np.any(np.isnan(labels)):
        raise ValueError("stratified_split: labels contain NaN; drop those rows or give them a class")
    try:
        classes, indices, counts = np.unique(labels, return_inverse=True, return_counts=True)
    except TypeError:  # '<' not supported between instances of 'NoneType' and 'NoneType'
        raise TypeError(
            f"stratified_split needs labels of one sortable kind (numbers or text), got {labels[:5]!r:.80}"
        ) from None
    if counts.min() < 2:
        single = [str(label) for label in classes[counts < 2].tolist()]
        raise ValueError(
            f"cannot stratify: class{'es' if len(single) > 1 else ''} {', '.join(single)} "
            f"{'have' if len(single) > 1 else 'has'} a single row, which cannot be in both the training and "
            "the test part"
        )
    for part, size in (("training", n_train), ("test", n_test)):
        if size < len(classes):
            raise ValueError(f"cannot stratify: the {part} part has {size} rows, fewer than the {len(classes)} classes")
    by_class = np.split(np.argsort(indices, kind="stable"), np.cumsum(counts)[:-1])
    rng = np.random.RandomState(seed)
    n_train_of = _approximate_mode(counts, n_train, rng)
    n_test_of = _approximate_mode(counts - n_train_of, n_test, rng)
    train, test = [], []
    for rows, n_train_i, n_test_i in zip(by_class, n_train_of, n_test_of, strict=True):
        shuffled = rows.take(rng.permutation(len(rows)), mode="clip")
        train.extend(shuffled[:n_train_i])
        test.extend(shuffled[n_train_i : n_train_i + n_test_i])
    return rng.permutation(train), rng.permutation(test)


class Split(NamedTuple):
    x_train: np.ndarray
    x_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray


def iris_split(test_size: float = 0.25, seed: int = 42) -> Split:
    """The iris split the seed documents make (``train_test_split(test_size=0.25, random_state=42)``), inputs
    standardised on the training split; ``seed`` is that call's ``random_state``, as in :func:`shuffle_split`."""
    iris = load_iris()
    train, test = shuffle_split(len(iris.x), test_size, seed)
    scaler = standardise(iris.x[train])
    return Split(scaler(iris.x[train]), scaler(iris.x[test]), iris.y[train], iris.y[test])
