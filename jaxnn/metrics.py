"""Scores of predictions against targets, with per-sample weights: accuracy and R².

Both are written in ``jax.numpy``, so the same function serves a compiled early-stopping rule inside
the training loop and a report on host NumPy arrays (which they accept as well).  A weight of 0 masks
a sample out (padding rows); the weights must have a positive sum.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["accuracy", "r2_score"]


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
