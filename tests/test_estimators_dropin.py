"""The estimators as drop-ins for scikit-learn's MLP: multilabel targets, a single class, the Poisson and
squared-error losses, sparse input, float32/float64 agreement, scikit-learn's messages, ``partial_fit``'s
availability, and every MLP parameter and fitted attribute.

Small data and few epochs; fits that share a network shape share its compiled programs.
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import jax
import numpy as np
import pytest
import scipy.sparse
import sklearn
from scipy.special import xlogy
from sklearn.base import clone
from sklearn.datasets import make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import PoissonRegressor
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor

import jaxnn
from jaxnn import NeuralNetClassifier, NeuralNetRegressor, heads
from jaxnn.sklearn import internals, targets

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def multilabel():
    return make_multilabel_classification(n_samples=50, n_classes=4, random_state=0, return_indicator=True)


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 6))
    return x, (x[:, 0] + x[:, 1] > 0).astype(int)


def _sparse_like(x: np.ndarray) -> np.ndarray:
    """``x`` with about two thirds of its entries set to 0."""
    return np.where(np.abs(x) > 0.5, x, 0.0)


# --------------------------------------------------------------------------------------------------
# Multilabel classification.


def binary_log_loss(y, p):
    """scikit-learn's multilabel loss: the binary log-loss averaged over samples, summed over labels."""
    return -np.average(xlogy(y, p) + xlogy(1 - y, 1 - p), axis=0).sum()


def test_multilabel_targets_get_one_sigmoid_per_label_and_an_indicator_prediction(multilabel):
    x, y = multilabel
    net = NeuralNetClassifier((20,), random_state=0, max_iter=300, learning_rate_init=0.01).fit(x, y)
    assert (net.out_activation_, net.n_outputs_) == ("logistic", 4)
    np.testing.assert_array_equal(net.classes_, np.arange(4))  # LabelBinarizer's classes_ for an indicator matrix
    probabilities = net.predict_proba(x)
    assert probabilities.shape == (50, 4)
    assert not np.allclose(probabilities.sum(axis=1), 1.0)  # independent labels, no softmax
    predicted = net.predict(x)
    assert predicted.dtype.kind == "i"
    np.testing.assert_array_equal(predicted, (probabilities > 0.5).astype(int))
    assert net.score(x, y) > 0.9  # subset accuracy: every label of a sample right

    # The loss is scikit-learn's, its L2 penalty alpha/(2n)·Σ‖W‖² included: one full-batch partial_fit step
    # reports it at the weights it starts from.
    penalty = 0.5 * net.alpha * sum(np.sum(w**2) for w in net.coefs_) / len(x)
    expected = binary_log_loss(y, probabilities) + penalty
    net.partial_fit(x, y)
    assert net.loss_curve_[-1] == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="fitted for a multilabel indicator matrix of 4 labels"):
        net.partial_fit(x, y[:, 0])


def test_multilabel_partial_fit_reads_the_labels_from_y_and_early_stopping_does_not_stratify(multilabel):
    x, y = multilabel
    net = NeuralNetClassifier((20,), random_state=0, learning_rate_init=0.01, max_iter=500)
    net.partial_fit(x, y, classes=["ignored"])  # scikit-learn: classes= is required but not read for an indicator y
    np.testing.assert_array_equal(net.classes_, np.arange(4))

    stopped = NeuralNetClassifier(
        (20,), early_stopping=True, validation_fraction=0.2, random_state=3, learning_rate_init=0.01, max_iter=500
    ).fit(x, y)
    assert stopped.best_validation_score_ == max(stopped.validation_scores_)
    draws = np.random.RandomState(3)  # MLP's random state at its split: past the initial weights' draws
    draws.random_sample(x.shape[1] * 20 + 20 + 20 * y.shape[1] + y.shape[1])
    split = train_test_split(x, y, test_size=0.2, random_state=draws)  # no stratify=
    assert stopped.score(split[1], split[3]) == pytest.approx(stopped.best_validation_score_, abs=1e-12)


def test_a_multilabel_matrix_of_zero_and_another_value_trains_as_mlps_zero_and_one(multilabel):
    """MLP's LabelBinarizer reads any non-zero entry of an indicator matrix as a label present; jaxnn used to train
    the sigmoids towards the raw value (a probability of 2)."""
    x, y = multilabel
    twos = y * 2

    def fitted(estimator, targets):
        return estimator((5,), max_iter=5, random_state=0).fit(x, targets)

    ours = fitted(NeuralNetClassifier, twos)
    assert ours.loss_curve_ == pytest.approx(fitted(MLPClassifier, twos).loss_curve_, rel=1e-9)
    np.testing.assert_array_equal(ours.predict_proba(x), fitted(NeuralNetClassifier, y).predict_proba(x))


@pytest.mark.parametrize("shift", [-1, 1], ids=["minus-one-and-one", "one-and-two"])
def test_a_multilabel_matrix_without_zeros_is_refused_rather_than_trained_as_every_label_present(multilabel, shift):
    x, y = multilabel
    targets = y * 2 - 1 if shift < 0 else y + 1
    with pytest.raises(ValueError, match=r"neither of them 0: .* jaxnn: mark an absent label with 0"):
        NeuralNetClassifier((5,), max_iter=5, random_state=0).fit(x, targets)


def _prediction_kind(predicted) -> tuple:
    return type(predicted), getattr(predicted, "format", None), predicted.dtype, predicted.shape


@pytest.mark.parametrize("make_sparse", [scipy.sparse.csr_matrix, scipy.sparse.csc_array, scipy.sparse.coo_matrix])
@pytest.mark.parametrize("sparse_interface", ["spmatrix", "sparray"])
def test_a_sparse_multilabel_y_is_predicted_as_mlp_predicts_it(multilabel, make_sparse, sparse_interface):
    x, y = multilabel

    def predictions(estimator, fits):
        net = estimator(hidden_layer_sizes=(5,), max_iter=3, random_state=0)
        for fit in fits:
            fit(net)
        with sklearn.config_context(sparse_interface=sparse_interface):
            return net.predict(x), net.predict_proba(x)

    sparse_y = make_sparse(y)
    scenarios = {  # as MLP's LabelBinarizer: a fit that starts over records whether y is sparse; the others keep it
        "fit": [lambda net: net.fit(x, sparse_y)],
        "first partial_fit": [lambda net: net.partial_fit(x, sparse_y, classes=np.arange(4))],
        "then partial_fit": [lambda net: net.fit(x, sparse_y), lambda net: net.partial_fit(x, y)],
        "then warm_start": [lambda net: net.fit(x, sparse_y), lambda net: net.set_params(warm_start=True).fit(x, y)],
        "then a dense fit": [lambda net: net.fit(x, sparse_y), lambda net: net.fit(x, y)],
        "a dense fit, then warm_start": [
            lambda net: net.fit(x, y),
            lambda net: net.set_params(warm_start=True).fit(x, sparse_y),
        ],
    }
    for name, fits in scenarios.items():
        (mlp, mlp_proba), (ours, ours_proba) = predictions(MLPClassifier, fits), predictions(NeuralNetClassifier, fits)
        assert _prediction_kind(ours) == _prediction_kind(mlp), name
        assert type(ours_proba) is type(mlp_proba) is np.ndarray, name
        dense = ours.toarray() if scipy.sparse.issparse(ours) else ours
        np.testing.assert_array_equal(dense, (ours_proba > 0.5).astype(int))

    net = NeuralNetClassifier((5,), max_iter=3, random_state=0).fit(x, sparse_y)
    exported = net.to_sklearn()  # MLP's own predict returns the same sparse matrix, and an imported MLP keeps it
    assert _prediction_kind(exported.predict(x)) == _prediction_kind(net.predict(x))
    assert _prediction_kind(NeuralNetClassifier.from_sklearn(exported).predict(x)) == _prediction_kind(net.predict(x))


def test_a_categorical_loss_is_refused_for_multilabel_targets(multilabel):
    x, y = multilabel
    with pytest.raises(ValueError, match=r"is categorical .* multilabel indicator matrix"):
        NeuralNetClassifier(loss="softmax_cross_entropy", learning_rate_init=0.01, max_iter=500).fit(x, y)


def test_the_early_stopping_scores_of_the_new_heads():
    """Multilabel: the weighted share of rows with every label right; Poisson: R² of exp(outputs)."""
    multi = heads.ValidationScore(heads.multilabel_head(None, 2))
    logits = np.array([[1.0, -1.0], [1.0, 1.0], [-1.0, -1.0]], np.float32)
    targets_and_weight = np.array([[1, 0, 1], [1, 0, 2], [0, 0, 1]], np.float32)  # last column: the weights
    assert float(multi(logits, targets_and_weight)) == pytest.approx(2 / 4)
    poisson = heads.ValidationScore(heads.regression_head("poisson", 1))
    z, y = np.log(np.array([[1], [2], [4]], np.float32)), np.array([[1, 1], [2, 1], [3, 1]], np.float32)
    expected = 1 - np.sum((y[:, 0] - np.exp(z[:, 0])) ** 2) / np.sum((y[:, 0] - 2.0) ** 2)
    assert float(poisson(z, y)) == pytest.approx(expected, rel=1e-5)
    assert float(heads.ValidationScore(heads.single_class_head(None))(logits[:, :1], targets_and_weight[:, 1:])) == 1


# --------------------------------------------------------------------------------------------------
# A single class.


def test_a_single_class_is_fitted_and_always_predicted():
    x = np.random.default_rng(0).normal(size=(10, 2))
    y = np.full(10, "only")
    net = NeuralNetClassifier(
        (4,), early_stopping=True, validation_fraction=0.2, random_state=0, learning_rate_init=0.01, max_iter=500
    ).fit(x, y)
    np.testing.assert_array_equal(net.classes_, ["only"])
    np.testing.assert_array_equal(net.predict(x), y)
    np.testing.assert_array_equal(net.predict_proba(x), np.ones((10, 1)))
    assert set(net.validation_scores_) == {1.0}  # every held-out sample is predicted right
    net.set_params(early_stopping=False).partial_fit(x, y)
    np.testing.assert_array_equal(net.predict(x), y)


def test_early_stopping_stratifies_on_the_binarized_targets_as_scikit_learn():
    x, y = np.arange(8.0).reshape(4, 2), [0, 0, 0, 1]
    with pytest.raises(ValueError, match=r"Classes with too few members are: \['True'\]"):
        NeuralNetClassifier(early_stopping=True, learning_rate_init=0.01, max_iter=500).fit(x, y)


# --------------------------------------------------------------------------------------------------
# Losses by scikit-learn's names: 'squared_error' and 'poisson'.


def test_squared_error_and_poisson_are_scikit_learns_losses():
    rng = np.random.default_rng(0)
    pred, target, weight = rng.normal(size=(6, 2)), rng.normal(size=(6, 2)), rng.uniform(0.5, 2.0, 6)
    counts = rng.poisson(2.0, size=(6, 2)).astype(float)
    counts[0] = 0.0  # y = 0 counts as 0·log 0 = 0
    mean = rng.uniform(0.5, 3.0, (6, 2))
    with jax.enable_x64(True):
        squared = float(jaxnn.squared_error(pred, target, weight))
        poisson_on_log_mean = float(jaxnn.poisson(np.log(mean), counts, weight))
        poisson_on_mean = float(jaxnn.half_poisson_deviance(mean, counts, weight))
    assert squared == pytest.approx(0.5 * np.average((target - pred) ** 2, weights=weight, axis=0).mean(), rel=1e-12)
    half_deviance = np.average(xlogy(counts, counts / mean) - counts + mean, weights=weight, axis=0).sum()
    assert poisson_on_log_mean == pytest.approx(half_deviance, rel=1e-12)
    assert poisson_on_mean == pytest.approx(half_deviance, rel=1e-12)


def test_poisson_regression_without_hidden_layers_is_the_poisson_glm():
    n = 100
    rng = np.random.default_rng(0)
    x = np.linspace(0, 1, n)
    y = rng.poisson(np.exp(x + 1))
    x = x.reshape(n, 1)
    glm = PoissonRegressor(alpha=0, tol=1e-7).fit(x, y)
    net = NeuralNetRegressor((), loss="poisson", solver="gd", learning_rate_init=0.1, alpha=0.0, tol=1e-9, max_iter=500)
    net.set_params(max_iter=2000, random_state=0).fit(x, y)
    assert net.out_activation_ == "exp"
    predicted = net.predict(x)
    np.testing.assert_allclose(predicted, glm.predict(x), rtol=1e-3)
    half_deviance = np.mean(xlogy(y, y / predicted) - y + predicted)
    assert net.loss_ == pytest.approx(half_deviance, rel=1e-6)  # converged: the last step barely moved
    with pytest.raises(ValueError, match=r"loss='poisson' models counts and needs y >= 0"):
        clone(net).fit(x, y - 3.0)
    with pytest.raises(ValueError, match="not a classification loss"):
        NeuralNetClassifier(loss="poisson", learning_rate_init=0.01, max_iter=500).fit(x, y > 2)


# --------------------------------------------------------------------------------------------------
# Sparse input.


@pytest.mark.parametrize("make_sparse", [scipy.sparse.csr_matrix, scipy.sparse.csc_array, scipy.sparse.coo_matrix])
def test_sparse_input_fits_and_predicts_as_its_dense_copy(blobs, make_sparse):
    x, y = blobs
    x = _sparse_like(x)
    net = NeuralNetClassifier((5,), max_iter=20, random_state=0, learning_rate_init=0.01)
    dense = clone(net).fit(x, y)
    sparse = clone(net).fit(make_sparse(x), y)
    for a, b in zip(dense.coefs_ + dense.intercepts_, sparse.coefs_ + sparse.intercepts_, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(sparse.predict_proba(make_sparse(x)), dense.predict_proba(x))
    regressor = NeuralNetRegressor((5,), max_iter=20, random_state=0, learning_rate_init=0.01, loss="auto")
    np.testing.assert_array_equal(
        clone(regressor).fit(make_sparse(x), x[:, 0]).predict(make_sparse(x)),
        clone(regressor).fit(x, x[:, 0]).predict(x),
    )
    assert net.__sklearn_tags__().input_tags.sparse


def test_a_sparse_input_whose_dense_copy_is_too_large_is_a_clear_error(blobs, monkeypatch):
    x, y = blobs
    monkeypatch.setattr(targets, "DENSE_COPY_LIMIT_BYTES", x.size * 8 - 1)
    with pytest.raises(ValueError, match=r"would take 0\.0 GiB as the dense array .* reduce the features"):
        NeuralNetClassifier((5,), learning_rate_init=0.01, max_iter=500).fit(scipy.sparse.csr_matrix(x), y)


# --------------------------------------------------------------------------------------------------
# float32 and float64 data fit the same network.


def test_float32_and_float64_data_start_from_the_same_weights_and_batches(blobs):
    x, y = blobs
    net = NeuralNetClassifier(
        (5,), solver="sgd", batch_size=8, max_iter=5, tol=0.0, random_state=4, learning_rate_init=0.01
    )
    single = clone(net).fit(x.astype(np.float32), y)
    double = clone(net).fit(x, y)
    assert (single.coefs_[0].dtype, double.coefs_[0].dtype) == (np.float32, np.float64)
    for a, b in zip(single.coefs_ + single.intercepts_, double.coefs_ + double.intercepts_, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)  # float32 rounding only
    np.testing.assert_allclose(single.loss_curve_, double.loss_curve_, rtol=1e-5)


# --------------------------------------------------------------------------------------------------
# init='mlp' (the default): scikit-learn's initial weights, so deterministic solvers fit scikit-learn's model.

MLP_PARITY = {
    "classifier-relu": (NeuralNetClassifier, MLPClassifier, {"hidden_layer_sizes": (8,)}),
    "classifier-tanh-two-layers": (
        NeuralNetClassifier,
        MLPClassifier,
        {"hidden_layer_sizes": (6, 5), "activation": "tanh"},
    ),
    "regressor-logistic": (
        NeuralNetRegressor,
        MLPRegressor,
        {"hidden_layer_sizes": (7,), "activation": "logistic", "loss": "squared_error"},
    ),
    "regressor-three-targets": (NeuralNetRegressor, MLPRegressor, {"hidden_layer_sizes": (7,), "alpha": 0.1}, 3),
}


def _parity_data(estimator, n_targets=1):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(60, 4))
    signal = x[:, 0] - 0.7 * x[:, 1] + 0.4 * x[:, 2] * x[:, 3]
    if estimator is NeuralNetRegressor:
        others = [x[:, 1] * x[:, 2], np.tanh(x[:, 0]), np.sin(x[:, 3])][: n_targets - 1]
        return x, signal if n_targets == 1 else np.column_stack([signal, *others])
    return x, np.digitize(signal, [-0.5, 0.5])  # three classes


def _assert_same_weights(fitted, expected, *, rtol, atol):
    """A jaxnn estimator's fitted weights and biases equal a fitted MLP's, layer by layer."""
    for got, want in zip(fitted.coefs_ + fitted.intercepts_, expected.coefs_ + expected.intercepts_, strict=True):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


@pytest.mark.parametrize("case", sorted(MLP_PARITY))
@pytest.mark.parametrize("seed", [0, 11])
def test_lbfgs_from_the_same_random_state_fits_scikit_learns_model(case, seed):
    """L-BFGS is deterministic: from MLP's initial weights jaxnn's L-BFGS-B (scipy's, step for step) takes
    the same iterations, so the fitted weights are MLP's up to float64 rounding."""
    ours, theirs, settings, *n_targets = MLP_PARITY[case]
    x, y = _parity_data(ours, *n_targets)
    common = dict(solver="lbfgs", max_iter=25, random_state=seed, **settings)
    fitted, expected = ours(**common).fit(x, y), theirs(**common).fit(x, y)
    assert fitted.n_iter_ == expected.n_iter_
    _assert_same_weights(fitted, expected, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(fitted.loss_, expected.loss_, rtol=1e-9)


def test_full_batch_sgd_from_the_same_random_state_fits_scikit_learns_model():
    """A full batch has no order to shuffle: sgd with momentum, Nesterov and the invscaling schedule takes
    MLP's steps from MLP's initial weights."""
    x, y = _parity_data(NeuralNetClassifier)
    common = dict(
        hidden_layer_sizes=(8,), solver="sgd", batch_size=len(x), learning_rate="invscaling", learning_rate_init=0.2,
        max_iter=30, tol=0.0, n_iter_no_change=np.inf, random_state=3,
    )  # fmt: skip
    fitted, expected = NeuralNetClassifier(**common).fit(x, y), MLPClassifier(**common).fit(x, y)
    _assert_same_weights(fitted, expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fitted.loss_curve_, expected.loss_curve_, rtol=1e-9)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_several_regression_targets_take_scikit_learns_steps_and_stop_where_it_stops(solver):
    """MLPRegressor reports half the mean squared error over every target but steps on the gradient of the sum over
    targets; jaxnn stepped on the mean's, 1/k of MLP's data gradient beside the same L2 gradient: sgd learned k times
    more slowly (R² 0.06 against MLP's 0.65 after 150 epochs on 4 targets) and alpha weighed k times more."""
    x, y = _parity_data(NeuralNetRegressor, n_targets=3)
    common = dict(
        hidden_layer_sizes=(8,), solver=solver, batch_size=len(x), learning_rate_init=0.05, alpha=0.5, max_iter=400,
        tol=1e-3, random_state=3,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted, expected = NeuralNetRegressor(**common).fit(x, y), MLPRegressor(**common).fit(x, y)
    assert expected.n_iter_ < 400  # the stopping rule (tol on the reported loss) ended both fits, at the same epoch
    assert fitted.n_iter_ == expected.n_iter_
    _assert_same_weights(fitted, expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fitted.loss_curve_, expected.loss_curve_, rtol=1e-9)
    assert fitted.score(x, y) == pytest.approx(expected.score(x, y), rel=1e-9)


def test_the_regressors_squared_error_by_name_is_mlps_and_the_loss_object_is_jaxnns():
    """'squared_error' and 'auto' train with MLP's pair (the gradient of the sum over targets); the Loss object
    jaxnn.squared_error, passed as such, with its own (the gradient of the mean it reports): on 3 targets, plain
    full-batch descent without a penalty from the same initial weights, it takes MLP's step at 3 times the rate."""
    x, y = _parity_data(NeuralNetRegressor, n_targets=3)
    common = dict(hidden_layer_sizes=(4,), solver="sgd", momentum=0.0, batch_size=len(x), alpha=0.0, max_iter=1)
    fitted = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for loss, rate in (
            ("squared_error", 0.01),
            ("auto", 0.01),
            (jaxnn.squared_error, 0.01),
            (jaxnn.squared_error, 0.03),
        ):
            net = NeuralNetRegressor(**common, loss=loss, learning_rate_init=rate, random_state=0).fit(x, y)
            fitted[str(loss), rate] = net
    by_name = fitted["squared_error", 0.01]
    _assert_same_weights(fitted["auto", 0.01], by_name, rtol=1e-12, atol=0)
    _assert_same_weights(fitted["Loss(squared_error)", 0.03], by_name, rtol=1e-6, atol=1e-7)
    moved = np.max(np.abs(fitted["Loss(squared_error)", 0.01].coefs_[1] - by_name.coefs_[1]))
    assert moved > 1e-4  # at the same rate the Loss object steps a third as far
    assert by_name.loss_curve_ == fitted["Loss(squared_error)", 0.01].loss_curve_  # one value reported, the first


@pytest.mark.parametrize("epsilon", [1e-8, 1e-3])
def test_full_batch_adam_from_the_same_random_state_fits_scikit_learns_model(epsilon):
    """MLP adds Adam's ε to √v before the bias correction (optax after it): with optax's placement the weights whose
    gradients are small moved up to 1.4e-2 away from MLP's in 30 epochs at the default ε."""
    x, y = _parity_data(NeuralNetClassifier)
    x = x * np.array([1.0, 1e-3, 1e-4, 1.0])  # columns with tiny gradients, where the two placements differ most
    common = dict(
        hidden_layer_sizes=(8,), solver="adam", batch_size=len(x), learning_rate_init=0.05, epsilon=epsilon,
        max_iter=30, tol=0.0, n_iter_no_change=np.inf, random_state=3,
    )  # fmt: skip
    fitted, expected = NeuralNetClassifier(**common).fit(x, y), MLPClassifier(**common).fit(x, y)
    _assert_same_weights(fitted, expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fitted.loss_curve_, expected.loss_curve_, rtol=1e-9)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_on_unscaled_data_lbfgs_and_adam_fit_scikit_learns_model(n_classes):
    """Unscaled inputs give some samples probabilities that round to 0: MLP's reported log-loss clips them to
    [ε, 1 − ε] (at most 36 per sample) while its gradient stays p − y.  With the fused loss's unclipped value,
    L-BFGS's line search and adam's stopping rule read another number: lbfgs left MLP's path within 5 iterations
    (training accuracy 0.29 against 0.76 on raw breast_cancer) and adam stopped at epoch 43 where MLP stops at 12."""
    x, y = _parity_data(NeuralNetClassifier)
    x, y = 100 * x, y if n_classes == 3 else (y > 0).astype(int)
    for settings in ({"solver": "lbfgs", "max_iter": 20}, {"solver": "adam", "batch_size": len(x), "max_iter": 60}):
        common = dict(hidden_layer_sizes=(8,), random_state=0, **settings)
        fitted, expected = NeuralNetClassifier(**common).fit(x, y), MLPClassifier(**common).fit(x, y)
        if settings["solver"] == "adam":
            assert expected.loss_curve_[0] > 5  # saturated: the unclipped loss is larger
        assert fitted.n_iter_ == expected.n_iter_
        _assert_same_weights(fitted, expected, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(fitted.loss_, expected.loss_, rtol=1e-9)


@pytest.mark.parametrize("fit_more", ["warm_start", "partial_fit"])
def test_a_new_activation_continues_from_the_weights_as_in_scikit_learn(fit_more):
    """MLP's warm_start and partial_fit continue with a changed activation (the weights fit any); it was refused."""
    x, y = _parity_data(NeuralNetClassifier)
    common = dict(hidden_layer_sizes=(8,), solver="sgd", batch_size=len(x), max_iter=5, tol=0.0, random_state=3)
    fitted, expected = NeuralNetClassifier(**common).fit(x, y), MLPClassifier(**common).fit(x, y)
    for estimator in (fitted, expected):
        estimator.set_params(activation="tanh", warm_start=True)
        estimator.fit(x, y) if fit_more == "warm_start" else estimator.partial_fit(x, y)
    assert fitted.n_iter_ == expected.n_iter_
    _assert_same_weights(fitted, expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fitted.predict_proba(x), expected.predict_proba(x), rtol=1e-9)


@pytest.mark.parametrize("first_fit", [3, 6, 9])
def test_a_warm_start_fit_continues_mlps_stopping_count(first_fit):
    """MLP's warm_start keeps best_loss_ and the count of epochs without improvement: the second fit stops
    where MLP's does (full batch, so the same steps; the first fit ends mid-count, on the count, or later)."""
    x, y = _parity_data(NeuralNetClassifier)
    common = dict(
        hidden_layer_sizes=(8,), solver="sgd", batch_size=len(x), learning_rate_init=0.05, max_iter=first_fit,
        tol=0.02, n_iter_no_change=4, warm_start=True, random_state=3,
    )  # fmt: skip
    ours, theirs = NeuralNetClassifier(**common).fit(x, y), MLPClassifier(**common).fit(x, y)
    ours.set_params(max_iter=20).fit(x, y)
    theirs.set_params(max_iter=20).fit(x, y)
    assert ours.n_iter_ == theirs.n_iter_ < 20
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)


@pytest.mark.parametrize("early_stopping", [False, True])
def test_warm_start_fits_past_the_stopping_count_keep_counting_as_mlp(early_stopping):
    """A fit that stopped on the rule leaves MLP's count past n_iter_no_change; each warm_start fit that improves
    on nothing adds its epochs to it (the loop enters the count capped, which stops it the same)."""
    x, y = _parity_data(NeuralNetClassifier)
    common = dict(
        hidden_layer_sizes=(8,), solver="sgd", batch_size="auto", shuffle=False, learning_rate_init=0.05, tol=10.0,
        n_iter_no_change=2, early_stopping=early_stopping, warm_start=True, random_state=3,
    )  # fmt: skip
    ours, theirs = NeuralNetClassifier(**common), MLPClassifier(**common)
    for _ in range(3):
        ours.fit(x, y), theirs.fit(x, y)
        assert ours.n_iter_ == theirs.n_iter_
        assert getattr(ours, internals.NO_IMPROVEMENT_COUNT) == getattr(theirs, internals.NO_IMPROVEMENT_COUNT)
    assert getattr(ours, internals.NO_IMPROVEMENT_COUNT) == 5


def test_a_warm_start_fit_after_an_early_stop_trains_one_more_epoch_and_stops_unless_it_improves():
    x, y = _parity_data(NeuralNetClassifier)
    net = NeuralNetClassifier(
        (8,), solver="sgd", learning_rate_init=0.05, tol=0.02, n_iter_no_change=2, early_stopping=True,
        warm_start=True, random_state=3, max_iter=500,
    ).fit(x, y)  # fmt: skip
    assert net.n_iter_ < net.max_iter  # stopped on the rule
    best_before, seen = net.best_validation_score_, len(net.validation_scores_)
    net.fit(x, y)
    new_scores = net.validation_scores_[seen:]
    assert len(new_scores) == net.n_iter_ >= 1
    if new_scores[0] < best_before + net.tol:  # no improvement: the count was already past n_iter_no_change
        assert net.n_iter_ == 1


def test_jaxnns_own_initialisers_remain_available():
    x, y = _parity_data(NeuralNetClassifier)
    nets = {
        init: NeuralNetClassifier((8,), init=init, max_iter=1, random_state=0, learning_rate_init=0.01).fit(x, y)
        for init in ("mlp", "he")
    }
    assert not np.allclose(nets["mlp"].coefs_[0], nets["he"].coefs_[0])
    with pytest.raises(ValueError, match="init must be one of 'mlp', 'normal'"):
        NeuralNetClassifier(init="xavier", learning_rate_init=0.01, max_iter=500).fit(x, y)


# --------------------------------------------------------------------------------------------------
# scikit-learn's messages, with jaxnn's advice after them.


def test_scikit_learns_messages_come_first():
    x = np.random.default_rng(0).normal(size=(12, 2))
    with pytest.raises(ValueError, match=r"^The validation set is too small\..*early_stopping needs at least 2"):
        NeuralNetRegressor(
            early_stopping=True, validation_fraction=0.05, learning_rate_init=0.01, max_iter=500, loss="auto"
        ).fit(x, x[:, 0])
    weight = np.ones(12)
    weight[[9, 1]] = 0.0  # the two rows a 0.15 split holds out with random_state=0: MLP's scorer refuses them too
    same = {"early_stopping": True, "validation_fraction": 0.15, "random_state": 0, "max_iter": 5}
    with pytest.raises(ValueError, match=r"^Sample weights must contain at least one non-zero number\.$"):
        MLPRegressor(**same).fit(x, x[:, 0], sample_weight=weight)
    with pytest.raises(ValueError, match=r"^Sample weights must contain at least one non-zero number\. jaxnn: every"):
        NeuralNetRegressor(**same).fit(x, x[:, 0], sample_weight=weight)
    y = np.arange(12) % 3
    net = NeuralNetClassifier((3,), warm_start=True, max_iter=2, random_state=0, learning_rate_init=0.01).fit(x, y)
    with pytest.raises(ValueError, match=r"same classes as in the previous call to fit\. Previously got \[0 1 2\], "):
        net.fit(x, y % 2)


def test_partial_fit_with_unknown_labels_says_how_to_change_the_classes():
    """MLP's message, then the ways to other classes: partial_fit cannot be told to start over (warm_start is
    fit's; it said "refit with warm_start=False"), so fit from scratch, or a new estimator's partial_fit."""
    x = np.random.default_rng(0).normal(size=(12, 2))
    net = NeuralNetClassifier((3,), max_iter=2).partial_fit(x, np.arange(12) % 2, classes=[0, 1])
    with pytest.raises(
        ValueError,
        match=r"^`y` has classes not in `self\.classes_`.* jaxnn: y has labels \[2\] .*"
        r"fit with warm_start=False\), or start a new estimator",
    ):
        net.partial_fit(x, np.arange(12) % 3)


@pytest.mark.parametrize(
    ("fit", "message"),
    [
        (  # a stratified split that cannot be made: scikit-learn speaks of groups, MLP says no more
            lambda x, y: NeuralNetClassifier(early_stopping=True).fit(x, np.r_[np.zeros(11, int), 1]),
            r"^The least populated classes in y have only 1 member.* jaxnn: early_stopping=True holds out a stratified "
            r"validation_fraction=0\.1 of the 12 samples .*at least 2 samples\. Give more samples of each class, "
            r"or set early_stopping=False$",
        ),
        (
            lambda x, y: NeuralNetRegressor(early_stopping=True, validation_fraction=0.99).fit(x, y),
            r"^With n_samples=12, test_size=0\.99 .* jaxnn: early_stopping=True holds out validation_fraction=0\.99",
        ),
        (
            lambda x, y: NeuralNetRegressor().fit(x, y, sample_weight=np.where(y > 0, -1.0, 1.0)),
            r"^Negative values in data passed to `sample_weight`\. jaxnn: sample_weight must be >= 0",
        ),
        (
            lambda x, y: NeuralNetClassifier().fit(np.where(x > 0, "a", "b"), y > 0),
            r"^could not convert string to float.* jaxnn: X must hold numbers: encode text "
            r"or categorical columns first, e.g\. with sklearn\.preprocessing\.OneHotEncoder",
        ),
        (
            lambda x, y: NeuralNetRegressor(max_iter=2).fit(x, y).predict(np.where(x > 0, "a", "b")),
            r"^dtype='numeric' is not compatible with arrays of bytes/strings.* jaxnn: X must hold numbers",  # MLP's
        ),
        (  # scikit-learn's message is the same for X and y: the advice says which holds the text
            lambda x, y: NeuralNetRegressor().fit(x, np.where(y > 0, "a", "b").astype(object)),
            r"^could not convert string to float: '[ab]'\. jaxnn: a regressor's y must hold numbers; for class labels",
        ),
        (
            lambda x, y: NeuralNetRegressor().fit(x, pytest.importorskip("pandas").Series(np.where(y > 0, "a", "b"))),
            r"^could not convert string to float: '[ab]'\. jaxnn: a regressor's y must hold numbers; for class labels",
        ),
        (  # both hold text: X, checked first, is named
            lambda x, y: NeuralNetRegressor().fit(np.where(x > 0, "a", "b"), np.where(y > 0, "a", "b").astype(object)),
            r"^could not convert string to float.* jaxnn: X must hold numbers",
        ),
        (  # numbers as text: fit converts them (MLP's fit too), predict refuses them as MLP's predict does
            lambda x, y: NeuralNetRegressor(max_iter=2).fit(x, y).predict(x.astype(str).tolist()),
            r"^dtype='numeric' is not compatible with arrays of bytes/strings.* jaxnn: X must hold numbers",
        ),
        (  # MLPRegressor fails in its solver (LinAlgError, a ValueError); jaxnn says what to do
            lambda x, y: NeuralNetRegressor().fit(x, scipy.sparse.csr_matrix(x)),
            r"^y is a scipy\.sparse matrix of shape \(12, 2\); a regressor's targets must be dense: "
            r"pass y\.toarray\(\)",
        ),
        (
            lambda x, y: NeuralNetClassifier().partial_fit(x, y > 0, classes="ab"),
            r"^Expected array-like \(array or non-string sequence\), got 'ab'\. jaxnn: classes= must list every label",
        ),
        (  # said "must hold class labels, all integers or all strings; got labels of type int"
            lambda x, y: NeuralNetClassifier().partial_fit(x, np.arange(12) % 3, classes=[[0, 1, 2]]),
            r"^Unknown label type: .* jaxnn: classes must be a flat list of labels \(e\.g\. \[0, 1, 2\]\), got 2 dim",
        ),
        (
            lambda x, y: NeuralNetClassifier().partial_fit(x, y > 0, classes=1),
            r"^Expected array-like .*, got 1\. jaxnn: classes= must list every label",
        ),
        (  # said "must hold class labels, all integers or all strings; got labels of type int": they are integers
            lambda x, y: NeuralNetClassifier().fit(x, (np.arange(12) % 3).astype(object)),
            r"(?s)^Unknown label type: .* jaxnn: y holds int labels in an array of dtype object, .*"
            r"np\.asarray\(y, dtype='int'\)$",
        ),
        (  # a pandas column of object dtype, as a mixed-origin DataFrame gives
            lambda x, y: NeuralNetClassifier().fit(
                x, pytest.importorskip("pandas").Series([0.0, 1.0] * 6, dtype=object)
            ),
            r"(?s)^Unknown label type: .* jaxnn: y holds float labels in an array of dtype object, .*"
            r"np\.asarray\(y, dtype='float'\)$",
        ),
        (
            lambda x, y: NeuralNetClassifier().partial_fit(x, np.arange(12) % 3, classes=np.array([0, 1, 2], object)),
            r"(?s)^Unknown label type: .* jaxnn: classes holds int labels in an array of dtype object, .*"
            r"np\.asarray\(classes, dtype='int'\)$",
        ),
    ],
    ids=[
        "stratified-split",
        "empty-training-split",
        "negative-sample-weight",
        "text-X",
        "text-X-at-predict",
        "text-y-object-array",
        "text-y-pandas-series",
        "text-X-and-y",
        "text-numbers-X-at-predict",
        "sparse-y-of-columns",
        "partial-fit-classes-text",
        "partial-fit-classes-nested",
        "partial-fit-classes-number",
        "integers-as-objects",
        "pandas-floats-as-objects",
        "partial-fit-classes-integers-as-objects",
    ],
)
def test_scikit_learns_messages_gain_what_to_do(fit, message):
    x = np.random.default_rng(0).normal(size=(12, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with pytest.raises(ValueError, match=message):
            fit(x, x[:, 0])


@pytest.mark.parametrize("unit", ["datetime64[s]", "timedelta64[s]"])
def test_a_regressor_refuses_dates_as_y_with_mlps_type_rather_than_fitting_their_ticks(unit):
    """MLPRegressor's loss cannot subtract dates from its predictions (a TypeError); jaxnn used to fit the raw
    seconds since 1970 as numbers."""
    x = np.random.default_rng(0).normal(size=(12, 2))
    dates = np.arange(12).astype(unit)
    with pytest.raises(TypeError):
        MLPRegressor(max_iter=2).fit(x, dates)
    expected = rf"^y has dtype {unit.split('[')[0]}.* jaxnn: a regressor's y must hold numbers"
    with pytest.raises(TypeError, match=expected):
        NeuralNetRegressor(max_iter=2).fit(x, dates)


@pytest.mark.parametrize(
    ("y", "kind"),
    [
        (np.array([None, *range(1, 12)], dtype=object), "NaN"),
        (np.array(["1.5", "nan", *["2"] * 10]), "NaN"),
        (np.array([[None, 1.0]] + [[1.0, 2.0]] * 11, dtype=object), "NaN"),  # two target columns
        (np.array(["1.5", "inf", *["2"] * 10]), "infinity"),
    ],
    ids=["none", "text-nan", "none-in-a-column", "text-inf"],
)
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_a_missing_target_is_refused_before_training(y, kind, method):
    """scikit-learn checks a numeric y before it converts one of objects or text, so a None or 'nan' became NaN
    after the check: the fit ran an epoch and failed with a divergence's advice (lower the learning rate, scale
    the data).  It is now refused first, in what the user passed."""
    x = np.random.default_rng(0).normal(size=(12, 2))
    estimator = NeuralNetRegressor(max_iter=2)
    with pytest.raises(ValueError, match=rf"^Input y contains {kind}\. jaxnn: .* among the targets became it"):
        getattr(estimator, method)(x, y)
    assert not hasattr(estimator, "coefs_")


@pytest.mark.parametrize("unit", ["datetime64[s]", "timedelta64[s]"])
@pytest.mark.parametrize("estimator", [NeuralNetClassifier, NeuralNetRegressor])
def test_dates_as_x_are_refused_at_fit_rather_than_trained_on_as_ticks(estimator, unit):
    """scikit-learn's check casts a NumPy X of dates to their raw ticks, which MLP cannot multiply by its weights
    (its TypeError); jaxnn used to train on the ticks and fail only at predict, with NumPy's promotion error."""
    dates = np.arange(24).reshape(12, 2).astype(unit)
    y = np.arange(12) % 2
    with pytest.raises(TypeError, match=rf"^X has dtype {unit.split('[')[0]}.* jaxnn: X must hold numbers"):
        estimator(max_iter=2).fit(dates, y)


@pytest.mark.parametrize("unit", ["datetime64[s]", "timedelta64[s]"])
def test_dates_as_x_at_predict_are_mlps_type_error_with_what_to_do(unit):
    x = np.random.default_rng(0).normal(size=(12, 2))
    y = np.arange(12) % 2
    dates = np.arange(24).reshape(12, 2).astype(unit)
    with pytest.raises(TypeError):
        MLPClassifier(max_iter=2).fit(x, y).predict(dates)
    fitted = NeuralNetClassifier(max_iter=2).fit(x, y)
    with pytest.raises(TypeError, match=r"jaxnn: X must hold numbers"):
        fitted.predict(dates)


@pytest.mark.parametrize("kind", ["dates", "durations", "dates with a time zone"])
def test_dataframe_columns_of_dates_are_named_at_fit_and_predict(kind):
    """A DataFrame with a column of dates failed in scikit-learn's check with NumPy's DTypePromotionError (a
    TypeError; MLP's too), naming neither the column nor what to do; a NumPy X of dates already got both."""
    pd = pytest.importorskip("pandas")
    x = np.random.default_rng(0).normal(size=(12, 2))
    stamps = pd.Series(pd.date_range("2020-01-01", periods=12, tz="UTC" if "zone" in kind else None))
    column = stamps - stamps.min() if kind == "durations" else stamps
    frame = pd.DataFrame({"a": x[:, 0], "when": column})
    y = np.arange(12) % 2
    with pytest.raises(TypeError):
        MLPClassifier(max_iter=2).fit(frame, y)
    message = r"^X has columns of dates or durations \('when'\).* jaxnn: X must hold numbers"
    with pytest.raises(TypeError, match=message):
        NeuralNetClassifier(max_iter=2).fit(frame, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted = NeuralNetClassifier(max_iter=2).fit(pd.DataFrame({"a": x[:, 0], "when": x[:, 1]}), y)
    with pytest.raises(TypeError, match=message):
        fitted.predict(frame)


def test_divergence_message_is_scikit_learns_then_jaxnns():
    x = np.random.default_rng(0).normal(size=(12, 2)) * 1e3
    with pytest.raises(ValueError, match=r"^Solver produced non-finite parameter weights\. .* training diverged"):
        NeuralNetRegressor((3,), solver="gd", learning_rate_init=1e30, random_state=0, max_iter=500, loss="auto").fit(
            x, x[:, 0]
        )


# --------------------------------------------------------------------------------------------------
# partial_fit's availability, parameters and fitted attributes.


@pytest.mark.parametrize("estimator", [NeuralNetClassifier, NeuralNetRegressor])
def test_partial_fit_is_absent_for_lbfgs_as_in_scikit_learn(estimator):
    assert not hasattr(estimator(solver="lbfgs"), "partial_fit")
    with pytest.raises(AttributeError) as error:
        estimator(solver="lbfgs").partial_fit  # noqa: B018 - the access is what is tested
    reason = str(error.value.__cause__)  # available_if chains the check's own error
    assert "partial_fit is only available for stochastic optimizers. lbfgs is not stochastic" in reason
    for solver in ("adam", "sgd", "gd"):
        assert hasattr(estimator(solver=solver), "partial_fit")


@pytest.mark.parametrize(("ours", "theirs"), [(NeuralNetClassifier, MLPClassifier), (NeuralNetRegressor, MLPRegressor)])
def test_every_mlp_parameter_and_fitted_attribute_is_there(ours, theirs):
    assert set(theirs().get_params()) <= set(ours().get_params())
    x = np.random.default_rng(0).normal(size=(20, 3))
    y = np.arange(20) % 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp = theirs(hidden_layer_sizes=(3,), max_iter=2).fit(x, y)
        net = ours((3,), max_iter=2).fit(x, y)
    public = {name for name in vars(mlp) if name.endswith("_") and not name.startswith("_")}
    assert public <= set(vars(net)), sorted(public - set(vars(net)))
    for name in ("out_activation_", "n_outputs_", "n_layers_", "n_iter_", "t_", "n_features_in_"):
        assert getattr(net, name) == getattr(mlp, name), name
    assert (net.validation_scores_, net.best_validation_score_) == (None, None)


def test_divergence_with_early_stopping_keeps_the_best_epoch():
    # scikit-learn's test_mlp_diverging_loss: lr 1 on raw iris diverges after some epochs
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    settings = dict(hidden_layer_sizes=100, activation="identity", solver="sgd", learning_rate_init=1.0, max_iter=20)
    with pytest.warns(ConvergenceWarning, match="diverged in epoch"):
        net = NeuralNetRegressor(early_stopping=True, random_state=0, **settings).fit(X, y)
    assert net.n_iter_ >= 1 and all(np.isfinite(w).all() for w in net.coefs_)
    assert net.best_validation_score_ == max(net.validation_scores_)
    with pytest.raises(ValueError, match="Solver produced non-finite parameter weights"):
        NeuralNetRegressor(early_stopping=False, random_state=0, **settings).fit(X, y)


def test_partial_fit_after_an_lbfgs_fit_starts_a_fresh_optimiser():
    # MLP's rule: lbfgs keeps no step-taking optimiser, so a later partial_fit with another solver makes one
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        net = NeuralNetClassifier((5,), solver="lbfgs", random_state=0, max_iter=20, learning_rate_init=0.01).fit(X, y)
    before = [w.copy() for w in net.coefs_]
    net.set_params(solver="adam").partial_fit(X, y)
    assert net.n_iter_ == 1 and len(net.loss_curve_) == 21
    assert any(not np.array_equal(a, b) for a, b in zip(before, net.coefs_, strict=True))


@pytest.mark.parametrize(
    ("change", "continued"),
    [
        ({"momentum": 0.0}, False),  # sgd without momentum keeps no velocity
        ({"learning_rate": "invscaling"}, False),  # a schedule's values join the state
        ({"solver": "adam"}, False),
        ({"momentum": 0.5}, True),  # the same velocity, decayed by the new momentum
    ],
)
def test_partial_fit_after_set_params_of_the_optimiser_trains_with_the_new_settings(change, continued):
    """A state the new settings cannot continue (it failed with optax's AttributeError) starts afresh: the step is
    then a one-epoch warm_start fit's, which makes a new optimiser; one they can continue is carried on."""
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    nets = [
        NeuralNetClassifier((3,), solver="sgd", shuffle=False, random_state=0).partial_fit(X, y, classes=[0, 1, 2])
        for _ in range(2)
    ]
    nets[0].set_params(**change).partial_fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        nets[1].set_params(**change, warm_start=True, max_iter=1).fit(X, y)
    same = all(np.array_equal(a, b) for a, b in zip(nets[0].coefs_, nets[1].coefs_, strict=True))
    assert len(nets[0].loss_curve_) == 2 and same != continued


# --------------------------------------------------------------------------------------------------
# The early-stopping split: stratified as MLP's (only for a single-output target).


def _held_out_rows(monkeypatch, module, estimator, x, y, random_state=None):
    """The rows ``estimator.fit`` holds out for early stopping (sorted), read from ``train_test_split`` in
    ``module``: with the estimator's own random state, or with ``random_state`` (an int: a fresh state each call)
    in its place, so that the splits' other choices compare row for row whatever state each library takes."""
    real, held = module.train_test_split, []

    def recording(*arrays, **options):
        if random_state is not None:
            options["random_state"] = random_state
        parts = real(np.arange(len(arrays[0])), *arrays, **options)
        held.append(np.sort(parts[1]))
        return parts[2:]

    monkeypatch.setattr(module, "train_test_split", recording)
    estimator.fit(x, y)
    monkeypatch.undo()
    (rows,) = held
    return rows


@pytest.mark.parametrize(
    "labels",
    [
        np.array([0] * 12 + [1] * 8),  # binary: stratified
        np.array([0] * 10 + [1] * 9 + [2]),  # multiclass with a class of one sample: MLP does not stratify
        np.array(["a"] * 7 + ["b"] * 7 + ["c"] * 6),
    ],
)
def test_the_early_stopping_split_holds_out_mlps_rows(monkeypatch, labels):
    from sklearn.neural_network import _multilayer_perceptron

    from jaxnn.sklearn import training

    x = np.random.default_rng(1).normal(size=(len(labels), 3))
    options = dict(early_stopping=True, validation_fraction=0.25, max_iter=3, random_state=0)
    mlp = _held_out_rows(monkeypatch, _multilayer_perceptron, MLPClassifier((4,), **options), x, labels, 7)
    ours = _held_out_rows(monkeypatch, training, NeuralNetClassifier((4,), **options), x, labels, 7)
    np.testing.assert_array_equal(ours, mlp)


@pytest.mark.parametrize(
    ("ours", "theirs", "labels"),
    [
        (NeuralNetClassifier, MLPClassifier, np.array([0] * 30 + [1] * 20)),  # binary: stratified
        (NeuralNetClassifier, MLPClassifier, np.array([0] * 20 + [1] * 17 + [2] * 13)),
        (NeuralNetRegressor, MLPRegressor, np.linspace(-1.0, 1.0, 50)),
    ],
)
@pytest.mark.parametrize("hidden", [(4,), (7, 3)])
def test_an_int_random_state_holds_out_mlps_very_rows(monkeypatch, ours, theirs, labels, hidden):
    """MLP splits with the random state that drew its initial weights (or a fresh one when warm_start continues
    a fit, which draws none): the same int random_state holds out the same rows, in the first fit and the next."""
    from sklearn.neural_network import _multilayer_perceptron

    from jaxnn.sklearn import training

    x = np.random.default_rng(3).normal(size=(len(labels), 5))
    options = dict(early_stopping=True, validation_fraction=0.2, max_iter=2, random_state=11, warm_start=True)
    mlp, net = theirs(hidden_layer_sizes=hidden, **options), ours(hidden_layer_sizes=hidden, **options)
    held_by_fit = []
    for _ in range(2):  # a fresh fit, then a warm_start fit that continues it
        theirs_held = _held_out_rows(monkeypatch, _multilayer_perceptron, mlp, x, labels)
        ours_held = _held_out_rows(monkeypatch, training, net, x, labels)
        np.testing.assert_array_equal(ours_held, theirs_held)
        held_by_fit.append(theirs_held)
    assert not np.array_equal(held_by_fit[0], held_by_fit[1])  # the two random states differ
    # jaxnn's own initialisers draw with jax.random, yet a fresh fit's split is MLP's
    glorot = ours(hidden_layer_sizes=hidden, **options, init="glorot")
    np.testing.assert_array_equal(_held_out_rows(monkeypatch, training, glorot, x, labels), held_by_fit[0])


def test_a_multiclass_problem_with_a_class_of_one_sample_trains_with_early_stopping():
    x = np.random.default_rng(2).normal(size=(30, 3))
    y = np.array([0] * 15 + [1] * 14 + [2])
    net = NeuralNetClassifier((4,), early_stopping=True, max_iter=5, random_state=0, learning_rate_init=0.01).fit(x, y)
    MLPClassifier((4,), early_stopping=True, max_iter=5, random_state=0).fit(x, y)  # trains too
    assert len(net.validation_scores_) == net.n_iter_


# --------------------------------------------------------------------------------------------------
# L-BFGS limits of 2**31 and more: no limit, as scikit-learn (which takes any positive integer).


@pytest.mark.parametrize("limits", [{"max_fun": 2**31}, {"max_iter": 2**31}, {"max_iter": 2**63, "max_fun": 2**40}])
@pytest.mark.parametrize("estimator", [NeuralNetClassifier, NeuralNetRegressor])
def test_huge_lbfgs_limits_mean_no_limit(blobs, limits, estimator):
    x, y = blobs
    plain = estimator((4,), solver="lbfgs", random_state=0).fit(x, y)
    huge = estimator((4,), solver="lbfgs", random_state=0, **limits).fit(x, y)
    assert huge.n_iter_ == plain.n_iter_
    for a, b in zip(huge.coefs_, plain.coefs_, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("fitted", "given"),
    [
        (np.float64, np.float32),  # MLP's float64 weights promote float32 input: float64 out, no precision lost
        (np.float32, np.int8),
        (np.float32, np.uint8),
        (np.float32, np.bool_),
        (np.float32, np.float16),
        (np.float32, np.int64),
        (np.float32, np.float64),
        (np.float64, np.int8),
    ],
)
def test_predict_has_the_dtype_of_mlps_forward_pass(blobs, fitted, given):
    """MLP's forward pass multiplies the checked input by its weights, so its outputs have NumPy's promotion of
    the two dtypes; jaxnn's are the same, and equal to the outputs of the input in that dtype."""
    x, y = blobs
    data = (x * 3).astype(given)
    for make, reads in [(NeuralNetClassifier, "predict_proba"), (NeuralNetRegressor, "predict")]:
        ours = make((4,), max_iter=3, random_state=0).fit(x.astype(fitted), y)
        got, mlps = getattr(ours, reads)(data), getattr(ours.to_sklearn(), reads)(data)  # MLP with our weights
        assert got.dtype == mlps.dtype == np.promote_types(given, fitted)
        np.testing.assert_allclose(got, mlps, rtol=1e-4 if got.dtype == np.float32 else 1e-10, atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lbfgs_keeps_the_inputs_dtype_where_mlps_lbfgs_returns_float64(blobs, dtype):
    """README's one exception to "the weights have MLP's dtype": MLP's lbfgs hands scipy float64 weights and keeps
    them on float32 input; jaxnn's lbfgs loop is compiled in the input's dtype."""
    x, y = blobs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = NeuralNetClassifier((4,), solver="lbfgs", max_iter=5, random_state=0).fit(x.astype(dtype), y)
        mlps = MLPClassifier((4,), solver="lbfgs", max_iter=5, random_state=0).fit(x.astype(dtype), y)
    assert ours.coefs_[0].dtype == ours.predict_proba(x.astype(dtype)).dtype == dtype
    assert mlps.coefs_[0].dtype == np.float64


def test_a_column_y_is_raveled_with_mlps_warning_and_predicted_flat(blobs):
    from sklearn.exceptions import DataConversionWarning

    x, y = blobs
    column = y.astype(float).reshape(-1, 1)
    with pytest.warns(DataConversionWarning, match="A column-vector y was passed when a 1d array was expected"):
        net = NeuralNetRegressor((4,), max_iter=5, random_state=0, learning_rate_init=0.01, loss="auto").fit(x, column)
    with pytest.warns(DataConversionWarning):
        mlp = MLPRegressor(hidden_layer_sizes=(4,), max_iter=5, random_state=0).fit(x, column)
    assert net.predict(x).shape == mlp.predict(x).shape == (len(x),)
    assert net.n_outputs_ == mlp.n_outputs_ == 1


# --------------------------------------------------------------------------------------------------
# partial_fit's errors begin with MLP's messages.


def _error_text(fit) -> str:
    with pytest.raises(ValueError) as info:
        fit()
    return str(info.value)


RESULT_ATTRIBUTES = ("loss_", "best_loss_", "best_validation_score_", "n_iter_", "t_")
CURVE_ATTRIBUTES = ("loss_curve_", "validation_scores_")


def _result_types(net) -> dict:
    """The types of the fitted results present, and of each element of the curves."""
    types = {name: type(getattr(net, name)) for name in RESULT_ATTRIBUTES if hasattr(net, name)}
    for name in (name for name in CURVE_ATTRIBUTES if hasattr(net, name)):
        curve = getattr(net, name)
        types[name] = None if curve is None else (list, *sorted({type(v).__name__ for v in curve}))
    return types


@pytest.mark.parametrize(("ours", "theirs"), [(NeuralNetClassifier, MLPClassifier), (NeuralNetRegressor, MLPRegressor)])
@pytest.mark.parametrize(
    ("solver", "fits"),
    [
        *[("adam", fits) for fits in ("fit", "early_stopping", "warm_start", "warm_start+early_stopping")],
        ("adam", "partial_fit"),
        ("adam", "fit+partial_fit"),
        ("lbfgs", "fit"),
        ("lbfgs", "warm_start"),
    ],
)
def test_the_fitted_results_have_mlps_types(blobs, ours, theirs, solver, fits):
    x, y = blobs

    def results(estimator):
        net = estimator(hidden_layer_sizes=(4,), max_iter=3, random_state=0, solver=solver)
        net.set_params(early_stopping="early_stopping" in fits, warm_start="warm_start" in fits)
        if fits == "partial_fit":
            classes = {"classes": [0, 1]} if estimator in (MLPClassifier, NeuralNetClassifier) else {}
            return _result_types(net.partial_fit(x, y, **classes).partial_fit(x, y))
        net.fit(x, y)
        if fits == "fit+partial_fit":
            net.partial_fit(x, y)
        return _result_types(net.fit(x, y) if "warm_start" in fits else net)

    mlp, net = results(theirs), results(ours)
    assert {name: net.get(name) for name in mlp} == mlp  # MLP's lbfgs has no curves: jaxnn's are not compared


@pytest.mark.parametrize(
    "calls",
    [
        lambda net, x, y: net.partial_fit(x, y),  # no classes on the first call
        lambda net, x, y: net.partial_fit(x, y, classes=[0, 1]).partial_fit(x, y, classes=[0, 1, 2]),
        lambda net, x, y: net.partial_fit(x, y, classes=[0, 1]).partial_fit(x, y + 1),  # a label not in classes_
        lambda net, x, y: net.partial_fit(x, y + 5, classes=[0, 1]),  # y's labels outside classes= at once
        lambda net, x, y: net.set_params(max_iter=2).fit(x, y).partial_fit(x, y, classes=[0, 1, 2]),
        lambda net, x, y: net.set_params(early_stopping=True).partial_fit(x, y, classes=[0, 1]),
        lambda net, x, y: net.partial_fit(x, y[:5], classes=[0, 1]),
        lambda net, x, y: net.partial_fit(x, y, classes=[0, 1]).partial_fit(x[:, :2], y),
    ],
)
def test_partial_fits_errors_begin_with_mlps_messages(blobs, calls):
    x, y = blobs
    mlp = _error_text(lambda: calls(MLPClassifier(hidden_layer_sizes=(4,)), x, y))
    ours = _error_text(lambda: calls(NeuralNetClassifier((4,), learning_rate_init=0.01, max_iter=500), x, y))
    assert ours.startswith(mlp.replace("MLPClassifier", "NeuralNetClassifier")), (ours, mlp)


UNUSABLE_LABELS = {
    "multiclass-multioutput": np.c_[np.arange(12) % 3, np.arange(12) % 4],
    "strings-as-objects": np.array(list("abc" * 8), dtype=object).reshape(12, 2),  # two columns of 3 classes
    "str-and-int": np.array(["a", 1] * 6, dtype=object),
    "str-and-float": np.array([1.5, "a"] * 6, dtype=object),
    "None-among-int": np.array([1, None, 2] * 4, dtype=object),
    "None-among-str": np.array(["a", None, "b"] * 4, dtype=object),
    "only-None": np.array([None] * 12, dtype=object),
    "int-and-float": np.array([1, 2.0, 3] * 4, dtype=object),
    "str-and-int-columns": np.array([["a", 1], [2, "b"]] * 6, dtype=object),
    "continuous": np.arange(12) % 3 + 0.5,  # floats that are not whole numbers: a regression target
    "continuous-columns": np.c_[np.arange(12) % 3 + 0.5, np.arange(12) % 2],
    "sparse-column": scipy.sparse.csr_matrix((np.arange(12) % 3).reshape(-1, 1)),  # sparse: multilabel matrices only
}
FITS_OF_UNUSABLE_LABELS = {  # each way a classifier meets y: MLP's checks differ between them
    "fit": lambda net, x, y: net.fit(x, y),
    "refit": lambda net, x, y: net.fit(x, np.arange(12) % 3).fit(x, y),
    "warm_start": lambda net, x, y: net.set_params(warm_start=True).fit(x, np.arange(12) % 3).fit(x, y),
    "first-partial_fit": lambda net, x, y: net.partial_fit(x, y, classes=[0, 1, 2]),
    "partial_fit": lambda net, x, y: net.partial_fit(x, np.arange(12) % 3, classes=[0, 1, 2]).partial_fit(x, y),
    "classes=": lambda net, x, y: net.partial_fit(x, np.arange(12) % 2, classes=y.ravel()[:4].tolist()),
    "classes=-and-y": lambda net, x, y: net.partial_fit(x, y, classes=y.ravel()[:4].tolist()),  # classes= first
}


@pytest.mark.parametrize("fits", sorted(FITS_OF_UNUSABLE_LABELS))
@pytest.mark.parametrize("labels", sorted(UNUSABLE_LABELS))
def test_unusable_labels_are_mlps_error_with_its_message_first(labels, fits):
    x, y = np.random.default_rng(0).normal(size=(12, 3)), UNUSABLE_LABELS[labels]
    if fits.startswith("classes=") and y.ndim == 2:
        pytest.skip("classes= lists labels")

    def error(estimator):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            with pytest.raises((TypeError, ValueError)) as raised:
                FITS_OF_UNUSABLE_LABELS[fits](estimator(hidden_layer_sizes=(3,), max_iter=2, random_state=0), x, y)
        return type(raised.value), str(raised.value)

    (mlp_type, mlp), (ours_type, ours) = error(MLPClassifier), error(NeuralNetClassifier)
    assert ours_type is mlp_type, (ours, mlp)
    assert ours.startswith(mlp) and " jaxnn: " in ours[len(mlp) :], (ours, mlp)


# --------------------------------------------------------------------------------------------------
# Pickling an estimator whose solver is an optax transformation (closures).


def test_an_optax_solver_is_pickled_and_continues_the_same(blobs, monkeypatch):
    import pickle
    import sys

    import optax

    x, y = blobs
    net = NeuralNetRegressor((4,), solver=optax.chain(optax.clip(1.0), optax.adam(1e-3)), max_iter=3, random_state=0)
    net.fit(x, y)
    copy = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(copy.predict(x), net.predict(x))
    np.testing.assert_array_equal(copy.partial_fit(x, y).predict(x), net.partial_fit(x, y).predict(x))
    monkeypatch.setitem(sys.modules, "cloudpickle", None)  # without cloudpickle: an error that says what to do
    with pytest.raises(TypeError, match="solver is an optax transformation, which pickle cannot store"):
        pickle.dumps(net)


# --------------------------------------------------------------------------------------------------
# MLP's defaults: swapping the import changes nothing.

JAXNN_ONLY = {"init": "mlp", "n_ensemble": 1, "dropout": 0.0, "scoring": None}  # jaxnn's own, with their defaults


@pytest.mark.parametrize(
    ("ours", "theirs", "extra"),
    [
        # MLPClassifier has no loss and no class_weight
        (NeuralNetClassifier, MLPClassifier, {**JAXNN_ONLY, "loss": "auto", "class_weight": None}),
        (NeuralNetRegressor, MLPRegressor, JAXNN_ONLY),
    ],
)
def test_every_default_is_mlps(ours, theirs, extra):
    mine, mlps = ours().get_params(), theirs().get_params()
    assert {name: mine[name] for name in mine.keys() - mlps.keys()} == extra
    assert set(mlps) <= set(mine), sorted(set(mlps) - set(mine))
    for name, value in mlps.items():
        assert mine[name] == value, (name, mine[name], value)


def test_the_warnings_of_odd_but_valid_settings_are_mlps():
    """As many classes as samples gave a 'greater than 50%' UserWarning MLP does not give; a batch larger than the
    data warned in words MLP's filters (warnings.filterwarnings(message="Got `batch_size`")) did not match."""
    x = np.random.default_rng(0).normal(size=(30, 3))
    for y, settings in ((np.arange(30), {}), (np.arange(30) % 3, {"batch_size": 100})):
        caught = {}
        for estimator in (NeuralNetClassifier, MLPClassifier):
            with warnings.catch_warnings(record=True) as records:
                warnings.simplefilter("always")
                estimator((5,), max_iter=3, random_state=0, **settings).fit(x, y)
            caught[estimator] = sorted(
                str(w.message).split(".")[0] for w in records if w.category is not ConvergenceWarning
            )
        assert caught[NeuralNetClassifier] == caught[MLPClassifier]


def test_the_public_names_are_importable_from_jaxnn_sklearn_as_the_same_objects():
    """``from jaxnn.sklearn import NeuralNetClassifier`` failed (the package exported nothing); the package still
    imports scikit-learn only when a name is first used."""
    import jaxnn.model_selection
    import jaxnn.sklearn

    for name in ("NeuralNetClassifier", "NeuralNetRegressor", "fit_estimators"):
        assert getattr(jaxnn.sklearn, name) is getattr(jaxnn, name)
    for name in ("GridSearchCV", "RandomizedSearchCV"):
        assert getattr(jaxnn.sklearn, name) is getattr(jaxnn.model_selection, name)
    assert set(dir(jaxnn.sklearn)) >= set(jaxnn.sklearn.__all__)
    with pytest.raises(AttributeError, match=r"module 'jaxnn\.sklearn' has no attribute 'MLPClassifier'"):
        jaxnn.sklearn.MLPClassifier  # noqa: B018
    code = "import sys, jaxnn.sklearn; print('sklearn' in sys.modules, 'jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_the_loss_curve_on_unscaled_float32_data_is_mlps_clipped_log_loss():
    """Features of 1e8 give float32 logits of 1e9: the reported clipped loss was rounded to the fused loss's ulp
    (12, 8, 6.5, 8 where MLP reports 11.198, 8.193, 6.574, 8.226)."""
    x = (np.random.RandomState(0).normal(size=(30, 2)) * 1e8).astype(np.float32)
    y = np.digitize(x[:, 1], [-5e7, 5e7])
    settings = {"hidden_layer_sizes": (4,), "max_iter": 4, "random_state": 0, "learning_rate_init": 0.1}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp = MLPClassifier(**settings).fit(x, y)
        ours = NeuralNetClassifier(**settings).fit(x, y)
    np.testing.assert_allclose(ours.loss_curve_, mlp.loss_curve_, rtol=1e-5)


# --------------------------------------------------------------------------------------------------
# Hyper-parameters in float32: X's dtype is the one training keeps them in.


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"learning_rate_init": 1e-40}, "learning_rate_init 1e-40 is below float32's smallest normal number"),
        ({"learning_rate_init": 1e39}, "learning_rate_init has values beyond float32's range"),
        ({"alpha": 1e41}, "alpha over a batch's sample weight .* has values beyond float32's range"),
        ({"epsilon": 1e-40}, "epsilon 1e-40 is below float32's smallest normal number"),
        ({"solver": "sgd", "learning_rate": "invscaling", "power_t": 1e39}, "power_t has values beyond"),
    ],
)
def test_rates_that_float32_flushes_or_overflows_are_refused_naming_the_parameter(blobs, params, name):
    """Cast to float32 they were 0 (no step; Adam's 0/0 for a weight without gradient) or infinity (divergence)."""
    x, y = blobs
    with pytest.raises(ValueError, match=rf"{name}.*pass X as float64"):
        NeuralNetClassifier(hidden_layer_sizes=(3,), max_iter=1, **params).fit(x.astype(np.float32), y)


def test_an_l2_rate_beyond_float32_from_small_sample_weights_names_alpha_over_the_batch_weight(blobs):
    """alpha = 1e5 is far inside float32's range; alpha over a batch's sample weight (1e5 / 1.8e-35) is not, and the
    error said "alpha has values beyond float32's range", which the alpha given does not."""
    x, y = blobs
    weight = np.full(len(y), 1e-36)
    over = r"alpha over a batch's sample weight \(1e\+05 / [\d.]+e-3\d\) has values beyond float32's range"
    with pytest.raises(ValueError, match=rf"{over} .*: pass a smaller alpha, or pass X as float64"):
        NeuralNetClassifier(hidden_layer_sizes=(3,), max_iter=1, alpha=1e5).fit(x.astype(np.float32), y, weight)


@pytest.mark.parametrize("params", [{"epsilon": 1e-310}, {"learning_rate_init": 1e-310}], ids=["epsilon", "rate"])
def test_a_rate_float64_flushes_is_refused_without_advising_float64_x(blobs, params):
    """X already float64: the advice was "pass a larger epsilon, or pass X as float64 (X.astype(np.float64))"."""
    x, y = blobs
    (name,) = params
    with pytest.raises(ValueError, match=rf"below float64's smallest normal number .*; pass a larger {name}$"):
        NeuralNetClassifier(hidden_layer_sizes=(3,), max_iter=1, **params).fit(x, y)


def test_an_l2_rate_beyond_float64_is_refused_without_advising_float64_x(blobs):
    x, y = blobs
    weight = np.full(len(y), 1e-300)
    with pytest.raises(ValueError, match=r"alpha over .* beyond float64's range .*: pass a smaller alpha$"):
        NeuralNetClassifier(hidden_layer_sizes=(3,), max_iter=1, alpha=1e300).fit(x, y, weight)


def test_a_learning_rate_float64_holds_trains_in_float64(blobs):
    x, y = blobs
    fitted = NeuralNetClassifier(hidden_layer_sizes=(3,), max_iter=1, learning_rate_init=1e-40).fit(x, y)
    assert np.isfinite(fitted.loss_)


@pytest.mark.parametrize("beta", ["beta_1", "beta_2"])
def test_adam_betas_that_float32_rounds_to_one_train_as_mlps(blobs, beta):
    """1 − 1e-10 is 1.0 in float32: Adam's bias correction 1 − βᵗ was 0 (NaN steps, or none)."""
    x, y = blobs
    x = x.astype(np.float32)
    params = {"hidden_layer_sizes": (3,), "max_iter": 5, "random_state": 0, beta: 1 - 1e-10}
    ours, theirs = NeuralNetClassifier(**params).fit(x, y), MLPClassifier(**params).fit(x, y)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-4)


def test_a_tol_beyond_float32s_range_stops_when_mlps_does(blobs):
    """Such a tol became infinity in float32, and the first epoch counted as one without improvement."""
    x, y = blobs
    x = x.astype(np.float32)
    params = {"hidden_layer_sizes": (3,), "max_iter": 30, "random_state": 0, "tol": 1e39}
    assert NeuralNetClassifier(**params).fit(x, y).n_iter_ == MLPClassifier(**params).fit(x, y).n_iter_
