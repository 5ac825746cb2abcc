"""The estimators' data and targets: ``X`` and ``y`` checked as scikit-learn's MLP checks them (sparse ``X``
densified), targets encoded for the head that fits them, and outputs read back as class probabilities.

What scikit-learn's MLP also takes is taken here: sparse ``X`` (trained on, and predicted from, as a dense copy of
at most ``DENSE_COPY_LIMIT_BYTES``), a multilabel indicator matrix ``y``, a single class, and counts ``y >= 0``
for ``loss='poisson'``.  The heads themselves (last layer, loss, link) are :mod:`jaxnn.heads`'.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse
from sklearn import get_config
from sklearn.exceptions import DataConversionWarning
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import check_array, column_or_1d, validate_data

from jaxnn._warnings import warn
from jaxnn.heads import (
    CLASSIFICATION,
    REGRESSION,
    Head,
    classification_head,
    encode_classes,
    multilabel_head,
    regression_head,
    scikit_learn_loss,
    single_class_head,
)
from jaxnn.losses import Loss, get_loss
from jaxnn.sklearn.constraints import loss_param

__all__ = [
    "COLUMN_Y_WARNING",
    "DENSE_COPY_LIMIT_BYTES",
    "OUT_ACTIVATION_NAMES",
    "SPARSE_FORMATS",
    "Targets",
    "check_classes",
    "check_weighted_classes",
    "class_probabilities",
    "class_targets",
    "classifier_data",
    "densified",
    "indicator_predictions",
    "needs_nonnegative_targets",
    "numeric_data",
    "regression_loss",
    "regression_targets",
    "regressor_data",
]

SPARSE_FORMATS = ("csr", "csc")  # validate_data converts every other scipy.sparse matrix or array to CSR
DENSE_COPY_LIMIT_BYTES = 2**30  # a sparse X is trained on (and predicted from) as a dense copy of at most 1 GiB
_SPARSE_COLUMN_ADVICE = "a y of one column must be dense, as MLP's: pass y.toarray().ravel()"
COLUMN_Y_WARNING = (  # scikit-learn's column_or_1d's words for a column y (MLP's warning)
    "A column-vector y was passed when a 1d array was expected. Please change the shape of y to (n_samples, ), for "
    "example using ravel()."
)
OUT_ACTIVATION_NAMES = {"softmax": "softmax", "sigmoid": "logistic", "identity": "identity", "exp": "exp"}  # sklearn's


class Targets(NamedTuple):
    """Targets encoded for training, the head that fits them, and fitted attributes to set on success."""

    matrix: np.ndarray  # (n_samples, head.units)
    head: Head
    fitted: dict


def densified(X):
    """A sparse ``X`` as the dense array the compiled network multiplies (dense ``X`` is returned as it is).

    The whole copy is made at once when it takes at most ``DENSE_COPY_LIMIT_BYTES`` (1 GiB); a larger one is
    a ValueError that says what to do, rather than an allocation that may exhaust the memory.
    """
    if not scipy.sparse.issparse(X):
        return X
    n_bytes = X.shape[0] * X.shape[1] * X.dtype.itemsize
    if n_bytes > DENSE_COPY_LIMIT_BYTES:
        raise ValueError(
            f"sparse X of shape {X.shape} ({X.dtype}) would take {n_bytes / 2**30:.1f} GiB as the dense array the "
            f"network trains and predicts on, more than the {DENSE_COPY_LIMIT_BYTES / 2**30:g} GiB allowed; "
            "reduce the features first (e.g. sklearn.decomposition.TruncatedSVD or feature selection), pass "
            "float32 data, or predict on fewer rows at a time"
        )
    return X.toarray()


# --------------------------------------------------------------------------------------------------
# Checking X and y (validate_data records n_features_in_ and feature_names_in_ on the estimator).


_TEXT_ERRORS = ("could not convert string to float", "not compatible with arrays of bytes/strings")
_TEXT_TARGETS_ADVICE = (
    "a regressor's y must hold numbers; for class labels such as these use NeuralNetClassifier, or encode them as "
    "numbers first"
)


def numeric_data(estimator, *data, **options):
    """scikit-learn's ``validate_data(estimator, *data, **options)``; its error for text where numbers belong
    (NumPy's "could not convert string to float", the same words for X and y, or scikit-learn's "not compatible
    with arrays of bytes/strings" for NumPy text with ``dtype='numeric'``) gains what to do about it, for the
    argument that holds the text: X, or (``y_numeric=True``, X being numbers) the regressor's y.  A NumPy ``X``
    of dates or durations is refused first (:func:`_refuse_dates_as_features`)."""
    _refuse_dates_as_features(data[0])
    try:
        return validate_data(estimator, *data, **options)
    except ValueError as error:
        if not any(words in str(error) for words in _TEXT_ERRORS):
            raise
        if options.get("y_numeric") and _is_numeric(data[0], options):
            raise _with_advice(error, _TEXT_TARGETS_ADVICE) from error
        raise _with_advice(
            error,
            "X must hold numbers: encode text or categorical columns first, e.g. with "
            "sklearn.preprocessing.OneHotEncoder in a sklearn.compose.ColumnTransformer",
        ) from error


def _refuse_dates_as_features(X) -> None:
    """A TypeError for a NumPy ``X`` of dates or durations (datetime64, timedelta64), which scikit-learn's check
    would cast to their raw ticks: MLP's forward pass cannot multiply them by its weights (its TypeError, at
    ``fit`` for dates and at ``predict`` for durations); and for a DataFrame with such columns, on which
    scikit-learn's check fails with NumPy's DTypePromotionError, which names neither the columns nor a way out."""
    if isinstance(X, np.ndarray) and X.dtype.kind in ("m", "M"):
        raise TypeError(
            f"X has dtype {X.dtype} (dates or durations), which MLP's forward pass cannot multiply by its float "
            "weights. jaxnn: X must hold numbers; convert them first, e.g. (X - X.min(axis=0)) / "
            "np.timedelta64(1, 'D') for days"
        )
    dtypes = getattr(X, "dtypes", None)  # a pandas DataFrame's, by column
    if not isinstance(X, np.ndarray) and hasattr(dtypes, "items"):
        dated = [str(column) for column, dtype in dtypes.items() if getattr(dtype, "kind", None) in ("m", "M")]
        if dated:
            raise TypeError(
                f"X has columns of dates or durations ({', '.join(map(repr, dated))}), which MLP's forward pass "
                "cannot multiply by its float weights. jaxnn: X must hold numbers; convert them first, e.g. "
                "(X[column] - X[column].min()) / pandas.Timedelta(days=1) for days"
            )


def _is_numeric(X, options) -> bool:
    """Whether scikit-learn's check takes ``X`` as numbers, with the ``accept_sparse`` and ``dtype`` of ``options``
    (X is checked before y, so when it passes, the text was y's)."""
    try:
        check_array(X, accept_sparse=options.get("accept_sparse", False), dtype=options.get("dtype", "numeric"))
    except ValueError:
        return False
    return True


def _mlps_label_error(labels, *, binarized: bool) -> Exception | None:
    """The exception scikit-learn's MLP raises for ``labels`` it cannot take as classes, or None: its
    ``LabelBinarizer``'s when ``binarized`` (a fit that starts over fits one on ``y``), else ``unique_labels``'
    (``warm_start``, ``partial_fit``'s ``y`` and ``classes=``)."""
    try:
        LabelBinarizer().fit(labels) if binarized else unique_labels(labels)
    except (TypeError, ValueError) as error:
        return error
    return None


def _label_error(labels, advice: str, *, binarized: bool) -> Exception:
    """MLP's exception for ``labels`` (see :func:`_mlps_label_error`): the same type, its message first and
    ``jaxnn: advice`` after it (MLP's exception as the cause); a ValueError of the advice where MLP raises none."""
    error = _mlps_label_error(labels, binarized=binarized)
    return ValueError(advice) if error is None else _with_advice(error, advice)


def _with_advice(error: Exception, advice: str) -> Exception:
    """scikit-learn's ``error`` with ``jaxnn: advice`` after its message: the same type, ``error`` as the cause."""
    message = str(error)
    combined = type(error)(f"{message}{' ' if message.endswith('.') else '. '}jaxnn: {advice}")
    combined.__cause__ = error
    return combined


def _raveled_column(y, advice: str):
    """``y`` of one column raveled with scikit-learn's DataConversionWarning, as MLP's ``column_or_1d`` ravels it,
    the warning naming the user's line that called ``fit`` (:mod:`jaxnn._warnings`; scikit-learn's names its own
    file); a ``scipy.sparse`` one is MLP's TypeError (``column_or_1d`` takes dense data only) with ``advice`` after
    it.  Other ``y`` is returned as it is.  (The warning is raised here, not caught from ``column_or_1d``:
    ``warnings.catch_warnings`` is process-wide and would take other threads' warnings.)"""
    if y.ndim != 2 or y.shape[1] != 1:
        return y
    try:
        raveled = column_or_1d(y)
    except TypeError as error:
        raise _with_advice(error, advice) from error
    warn(COLUMN_Y_WARNING, DataConversionWarning)
    return raveled


def _label_types_advice(labels, name: str) -> str:
    """What to do about ``labels`` (``name``: ``y`` or ``classes``) that cannot be classes, from their Python types."""
    labels = np.asarray(labels, dtype=object)
    if name == "classes" and labels.ndim > 1:
        return f"classes must be a flat list of labels (e.g. [0, 1, 2]), got {labels.ndim} dimensions"
    kinds = sorted({type(label).__name__ for label in labels.ravel().tolist()})
    if kinds == ["NoneType"]:
        return f"{name} holds None alone; give each sample its class label, an integer or a string"
    if len(kinds) > 1:
        unsortable = "str" in kinds or "NoneType" in kinds
        return (
            f"{name} mixes labels of types {', '.join(kinds)}, which "
            f"{'cannot be sorted into classes' if unsortable else 'are not class labels of one kind'}; make them all "
            f"integers or all strings (e.g. {name}.astype(str)), with no None among them"
        )
    if isinstance(labels.flat[0], (int, float, np.number, np.bool_)):  # numbers, held as Python objects
        return (
            f"{name} holds {kinds[0]} labels in an array of dtype object, which scikit-learn does not read as "
            f"classes; convert it to a numeric array first, e.g. np.asarray({name}, dtype={kinds[0]!r})"
        )
    return f"{name} must hold class labels, all integers or all strings; got labels of type {kinds[0]}"


def _unusable_labels_advice(y, kind: str) -> str:
    """What to do about labels ``y`` of ``kind`` (type_of_target's, or ``'unsortable'``) that a classifier refuses."""
    if kind in ("unsortable", "unknown"):  # labels held as Python objects (strings and numbers, None)
        return _label_types_advice(y, "y")
    advice = (
        "NeuralNetClassifier takes one label per sample (binary or multiclass) or a multilabel indicator matrix of "
        f"0/1, got {kind} y"
    )
    if kind == "multiclass-multioutput":
        advice += "; fit one classifier per column, e.g. with sklearn.multioutput.MultiOutputClassifier"
    if kind.startswith("continuous"):
        advice += (
            " (floats that are not whole numbers); for a real-valued target use NeuralNetRegressor, or bin y into "
            "classes first (e.g. np.digitize or sklearn.preprocessing.KBinsDiscretizer)"
        )
    return advice


def classifier_data(estimator, X, y, *, reset: bool, incremental: bool = False):
    """``X`` (dense) and ``y`` of a classifier's fit: one label per sample (binary or multiclass) or a
    multilabel indicator matrix of 0/1.  Other labels (several label columns of more than two classes, Python
    objects of mixed types or None, …) are MLP's exception, its message first: the one of a fit that starts over
    (``reset`` and not ``incremental``) or the one of ``warm_start`` and ``partial_fit``, continuous ``y``
    (floats such as 0.5) among them.  ``y`` may be sparse as a multilabel indicator matrix only: a sparse ``y`` of
    one column is MLP's TypeError."""
    X, y = numeric_data(
        estimator, X, y, accept_sparse=SPARSE_FORMATS, multi_output=True, dtype=(np.float64, np.float32), reset=reset
    )
    X = densified(X)
    y = _raveled_column(y, _SPARSE_COLUMN_ADVICE + "; a scipy.sparse y is taken as a multilabel indicator matrix only")
    y = y.toarray() if scipy.sparse.issparse(y) else y  # a sparse multilabel indicator matrix
    # Integer labels in one column are binary or multiclass: type_of_target (a third of the input checks'
    # time) only for other labels, and once: check_classification_targets would compute it again.
    n_labels = np.unique(y).size if y.ndim == 1 and y.dtype.kind in "iub" else None
    try:
        kind = type_of_target(y) if n_labels is None else "binary" if n_labels <= 2 else "multiclass"
    except TypeError:  # NumPy cannot sort the labels (e.g. str and int in an object array)
        kind = "unsortable"
    if kind not in ("binary", "multiclass", "multilabel-indicator"):
        raise _label_error(y, _unusable_labels_advice(y, kind), binarized=reset and not incremental)
    return X, _indicator_matrix(y) if kind == "multilabel-indicator" else y


def _indicator_matrix(y: np.ndarray) -> np.ndarray:
    """A multilabel indicator matrix as MLP's ``LabelBinarizer`` reads it: 0 is a label absent, any other value a
    label present, as 0/1 integers (a matrix of 0 and 2 trains as one of 0 and 1, not towards a probability of 2).
    A matrix of two values neither of which is 0 (-1 and 1, 1 and 2), which MLP would train as every label present
    on every sample, is a ValueError saying how to mark the absent labels."""
    values = np.unique(y)
    if values.size == 2 and not (values == 0).any():
        raise ValueError(
            f"y is a multilabel indicator matrix of the values {values.tolist()}, neither of them 0: MLP's "
            "LabelBinarizer takes every non-zero entry as a label present, so every label would be present on every "
            "sample. jaxnn: mark an absent label with 0 and a present one with 1, e.g. (y > 0).astype(int)"
        )
    return (y != 0).astype(int)


def regressor_data(estimator, X, y, *, reset: bool):
    """``X`` (dense) and numeric ``y`` (one or several target columns) of a regressor's fit; a column ``y`` of
    shape (n_samples, 1) is raveled with scikit-learn's DataConversionWarning, as MLPRegressor does (so
    ``predict`` returns (n_samples,)); a sparse one is MLPRegressor's TypeError, with jaxnn's advice after it.
    A ``y`` that does not hold numbers is refused as :func:`_numeric_targets` says."""
    X, y = numeric_data(
        estimator,
        X,
        y,
        accept_sparse=SPARSE_FORMATS,
        dtype=(np.float64, np.float32),
        multi_output=True,
        y_numeric=True,
        reset=reset,
    )
    return densified(X), _finite_targets(_numeric_targets(_raveled_column(y, _SPARSE_COLUMN_ADVICE)))


def _finite_targets(y):
    """``y`` once it is numbers, refused when a value is not finite.  scikit-learn checks a numeric ``y`` before
    converting one of Python objects or text: a ``None`` or a ``'nan'`` became NaN after its check, and the fit
    failed after an epoch with the advice for a divergence (MLPRegressor's own "non-finite parameter weights")."""
    values = np.asarray(y)
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        kind, source = ("NaN", "a missing value (None, or text such as 'nan')")
        if not np.isnan(values).any():
            kind, source = ("infinity", "text such as 'inf'")
        raise ValueError(
            f"Input y contains {kind}. jaxnn: {source} among the targets became it; drop those rows or fill them in"
        )
    return y


def _numeric_targets(y):
    """A regressor's ``y`` as numbers: NumPy strings (dtype ``<U``/``S``) as float64, as scikit-learn's check
    converts a ``y`` of Python objects; text that is not a number is NumPy's ValueError ("could not convert string
    to float"), as for an object ``y``, with what to do after it.  Dates and durations (datetime64, timedelta64),
    which MLPRegressor's loss cannot subtract (its TypeError), are a TypeError rather than a fit on their raw
    ticks; a ``scipy.sparse`` ``y`` of several columns, on which MLPRegressor fails (a ValueError), is a
    ValueError saying to pass it dense.  Other ``y`` is returned as it is."""
    if scipy.sparse.issparse(y):
        raise ValueError(
            f"y is a scipy.sparse matrix of shape {y.shape}; a regressor's targets must be dense: pass y.toarray()"
        )
    if isinstance(y, np.ndarray) and y.dtype.kind in "mM":
        raise TypeError(
            f"y has dtype {y.dtype} (dates or durations), which MLPRegressor's loss cannot subtract from its float64 "
            "predictions. jaxnn: a regressor's y must hold numbers; convert them first, e.g. "
            "(y - y.min()) / np.timedelta64(1, 'D') for days"
        )
    if not isinstance(y, np.ndarray) or y.dtype.kind not in "US":
        return y
    try:
        return y.astype(np.float64)
    except ValueError as error:
        raise _with_advice(error, _TEXT_TARGETS_ADVICE) from error


# --------------------------------------------------------------------------------------------------
# Encoding targets for a head.


def _class_head(loss, n_classes: int) -> Head:
    """The head of ``n_classes`` classes; a single class gets scikit-learn's one-output head."""
    loss = scikit_learn_loss(CLASSIFICATION, n_classes) if loss is None else loss
    return single_class_head(loss) if n_classes == 1 else classification_head(loss, n_classes)


def _multilabel_targets(y: np.ndarray, loss, previous: Head | None) -> Targets:
    """A multilabel indicator matrix ``y`` (n_samples, L) as targets of L sigmoid outputs; ``classes_`` is
    ``arange(L)``, as scikit-learn's ``LabelBinarizer`` sets it.  ``previous``: the head of a fit this one
    continues (warm_start, partial_fit)."""
    n_labels = y.shape[1]
    if previous is not None and not (previous.multilabel and previous.units == n_labels):
        before = f"{previous.units} labels" if previous.multilabel else "one label per sample"
        raise ValueError(
            f"y is a multilabel indicator matrix of {n_labels} labels but the network was fitted for {before}; "
            "refit from scratch (warm_start=False) to change the targets"
        )
    head = multilabel_head(scikit_learn_loss(CLASSIFICATION, 2) if loss is None else loss, n_labels)
    return Targets(np.asarray(y, dtype=float), head, {"classes_": np.arange(n_labels)})


def check_classes(classes) -> None:
    """``partial_fit``'s ``classes=``, checked before ``y`` as MLP checks them: labels that its ``unique_labels``
    refuses (strings and numbers mixed, floats that are not whole numbers, …) are MLP's exception, its message
    first and jaxnn's advice after it."""
    if _mlps_label_error(classes, binarized=False) is not None:
        raise _label_error(classes, _label_types_advice(classes, "classes"), binarized=False)


def _distinct_labels(labels: np.ndarray, name: str = "y") -> np.ndarray:
    """The sorted distinct ``labels`` as scikit-learn's ``unique_labels`` gives them (MLP's ``classes_``):
    labels held as Python objects (an object array, a pandas Categorical) in the array type NumPy infers for
    them, e.g. ``<U1`` for one-letter strings.  Labels that cannot be ordered (numbers and strings mixed, None
    among them), and ``classes=`` that MLP's ``unique_labels`` refuses (e.g. a list of strings and numbers, or
    non-integral floats), are MLP's exception for them, its message first."""
    if name == "classes":
        check_classes(labels)
    try:
        distinct = np.unique(np.asarray(labels))
    except TypeError:  # NumPy's "'<' not supported between instances of 'str' and 'int'"
        raise _label_error(labels, _label_types_advice(labels, name), binarized=False) from None
    return np.asarray(distinct.tolist()) if distinct.dtype == object else distinct


def _same_classes_for_warm_start(known: np.ndarray, y: np.ndarray) -> None:
    """A warm-started ``fit`` must see exactly the classes of the fit it continues (scikit-learn's rule and
    message, with jaxnn's advice after it)."""
    labels = np.unique(y)
    if set(labels.tolist()) != set(known.tolist()):
        raise ValueError(
            "warm_start can only be used where `y` has the same classes as in the previous call to fit. "
            f"Previously got {known}, `y` has {labels}; refit with warm_start=False to change the classes"
        )


def class_targets(y, loss, *, fitted: tuple[Head, np.ndarray] | None, incremental: bool, classes=None):
    """Labels → one-hot rows (softmax head) or a 0/1 column (sigmoid head, for two classes or a single
    one); a multilabel indicator matrix → its 0/1 columns (one sigmoid per label; ``classes`` is not read).

    ``loss`` is the estimator's parameter; ``fitted`` the head and ``classes_`` of the fit this one continues
    (warm_start, partial_fit), else None."""
    if y.ndim == 2:
        return _multilabel_targets(y, loss_param(loss), None if fitted is None else fitted[0])
    if fitted is not None:
        head, known = fitted
        if head.multilabel:
            raise ValueError(
                f"the network was fitted for a multilabel indicator matrix of {known.size} labels but y has one "
                "label per sample; refit from scratch (warm_start=False) to change the targets"
            )
        if classes is not None and not np.array_equal(np.unique(classes), known):
            raise ValueError(  # MLP's message first
                f"`classes={classes!r}` is not the same as on last call to partial_fit, was: {known!r}. jaxnn: "
                f"classes={np.unique(classes).tolist()} differs from the first call's {known.tolist()}"
            )
        if not incremental:
            _same_classes_for_warm_start(known, y)
    else:
        known = _distinct_labels(y if classes is None else classes, "y" if classes is None else "classes")
    continuing = fitted is not None
    derived = classes is None and not continuing  # the classes are y's own labels: none can be unknown
    unknown = known[:0] if derived else np.setdiff1d(y, known)
    if unknown.size:  # MLP's message for labels outside classes_, first
        mlps = f"`y` has classes not in `self.classes_`. `self.classes_` has {known}. 'y' has {np.unique(y)}. jaxnn: "
    if unknown.size and not continuing:  # a first partial_fit whose classes= misses some labels
        raise ValueError(
            mlps + f"y holds labels {unknown.tolist()} that are not in classes={known.tolist()}; classes= must list "
            "every label that can appear in y"
        )
    if unknown.size:  # partial_fit's (warm_start's fit refuses other classes above): it cannot be told to start over
        raise ValueError(
            mlps + f"y has labels {unknown.tolist()} that are not among the classes {known.tolist()} the network "
            "was built for; to change the classes, fit from scratch (fit with warm_start=False), or start a new "
            "estimator whose first partial_fit has classes= listing them all"
        )
    index = np.searchsorted(known, y)
    head = _class_head(loss_param(loss), known.size)
    return Targets(encode_classes(index, head), head, {"classes_": known})


def check_weighted_classes(y: np.ndarray, weight: np.ndarray, what: str = "sample_weight") -> None:
    """A fit's training ``weight`` (``what``, in the training dtype) must leave two classes of ``y`` weighted, when
    ``y`` has two or more (a multilabel matrix is not checked): a weight below the dtype's smallest normal number is
    flushed to 0 by the compiled programs, so it weighs nothing."""
    if y.ndim != 1 or np.unique(y).size < 2:
        return
    weighted = np.unique(y[weight >= np.finfo(weight.dtype).smallest_normal])
    if weighted.size < 2:
        raise ValueError(
            f"only one class ({weighted.tolist()[0]!r}) has non-zero {what}; a classifier needs at least two weighted "
            "classes to tell apart"
        )


def _check_counts(y: np.ndarray, head: Head, loss) -> None:
    """A loss for counts (``poisson``) needs ``y >= 0``."""
    if head.loss.nonnegative_targets and np.any(y < 0):
        raise ValueError(
            f"loss={loss!r} models counts and needs y >= 0, but y has negative values (the smallest is "
            f"{np.min(y):g}); use loss='squared_error' for targets of any sign"
        )


def needs_nonnegative_targets(loss) -> bool:
    """Whether a regressor's ``loss`` parameter refuses ``y < 0`` (``'poisson'``, a loss for counts): its
    ``target_tags.positive_only``, so scikit-learn's checks and tools hand it targets ``>= 0``.  A ``loss`` that
    is not a regression loss is False here (fit says what is wrong with it); never raises."""
    try:
        return regression_head(regression_loss(loss), 1).loss.nonnegative_targets
    except (ValueError, TypeError):
        return False


def regression_targets(y, loss, *, fitted: Head | None) -> Targets:
    """Targets as ``(n_samples, n_targets)`` columns for a regression head; ``fitted``: the head of the fit this one
    continues (warm_start, partial_fit), else None.  ``Targets.fitted`` is left empty.

    A continued fit keeps the network's output: other target columns, or a loss of another output activation
    (``'poisson'``'s exp after ``'squared_error'``'s identity: the same weights would predict e^ŷ), are a ValueError."""
    targets = np.asarray(y, dtype=float).reshape(y.shape[0], -1)
    refit = "warm_start and partial_fit continue that network: refit from scratch (warm_start=False) to change"
    if fitted is not None and targets.shape[1] != fitted.units:
        raise ValueError(
            f"y has {targets.shape[1]} target columns but the network was fitted with {fitted.units}; {refit} the "
            "targets"
        )
    head = regression_head(regression_loss(loss), targets.shape[1])
    if fitted is not None and head.output_activation != fitted.output_activation:
        named = loss if isinstance(loss, str) else head.loss.name  # the parameter as the user set it
        raise ValueError(
            f"loss {named!r} needs an {head.output_activation} output but the network was fitted with an "
            f"{fitted.output_activation} output; {refit} the loss"
        )
    _check_counts(targets, head, loss)
    return Targets(targets, head, {})


def regression_loss(loss) -> Loss:
    """The regressor's ``loss`` parameter as a loss: scikit-learn MLPRegressor's squared error for ``'auto'`` and
    ``'squared_error'`` (its value and its steps: ``jaxnn.heads.scikit_learn_loss``), else the loss named or given (a
    Loss object, ``jaxnn.squared_error`` included, is taken as it is)."""
    loss = loss_param(loss)
    return scikit_learn_loss(REGRESSION) if loss in (None, "squared_error") else get_loss(loss)


def class_probabilities(outputs: np.ndarray, head: Head) -> np.ndarray:
    """The head's outputs as one probability per class (per label for multilabel targets): a sigmoid's
    column ``p`` of two classes becomes ``[1 − p, p]``; a single class has probability 1."""
    if head.n_classes == 1:
        return np.ones_like(outputs)
    if outputs.shape[1] == 1:
        return np.hstack([1.0 - outputs, outputs])
    return outputs


def indicator_predictions(probabilities: np.ndarray, *, sparse: bool):
    """Multilabel predictions: the 0/1 (int) indicator matrix of the labels whose probability exceeds ½.

    With ``sparse`` (the labels were learnt from a ``scipy.sparse`` ``y``) it is a CSR matrix, as MLP's
    ``LabelBinarizer`` returns it: of scikit-learn's sparse interface (``sklearn.get_config()['sparse_interface']``),
    ``csr_matrix`` by default and ``csr_array`` for ``'sparray'``; else a dense array.
    """
    indicator = (probabilities > 0.5).astype(int)
    if not sparse:
        return indicator
    sparray = get_config().get("sparse_interface", "spmatrix") == "sparray"
    return scipy.sparse.csr_array(indicator) if sparray else scipy.sparse.csr_matrix(indicator)
