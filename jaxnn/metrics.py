"""Scores of predictions against targets, with per-sample weights: accuracy, balanced accuracy, log-loss, R²,
mean squared and mean absolute error (each as ``sklearn.metrics``' function of the same name computes it).

Both are written in ``jax.numpy``, so the same function serves a compiled early-stopping rule inside
the training loop and a report on host NumPy arrays (which they accept as well).  A weight of 0 masks
a sample out (padding rows); the weights must have a positive sum.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["accuracy", "balanced_accuracy", "log_loss", "mean_absolute_error", "mean_squared_error", "r2_score"]


def _weights(weight, n: int, dtype) -> jax.Array:
    return jnp.ones(n, dtype) if weight is None else jnp.asarray(weight, dtype)


def accuracy(predicted, true, weight=None) -> jax.Array:
    """Weighted share of samples whose predicted label equals the true one: ``Σ w_i [p_i = t_i] / Σ w_i``.

    ``predicted`` and ``true`` are 1-D arrays of labels (class indices), or 2-D indicator rows
    (multilabel: a sample counts as right only when every label is).
    """
    predicted, true = jnp.asarray(predicted), jnp.asarray(true)
    correct = predicted == true
    if correct.ndim == 2:
        correct = jnp.all(correct, axis=1)
    dtype = jnp.result_type(float)
    w = _weights(weight, correct.shape[0], dtype)
    return jnp.sum(w * correct.astype(dtype)) / jnp.sum(w)


def r2_score(true, predicted, weight=None) -> jax.Array:
    """The coefficient of determination averaged over output columns, as ``sklearn.metrics.r2_score``.

    Per column ``R² = 1 − Σ w (y − ŷ)² / Σ w (y − ȳ)²`` with the weighted mean ``ȳ``.  A constant column
    (zero denominator) scores 1 when predicted exactly and 0 otherwise, as scikit-learn does.
    ``true`` and ``predicted`` are ``(n,)`` or ``(n, n_outputs)``.
    """
    true, predicted = jnp.asarray(true), jnp.asarray(predicted)
    if true.ndim == 1:
        true, predicted = true[:, None], predicted.reshape(-1, 1)
    dtype = jnp.result_type(true.dtype, predicted.dtype, float)
    w = _weights(weight, true.shape[0], dtype)[:, None]
    mean = jnp.sum(w * true, axis=0) / jnp.sum(w)
    residual = jnp.sum(w * (true - predicted) ** 2, axis=0)
    total = jnp.sum(w * (true - mean[None, :]) ** 2, axis=0)
    safe_total = jnp.where(total > 0, total, 1.0)
    per_output = jnp.where(total > 0, 1.0 - residual / safe_total, jnp.where(residual > 0, 0.0, 1.0))
    return jnp.mean(per_output)


def balanced_accuracy(predicted, true, n_classes: int, weight=None) -> jax.Array:
    """The mean over classes of the weighted recall, as ``sklearn.metrics.balanced_accuracy_score``:
    ``recall_c = Σ_{t_i = c} w_i [p_i = c] / Σ_{t_i = c} w_i``, averaged over the classes that occur in ``true``
    (positive weight).  ``predicted`` and ``true``: 1-D class indices in ``[0, n_classes)``."""
    predicted, true = jnp.asarray(predicted), jnp.asarray(true)
    dtype = jnp.result_type(float)
    w = _weights(weight, true.shape[0], dtype)
    in_class = (true[:, None] == jnp.arange(n_classes)[None, :]).astype(dtype) * w[:, None]  # (n, classes)
    support = jnp.sum(in_class, axis=0)
    hits = jnp.sum(in_class * (predicted == true).astype(dtype)[:, None], axis=0)
    present = support > 0
    recall = jnp.where(present, hits / jnp.where(present, support, 1.0), 0.0)
    return jnp.sum(recall) / jnp.sum(present)


def log_loss(probabilities, true_indicators, weight=None) -> jax.Array:
    """The weighted mean cross-entropy ``−Σ_i w_i Σ_c t_ic log p_ic / Σ_i w_i``, the probabilities clipped to
    ``[ε, 1 − ε]`` with ``ε`` the float type's machine epsilon (``sklearn.metrics.log_loss``).
    ``probabilities`` and ``true_indicators`` (one-hot rows) are ``(n, n_classes)``."""
    p, t = jnp.asarray(probabilities), jnp.asarray(true_indicators)
    eps = jnp.finfo(p.dtype).eps
    w = _weights(weight, t.shape[0], p.dtype)
    per_sample = -jnp.sum(t * jnp.log(jnp.clip(p, eps, 1 - eps)), axis=1)
    return jnp.sum(w * per_sample) / jnp.sum(w)


def _mean_error(errors, weight) -> jax.Array:
    """Per output column the weighted mean of ``errors``, then the mean over the columns (uniform average)."""
    if errors.ndim == 1:
        errors = errors[:, None]
    w = _weights(weight, errors.shape[0], errors.dtype)[:, None]
    return jnp.mean(jnp.sum(w * errors, axis=0) / jnp.sum(w))


def mean_squared_error(true, predicted, weight=None) -> jax.Array:
    """``Σ w (y − ŷ)² / Σ w`` per output column, averaged over the columns (``sklearn.metrics.mean_squared_error``)."""
    true, predicted = jnp.asarray(true), jnp.asarray(predicted)
    return _mean_error((true - predicted.reshape(true.shape)) ** 2, weight)


def mean_absolute_error(true, predicted, weight=None) -> jax.Array:
    """``Σ w |y − ŷ| / Σ w`` per output column, averaged over the columns (``sklearn.metrics.mean_absolute_error``)."""
    true, predicted = jnp.asarray(true), jnp.asarray(predicted)
    return _mean_error(jnp.abs(true - predicted.reshape(true.shape)), weight)
