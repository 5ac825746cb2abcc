"""The ``datasets`` argument of :func:`jaxnn.fit_estimators`: one ``(X, y)`` or ``(X, y, sample_weight)`` per
estimator, checked and normalised to ``(X, y, sample_weight or None)`` triples with errors that say what to pass."""

from __future__ import annotations

__all__ = ["checked_datasets"]

_ADVICE = "one (X, y) or (X, y, sample_weight) per estimator"


def checked_datasets(datasets) -> list[tuple]:
    """``datasets`` as a list of ``(X, y, sample_weight or None)``.

    Raises TypeError for something that is not an iterable of data sets (None, a number), for one ``(X, y)`` pair
    passed in place of a list of them, and for an item that is not a tuple or list of 2 or 3 entries.
    """
    if datasets is None or isinstance(datasets, str) or not hasattr(datasets, "__iter__"):
        raise TypeError(
            f"fit_estimators takes a list of data sets, {_ADVICE}, got {type(datasets).__name__}; for one "
            "estimator pass [(X, y)]"
        )
    datasets = list(datasets)
    if len(datasets) in (2, 3) and not any(_is_dataset(item) for item in datasets):
        raise TypeError(
            f"fit_estimators takes a list of data sets, {_ADVICE}, got one {type(datasets[0]).__name__} "
            f"{'(X, y)' if len(datasets) == 2 else '(X, y, sample_weight)'}; for one estimator pass [(X, y)]"
        )
    return [_dataset(index, dataset) for index, dataset in enumerate(datasets)]


def _is_dataset(item) -> bool:
    """Whether ``item`` has the form of one data set: a tuple or list of 2 or 3 entries."""
    return isinstance(item, tuple | list) and len(item) in (2, 3)


def _dataset(index: int, dataset) -> tuple:
    """``(X, y, sample_weight or None)`` from ``(X, y)`` or ``(X, y, sample_weight)``."""
    if not _is_dataset(dataset):
        raise TypeError(
            f"datasets[{index}] must be a tuple (X, y) or (X, y, sample_weight), got {type(dataset).__name__}"
            + (f" of length {len(dataset)}" if isinstance(dataset, tuple | list) else "")
        )
    return (*dataset, None) if len(dataset) == 2 else tuple(dataset)
