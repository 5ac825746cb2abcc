"""The output side of a network: which last layer a task and a loss need, how targets are encoded and
how outputs are read back.  The estimators and ``jaxnn-train`` both build their heads here, so a loss
name means the same network in both.

The rules, decided once from the facts each loss states (``task``, ``from_logits``,
``output_activation``; see :mod:`jaxnn.losses`):

* **Classification into k classes.**  The default loss is the fused ``softmax_cross_entropy`` on
  logits for k > 2 and ``sigmoid_binary_cross_entropy`` with one output for k = 2 (both stable: no
  clip whose zero gradient can trap a sample).  A categorical loss gets k outputs with a softmax; a
  binary loss gets one sigmoid output and needs k = 2 (on more classes it is refused: one sigmoid per
  class trained one-vs-rest is not a distribution over classes; use a categorical loss).  A regression
  loss such as squared error is applied to the task's probabilities: a softmax over k outputs, or one
  sigmoid output for k = 2; a regression loss with an output activation of its own (the Poisson losses'
  ``exp``) is refused.
* **One class** (scikit-learn's MLP accepts it): the two-class head, one sigmoid output, whose target is
  0 for every sample, as scikit-learn's ``LabelBinarizer`` encodes a single class; every prediction is
  that class (:func:`single_class_head`).
* **Multilabel classification into L labels** (an indicator matrix y of 0/1, any number of labels per
  sample): L sigmoid outputs, one per label, trained by default with ``sigmoid_binary_cross_entropy``
  summed over the labels, as scikit-learn's MLP; a categorical loss is refused (:func:`multilabel_head`).
* **Regression.**  One output per target column through the loss's ``output_activation``
  (``identity``, or ``exp`` for the Poisson losses on a log link); the default loss is ``squared_error``
  (:func:`default_loss`), the estimators' MLP's pair (:func:`scikit_learn_loss`); a classification loss is refused.
* A loss on logits keeps the last layer linear (``identity``) and its ``output_activation`` becomes the
  head's ``link``, applied to outputs for predictions; any other loss puts the activation in the last
  layer and the link is ``identity``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxnn._checks import positive_int
from jaxnn.activations import get_activation
from jaxnn.losses import (
    LOSSES,
    Loss,
    get_loss,
    scikit_learn_squared_error,
    sigmoid_binary_cross_entropy,
    softmax_cross_entropy,
    squared_error,
)
from jaxnn.metrics import (
    accuracy,
    balanced_accuracy,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
)

__all__ = [
    "CLASSIFICATION",
    "REGRESSION",
    "SCORINGS",
    "Head",
    "ValidationLoss",
    "ValidationScore",
    "checked_scoring",
    "class_indices",
    "classification_head",
    "default_loss",
    "encode_classes",
    "label_indicators",
    "multilabel_head",
    "predictions",
    "regression_head",
    "scikit_learn_loss",
    "single_class_head",
]

CLASSIFICATION, REGRESSION = "classification", "regression"


class Head(NamedTuple):
    """What the last layer computes, the loss it trains with, and how its outputs are read.

    Attributes:
      task: ``"classification"`` or ``"regression"``.
      loss: the training loss.
      units: the last layer's width (k classes, 1 for two classes with one sigmoid output, or the
        number of regression targets).
      layer_activation: the last layer's activation.
      link: applied to the network's output to get predictions (class probabilities): the loss's
        ``output_activation`` for a loss on logits, else ``identity``.
      output_activation: the activation between the last product and the predictions, wherever it is
        applied (``"softmax"``, ``"sigmoid"``, ``"exp"`` or ``"identity"``).
      n_classes: k for classification (1 for a single class, L for L labels), 0 for regression.
      multilabel: True for L independent labels per sample (L sigmoid outputs).
    """

    task: str
    loss: Loss
    units: int
    layer_activation: str
    link: str
    output_activation: str
    n_classes: int
    multilabel: bool = False


def default_loss(task: str, n_classes: int = 0) -> Loss:
    """The default loss for the task (``jaxnn-train``'s): ``softmax_cross_entropy`` for more than two classes,
    ``sigmoid_binary_cross_entropy`` for two (the log-loss fused with the output activation, unclipped), and
    ``squared_error`` (half the mean squared error) for regression.  The estimators' is :func:`scikit_learn_loss`."""
    if task == REGRESSION:
        return squared_error
    return softmax_cross_entropy if n_classes > 2 else sigmoid_binary_cross_entropy


def scikit_learn_loss(task: str, n_classes: int = 0) -> Loss:
    """scikit-learn MLP's own loss for the task, its reported value included (the estimators' ``loss='auto'``):
    ``log_loss`` for more than two classes, ``binary_log_loss`` for two, for one class and for multilabel targets
    (pass ``n_classes=2``) — the fused losses' gradients, with MLP's value, which clips the probabilities — and
    ``scikit_learn_squared_error`` for regression (``squared_error``'s value, the gradient of the sum over targets)."""
    if task == REGRESSION:
        return scikit_learn_squared_error
    return get_loss("log_loss" if n_classes > 2 else "binary_log_loss")


def _head(task: str, loss: Loss, units: int, output_activation: str, n_classes: int, multilabel: bool = False) -> Head:
    if loss.from_logits:
        return Head(task, loss, units, "identity", output_activation, output_activation, n_classes, multilabel)
    return Head(task, loss, units, output_activation, "identity", output_activation, n_classes, multilabel)


def _refuse_regression_link(loss: Loss, use: str) -> None:
    """A regression loss on class probabilities must take them as they are (output ``identity``)."""
    if loss.task == "regression" and loss.output_activation != "identity":
        raise ValueError(
            f"loss {loss.name!r} is a regression loss on {loss.output_activation} outputs (e.g. counts), not a "
            f"classification loss; use {use}"
        )


def classification_head(loss: str | Loss | None, n_classes: int) -> Head:
    """The head for ``n_classes`` (≥ 2) classes trained with ``loss`` (None: :func:`default_loss`)."""
    n_classes = positive_int(n_classes, "n_classes")
    if n_classes < 2:
        raise ValueError(f"classification needs at least two classes, got {n_classes}")
    loss = default_loss(CLASSIFICATION, n_classes) if loss is None else get_loss(loss)
    _refuse_regression_link(loss, "'softmax_cross_entropy' or 'categorical_cross_entropy'")
    if loss.task == "binary" and n_classes > 2:
        raise ValueError(
            f"loss {loss.name!r} is for two classes (one sigmoid output) but the target has {n_classes} classes; "
            "use 'softmax_cross_entropy' or 'categorical_cross_entropy'"
        )
    if loss.task == "categorical" or n_classes > 2:
        return _head(CLASSIFICATION, loss, n_classes, "softmax", n_classes)
    return _head(CLASSIFICATION, loss, 1, "sigmoid", n_classes)


def single_class_head(loss: str | Loss | None) -> Head:
    """The head for targets of one class only: the two-class head (one sigmoid output) with ``n_classes=1``.

    scikit-learn's MLP fits such targets (its ``LabelBinarizer`` encodes the class as 0) and predicts the
    class for every sample; a categorical loss would need two outputs for a class that does not exist, and is
    refused.
    """
    head = classification_head(loss, 2)
    if head.units != 1:
        raise ValueError(
            f"y has a single class, which is fitted with one sigmoid output; loss {head.loss.name!r} needs one "
            "output per class: use 'auto' or 'sigmoid_binary_cross_entropy'"
        )
    return head._replace(n_classes=1)


def multilabel_head(loss: str | Loss | None, n_labels: int) -> Head:
    """The head for ``n_labels`` independent 0/1 labels per sample: one sigmoid output per label, trained with
    ``loss`` (None: ``sigmoid_binary_cross_entropy``, scikit-learn's binary log-loss summed over labels)."""
    if n_labels < 1:
        raise ValueError(f"multilabel targets need at least one label column, got {n_labels}")
    loss = sigmoid_binary_cross_entropy if loss is None else get_loss(loss)
    _refuse_regression_link(loss, "'sigmoid_binary_cross_entropy' or 'binary_cross_entropy'")
    if loss.task == "categorical":
        raise ValueError(
            f"loss {loss.name!r} is categorical (one class per sample) but y is a multilabel indicator matrix (any "
            "number of labels per sample); use 'sigmoid_binary_cross_entropy' or 'binary_cross_entropy'"
        )
    return _head(CLASSIFICATION, loss, n_labels, "sigmoid", n_labels, multilabel=True)


def regression_head(loss: str | Loss | None, n_outputs: int) -> Head:
    """The head for ``n_outputs`` real-valued targets trained with ``loss`` (None: :func:`default_loss`).

    The outputs go through the loss's ``output_activation``: ``identity``, or ``exp`` for the Poisson losses
    (in the last layer for ``half_poisson_deviance``, as the link of the fused ``poisson``).
    """
    n_outputs = positive_int(n_outputs, "n_outputs")
    loss = default_loss(REGRESSION) if loss is None else get_loss(loss)
    if loss.task != "regression":
        raise ValueError(
            f"loss {loss.name!r} is a classification loss ({loss.task}) but the target is continuous; use "
            + " or ".join(repr(name) for name, other in sorted(LOSSES.items()) if other.task == REGRESSION)
        )
    return _head(REGRESSION, loss, n_outputs, loss.output_activation, 0)


def encode_classes(indices, head: Head) -> np.ndarray:
    """Class indices ``0..k−1`` as training targets: one-hot rows for a k-unit head, a 0/1 column for one unit;
    anything else (another index, a non-integer) is a ValueError, not a silently wrong target."""
    indices = np.asarray(indices)
    whole = indices.dtype.kind in "iub" or (indices.dtype.kind == "f" and np.all(indices == np.round(indices)))
    if indices.ndim != 1 or not whole or np.any((indices < 0) | (indices >= max(head.n_classes, 2))):
        raise ValueError(
            f"class indices must be a 1-D array of whole numbers in [0, {max(head.n_classes, 2)}) for this "
            f"head, got {np.asarray(indices).ravel()[:5]!r}"
        )
    indices = indices.astype(np.int64)
    if head.units == 1:
        return indices[:, None].astype(float)
    return np.eye(head.n_classes)[indices]


def class_indices(outputs, head: Head):
    """The predicted class index of each row of the network's ``outputs`` (before the link).

    Several units: the argmax (the same for logits and for softmax probabilities).  One unit: class 1
    where the probability exceeds ½, i.e. where a logit exceeds 0 (scikit-learn's ``LabelBinarizer`` threshold: ½
    itself is class 0).  Ties of the argmax go to the first class, as ``numpy.argmax``.  ``outputs`` must be
    ``(n, head.units)`` (a ValueError, while tracing, if not: wider rows gave indices of no class).
    """
    outputs = _head_outputs(outputs, head)
    if head.units == 1:
        threshold = 0.0 if head.link == "sigmoid" else 0.5
        return (outputs[:, 0] > threshold).astype(jnp.int32)
    return jnp.argmax(outputs, axis=1).astype(jnp.int32)


def label_indicators(outputs, head: Head):
    """Each label's 0/1 prediction of a multilabel head's ``outputs`` (before the link): 1 where its
    probability exceeds ½, i.e. where its logit exceeds 0; ``outputs`` must be ``(n, head.units)``."""
    threshold = 0.0 if head.link == "sigmoid" else 0.5
    return (_head_outputs(outputs, head) > threshold).astype(jnp.int32)


def _head_outputs(outputs, head: Head) -> jax.Array:
    """``outputs`` as a JAX array if it is ``(n, head.units)``; else a ValueError naming both shapes."""
    outputs = jnp.asarray(outputs)
    if outputs.ndim != 2 or outputs.shape[1] != head.units:
        raise ValueError(
            f"outputs must be (n_samples, {head.units}), one column per unit of this head, got shape "
            f"{tuple(outputs.shape)}"
        )
    return outputs


def predictions(outputs, head: Head) -> jax.Array:
    """The network's outputs through the head's link: class probabilities, or regression values.  ``outputs`` must
    be ``(n, head.units)`` (a ValueError, while tracing, if not: a softmax over wider rows gave probabilities of
    classes the head does not have)."""
    return get_activation(head.link).forward(_head_outputs(outputs, head))


SCORINGS = {
    CLASSIFICATION: ("accuracy", "balanced_accuracy", "neg_log_loss"),
    REGRESSION: ("r2", "neg_mean_squared_error", "neg_mean_absolute_error"),
}  # early stopping's metrics, by scikit-learn's scorer names (higher is better)


def checked_scoring(scoring: str | None, head: Head) -> str | None:
    """``scoring`` when the compiled loop can compute it for ``head`` (None: MLP's ``score()``), else a
    ValueError listing the names it takes."""
    if scoring is None:
        return None
    names = SCORINGS[head.task]
    if head.task == CLASSIFICATION and head.multilabel:
        names = ("accuracy",)  # balanced accuracy and log-loss are defined for one label per sample
    if scoring not in names:
        raise ValueError(
            f"scoring={scoring!r} is not a metric early stopping can compute for this "
            f"{'multilabel ' if head.task == CLASSIFICATION and head.multilabel else ''}{head.task}; use None (the "
            f"estimator's score()) or one of {', '.join(map(repr, names))}"
        )
    return scoring


@dataclass(frozen=True)
class ValidationScore:
    """The early-stopping score of a head, ``score(outputs, targets_and_weight)`` (higher is better).

    Without ``scoring``, as scikit-learn's MLP scores its validation set: weighted accuracy for classification
    (for multilabel targets the share of samples with every label right; 1 for a single class, which is
    always predicted: its accuracies are 1 and its negated log-loss 0), weighted R² of the predictions (the
    outputs through the head's link) for regression.
    With ``scoring`` (one of ``SCORINGS[head.task]``, see :func:`checked_scoring`) that metric of
    :mod:`jaxnn.metrics`, losses negated: ``balanced_accuracy``, ``neg_log_loss`` (of the class
    probabilities), ``neg_mean_squared_error``, ``neg_mean_absolute_error``.

    ``targets_and_weight`` holds the encoded targets with the per-sample weight as an extra last column
    (0 on padding rows).  A frozen dataclass, so two scores of one head are equal and the compiled
    training loop, which is keyed on it, is reused.
    """

    head: Head
    scoring: str | None = None

    def __call__(self, outputs: jax.Array, targets_and_weight: jax.Array) -> jax.Array:
        targets, weight = targets_and_weight[:, :-1], targets_and_weight[:, -1]
        if self.head.task == REGRESSION:
            return self._regression(targets, predictions(outputs, self.head), weight).astype(outputs.dtype)
        if self.head.n_classes == 1:  # always predicted, with probability 1: every score at its best
            return jnp.zeros((), outputs.dtype) if self.scoring == "neg_log_loss" else jnp.ones((), outputs.dtype)
        if self.head.multilabel:
            true = (targets > 0.5).astype(jnp.int32)
            return accuracy(label_indicators(outputs, self.head), true, weight).astype(outputs.dtype)
        true = jnp.argmax(targets, axis=1) if self.head.units > 1 else (targets[:, 0] > 0.5).astype(jnp.int32)
        if self.scoring == "balanced_accuracy":
            score = balanced_accuracy(class_indices(outputs, self.head), true, self.head.n_classes, weight)
        elif self.scoring == "neg_log_loss":
            probabilities = predictions(outputs, self.head)
            if self.head.units == 1:  # one sigmoid unit: the probability of class 1
                probabilities = jnp.concatenate([1 - probabilities, probabilities], axis=1)
            score = -log_loss(probabilities, jax.nn.one_hot(true, self.head.n_classes, dtype=outputs.dtype), weight)
        else:
            score = accuracy(class_indices(outputs, self.head), true, weight)
        return score.astype(outputs.dtype)

    def _regression(self, targets, predicted, weight):
        if self.scoring == "neg_mean_squared_error":
            return -mean_squared_error(targets, predicted, weight)
        if self.scoring == "neg_mean_absolute_error":
            return -mean_absolute_error(targets, predicted, weight)
        return r2_score(targets, predicted, weight)


@dataclass(frozen=True)
class ValidationLoss:
    """The training loss on the validation rows, ``validation_loss(outputs, targets_and_weight)``: the head's
    ``loss`` of the outputs against the encoded targets, its weighted mean over the rows by the per-sample weight
    in the last column (as :class:`ValidationScore` reads them).  Frozen, so equal for one loss (the compiled
    loop is keyed on it)."""

    loss: Loss

    def __call__(self, outputs: jax.Array, targets_and_weight: jax.Array) -> jax.Array:
        return self.loss.forward(outputs, targets_and_weight[:, :-1], targets_and_weight[:, -1])
