"""Early stopping on a metric of one's choice (``scoring=``, scikit-learn issue #24411): the compiled loop's metrics
equal scikit-learn's, and the estimators stop and keep weights where a host-side recomputation says they should."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from helpers import fitted_with_held_out
from sklearn import metrics as skm
from sklearn.datasets import make_classification, make_regression

from jaxnn import NeuralNetClassifier, NeuralNetRegressor
from jaxnn import metrics as jm

RNG = np.random.default_rng(0)


def test_the_loops_metrics_equal_scikit_learns_with_sample_weights():
    n, k = 60, 4
    true, predicted = RNG.integers(0, k, n), RNG.integers(0, k, n)
    true[:5] = 3  # every class present, one of them mostly wrong
    weight = RNG.uniform(0.1, 2.0, n)
    assert float(jm.balanced_accuracy(predicted, true, k, weight)) == pytest.approx(
        skm.balanced_accuracy_score(true, predicted, sample_weight=weight), rel=1e-6
    )
    absent = true.copy()
    absent[absent == 2] = 1  # a class that never occurs is left out of the mean, as scikit-learn does
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns that y_pred has a class y_true lacks
        expected = skm.balanced_accuracy_score(absent, predicted, sample_weight=weight)
    assert float(jm.balanced_accuracy(predicted, absent, k, weight)) == pytest.approx(expected, rel=1e-6)

    probabilities = RNG.dirichlet(np.ones(k), n).astype(np.float32)  # float32: clipped at float32's epsilon
    probabilities[0] = [1.0, 0.0, 0.0, 0.0]  # a zero probability of the true class: clipped, as scikit-learn
    true[0] = 1
    assert float(jm.log_loss(probabilities, np.eye(k)[true], weight)) == pytest.approx(
        skm.log_loss(true, probabilities, sample_weight=weight, labels=range(k)), rel=1e-5
    )
    y, y_hat = RNG.normal(size=(n, 2)), RNG.normal(size=(n, 2))
    for ours, theirs in (
        (jm.mean_squared_error, skm.mean_squared_error),
        (jm.mean_absolute_error, skm.mean_absolute_error),
    ):
        assert float(ours(y, y_hat, weight)) == pytest.approx(theirs(y, y_hat, sample_weight=weight), rel=1e-6)
        assert float(ours(y[:, 0], y_hat[:, 0])) == pytest.approx(theirs(y[:, 0], y_hat[:, 0]), rel=1e-6)


def _stop_epoch(scores, tol: float, n_iter_no_change: int) -> int:
    """The epoch (1-based) where MLP's rule stops on ``scores``: the first with more than ``n_iter_no_change``
    epochs in a row that do not beat the best so far by more than ``tol``."""
    best, count = -np.inf, 0
    for epoch, score in enumerate(scores, start=1):
        count = 0 if score >= best + tol else count + 1
        best = max(best, score)
        if count > n_iter_no_change:
            return epoch
    return len(scores)


NET = dict(early_stopping=True, validation_fraction=0.25, n_iter_no_change=4, random_state=0, max_iter=80)


def _labels(estimator, targets):
    """Class labels from the encoded targets of a single-label classifier (one-hot rows, or one 0/1 column)."""
    index = np.argmax(targets, axis=1) if targets.shape[1] > 1 else (targets[:, 0] > 0.5).astype(int)
    return estimator.classes_[index]


def test_balanced_accuracy_stops_and_keeps_weights_where_a_host_side_recomputation_says(monkeypatch):
    X, y = make_classification(400, 6, n_informative=4, n_classes=3, weights=[0.75, 0.17, 0.08], random_state=1)
    X = X.astype(np.float32)
    tol = 1e-4
    estimator = NeuralNetClassifier((8,), scoring="balanced_accuracy", learning_rate_init=0.02, tol=tol, **NET)
    chosen, X_val, targets = fitted_with_held_out(estimator, X, y, monkeypatch)
    y_val = _labels(chosen, targets)
    scores = np.asarray(chosen.validation_scores_)
    assert chosen.n_iter_ == len(scores) == _stop_epoch(scores, tol, 4) < 80
    # The kept weights are the best epoch's, and the score recorded for it is their balanced accuracy.
    assert chosen.best_validation_score_ == pytest.approx(scores.max())
    expected = skm.balanced_accuracy_score(y_val, chosen.predict(X_val))
    assert chosen.best_validation_score_ == pytest.approx(expected, abs=1e-6)
    # Another metric is another run: plain accuracy watches other numbers.
    plain, X_val, targets = fitted_with_held_out(
        NeuralNetClassifier((8,), learning_rate_init=0.02, tol=tol, **NET), X, y, monkeypatch
    )
    expected = skm.accuracy_score(_labels(plain, targets), plain.predict(X_val))
    assert plain.best_validation_score_ == pytest.approx(expected, abs=1e-6)
    shared = min(len(scores), len(plain.validation_scores_))
    assert not np.allclose(plain.validation_scores_[:shared], scores[:shared])


def test_neg_log_loss_of_a_binary_classifier_and_neg_mae_of_a_regressor_are_the_kept_weights_scores(monkeypatch):
    X, y = make_classification(300, 5, random_state=2)
    estimator = NeuralNetClassifier((6,), scoring="neg_log_loss", learning_rate_init=0.02, **NET)
    binary, X_val, targets = fitted_with_held_out(estimator, X, y, monkeypatch)
    expected = -skm.log_loss(_labels(binary, targets), binary.predict_proba(X_val), labels=binary.classes_)
    assert binary.best_validation_score_ == pytest.approx(expected, rel=1e-9)

    X, y = make_regression(300, 5, noise=5.0, random_state=3)
    estimator = NeuralNetRegressor((6,), scoring="neg_mean_absolute_error", learning_rate_init=0.02, **NET)
    regressor, X_val, targets = fitted_with_held_out(estimator, X, y / np.std(y), monkeypatch)
    mae = skm.mean_absolute_error(targets[:, 0], regressor.predict(X_val))
    assert regressor.best_validation_score_ == pytest.approx(-mae, rel=1e-9)
    assert regressor.n_iter_ == _stop_epoch(np.asarray(regressor.validation_scores_), 1e-4, 4)


def test_a_scoring_the_loop_cannot_compute_is_a_value_error_that_lists_the_names():
    X, y = make_classification(60, 4, random_state=0)
    with pytest.raises(ValueError, match="scoring must be None or one of 'accuracy', 'balanced_accuracy'"):
        NeuralNetClassifier(scoring="f1", **NET).fit(X, y)
    with pytest.raises(
        ValueError, match="scoring='r2' is not a metric early stopping can compute for this classification"
    ):
        NeuralNetClassifier(scoring="r2", **NET).fit(X, y)
    with pytest.raises(ValueError, match="'neg_mean_squared_error', 'neg_mean_absolute_error'"):
        NeuralNetRegressor(scoring="balanced_accuracy", **NET).fit(X, y.astype(float))
    labels = np.stack([y, 1 - y, y], axis=1)  # multilabel: accuracy only
    with pytest.raises(ValueError, match=r"multilabel classification; use None .* or one of 'accuracy'$"):
        NeuralNetClassifier(scoring="neg_log_loss", **NET).fit(X, labels)


@pytest.mark.parametrize(("scoring", "best"), [(None, 1.0), ("balanced_accuracy", 1.0), ("neg_log_loss", 0.0)])
def test_a_single_class_scores_each_metrics_best_value(scoring, best):
    """A single class is always predicted, with probability 1: accuracy 1, and a log-loss of 0, whose negation is
    0 (it had been recorded as 1, above any negated loss's range)."""
    x, y = np.random.default_rng(0).normal(size=(60, 3)), np.full(60, 7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = NeuralNetClassifier((4,), early_stopping=True, scoring=scoring, max_iter=5, random_state=0).fit(x, y)
    assert fitted.best_validation_score_ == best
    np.testing.assert_array_equal(fitted.validation_scores_, best)
