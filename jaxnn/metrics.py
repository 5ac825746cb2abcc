"""Scores of predictions against targets, with per-sample weights: accuracy, balanced accuracy, log-loss, R²,
mean squared and mean absolute error (each as ``sklearn.metrics``' function of the same name computes it).

Both are written in ``jax.numpy``, so the same function serves a compiled early-stopping rule inside
the training loop and a report on host NumPy arrays (which they accept as well).  Host float64 input (NumPy
arrays, Python floats) is scored in float64 also while JAX's 64-bit mode is off (``jax.enable_x64``, for the
call): in float32, targets near 1e8 that differ by 0.1 would be one constant, and weights beyond 3.4e38
infinite.  A weight of 0 masks
a sample out (padding rows); the weights must have a positive sum.

Shapes are checked (while tracing, so a compiled caller pays nothing): two arrays that differ are a ValueError
instead of a broadcast that scores every sample against every other.  Concrete weights are checked as
:func:`jaxnn._checks.sample_weights` checks training weights.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxnn._checks import as_real_array, positive_int, sample_weights

__all__ = ["accuracy", "balanced_accuracy", "log_loss", "mean_absolute_error", "mean_squared_error", "r2_score"]


def _in_the_inputs_precision(metric):
    """``metric`` run inside ``jax.enable_x64(True)`` when an argument is host float64 data (a NumPy array, Python
    floats) and 64-bit mode is off (a traced call, or float32 input, runs as it is)."""

    @functools.wraps(metric)
    def scored(*args, **kwargs):
        arguments = (*args, *kwargs.values())
        wide = any(_is_host_float64(value) for value in arguments)
        if wide and not jax.config.jax_enable_x64:
            with jax.enable_x64(True):
                return metric(*args, **kwargs)
        return metric(*args, **kwargs)

    return scored


def _is_host_float64(value) -> bool:
    """A NumPy float64 array, or Python numbers (doubles) in a list or tuple."""
    if isinstance(value, np.ndarray):
        return value.dtype == np.float64
    return isinstance(value, list | tuple | float) and np.asarray(value).dtype == np.float64


def _pair(metric: str, first: str, a, second: str, b, ndims=(1, 2)) -> tuple[jax.Array, jax.Array]:
    """``a`` and ``b`` as real arrays of one shape with ``ndim`` in ``ndims`` and at least one sample (a column
    vector ``(n, 1)`` matches ``(n,)``: it is reshaped to it); else a ValueError naming both shapes."""
    a, b = as_real_array(a, f"{metric}: {first}"), as_real_array(b, f"{metric}: {second}")
    if a.shape != b.shape and a.size == b.size and a.shape[:1] == b.shape[:1] and {a.ndim, b.ndim} == {1, 2}:
        b = b.reshape(a.shape)  # (n,) against (n, 1)
    if a.shape != b.shape or a.ndim not in ndims or a.shape[0] == 0:
        allowed = " or ".join(("(n_samples,)", "(n_samples, n_outputs)")[d - 1] for d in ndims)
        raise ValueError(
            f"{metric}: {first} has shape {tuple(a.shape)} and {second} {tuple(b.shape)}; they must be the same "
            f"shape, {allowed}, with at least one sample"
        )
    return a, b


def _weights(weight, n: int, dtype) -> jax.Array:
    """Per-sample weights: ``(n,)``; concrete ones finite, non-negative, with a positive sum."""
    if weight is None:
        return jnp.ones(n, dtype)
    if isinstance(weight, jax.core.Tracer):
        if weight.shape != (n,):
            raise ValueError(f"weight must have shape ({n},) (one per sample), got {tuple(weight.shape)}")
        return weight.astype(dtype)
    return jnp.asarray(sample_weights(weight, n, None)[0], dtype)


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
    (zero denominator) scores 1 when predicted exactly and 0 otherwise, as scikit-learn does.
    ``true`` and ``predicted`` are ``(n,)`` or ``(n, n_outputs)``.
    """
    true, predicted = _pair("r2_score", "true", true, "predicted", predicted)
    if true.ndim == 1:
        true, predicted = true[:, None], predicted[:, None]
    dtype = jnp.result_type(true.dtype, predicted.dtype, float)
    w = _weights(weight, true.shape[0], dtype)[:, None]
    mean = jnp.sum(w * true, axis=0) / jnp.sum(w)
    residual = jnp.sum(w * (true - predicted) ** 2, axis=0)
    total = jnp.sum(w * (true - mean[None, :]) ** 2, axis=0)
    safe_total = jnp.where(total > 0, total, 1.0)
    per_output = jnp.where(total > 0, 1.0 - residual / safe_total, jnp.where(residual > 0, 0.0, 1.0))
    return jnp.mean(per_output)


@_in_the_inputs_precision
def balanced_accuracy(predicted, true, n_classes: int, weight=None) -> jax.Array:
    """The mean over classes of the weighted recall, as ``sklearn.metrics.balanced_accuracy_score``:
    ``recall_c = Σ_{t_i = c} w_i [p_i = c] / Σ_{t_i = c} w_i``, averaged over the classes that occur in ``true``
    (positive weight).  ``predicted`` and ``true``: 1-D class indices in ``[0, n_classes)``."""
    predicted, true = _pair("balanced_accuracy", "predicted", predicted, "true", true, ndims=(1,))
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
    ``probabilities`` and ``true_indicators`` (one-hot rows) are ``(n, n_classes)``; concrete indicators that
    are not all 0 or 1 are a ValueError (the arguments' order is the reverse of scikit-learn's)."""
    p, t = _pair("log_loss", "probabilities", probabilities, "true_indicators", true_indicators, ndims=(2,))
    _check_indicators(t)
    if not jnp.issubdtype(p.dtype, jnp.floating):
        p = p.astype(jnp.result_type(float))
    eps = jnp.finfo(p.dtype).eps
    w = _weights(weight, t.shape[0], p.dtype)
    per_sample = -jnp.sum(t * jnp.log(jnp.clip(p, eps, 1 - eps)), axis=1)
    return jnp.sum(w * per_sample) / jnp.sum(w)


def _check_indicators(t) -> None:
    """A ValueError unless concrete ``t`` holds only 0 and 1: probabilities passed as ``true_indicators`` (the
    order of ``sklearn.metrics.log_loss(y_true, y_pred)``) were scored silently, 24.1 for a loss of 1.1."""
    if isinstance(t, jax.core.Tracer):
        return
    values = np.asarray(t)
    if not np.all((values == 0) | (values == 1)):
        odd = values[(values != 0) & (values != 1)].ravel()[0]
        raise ValueError(
            f"log_loss: true_indicators must be 0/1 indicator rows (one-hot), got a value {odd:g}; the order is "
            "log_loss(probabilities, true_indicators), the reverse of sklearn.metrics.log_loss(y_true, y_pred)"
        )


def _mean_error(errors, weight) -> jax.Array:
    """Per output column the weighted mean of ``errors``, then the mean over the columns (uniform average)."""
    if errors.ndim == 1:
        errors = errors[:, None]
    w = _weights(weight, errors.shape[0], errors.dtype)[:, None]
    return jnp.mean(jnp.sum(w * errors, axis=0) / jnp.sum(w))


@_in_the_inputs_precision
def mean_squared_error(true, predicted, weight=None) -> jax.Array:
    """``Σ w (y − ŷ)² / Σ w`` per output column, averaged over the columns (``sklearn.metrics.mean_squared_error``)."""
    true, predicted = _pair("mean_squared_error", "true", true, "predicted", predicted)
    return _mean_error((true - predicted) ** 2, weight)


@_in_the_inputs_precision
def mean_absolute_error(true, predicted, weight=None) -> jax.Array:
    """``Σ w |y − ŷ| / Σ w`` per output column, averaged over the columns (``sklearn.metrics.mean_absolute_error``)."""
    true, predicted = _pair("mean_absolute_error", "true", true, "predicted", predicted)
    return _mean_error(jnp.abs(true - predicted), weight)
