"""The checks of a loss's concrete arguments against what the loss is defined on (``jaxnn.losses.Loss`` calls them on
values it can see, outside ``jax.jit``): targets in the loss's range, categorical rows that are one class each, and
predictions that a loss on probabilities or on a mean can take.  Each takes the :class:`~jaxnn.losses.Loss` and raises a
ValueError that names it and says what to pass instead."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

__all__ = ["class_rows_usable", "outputs_usable", "predictions_usable", "target_values_usable"]

# The fused loss on logits that takes the place of each loss on probabilities, named when logits are passed to one.
_FUSED_ON_LOGITS = {"sigmoid": "sigmoid_binary_cross_entropy", "softmax": "softmax_cross_entropy"}


def class_rows_usable(loss, target) -> None:
    """For a categorical loss, a ValueError unless every row of ``target`` (``(n, k)``, or ``(P, n, k)``) sums
    to 1: a one-hot row or a distribution over the classes.  A row of zeros adds nothing to the loss (0/1
    labels in one column after a one-unit layer: the loss is 0 and nothing trains), and a multi-label row
    (several 1s) asks the softmax for several classes at once; both trained silently."""
    target = np.asarray(target, dtype=float)
    if loss.task != "categorical" or target.ndim < 2:
        return
    sums = target.sum(axis=-1)
    if not np.max(np.abs(sums - 1.0), initial=0.0) <= 1e-4:  # NaN fails too
        worst = sums.ravel()[np.argmax(np.abs(sums - 1.0).ravel())]
        one_column = target.shape[-1] == 1
        raise ValueError(
            f"{loss.name}: each target row must be one class (one-hot, or probabilities summing to 1), but a row "
            f"sums to {worst:g}"
            + (
                "; a single column of 0/1 labels is a binary task: give the last layer activation='identity' "
                "and use 'sigmoid_binary_cross_entropy', or one column per class (jaxnn.data.one_hot)"
                if one_column
                else "; one-hot encode class labels (jaxnn.data.one_hot), or for several labels per sample use "
                "'sigmoid_binary_cross_entropy' on logits or 'binary_cross_entropy' after a sigmoid layer"
            )
        )


def outputs_usable(loss, n_outputs: int) -> None:
    """For a categorical loss, a ValueError when the network has one output: the softmax of one number (or one
    probability normalised by its row's sum) is 1 whatever the number is, so the loss is 0 and its gradient 0,
    and nothing trains (as ``Dense(1, 'softmax')`` is refused)."""
    if loss.task == "categorical" and n_outputs == 1:
        raise ValueError(
            f"loss {loss.name!r} spreads probability over the classes, and one output unit always gets all of it: "
            "the loss is 0 whatever the network does, so nothing trains; give the last layer one unit per class "
            "(targets one-hot: jaxnn.data.one_hot), or for a binary task one unit and 'sigmoid_binary_cross_entropy' "
            "on its raw output ('binary_cross_entropy' after a sigmoid layer)"
        )


def target_values_usable(loss, target) -> None:
    """A ValueError if concrete targets lie outside what ``loss`` is defined on (``Loss.check_targets``)."""
    if loss.task == "regression" and not loss.nonnegative_targets:
        return
    target = np.asarray(target)
    if loss.nonnegative_targets and np.any(target < 0):
        raise ValueError(
            f"{loss.name}: targets must be non-negative (counts or rates), got a minimum of {np.min(target):g}; "
            "use a regression loss such as 'squared_error' for targets of any sign"
        )
    if loss.task != "regression" and np.any((target < 0) | (target > 1)):
        raise ValueError(
            f"{loss.name}: targets must lie in [0, 1] (0/1 labels, one-hot rows or probabilities), got values from "
            f"{np.min(target):g} to {np.max(target):g}; one-hot encode class labels (jaxnn.data.one_hot), or use "
            "a regression loss such as 'mean_squared_error' for other targets"
        )


def predictions_usable(loss, pred) -> None:
    """A loss on probabilities or on a mean (not on logits) refuses predictions it is not defined on: its clip
    would hide probabilities out of range (a logit of 3 passed to binary_cross_entropy gives a tiny loss and a
    zero gradient); a row of zeros has no normalisation (the loss and its gradient were NaN); a negative mean
    has no log (the deviance at a zero count was the mean itself, unbounded below).  A mean of 0, where an
    ``exp`` layer underflows, is taken: the deviance is 0 at a zero count and +∞ elsewhere."""
    if loss.from_logits or loss.output_activation == "identity":
        return
    pred = np.asarray(pred)
    if loss.output_activation == "exp":
        if np.any(pred < 0):
            raise ValueError(
                f"{loss.name}: predictions must be non-negative means (the loss takes their log), got values from "
                f"{np.nanmin(pred):g} to {np.nanmax(pred):g}; end the network with an exp layer, or use a loss on "
                "the log of the mean (raw scores), such as 'poisson'"
            )
        return
    sigmoid = loss.output_activation == "sigmoid"
    advice = (
        f"end the network with a {loss.output_activation} layer, or pass raw scores (logits) to "
        f"{_FUSED_ON_LOGITS[loss.output_activation]!r}"
    )
    if np.any(pred < 0) or (sigmoid and np.any(pred > 1)):
        allowed = "probabilities in [0, 1]" if sigmoid else "non-negative (class probabilities, rows normalised)"
        raise ValueError(
            f"{loss.name}: predictions must be {allowed}, got values from {np.nanmin(pred):g} to "
            f"{np.nanmax(pred):g}; " + advice
        )
    if not sigmoid and np.any(np.all(pred < jnp.finfo(pred.dtype).tiny, axis=-1)):
        raise ValueError(
            f"{loss.name}: a row of predictions is all zeros (or below {jnp.dtype(pred.dtype).name}'s smallest "
            "normal number, which XLA flushes to zero), which has no class probabilities (the loss divides each "
            "row by its sum); " + advice
        )
