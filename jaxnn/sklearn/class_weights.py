"""The classifier's ``class_weight`` (scikit-learn issue #9113), with scikit-learn's meaning: each sample's
weight is its ``sample_weight`` times the weight of its class, as ``LogisticRegression`` computes it.

* ``None``: every class weighs 1;
* ``'balanced'``: ``n_samples / (n_classes · count(class))``, the counts weighted by ``sample_weight``
  (:func:`sklearn.utils.class_weight.compute_class_weight`), so ``fit(X, y, sample_weight=
  compute_sample_weight('balanced', y))`` trains the very network that ``class_weight='balanced'`` trains;
* a dict ``{label: weight}`` (labels left out weigh 1);
* for a multilabel indicator ``y``: ``'balanced'`` or a list (or tuple) of dicts, one per label column, each column
  weighted as a two-class problem of its own and the weights multiplied over the columns
  (:func:`sklearn.utils.class_weight.compute_sample_weight`'s weights, with ``'balanced'`` counting by
  ``sample_weight`` as above).

Class weights change nothing but the per-sample weights, which are data: estimators that differ only in
``class_weight`` train as one population (:func:`jaxnn.fit_estimators`, the searches).  ``partial_fit`` takes a
dict; with ``'balanced'`` there is none (one batch's counts are not the classes' frequencies: ``SGDClassifier``
refuses it in ``partial_fit`` for that reason).

Also the estimators' ``sample_weight`` (:func:`checked_sample_weight`): checked as scikit-learn checks it, but in
float64; multiplied by the class weights in float64; then rounded once to X's dtype (:func:`training_weights`, by
:func:`jaxnn._checks.weights_fit_dtype`), so that weights that do not fit there (too large, a sum too large, or too
small: all zero or flushed) are one ValueError saying how to rescale them (:func:`scale_weights`); and what a
diverged fit's message adds when the weights are huge (:func:`huge_weights`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from sklearn.utils.class_weight import compute_class_weight

from jaxnn._checks import is_real, weights_fit_dtype
from jaxnn.sklearn.internals import check_sample_weight

__all__ = [
    "CLASS_WEIGHTED",
    "checked_sample_weight",
    "class_weighted",
    "has_non_negative_weights",
    "huge_weights",
    "is_class_weight",
    "scale_weights",
    "training_weights",
]

TRAINED_IN = "X's dtype, which the network is trained in"  # the estimators train in X's float type
CLASS_WEIGHTED = "sample_weight times class_weight"  # the training weights' name where class_weight multiplies in


def scale_weights(dtype, *, what: str = "sample_weight", largest: str = "its largest value") -> str:
    """What to do with training weights (``what``: ``sample_weight``, or :data:`CLASS_WEIGHTED`) that do not fit the
    training ``dtype`` (X's): rescale them, e.g. divided by ``largest``.  Only their relative sizes matter to the
    weighted mean loss ``Σw·loss/Σw``; the L2 penalty ``alpha/(2·Σw)·Σ‖W‖²`` divides by their sum, so alpha is
    scaled with them to keep it — where ``alpha/Σw`` then still fits the dtype (with weights far below 1 MLP's
    penalty itself may not: float64 X then)."""
    wider = ", or pass float64 X" if np.dtype(dtype).itemsize < 8 else ""
    scaled = (
        "sample_weight (or every value of class_weight) by one constant that brings the product sample_weight × "
        "class_weight towards 1"
        if what == CLASS_WEIGHTED
        else f"{what} by one constant that brings it towards 1"
    )
    return (
        f"multiply {scaled} (e.g. divide by {largest}; the weighted mean loss is unchanged by it), and alpha by the "
        f"same constant to keep the L2 penalty alpha/(2·Σw)·Σ‖W‖² where alpha/Σw still fits X's dtype{wider}"
    )


def checked_sample_weight(sample_weight, X: np.ndarray) -> np.ndarray:
    """``sample_weight`` (None: all 1) checked as scikit-learn's estimators check it, but in float64, where
    scikit-learn would cast to X's dtype first and blame values that only do not fit there (they are checked in
    X's dtype by :func:`training_weights`, after ``class_weight`` is multiplied in).  ValueErrors say what is
    wrong and what to do."""
    try:
        weight = check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
    except ValueError as error:  # scikit-learn's message first, then what to do
        if "Negative values" not in str(error):
            raise
        raise ValueError(
            f"{error} jaxnn: sample_weight must be >= 0 (the loss is a weighted mean, unbounded below with a "
            "negative weight); drop those samples or give them weight 0"
        ) from error
    if not weight.sum() > 0:  # scikit-learn 1.8 and later refuse this in check_sample_weight already; 1.7 does not
        raise ValueError("sample_weight is zero for every sample: at least one weight must be non-zero")
    return weight


def training_weights(weight: np.ndarray, dtype, *, what: str = "sample_weight") -> np.ndarray:
    """The float64 training weights (``what``: the checked ``sample_weight``, or its product with ``class_weight``)
    rounded once to the training ``dtype`` (X's), where they must fit (:func:`jaxnn._checks.weights_fit_dtype`:
    within its range, their sum too, and not all rounding or flushed to zero); a ValueError saying how to rescale
    them if not."""
    advice = scale_weights(dtype, what=what)
    return weights_fit_dtype(weight, dtype, name=what, role=TRAINED_IN, advice=advice)


def huge_weights(weight: np.ndarray, what: str = "sample_weight") -> str:
    """What a diverged fit's message adds when the training weights (``what``, in the training dtype) are so large
    that the weighted loss may have overflowed: ``Σw·loss`` is added up before its division by ``Σw``, so past the
    square root of the dtype's largest number a loss below that root overflows too (below it, only a loss beyond it
    could).  Else ''."""
    total = float(np.sum(weight, dtype=np.float64))
    largest = float(np.finfo(weight.dtype).max)
    if total <= np.sqrt(largest):
        return ""
    return (
        f"; {what} sums to {total:.3g}, and the weighted mean loss Σw·loss/Σw adds up w·loss before dividing, "
        f"which overflows {np.dtype(weight.dtype).name} (largest {largest:.3g}) once a loss passes "
        f"{largest / total:.3g}: {scale_weights(weight.dtype, what=what)}"
    )


def unchecked_non_finite(X: np.ndarray, targets: np.ndarray) -> str:
    """What a diverged fit's message adds when ``X`` or the targets hold NaN or infinity, which the input checks
    refuse unless scikit-learn's ``assume_finite=True`` skipped them; else ''."""
    if np.all(np.isfinite(X)) and np.all(np.isfinite(targets)):
        return ""
    return (
        "; X or y holds NaN or infinity, which scikit-learn's assume_finite=True let through unchecked: drop or "
        "impute those values (sklearn.impute.SimpleImputer)"
    )


def is_class_weight(value) -> bool:
    """``None``, ``'balanced'``, a dict of label → weight, or a list of such dicts (multilabel)."""
    if value is None or (isinstance(value, str) and value == "balanced") or isinstance(value, Mapping):
        return True
    return isinstance(value, Sequence) and not isinstance(value, str) and all(isinstance(v, Mapping) for v in value)


def has_non_negative_weights(value) -> bool:
    """Every weight of a dict (or of each dict of a list) is a finite number >= 0: a negative weight would make
    the loss unbounded below, and a NaN or infinite one the loss NaN."""
    dicts = [value] if isinstance(value, Mapping) else value if isinstance(value, list | tuple) else []
    return all(is_real(weight) and weight >= 0 for weights in dicts for weight in weights.values())


BALANCED_WITHOUT_PARTIAL_FIT = (
    "class_weight 'balanced' is not supported for partial_fit: one call's labels are not the classes' frequencies. "
    "Use compute_class_weight('balanced', classes=classes, y=y) on (a large enough sample of) all the targets, and "
    "pass dict(zip(classes, those weights)) as class_weight (for a multilabel y, a list of one such dict per label)"
)


def class_weighted(class_weight, y: np.ndarray, weight: np.ndarray, *, incremental: bool, classes=None) -> np.ndarray:
    """``weight`` (the checked ``sample_weight``, float64) times each sample's class weight, in float64 (rounded to
    the training dtype once, by :func:`training_weights`).

    ``classes``: the labels the classifier knows (``partial_fit``'s ``classes=``, or those it was fitted on);
    None: ``y``'s own.
    """
    if class_weight is None:
        return weight
    if incremental and isinstance(class_weight, str):  # only a partial_fit bound before class_weight became it
        raise ValueError(BALANCED_WITHOUT_PARTIAL_FIT)
    if y.ndim == 2:  # a multilabel indicator matrix: per label column, multiplied
        per_sample = _multilabel_weights(class_weight, y, weight)
    else:
        if not isinstance(class_weight, str | Mapping):
            raise ValueError(
                "class_weight is a list of dicts, which is for a multilabel indicator y (one dict per label "
                "column); for one label per sample give one dict {label: weight} or 'balanced'"
            )
        known = np.unique(y) if classes is None else np.unique(np.asarray(classes))
        try:
            per_class = _class_weights(class_weight, known, y, weight)
        except ValueError as error:  # scikit-learn names the classes left out, not the labels that are no class
            strangers = [] if isinstance(class_weight, str) else _stray_labels(class_weight, known)
            if not strangers:
                raise
            raise ValueError(
                f"{error}. jaxnn: class_weight has labels {strangers} that are not among the classes "
                f"{known.tolist()}; a dict may leave classes out (they weigh 1) only when each of its labels is a "
                "class: remove the others, or give them the classes' type (1, not '1')"
            ) from error
        per_sample = per_class[np.searchsorted(known, y)]
    weighted = weight * per_sample
    if not weighted.sum() > 0:
        raise ValueError("sample_weight times class_weight is zero for every sample: at least one must be non-zero")
    return weighted


def _stray_labels(weights: Mapping, known: np.ndarray) -> list:
    """The labels of the dict ``weights`` that are not among the classes ``known``."""
    classes = set(known.tolist())
    return [label for label in weights if label not in classes]


def _multilabel_weights(class_weight, y: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Each sample's class weight for a multilabel indicator ``y``: ``'balanced'`` or one dict per label column
    (a list or a tuple), multiplied over the columns as :func:`compute_sample_weight` does.  Each column is a
    two-class problem of its own: ``'balanced'`` counts its 0s and 1s weighted by ``sample_weight`` (as for one
    label per sample), and a dict keys them by 0 and 1, whichever of the two a column holds (a rare label may be
    absent from a fold; scikit-learn refuses a dict naming a value its column lacks).  A single dict, a list of
    the wrong length and a dict with labels other than 0 and 1 are ``ValueError`` s that say so."""
    n_labels = y.shape[1]
    if isinstance(class_weight, Mapping):
        raise ValueError(
            f"y is a multilabel indicator matrix of {n_labels} label columns, so class_weight takes one dict per "
            f"column (a list of {n_labels} dicts such as {{0: 1.0, 1: 5.0}}) or 'balanced', not one dict"
        )
    if isinstance(class_weight, str):
        class_weight = [class_weight] * n_labels
    if len(class_weight) != n_labels:
        raise ValueError(
            f"class_weight lists {len(class_weight)} dicts but y has {n_labels} label columns; give one dict per "
            "label column, in y's column order"
        )
    per_sample = np.ones(y.shape[0])
    for column, weights in enumerate(class_weight):
        strangers = [] if isinstance(weights, str) else _stray_labels(weights, np.array([0, 1]))
        if strangers:
            raise ValueError(
                f"class_weight[{column}] has labels {strangers}, but a multilabel column holds 0 and 1 (a sample "
                "has the label or not): key its dict by those"
            )
        labels = y[:, column]
        if isinstance(weights, str):
            known = np.unique(labels)
            factor = _class_weights(weights, known, labels, weight)[np.searchsorted(known, labels)]
        else:
            factor = np.where(labels == 1, float(weights.get(1, 1.0)), float(weights.get(0, 1.0)))
        per_sample = per_sample * factor
    return per_sample


def _class_weights(class_weight, known: np.ndarray, y: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """One weight per class of ``known`` (:func:`compute_class_weight`, the counts weighted by ``weight``).

    A class whose samples all have ``sample_weight`` 0 has a weighted count of 0, where ``'balanced'`` divides
    by zero: its weight is 0, not infinity (whose product with the zero weights, NaN, read as "zero for every
    sample"), since its samples take no part in the fit either way."""
    with np.errstate(divide="ignore"):
        counted = weight.astype(np.float64, copy=False)
        per_class = compute_class_weight(class_weight, classes=known, y=y, sample_weight=counted)
    if isinstance(class_weight, str):  # 'balanced': only its own division makes a weight infinite
        return np.where(np.isfinite(per_class), per_class, 0.0)
    return per_class
