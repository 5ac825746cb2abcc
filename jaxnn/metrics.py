"""Scores of predictions against targets, with per-sample weights: accuracy, balanced accuracy, log-loss, R²,
mean squared and mean absolute error (each as ``sklearn.metrics``' function of the same name computes it).

Argument order: the classification scores take the predictions first (``accuracy(predicted, true)``,
``balanced_accuracy(predicted, true, n_classes)``, ``log_loss(probabilities, true_indicators)``), as the seeds'
``accuracy_score(pred, y_test)`` and jaxnn's losses ``loss(pred, target)`` do; the regression scores take the
truth first (``r2_score(true, predicted)``, and the two errors, which are symmetric), as scikit-learn's do.
Swapped, ``balanced_accuracy`` and ``r2_score`` give another number without an error: pass them by name
(``true=..., predicted=...``) where the order could be in doubt.

All are written in ``jax.numpy``, so the same function serves a compiled early-stopping rule inside the training
loop and a report on host NumPy arrays (which they accept as well).  Host float64 input (NumPy arrays, pandas
Series and DataFrames, Python floats) is scored in float64 also while JAX's 64-bit mode is off (``jax.enable_x64``,
for the call): in float32, targets near 1e8 that differ by 0.1 would be one constant.  Weights are scaled by a
power of two into range first (:func:`_weights`), so those beyond float32's 3.4e38 or below its 1.2e-38 score as
their ratios do.  A weight of 0 masks a sample out (padding rows); the weights must have a positive sum.

Shapes are checked (while tracing, so a compiled caller pays nothing): two arrays that differ are a ValueError
instead of a broadcast that scores every sample against every other.  Concrete inputs holding NaN or infinity
are a ValueError, as in scikit-learn (R² scored a NaN target 1.0, the errors were NaN); traced ones are not
checked.  Concrete weights are checked as
:func:`jaxnn._checks.sample_weights` checks training weights.
"""

from __future__ import annotations

import contextlib
import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxnn._checks import as_real_array, positive_int, sample_weights

__all__ = ["accuracy", "balanced_accuracy", "log_loss", "mean_absolute_error", "mean_squared_error", "r2_score"]


def _in_the_inputs_precision(metric):
    """``metric`` run inside ``jax.enable_x64(True)`` when an argument is host 64-bit data (a NumPy float64 or
    int64 array, Python numbers) and 64-bit mode is off (a traced call, or float32 input, runs as it is); and
    under JAX's standard type promotion whatever the user's ``jax_numpy_dtype_promotion`` says, as a thread's
    context: int32 predicted labels against int64 true ones, float32 predictions against float64 targets are
    the metric's to reconcile, as scikit-learn's metrics do (``"strict"`` refused them)."""

    @functools.wraps(metric)
    def scored(*args, **kwargs):
        arguments = (*args, *kwargs.values())
        wide = any(_is_host_64_bit(value) for value in arguments)
        with contextlib.ExitStack() as scope:
            scope.enter_context(jax.numpy_dtype_promotion("standard"))
            if wide and not jax.config.jax_enable_x64:
                scope.enter_context(jax.enable_x64(True))
            return metric(*args, **kwargs)

    return scored


def _is_host_64_bit(value) -> bool:
    """Host data of 64-bit numbers (float64, int64, uint64): a NumPy array, or anything NumPy reads as one (a
    pandas Series or DataFrame, Python numbers in a list or tuple); not a JAX array, nor an int argument such as
    ``n_classes``."""
    if isinstance(value, list | tuple | float) or (
        hasattr(value, "__array__") and not isinstance(value, np.ndarray | jax.Array | jax.core.Tracer)
    ):
        try:
            value = np.asarray(value)
        except (TypeError, ValueError):  # ragged: as_real_array names it
            return False
    return isinstance(value, np.ndarray) and value.dtype in (np.float64, np.int64, np.uint64)


def _pair(metric: str, first: str, a, second: str, b, ndims=(1, 2)) -> tuple[jax.Array, jax.Array]:
    """``a`` and ``b`` as real arrays of one shape with ``ndim`` in ``ndims`` and at least one sample (a column
    vector ``(n, 1)`` matches ``(n,)``: it is reshaped to it); else a ValueError naming both shapes."""
    a, b = as_real_array(a, f"{metric}: {first}"), as_real_array(b, f"{metric}: {second}")
    shapes = tuple(a.shape), tuple(b.shape)  # as given, for the message
    if a.shape != b.shape and a.size == b.size and a.shape[:1] == b.shape[:1] and {a.ndim, b.ndim} == {1, 2}:
        # (n,) against (n, 1): the column is reshaped to (n,), whichever argument it is (reshaping the second to
        # the first's shape refused balanced_accuracy's predicted (n, 1) but took its true (n, 1), and named
        # the reshaped shape: "predicted has shape (2, 1) and true (2, 1); they must be the same shape")
        a, b = a.reshape(a.shape[:1]), b.reshape(b.shape[:1])
    if a.shape != b.shape or a.ndim not in ndims or a.shape[0] == 0:
        allowed = " or ".join(("(n_samples,)", "(n_samples, n_outputs)")[d - 1] for d in ndims)
        raise ValueError(
            f"{metric}: {first} has shape {shapes[0]} and {second} {shapes[1]}; they must be the same "
            f"shape, {allowed}, with at least one sample"
        )
    for name, values in ((first, a), (second, b)):
        if not isinstance(values, jax.core.Tracer) and not bool(jnp.all(jnp.isfinite(values))):
            raise ValueError(f"{metric}: {name} contains NaN or infinity; drop or impute those samples")
    return a, b


def _real_pair(metric: str, first: str, a, second: str, b) -> tuple[jax.Array, jax.Array]:
    """:func:`_pair`'s arrays in one floating dtype of at least 32 bits (integers and booleans included)."""
    a, b = _pair(metric, first, a, second, b)
    dtype = jnp.promote_types(jnp.result_type(a.dtype, b.dtype, float), jnp.float32)
    return a.astype(dtype), b.astype(dtype)


def _weights(weight, n: int, dtype) -> jax.Array:
    """Per-sample weights: ``(n,)``; concrete ones finite, non-negative, with a positive sum.

    They are scaled by the power of two that brings their largest into [0.5, 1) (every score is a ratio of
    weighted sums, so only their ratios count): in float32, finite float64 weights of 1e30 made the products
    ``w·e²`` infinite (MSE inf, R² −inf) and weights of 1e-40 were flushed to 0 (every score NaN, R² 1.0).  A
    power of two scales every sum exactly, so scores and their ties are scikit-learn's to the bit (dividing by the
    largest rounded them).  Weights whose largest is 0 or not finite are left as they are."""
    if weight is None:
        return jnp.ones(n, dtype)
    if isinstance(weight, jax.core.Tracer):
        if weight.shape != (n,):
            raise ValueError(f"weight must have shape ({n},) (one per sample), got {tuple(weight.shape)}")
        weight = weight.astype(jnp.promote_types(weight.dtype, jnp.float32))  # ints and bools as floats
        return jnp.ldexp(weight, -jnp.frexp(jnp.max(weight))[1]).astype(dtype)
    w = sample_weights(weight, n, None)[0]
    return jnp.asarray(np.ldexp(w, -np.frexp(np.max(w))[1]), dtype)


@_in_the_inputs_precision
def accuracy(predicted, true, weight=None) -> jax.Array:
    """Weighted share of samples whose predicted label equals the true one: ``Σ w_i [p_i = t_i] / Σ w_i``.

    ``predicted`` and ``true`` are 1-D arrays of labels (class indices), or 2-D indicator rows
    (multilabel: a sample counts as right only when every label is).
    """
    predicted, true = _pair("accuracy", "predicted", predicted, "true", true)
    correct = predicted == true
    if correct.ndim == 2:
        correct = jnp.all(correct, axis=1)
    dtype = jnp.result_type(float)
    w = _weights(weight, correct.shape[0], dtype)
    return jnp.sum(w * correct.astype(dtype)) / jnp.sum(w)


@_in_the_inputs_precision
def r2_score(true, predicted, weight=None) -> jax.Array:
    """The coefficient of determination averaged over output columns, as ``sklearn.metrics.r2_score``.

    Per column ``R² = 1 − Σ w (y − ŷ)² / Σ w (y − ȳ)²`` with the weighted mean ``ȳ``.  A constant column
    (zero denominator: every sample of positive weight has one value) scores 1 when predicted exactly and 0
    otherwise, as scikit-learn does (its ``force_finite=True``); so does a single sample, whose R² scikit-learn
    leaves undefined (NaN, with a warning).  ``true`` and ``predicted`` are ``(n,)`` or ``(n, n_outputs)``.

    Each column is computed in units of the power of two just above its largest ``|y|`` (exact: dividing by the
    largest itself rounded every value, 1e4 times scikit-learn's error for targets near 1e8) and from its first
    weighted sample's value, which is exact (a constant column's deviations are exactly 0, where the rounding of a
    weighted mean gave it a variance of 1e-32 and an R² of −1e28) and keeps the squares finite (values near 1e200
    gave NaN).
    """
    true, predicted = _real_pair("r2_score", "true", true, "predicted", predicted)
    if true.ndim == 1:
        true, predicted = true[:, None], predicted[:, None]
    w = _weights(weight, true.shape[0], true.dtype)[:, None]
    exponent = jnp.frexp(jnp.max(jnp.abs(true), axis=0))[1][None, :]  # 0 for a column of zeros
    true, predicted = jnp.ldexp(true, -exponent), jnp.ldexp(predicted, -exponent)  # |true| < 1, exactly scaled
    deviations = true - true[jnp.argmax(w[:, 0] > 0)][None, :]  # 0 for a constant column, also where the weight is 0
    mean = jnp.sum(w * deviations, axis=0) / jnp.sum(w)
    residual = jnp.sum(w * (true - predicted) ** 2, axis=0)
    total = jnp.sum(w * (deviations - mean[None, :]) ** 2, axis=0)
    safe_total = jnp.where(total > 0, total, 1.0)
    per_output = jnp.where(total > 0, 1.0 - residual / safe_total, jnp.where(residual > 0, 0.0, 1.0))
    return jnp.mean(per_output)


@_in_the_inputs_precision
def balanced_accuracy(predicted, true, n_classes: int, weight=None) -> jax.Array:
    """The mean over classes of the weighted recall, as ``sklearn.metrics.balanced_accuracy_score``:
    ``recall_c = Σ_{t_i = c} w_i [p_i = c] / Σ_{t_i = c} w_i``, averaged over the classes that occur in ``true``
    (positive weight).  ``predicted`` and ``true``: 1-D class indices in ``[0, n_classes)``."""
    predicted, true = _pair("balanced_accuracy", "predicted", predicted, "true", true, ndims=(1,))
    # bools are the classes 0 and 1, as accuracy takes them (jnp.round of a bool raised NumPy's "not inexact")
    predicted, true = (
        labels.astype(jnp.int32) if labels.dtype == jnp.bool_ else labels for labels in [predicted, true]
    )
    n_classes = positive_int(n_classes, "balanced_accuracy: n_classes")
    concrete = [labels for labels in (predicted, true) if not isinstance(labels, jax.core.Tracer)]
    # they would count as no class: 1.5 is no class index either (it scored 0 silently)
    if any(jnp.any((labels < 0) | (labels >= n_classes) | (labels != jnp.round(labels))) for labels in concrete):
        raise ValueError(f"balanced_accuracy: labels must be class indices in [0, {n_classes}) (n_classes={n_classes})")
    dtype = jnp.result_type(float)
    w = _weights(weight, true.shape[0], dtype)
    in_class = (true[:, None] == jnp.arange(n_classes)[None, :]).astype(dtype) * w[:, None]  # (n, classes)
    support = jnp.sum(in_class, axis=0)
    hits = jnp.sum(in_class * (predicted == true).astype(dtype)[:, None], axis=0)
    present = support > 0
    recall = jnp.where(present, hits / jnp.where(present, support, 1.0), 0.0)
    return jnp.sum(recall) / jnp.sum(present)


@_in_the_inputs_precision
def log_loss(probabilities, true_indicators, weight=None) -> jax.Array:
    """The weighted mean cross-entropy ``−Σ_i w_i Σ_c t_ic log p_ic / Σ_i w_i``, the probabilities clipped to
    ``[ε, 1 − ε]`` with ``ε`` the float type's machine epsilon (``sklearn.metrics.log_loss``).
    ``probabilities`` and ``true_indicators`` (one-hot rows) are ``(n, n_classes)``, ``n_classes`` ≥ 2 (for one
    probability per sample pass the rows ``[1 − p, p]``; scikit-learn widens a single column so).  Rows of
    probabilities that do not sum to 1 are scored as they are, as scikit-learn scores them (with a warning).
    Concrete input is checked as scikit-learn checks it: probabilities outside ``[0, 1]`` and indicator rows that
    are not one-hot are a ValueError (the arguments' order is the reverse of scikit-learn's)."""
    p, t = _pair("log_loss", "probabilities", probabilities, "true_indicators", true_indicators, ndims=(2,))
    _check_indicators(t)
    _check_probabilities(p)
    if not jnp.issubdtype(p.dtype, jnp.floating):
        p = p.astype(jnp.result_type(float))
    eps = jnp.finfo(p.dtype).eps
    w = _weights(weight, t.shape[0], p.dtype)
    per_sample = -jnp.sum(t * jnp.log(jnp.clip(p, eps, 1 - eps)), axis=1)
    return jnp.sum(w * per_sample) / jnp.sum(w)


def _check_indicators(t) -> None:
    """A ValueError unless concrete ``t`` holds one-hot rows of at least two columns: probabilities passed as
    ``true_indicators`` (the order of ``sklearn.metrics.log_loss(y_true, y_pred)``) were scored silently, 24.1 for
    a loss of 1.1; a single column of 0/1 labels scored only the samples of class 1."""
    if isinstance(t, jax.core.Tracer):
        return
    values = np.asarray(t)
    if not np.all((values == 0) | (values == 1)):
        odd = values[(values != 0) & (values != 1)].ravel()[0]
        raise ValueError(
            f"log_loss: true_indicators must be 0/1 indicator rows (one-hot), got a value {odd:g}; the order is "
            "log_loss(probabilities, true_indicators), the reverse of sklearn.metrics.log_loss(y_true, y_pred)"
        )
    if values.shape[1] < 2:
        raise ValueError(
            "log_loss: probabilities and true_indicators need a column per class (at least 2); for one probability "
            "p of class 1 per sample pass the rows [1 - p, p] and one-hot labels"
        )
    if not np.all(values.sum(axis=1) == 1):
        row = int(np.argmax(values.sum(axis=1) != 1))
        raise ValueError(f"log_loss: true_indicators must be one-hot rows (one 1 each), row {row} is {values[row]}")


def _check_probabilities(p) -> None:
    """A ValueError when concrete ``p`` has a value outside ``[0, 1]`` (scikit-learn's check)."""
    if isinstance(p, jax.core.Tracer):
        return
    values = np.asarray(p)
    if np.any((values < 0) | (values > 1)):
        odd = values[(values < 0) | (values > 1)].ravel()[0]
        raise ValueError(f"log_loss: probabilities must be in [0, 1], got {float(odd):g}")


def _mean_error(errors, weight) -> jax.Array:
    """Per output column the weighted mean of ``errors``, then the mean over the columns (uniform average)."""
    if errors.ndim == 1:
        errors = errors[:, None]
    w = _weights(weight, errors.shape[0], errors.dtype)[:, None]
    return jnp.mean(jnp.sum(w * errors, axis=0) / jnp.sum(w))


@_in_the_inputs_precision
def mean_squared_error(true, predicted, weight=None) -> jax.Array:
    """``Σ w (y − ŷ)² / Σ w`` per output column, averaged over the columns (``sklearn.metrics.mean_squared_error``)."""
    true, predicted = _real_pair("mean_squared_error", "true", true, "predicted", predicted)
    return _mean_error((true - predicted) ** 2, weight)


@_in_the_inputs_precision
def mean_absolute_error(true, predicted, weight=None) -> jax.Array:
    """``Σ w |y − ŷ| / Σ w`` per output column, averaged over the columns (``sklearn.metrics.mean_absolute_error``)."""
    true, predicted = _real_pair("mean_absolute_error", "true", true, "predicted", predicted)
    return _mean_error(jnp.abs(true - predicted), weight)
