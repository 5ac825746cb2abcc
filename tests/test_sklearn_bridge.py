"""jaxnn.sklearn.bridge: ``to_sklearn()`` exports a fitted network as a fitted MLPClassifier/MLPRegressor that
predicts what it predicts (to float rounding), ``from_sklearn(mlp)`` imports a fitted MLP that jaxnn then
predicts with and trains on (``warm_start``), and what MLP cannot hold is a ValueError naming it."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_multilabel_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import StandardScaler

import jaxnn
from jaxnn import NeuralNetClassifier, NeuralNetRegressor
from jaxnn.losses import scikit_learn_squared_error

MLP_ACTIVATIONS = ("identity", "logistic", "tanh", "relu")
TASKS = ("binary", "multiclass", "multilabel", "regression", "multi-output")
# a few units in the last place of outputs of order 1
TOLERANCE = {np.float32: {"rtol": 1e-6, "atol": 1e-6}, np.float64: {"rtol": 1e-12, "atol": 1e-14}}


def _data(task: str, dtype):
    if task == "multilabel":
        X, y = make_multilabel_classification(n_samples=80, n_features=5, n_classes=3, random_state=0)
    elif task in ("binary", "multiclass"):
        X, y = make_classification(
            n_samples=80, n_features=5, n_informative=3, n_classes=2 if task == "binary" else 3, random_state=0
        )
    else:
        X, y = make_regression(n_samples=80, n_features=5, n_targets=1 if task == "regression" else 2, random_state=0)
        y = y / y.std()
    return StandardScaler().fit_transform(X).astype(dtype), y


def _quietly(fit, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fit(*args, **kwargs)


def _assert_same_predictions(ours, theirs, X, dtype):
    tolerance = TOLERANCE[dtype]
    if hasattr(ours, "predict_proba"):
        np.testing.assert_allclose(theirs.predict_proba(X), ours.predict_proba(X), **tolerance)
        np.testing.assert_array_equal(theirs.predict(X), ours.predict(X))
        assert theirs.score(X, ours.predict(X)) == 1.0
    else:
        np.testing.assert_allclose(theirs.predict(X), ours.predict(X), **tolerance)
        np.testing.assert_allclose(theirs.score(X, ours.predict(X)), 1.0, rtol=1e-6)


# Every task in both dtypes, each with an activation of its own (the activations take turns, so each meets
# several tasks and both dtypes): what the export does depends on the task and the dtype; the activation is
# carried over by name, and a wrong name fails whichever task it meets.
EXPORTS = [
    (MLP_ACTIVATIONS[(t + d) % len(MLP_ACTIVATIONS)], task, dtype)
    for t, task in enumerate(TASKS)
    for d, dtype in enumerate((np.float32, np.float64))
]


@pytest.mark.parametrize(
    ("activation", "task", "dtype"), EXPORTS, ids=[f"{a}-{t}-{np.dtype(d).name}" for a, t, d in EXPORTS]
)
def test_an_exported_mlp_predicts_what_the_network_predicts(activation, task, dtype):
    X, y = _data(task, dtype)
    estimator = NeuralNetRegressor if task in ("regression", "multi-output") else NeuralNetClassifier
    ours = _quietly(estimator((6, 4), activation=activation, max_iter=20, random_state=0).fit, X, y)
    mlp = ours.to_sklearn()
    assert type(mlp) is (MLPClassifier if estimator is NeuralNetClassifier else MLPRegressor)
    assert mlp.activation == activation and mlp.hidden_layer_sizes == (6, 4)
    for name in ("n_layers_", "n_outputs_", "out_activation_", "n_features_in_", "n_iter_", "t_", "best_loss_"):
        assert getattr(mlp, name) == getattr(ours, name), name
    assert mlp.loss_curve_ == ours.loss_curve_
    for theirs, mine in zip([*mlp.coefs_, *mlp.intercepts_], [*ours.coefs_, *ours.intercepts_], strict=True):
        assert theirs.dtype == mine.dtype
        np.testing.assert_array_equal(theirs, mine)
    if estimator is NeuralNetClassifier:
        np.testing.assert_array_equal(mlp.classes_, ours.classes_)
    _assert_same_predictions(ours, mlp, X, dtype)
    _quietly(mlp.set_params(max_iter=5).fit, X, y)  # an exported MLP refits as any MLP


@pytest.mark.parametrize("estimator", [NeuralNetClassifier, NeuralNetRegressor])
def test_the_export_holds_the_fitted_network_not_parameters_set_after_the_fit(estimator):
    """The fitted network predicts with the activation and layers it was fitted with; set_params after the fit
    changes the next fit only, so the export must carry what was fitted (it once took activation from the
    parameters: a ReLU network exported as tanh predicted other classes for a third of iris)."""
    task = "multiclass" if estimator is NeuralNetClassifier else "regression"
    X, y = _data(task, np.float64)
    ours = _quietly(estimator((6,), activation="relu", max_iter=20, random_state=0).fit, X, y)
    ours.set_params(activation="tanh", hidden_layer_sizes=(3, 3))
    mlp = ours.to_sklearn()
    assert mlp.activation == "relu" and mlp.hidden_layer_sizes == (6,)
    _assert_same_predictions(ours, mlp, X, np.float64)


# The import, in the same pairs: every task meets two activations and every activation two or three tasks.  What
# the import does depends on the task (the output layer and loss it rebuilds from MLP's fitted attributes); the
# hidden activation is carried over by name whatever the task, so a wrong name or a wrong rule for it fails
# whichever task it meets.  (Each float64 pair is also an export's: the two tests share its compiled programs.)
IMPORTS = [(activation, task) for activation, task, _ in EXPORTS]


@pytest.mark.parametrize(("activation", "task"), IMPORTS, ids=[f"{a}-{t}" for a, t in IMPORTS])
def test_an_imported_mlp_predicts_the_same_and_warm_start_continues_it(activation, task):
    X, y = _data(task, np.float64)
    regression = task in ("regression", "multi-output")
    mlp_class, estimator = (MLPRegressor, NeuralNetRegressor) if regression else (MLPClassifier, NeuralNetClassifier)
    mlp = _quietly(mlp_class(hidden_layer_sizes=(6, 4), activation=activation, max_iter=15, random_state=0).fit, X, y)
    ours = estimator.from_sklearn(mlp)
    assert ours.get_params()["activation"] == activation and ours.max_iter == 15
    _assert_same_predictions(ours, mlp, X, np.float64)
    exported = ours.to_sklearn()  # and back: the same network
    for theirs, mine in zip([*mlp.coefs_, *mlp.intercepts_], [*exported.coefs_, *exported.intercepts_], strict=True):
        np.testing.assert_array_equal(theirs, mine)
    curve = list(ours.loss_curve_)
    _quietly(ours.set_params(warm_start=True, max_iter=10).fit, X, y)
    assert ours.loss_curve_[: len(curve)] == curve and len(ours.loss_curve_) == len(curve) + ours.n_iter_
    assert ours.t_ == mlp.t_ + ours.n_iter_ * X.shape[0]
    assert not np.array_equal(ours.coefs_[0], mlp.coefs_[0])  # trained on from MLP's weights


def test_poisson_and_lbfgs_networks_cross_both_ways():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = rng.poisson(np.exp(0.5 * X[:, 0]))
    ours = _quietly(NeuralNetRegressor((5,), loss="poisson", max_iter=30, random_state=0).fit, X, y)
    mlp = ours.to_sklearn()
    assert mlp.loss == "poisson" and mlp.out_activation_ == "exp"
    _assert_same_predictions(ours, mlp, X, np.float64)
    lbfgs = _quietly(MLPClassifier((5,), solver="lbfgs", max_iter=20, random_state=0).fit, X, y > 1)
    imported = NeuralNetClassifier.from_sklearn(lbfgs)
    _assert_same_predictions(imported, lbfgs, X, np.float64)
    _quietly(imported.set_params(warm_start=True).fit, X, y > 1)
    assert imported.n_iter_ >= 1


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"activation": "softmax"}, "no hidden activation 'softmax'"),
        ({"activation": "binary_step"}, "no hidden activation 'binary_step'"),
        ({"activation": "leaky_relu"}, "no hidden activation 'leaky_relu'"),
        ({"activation": ["relu", "tanh"], "hidden_layer_sizes": (4, 3)}, "one activation for every hidden layer"),
        ({"solver": "gd"}, "no solver 'gd'"),
        ({"loss": "mean_squared_error"}, "MLPClassifier has no loss 'mean_squared_error'"),
        ({"n_ensemble": 2}, "ensemble"),
    ],
)
def test_what_mlp_cannot_hold_is_a_clear_error(params, message):
    X, y = _data("multiclass", np.float32)
    estimator = _quietly(NeuralNetClassifier(**{"hidden_layer_sizes": (4,), "max_iter": 5, **params}).fit, X, y)
    with pytest.raises(ValueError, match=message):
        estimator.to_sklearn()


def test_a_regression_loss_mlp_lacks_and_a_wrong_or_unfitted_mlp_are_clear_errors():
    X, y = _data("regression", np.float32)
    estimator = _quietly(NeuralNetRegressor((4,), loss="sum_of_squares", max_iter=5).fit, X, y)
    with pytest.raises(ValueError, match="MLPRegressor has no loss 'sum_of_squares'"):
        estimator.to_sklearn()
    with pytest.raises(TypeError, match="takes a fitted MLPClassifier, got MLPRegressor"):
        NeuralNetClassifier.from_sklearn(MLPRegressor())
    with pytest.raises(ValueError, match="not fitted"):
        NeuralNetRegressor.from_sklearn(MLPRegressor())
    with pytest.raises(ValueError, match="not fitted"):
        NeuralNetRegressor().to_sklearn()


def test_the_loss_object_squared_error_on_several_targets_is_not_exported_as_mlps():
    """jaxnn.squared_error (the Loss object) steps on the gradient of the mean over targets; MLPRegressor on their
    sum: the export was MLP's 'squared_error', whose continued training then took other steps (0.2 apart in 10
    epochs).  One target: the two are one loss, and the export goes ahead; so it does once the name is set."""
    X, y = _data("multi-output", np.float64)
    estimator = _quietly(NeuralNetRegressor((4,), loss=jaxnn.squared_error, max_iter=5, random_state=0).fit, X, y)
    with pytest.raises(ValueError, match=r"summed over the 2 targets.*set_params\(loss='squared_error'\) first"):
        estimator.to_sklearn()
    mlp = estimator.set_params(loss="squared_error").to_sklearn()
    np.testing.assert_allclose(mlp.predict(X), estimator.predict(X), rtol=1e-12)
    one_target = _quietly(NeuralNetRegressor((4,), loss=jaxnn.squared_error, max_iter=5).fit, X, y[:, 0])
    assert one_target.to_sklearn().loss == "squared_error"


def test_an_imported_regressor_on_several_targets_continues_with_mlps_steps():
    """An MLPRegressor of 2 targets, imported, trains on with MLP's squared-error pair (the gradient of the sum over
    targets): a partial_fit takes MLP's own partial_fit's step (plain sgd: no optimiser state to differ)."""
    X, y = _data("multi-output", np.float64)
    settings = dict(hidden_layer_sizes=(4,), solver="sgd", momentum=0.0, batch_size=len(X), random_state=0)
    mlp = _quietly(MLPRegressor(max_iter=5, **settings).fit, X, y)
    imported = NeuralNetRegressor.from_sklearn(mlp)
    assert imported._head.loss is scikit_learn_squared_error
    imported.partial_fit(X, y)
    mlp.partial_fit(X, y)
    for ours, theirs in zip(imported.coefs_ + imported.intercepts_, mlp.coefs_ + mlp.intercepts_, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)


def test_a_continued_regressor_keeps_its_output_activation():
    """After a squared-error fit (identity output), loss='poisson' (an exp output) continued the same weights through
    exp: predictions jumped by 30 at a learning rate of 1e-12.  A loss of the same output continues."""
    X, y = _data("regression", np.float64)
    counts = np.abs(y)
    fitted = _quietly(NeuralNetRegressor((4,), max_iter=5, random_state=0, warm_start=True).fit, X, counts)
    message = r"loss 'poisson' needs an exp output but the network was fitted with an identity output.*warm_start=False"
    for continue_ in ("fit", "partial_fit"):
        with pytest.raises(ValueError, match=message):
            getattr(fitted.set_params(loss="poisson"), continue_)(X, counts)
    assert len(fitted.loss_curve_) == 5  # nothing trained
    _quietly(fitted.set_params(loss="mean_squared_error").fit, X, counts)
    assert len(fitted.loss_curve_) == 10
    counting = _quietly(NeuralNetRegressor((4,), loss="poisson", max_iter=5, warm_start=True).fit, X, counts)
    with pytest.raises(ValueError, match=r"^loss 'squared_error' needs an identity output .* an exp output"):
        counting.set_params(loss="squared_error").fit(X, counts)  # the parameter as set, not the loss it maps to


def test_warm_starting_an_imported_regressor_on_fewer_targets_says_to_refit():
    # the error named the mismatch but not what to do about it
    X, y = _data("multi-output", np.float64)
    mlp = _quietly(MLPRegressor(hidden_layer_sizes=(4,), max_iter=5, random_state=0).fit, X, y)
    network = NeuralNetRegressor.from_sklearn(mlp).set_params(warm_start=True, max_iter=5)
    with pytest.raises(ValueError, match=r"y has 1 target columns but the network was fitted with 2.*warm_start=False"):
        network.fit(X, y[:, 0])


def test_a_two_class_softmax_network_crosses_back_and_warm_starts():
    # exported with two softmax outputs (a categorical loss), the MLP could not be imported: "layer 1 (1 units)
    # expects W of shape (4, 1) … got W (4, 2)"
    X, y = _data("binary", np.float64)
    network = _quietly(NeuralNetClassifier((4,), loss="softmax_cross_entropy", max_iter=5, random_state=0).fit, X, y)
    mlp = network.to_sklearn()
    assert mlp.out_activation_ == "softmax" and mlp.n_outputs_ == 2
    back = NeuralNetClassifier.from_sklearn(mlp)
    np.testing.assert_allclose(back.predict_proba(X), network.predict_proba(X), **TOLERANCE[np.float64])
    _quietly(back.set_params(warm_start=True, max_iter=3).fit, X, y)
    assert back.coefs_[-1].shape == (4, 2) and back.n_iter_ == 3


@pytest.mark.parametrize("early_stopping", [False, True])
def test_an_exported_mlp_continues_with_its_own_warm_start_and_partial_fit(early_stopping):
    """MLP's continued fits read its stopping rule's count and best weights, which the export carries: the
    exported MLP stops where the network's own warm_start fit stops, also when no epoch improves by ``tol`` (the
    count is then read before it is written), and an early-stopped one keeps the best weights it had."""
    X, y = _data("multiclass", np.float64)
    network = NeuralNetClassifier((6,), max_iter=8, random_state=0, early_stopping=early_stopping)
    _quietly(network.fit, X, y)
    exported = network.to_sklearn()
    for model in (network, exported):
        _quietly(model.set_params(warm_start=True, tol=10.0, n_iter_no_change=2, max_iter=20).fit, X, y)
    assert exported.n_iter_ == network.n_iter_ < 20
    if early_stopping:  # no epoch beat the best score: both keep the weights they started from
        for got, want in zip(exported.coefs_, network.coefs_, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-12)
    else:  # MLP's partial_fit refuses early_stopping
        _quietly(network.set_params(warm_start=False).fit(X, y).to_sklearn().partial_fit, X, y)


@pytest.mark.parametrize("early_stopping", [False, True])
def test_an_imported_mlp_continues_its_count_of_epochs_without_improvement(early_stopping):
    """The import started the count afresh: an MLP that had stopped on n_iter_no_change trained
    n_iter_no_change + 1 more epochs in jaxnn where its own warm_start fit trains one; continued in jaxnn, the
    network now stops where MLP stops and ends with MLP's weights (to rounding) and count."""
    X, y = _data("multiclass", np.float64)
    options = dict(max_iter=30, random_state=0, early_stopping=early_stopping, tol=0.05, n_iter_no_change=3)
    mlp = _quietly(MLPClassifier((6,), warm_start=True, **options).fit, X, y)
    assert mlp._no_improvement_count > 3 and mlp.n_iter_ < 30  # it stopped on the count
    imported = NeuralNetClassifier.from_sklearn(mlp)
    for model in (mlp, imported):
        _quietly(model.fit, X, y)
    assert imported.n_iter_ == mlp.n_iter_ == 1
    assert imported._no_improvement_count == mlp._no_improvement_count
    assert len(imported.loss_curve_) == len(mlp.loss_curve_)
    np.testing.assert_allclose(imported.loss_curve_, mlp.loss_curve_, rtol=1e-12)


def test_an_imported_networks_weights_are_read_only_as_a_fits():
    # they were writeable copies, which the prediction path places again on every call
    X, y = _data("multiclass", np.float64)
    imported = NeuralNetClassifier.from_sklearn(_quietly(MLPClassifier((4,), max_iter=3, random_state=0).fit, X, y))
    assert not any(array.flags.writeable for array in imported.coefs_ + imported.intercepts_)
