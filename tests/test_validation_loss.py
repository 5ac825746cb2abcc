"""The validation loss beside the training loss (scikit-learn issue #18507): with early stopping the estimators keep
``validation_loss_curve_``, the core ``fit`` records ``validation_loss=`` in ``FitResult.validation_losses``, and the
value recorded for the epoch whose weights were kept equals the loss recomputed on the host from those weights."""

from __future__ import annotations

import warnings

import jax
import numpy as np
import pytest
from helpers import fitted_with_held_out
from sklearn import metrics as skm
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning

import jaxnn
from jaxnn import NeuralNetClassifier, NeuralNetRegressor
from jaxnn.train import Stopping

NET = dict(early_stopping=True, validation_fraction=0.25, n_iter_no_change=4, random_state=0, max_iter=60)


def _kept_epoch(estimator) -> int:
    """The epoch whose weights early stopping kept: the first with the best validation score."""
    return int(np.argmax(estimator.validation_scores_))


def test_a_classifiers_validation_loss_at_the_kept_epoch_is_the_log_loss_of_the_kept_weights(monkeypatch):
    X, y = make_classification(400, 6, n_informative=4, n_classes=3, random_state=1)
    estimator = NeuralNetClassifier((8,), alpha=0.0, learning_rate_init=0.02, **NET)
    chosen, X_val, targets = fitted_with_held_out(estimator, X, y, monkeypatch)
    curve = np.asarray(chosen.validation_loss_curve_)
    assert len(curve) == len(chosen.validation_scores_) == len(chosen.loss_curve_) == chosen.n_iter_
    assert np.all(np.isfinite(curve))
    y_val = chosen.classes_[np.argmax(targets, axis=1)]
    expected = skm.log_loss(y_val, chosen.predict_proba(X_val), labels=chosen.classes_)
    assert curve[_kept_epoch(chosen)] == pytest.approx(expected, rel=1e-9)
    # It is the held-out rows' loss, not the training rows': the two curves differ.
    assert not np.allclose(curve, chosen.loss_curve_)


def test_a_regressors_validation_loss_carries_the_l2_penalty_that_the_training_loss_reports(monkeypatch):
    X, y = make_regression(240, 5, noise=5.0, random_state=3)
    alpha = 0.5
    estimator = NeuralNetRegressor((6,), alpha=alpha, learning_rate_init=0.02, **NET)
    regressor, X_val, targets = fitted_with_held_out(estimator, X, y / np.std(y), monkeypatch)
    half_mse = 0.5 * np.mean((targets[:, 0] - regressor.predict(X_val)) ** 2)
    n_train = X.shape[0] - X_val.shape[0]  # 180 rows: one batch of batch_size='auto' = min(200, rows)
    penalty = 0.5 * alpha / n_train * sum(float(np.sum(np.square(w))) for w in regressor.coefs_)
    curve = regressor.validation_loss_curve_
    assert curve[_kept_epoch(regressor)] == pytest.approx(half_mse + penalty, rel=1e-9)


def test_without_early_stopping_or_with_lbfgs_there_is_no_validation_loss():
    X, y = make_classification(120, 4, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        plain = NeuralNetClassifier((4,), max_iter=5, random_state=0).fit(X, y)
        lbfgs = NeuralNetClassifier((4,), solver="lbfgs", max_iter=5, random_state=0).fit(X, y)
    assert plain.validation_loss_curve_ is None and plain.validation_scores_ is None
    assert lbfgs.validation_loss_curve_ is None


def test_warm_start_and_ensembles_keep_one_validation_loss_per_epoch():
    X, y = make_classification(200, 4, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        network = NeuralNetClassifier((4,), warm_start=True, **(NET | {"max_iter": 5, "n_iter_no_change": 50}))
        network.fit(X, y)
        first = list(network.validation_loss_curve_)
        network.fit(X, y)
        ensemble = NeuralNetClassifier((4,), n_ensemble=3, **(NET | {"max_iter": 8})).fit(X, y)
    assert len(first) == 5 and network.validation_loss_curve_[:5] == first
    assert len(network.validation_loss_curve_) == len(network.validation_scores_) == 10
    assert [len(curve) for curve in ensemble.ensemble_validation_loss_curves_] == list(ensemble.ensemble_n_iter_)
    assert not hasattr(ensemble, "validation_loss_curve_")


# --------------------------------------------------------------------------------------------------
# The core fit.

MODEL = jaxnn.Sequential((jaxnn.Dense(4, "tanh"), jaxnn.Dense(3, "softmax")))
LOSS = jaxnn.categorical_cross_entropy


def _blobs(seed: int):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, 60)
    x = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]])[labels] + rng.normal(size=(60, 2))
    return x, np.eye(3)[labels]


def _score(outputs, y_val):
    return -LOSS.forward(outputs, y_val)


def _validation_loss(outputs, y_val):
    return LOSS.forward(outputs, y_val)


def test_the_core_fit_records_the_validation_loss_and_trains_exactly_as_without_it():
    (x, y), (x_val, y_val) = _blobs(0), _blobs(1)
    params = MODEL.init(jax.random.key(0), 2)
    options = dict(loss=LOSS, epochs=40, optimizer="gd", learning_rate=0.5, l2=0.01, validation=(x_val, y_val))
    options |= dict(stopping=Stopping(0.0, 3), score=_score)
    result = jaxnn.fit(MODEL, params, x, y, validation_loss=_validation_loss, **options)
    without = jaxnn.fit(MODEL, params, x, y, **options)
    np.testing.assert_array_equal(result.history, without.history)
    np.testing.assert_array_equal(result.validation_scores, without.validation_scores)
    assert np.all(np.isnan(without.validation_losses))
    n = int(result.n_epochs)
    kept = int(np.argmax(result.validation_scores[:n]))
    penalty = 0.5 * 0.01 * sum(float(np.sum(np.square(layer["W"]))) for layer in result.params)
    recomputed = float(LOSS.forward(MODEL.apply(result.params, x_val), y_val)) + penalty
    assert result.validation_losses[kept] == pytest.approx(recomputed, rel=1e-6)
    assert np.all(np.isfinite(result.validation_losses[:n]))


def test_at_the_last_epoch_the_validation_loss_is_the_loss_of_the_last_weights():
    """Watched on the training rows themselves, full-batch descent improves every epoch: the kept weights are the
    last epoch's, and so is the recorded validation loss."""
    x, y = _blobs(0)
    params = MODEL.init(jax.random.key(1), 2)
    result = jaxnn.fit(
        MODEL, params, x, y, loss=LOSS, epochs=25, optimizer="gd", learning_rate=0.1, validation=(x, y),
        score=_score, validation_loss=_validation_loss, stopping=Stopping(0.0, np.inf),
    )  # fmt: skip
    n = int(result.n_epochs)
    assert n == 25 and int(np.argmax(result.validation_scores)) == n - 1  # the last epoch is the kept one
    last = float(LOSS.forward(MODEL.apply(result.params, x), y))
    assert result.validation_losses[n - 1] == pytest.approx(last, rel=1e-6)
    assert result.validation_losses[n - 1] == pytest.approx(-result.validation_scores[n - 1], rel=1e-6)


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"validation_loss": _validation_loss}, ValueError, r"validation_loss is computed on the validation data"),
        ({"validation_loss": "log_loss", "validation": "pair"}, TypeError, r"validation_loss must be a function"),
    ],
)
def test_a_validation_loss_without_validation_data_or_not_a_function_is_refused(options, error, match):
    (x, y), pair = _blobs(0), _blobs(1)
    if options.get("validation") == "pair":
        options = options | {"validation": pair, "score": _score, "stopping": Stopping()}
    with pytest.raises(error, match=match):
        jaxnn.fit(MODEL, MODEL.init(jax.random.key(0), 2), x, y, loss=LOSS, epochs=2, **options)
