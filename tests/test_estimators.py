"""NeuralNetClassifier and NeuralNetRegressor: scikit-learn's own checks, then each promise of the estimators."""

import contextlib
import copy
import io
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import warnings

import jax
import jax.numpy as jnp
import joblib
import numpy as np
import optax
import pytest
import scipy.sparse
import sklearn
from helpers import compilations
from sklearn.base import clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_diabetes, load_iris
from sklearn.dummy import DummyRegressor
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.metrics import mean_squared_error, r2_score
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MaxAbsScaler, StandardScaler
from sklearn.utils import estimator_checks
from sklearn.utils.estimator_checks import parametrize_with_checks

import jaxnn
import jaxnn.sklearn.base
from jaxnn import NeuralNetClassifier, NeuralNetRegressor
from jaxnn.backprop import loss_and_grads
from jaxnn.data import iris_split, one_hot
from jaxnn.sklearn import prediction
from jaxnn.sklearn.constraints import check_params
from jaxnn.sklearn.internals import InvalidParameterError
from jaxnn.sklearn.pickling import InconsistentJaxnnVersionWarning
from jaxnn.sklearn.prediction import chunk_rows, prediction_rows
from jaxnn.sklearn.progress import rate_drops
from jaxnn.sklearn.training import DEVICE_ALIGNMENT, pad_rows, padded_size
from jaxnn.train import training_keys

IRIS_NAMES = np.array(["setosa", "versicolor", "virginica"])


@pytest.fixture(scope="module")
def iris():
    """The seed's split (test_size=0.25, random_state=42), standardised on the training part."""
    return iris_split()


def quietly(estimator, *args, **kwargs):
    """Fit without the ConvergenceWarning that short, deliberately truncated fits emit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(*args, **kwargs)


# --------------------------------------------------------------------------------------------------
# scikit-learn's contract.  All checks run and pass with the default parameters.  The few that skip
# themselves do so because of this environment, not the estimators: the pandas checks skip when
# pandas is not installed (it is not a jaxnn dependency), and check_array_api_input skips unless
# SCIPY_ARRAY_API=1 is set (the estimators do not claim array-API support).


@parametrize_with_checks(
    [
        NeuralNetClassifier(learning_rate_init=0.01, max_iter=500),
        NeuralNetRegressor(learning_rate_init=0.01, max_iter=500, loss="auto"),
    ]
)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # tiny random data, 500 epochs
def test_scikit_learn_contract(estimator, check):
    check(estimator)


@pytest.mark.parametrize("loss", ["poisson", "half_poisson_deviance"])
@pytest.mark.parametrize("check", ["check_fit_check_is_fitted", "check_regressors_no_decision_function"])
def test_a_poisson_regressor_is_tagged_positive_only_so_scikit_learns_checks_give_it_counts(loss, check):
    """A loss for counts refuses y < 0, so the regressor says so in its tags (``target_tags.positive_only``, as
    scikit-learn's PoissonRegressor does) and scikit-learn's checks and tools hand it targets >= 0."""
    net = NeuralNetRegressor(loss=loss, learning_rate_init=0.01, max_iter=20)
    assert net.__sklearn_tags__().target_tags.positive_only
    assert not NeuralNetRegressor().__sklearn_tags__().target_tags.positive_only
    assert not NeuralNetRegressor(loss="no such loss").__sklearn_tags__().target_tags.positive_only  # fit says why
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        getattr(estimator_checks, check)("NeuralNetRegressor", net)


@pytest.mark.parametrize("loss", ["poisson", "half_poisson_deviance"])
def test_scikit_learns_multioutput_check_ignores_positive_only_so_a_poisson_regressor_fails_it_as_expected(loss):
    """Expected failure, scikit-learn's and not jaxnn's: of scikit-learn 1.9's checks a Poisson regressor fails
    ``check_regressor_multioutput`` alone, which draws ``make_regression`` targets without the
    ``positive_only`` tag's shift to y >= 0 (the other checks make it).  jaxnn refuses them, saying why
    (MLPRegressor trains on them to a NaN loss); on counts the multi-output fit and its predictions are sound."""
    net = NeuralNetRegressor(loss=loss, learning_rate_init=0.01, max_iter=20)
    with pytest.raises(ValueError, match=rf"loss='{loss}' models counts and needs y >= 0, but y has negative"):
        estimator_checks.check_regressor_multioutput("NeuralNetRegressor", net)
    x = np.random.default_rng(0).normal(size=(11, 10))
    counts = np.random.default_rng(1).poisson(3.0, size=(11, 5)).astype(float)
    predicted = quietly(net, x, counts).predict(x)
    assert predicted.dtype == np.float64 and predicted.shape == counts.shape and np.all(predicted > 0)


# --------------------------------------------------------------------------------------------------
# End to end.


@pytest.mark.parametrize("hidden", [(10, 5), (100,)], ids=["seed_network", "defaults"])
def test_iris_pipeline_reaches_097_on_the_seed_split(iris, hidden):
    x_raw, y = load_iris(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x_raw, y, test_size=0.25, random_state=42)
    pipeline = make_pipeline(
        StandardScaler(), NeuralNetClassifier(hidden, random_state=0, learning_rate_init=0.01, max_iter=500)
    ).fit(x_train, y_train)
    assert pipeline.score(x_test, y_test) >= 0.97
    network = pipeline[-1]
    assert network.n_iter_ < network.max_iter  # the defaults converge: the stopping rule ended training


def test_grid_search_and_cross_val_score_run_and_choose_a_good_model():
    x, y = load_iris(return_X_y=True)
    pipeline = make_pipeline(
        StandardScaler(), NeuralNetClassifier((10, 5), random_state=0, learning_rate_init=0.01, max_iter=500)
    )
    scores = cross_val_score(pipeline, x, y, cv=5)
    assert scores.shape == (5,) and scores.mean() >= 0.9
    grid = GridSearchCV(pipeline, {"neuralnetclassifier__learning_rate_init": [0.001, 0.01, 0.03, 0.1]}, cv=5)
    quietly(grid, x, y)
    assert len(grid.cv_results_["params"]) == 4 and grid.best_score_ >= 0.9
    assert grid.best_estimator_.score(x, y) >= 0.97  # the refit on all data


def test_regression_on_diabetes_beats_a_constant_by_a_wide_margin():
    x, y = load_diabetes(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0)
    network = NeuralNetRegressor((10,), alpha=30.0, random_state=0, learning_rate_init=0.01, max_iter=500, loss="auto")
    model = TransformedTargetRegressor(make_pipeline(StandardScaler(), network), transformer=StandardScaler())
    predicted = model.fit(x_train, y_train).predict(x_test)
    constant = DummyRegressor().fit(x_train, y_train).predict(x_test)
    assert r2_score(y_test, predicted) >= 0.3
    assert mean_squared_error(y_test, predicted) <= 0.75 * mean_squared_error(y_test, constant)


# --------------------------------------------------------------------------------------------------
# Exactness: the estimator is jaxnn's fit, and 'gd' is plain gradient descent with the hand-written rules.


def _seed_network(init="glorot"):
    return jaxnn.Sequential(
        (
            jaxnn.Dense(10, "relu", init=init),
            jaxnn.Dense(5, "relu", init=init),
            jaxnn.Dense(3, "identity", init=init),
        )
    )


def test_weights_equal_the_core_fit_for_the_same_configuration_and_key(iris):
    # 100 samples are padded to 104 rows of which 4 have weight 0; the weights must not change a bit.
    x, y = iris.x_train[:100].astype(np.float32), iris.y_train[:100]
    assert padded_size(100) == 104
    k = 25
    estimator = NeuralNetClassifier(
        (10, 5), solver="gd", init="he", alpha=0.0, learning_rate_init=0.1, max_iter=k, n_iter_no_change=k
    )
    quietly(estimator.set_params(random_state=3), x, y)

    init_key, _ = training_keys(3)
    model = _seed_network("he")
    params = model.init(init_key, 4, jnp.float32)  # what the estimator calls
    core = jaxnn.fit(model, params, x, one_hot(y, 3), loss="softmax_cross_entropy", epochs=k, learning_rate=0.1)
    for fitted, expected in zip(estimator.coefs_, core.params, strict=True):
        np.testing.assert_array_equal(fitted, np.asarray(expected["W"]))
    for fitted, expected in zip(estimator.intercepts_, core.params, strict=True):
        np.testing.assert_array_equal(fitted, np.asarray(expected["b"]))
    # The reported loss sums 104 terms (4 of weight 0) instead of 100, in another order: equal to rounding.
    np.testing.assert_allclose(estimator.loss_curve_, np.asarray(core.history), rtol=1e-6)


@pytest.mark.parametrize(
    ("solver", "core_optimizer", "batch_size", "bitwise"),
    [("sgd", optax.sgd(0.01, momentum=0.9, nesterov=True), 128, True), ("adam", "adam", 100, False)],
    ids=["sgd", "adam"],
)
def test_minibatch_weights_equal_the_core_fit_on_the_unpadded_data(solver, core_optimizer, batch_size, bitwise):
    # 1700 samples are padded to 1792 rows (92 of weight 0); the shuffle orders the real rows the same with
    # or without them, so the minibatches, and the weights, are those of jaxnn.fit on the 1700 rows alone.
    # Batches of 128: the padding shares the 14th batch with 36 real rows; of 100: it is an 18th batch.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1700, 4)).astype(np.float32)
    y = np.argmax(x[:, :3] + 0.5 * rng.normal(size=(1700, 3)), axis=1)
    assert padded_size(1700) == 1792
    k = 3
    estimator = NeuralNetClassifier(
        (10, 5), solver=solver, alpha=0.0, batch_size=batch_size, learning_rate_init=0.01, max_iter=k,
        n_iter_no_change=k, random_state=3, init="glorot",
    )  # fmt: skip
    quietly(estimator, x, y)

    init_key, shuffle_key = training_keys(3)
    model = _seed_network()
    params = model.init(init_key, 4, jnp.float32)  # as the estimator draws them
    core = jaxnn.fit(
        model, params, x, one_hot(y, 3), loss="softmax_cross_entropy", epochs=k, optimizer=core_optimizer,
        batch_size=batch_size, key=shuffle_key, **({"learning_rate": 0.01} if core_optimizer == "adam" else {}),
    )  # fmt: skip
    fitted = [*estimator.coefs_, *estimator.intercepts_]
    expected = [np.asarray(layer[name]) for name in ("W", "b") for layer in core.params]
    for got, want in zip(fitted, expected, strict=True):
        if bitwise:
            np.testing.assert_array_equal(got, want)
        else:
            # The estimator's adam has its learning rate and L2 term in the optimiser state, the core fit's
            # "adam" its rate only: they round differently in the last bits; the padding changes no bit (test_train).
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(estimator.loss_curve_, np.asarray(core.history), rtol=1e-6)


def test_gd_is_k_full_batch_steps_of_the_hand_written_backprop(iris):
    x, y = iris.x_train, iris.y_train  # float64: the estimator trains in float64
    k, learning_rate = 25, 0.1
    estimator = NeuralNetClassifier(
        (10, 5), solver="gd", alpha=0.0, learning_rate_init=learning_rate, max_iter=k, n_iter_no_change=k, init="glorot"
    )
    quietly(estimator.set_params(random_state=3), x, y)
    assert estimator.n_iter_ == k

    with jax.enable_x64(True):
        model = _seed_network()
        params = model.init(training_keys(3)[0], 4, jnp.float32)  # drawn in float32 for every dtype, then cast
        params = jax.tree.map(lambda a: a.astype(jnp.float64), params)
        targets = jnp.asarray(one_hot(y, 3), jnp.float64)
        for _ in range(k):  # the seeds' loop: forward with caches, reversed walk, W ← W − η·dW
            _, grads = loss_and_grads(model, params, jnp.asarray(x), targets, "softmax_cross_entropy")
            params = jax.tree.map(lambda p, g: p - learning_rate * g, params, grads)
    # The same arithmetic in a different order (column layout inside the compiled loop): equal to rounding.
    for fitted, expected in zip(estimator.coefs_, params, strict=True):
        np.testing.assert_allclose(fitted, np.asarray(expected["W"]), rtol=1e-12, atol=1e-14)


def test_alpha_adds_the_gradient_of_scikit_learns_l2_penalty(iris):
    # One 'gd' step: W₁ = W₀ − η(∂L/∂W + α/n·W₀) on the weights; the biases are not penalised.
    x, y = iris.x_train, iris.y_train
    n, learning_rate, alpha = x.shape[0], 0.1, 0.5
    step = NeuralNetClassifier(
        (10, 5), solver="gd", learning_rate_init=learning_rate, max_iter=1, random_state=0, init="glorot"
    )
    plain = quietly(clone(step).set_params(alpha=0.0), x, y)
    penalised = quietly(clone(step).set_params(alpha=alpha), x, y)
    with jax.enable_x64(True):
        initial = _seed_network().init(training_keys(0)[0], 4, jnp.float32)  # the estimator's float32 draws
    for layer, w0 in enumerate(initial):
        expected_shift = -learning_rate * alpha / n * np.asarray(w0["W"], np.float64)
        np.testing.assert_allclose(penalised.coefs_[layer] - plain.coefs_[layer], expected_shift, rtol=1e-9, atol=1e-15)
        np.testing.assert_array_equal(penalised.intercepts_[layer], plain.intercepts_[layer])


def test_warm_start_continues_exactly_where_the_last_fit_stopped(iris):
    x, y = iris.x_train, iris.y_train
    k = 25
    config = dict(solver="gd", alpha=0.0, learning_rate_init=0.1, n_iter_no_change=2 * k, random_state=3)
    twice = NeuralNetClassifier((10, 5), max_iter=k, warm_start=True, **config)
    quietly(twice, x, y)
    quietly(twice, x, y)
    once = quietly(NeuralNetClassifier((10, 5), max_iter=2 * k, **config), x, y)
    for a, b in zip(twice.coefs_, once.coefs_, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(twice.loss_curve_, once.loss_curve_)
    asked = r"continue the previous network \(layers 10 → 5 → 3\), but the parameters now ask for layers 6 → 3"
    with pytest.raises(ValueError, match=asked):
        twice.set_params(hidden_layer_sizes=(6,)).fit(x, y)


def test_same_random_state_gives_identical_weights_and_another_gives_different(iris):
    x, y = iris.x_train, iris.y_train
    estimator = NeuralNetClassifier(
        (10, 5), batch_size=32, max_iter=20, learning_rate_init=0.01
    )  # minibatches: shuffling is seeded too
    first, again, other = (quietly(clone(estimator).set_params(random_state=s), x, y) for s in (7, 7, 8))
    for a, b, c in zip(first.coefs_, again.coefs_, other.coefs_, strict=True):
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)


# --------------------------------------------------------------------------------------------------
# Fast model selection: the same configuration on new data of a similar size compiles nothing.


def test_padded_sizes_hold_the_data_with_little_padding_and_share_nearby_counts():
    sizes = np.array([padded_size(n) for n in range(1, 5000)])  # training data
    counts = np.arange(1, 5000)
    assert np.all(sizes >= counts) and np.all(np.diff(sizes) >= 0)
    assert np.all((sizes - counts)[counts > 16] <= counts[counts > 16] / 8)  # at most one row in eight
    assert len(np.unique(sizes)) < 70  # eight sizes per doubling: few shapes, few compilations
    assert {padded_size(n) for n in range(1, 17)} == {16}
    assert padded_size(112) == 112 and padded_size(120) == 120 and padded_size(150) == 160
    # Predictions: four buckets up to 256 rows (one row computes one row), the training sizes above.
    assert [prediction_rows(n) for n in (1, 2, 8, 9, 64, 65, 256)] == [1, 8, 8, 64, 64, 256, 256]
    assert all(prediction_rows(n) == padded_size(n) for n in range(257, 5000))


def test_many_rows_are_predicted_a_chunk_at_a_time_as_in_one_pass(fitted_iris, monkeypatch):
    """All rows went through the network at once: a million rows through a layer of 4,096 units took 32 GB in
    float64 (scikit-learn's MLP too).  Now a chunk's input and layer outputs take at most CHUNK_BYTES."""
    layers = (((4, 10), "f8", (10,), "f8"), ((10, 5), "f8", (5,), "f8"), ((5, 3), "f8", (3,), "f8"))
    assert chunk_rows(layers, 8) == 1 << 20  # 2**28 bytes / (22 numbers of 8 bytes a row), a power of two
    assert chunk_rows((((1000, 4096), "f8", (4096,), "f8"),), 8) == 4096
    assert chunk_rows((((2, 4, 4096), "f8", (2, 4096), "f8"),), 8) == 2048  # an ensemble's two members
    x = np.random.default_rng(0).normal(size=(1000, 4))
    whole = fitted_iris.predict_proba(x), fitted_iris.predict(x), fitted_iris.hidden_activations(x)
    monkeypatch.setattr(prediction, "CHUNK_BYTES", 300 * 8 * 22)  # 256-row chunks: 3 whole, the last 232 rows
    assert chunk_rows(layers, 8) == 256
    padded = []
    monkeypatch.setattr(prediction, "pad_rows", lambda rows, n: padded.append((len(rows), n)) or pad_rows(rows, n))
    np.testing.assert_allclose(fitted_iris.predict_proba(x), whole[0], rtol=1e-13, atol=1e-15)
    assert padded == [(256, 256), (256, 256), (256, 256), (232, 256)]
    np.testing.assert_array_equal(fitted_iris.predict(x), whole[1])
    for chunked, at_once in zip(fitted_iris.hidden_activations(x), whole[2], strict=True):
        np.testing.assert_allclose(chunked, at_once, rtol=1e-13, atol=1e-15)


def test_predictions_are_writeable_however_many_rows_as_mlps(fitted_iris, monkeypatch):
    """A chunked prediction's arrays were concatenated copies (writeable), a single chunk's views of the device
    buffer (read-only): ``predict_proba(X) /= 2`` worked on 300 rows and raised on 10.  MLP's are writeable."""
    monkeypatch.setattr(prediction, "CHUNK_BYTES", 1)  # 256-row chunks
    x = np.random.default_rng(0).normal(size=(300, 4))
    for rows in (x[:10], x):
        arrays = [fitted_iris.predict_proba(rows), *fitted_iris.hidden_activations(rows), fitted_iris.transform(rows)]
        assert [a.flags.writeable for a in arrays] == [True] * len(arrays), len(rows)


@pytest.mark.parametrize(("shape", "dtype"), [((5, 3), np.float64), ((1000, 7), np.float32), ((9,), np.float32)])
def test_padded_rows_are_a_new_aligned_buffer_the_cpu_device_takes_without_copying(shape, dtype):
    array = np.random.default_rng(0).normal(size=shape).astype(dtype)[::-1]  # a view, not contiguous
    padded = pad_rows(array, padded_size(shape[0]))
    np.testing.assert_array_equal(padded[: shape[0]], array)
    assert not padded[shape[0] :].any() and padded.dtype == dtype and padded.flags.c_contiguous
    assert padded.ctypes.data % DEVICE_ALIGNMENT == 0 and not np.shares_memory(padded, array)
    with jax.enable_x64(dtype == np.float64):  # as the estimators place float64 data
        placed = jax.device_put(padded, jax.devices("cpu")[0])
        assert placed.unsafe_buffer_pointer() == padded.ctypes.data  # no second copy of the rows
        np.testing.assert_array_equal(placed, padded)
    assert pad_rows(array, shape[0]) is array  # nothing to pad: the array itself


def test_refitting_a_configuration_on_new_data_and_hyperparameters_compiles_nothing(iris):
    x, y = load_iris(return_X_y=True)
    x = StandardScaler().fit_transform(x)
    rng = np.random.default_rng(0)
    big_x = rng.normal(size=(1010, 4))
    big_y = (big_x[:, 0] + big_x[:, 1] > 0).astype(int)
    full_batch = NeuralNetClassifier((10, 5), random_state=0, learning_rate_init=0.01, max_iter=500)
    minibatch = NeuralNetClassifier((10, 5), batch_size=100, max_iter=5, random_state=0, learning_rate_init=0.01)
    full_batch.fit(x[:120], y[:120]).predict(x[:30])
    quietly(minibatch, big_x[:1000], big_y[:1000]).predict(big_x[:300])
    with compilations() as compiled:
        # Other rows and counts, another seed, learning rate and penalty: the same compiled code.
        full_batch.set_params(random_state=1, learning_rate_init=0.03, alpha=0.01).fit(x[7:120], y[7:120])
        full_batch.predict_proba(x[:29])
        quietly(minibatch.set_params(random_state=1, learning_rate_init=0.03), big_x[10:], big_y[10:])
        minibatch.predict(big_x[:290])
    assert padded_size(113) == padded_size(120) == 120
    assert padded_size(1000) == padded_size(1010) == 1024
    assert compiled == []


def test_a_new_max_iter_compiles_nothing_also_in_a_grid_search_over_it():
    """The loop runs in chunks of a fixed compiled length: max_iter is a runtime value, below one chunk,
    at its edge or over several, in a refit or in GridSearchCV's folds and final refit."""
    from jaxnn._loop import EPOCH_CHUNK, compiled_programs

    x, y = load_iris(return_X_y=True)
    x = StandardScaler().fit_transform(x)
    estimator = NeuralNetClassifier(
        (6, 4), solver="gd", max_iter=7, tol=0.0, n_iter_no_change=10**6, random_state=0, learning_rate_init=0.01
    )
    # The search trains on folds of 120 rows and refits on all 150 (padded to 160): two programs, built here.
    quietly(clone(estimator), x[:120], y[:120]).predict(x[:30])
    quietly(clone(estimator), x, y)
    before = compiled_programs()
    with compilations() as compiled:
        for max_iter in (1, 50, EPOCH_CHUNK, EPOCH_CHUNK + 1, 3 * EPOCH_CHUNK):
            assert quietly(clone(estimator).set_params(max_iter=max_iter), x, y).n_iter_ == max_iter
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            search = GridSearchCV(estimator, {"max_iter": [3, 30, 300, 2000]}, cv=5).fit(x, y)
    assert search.best_estimator_.n_iter_ == search.best_params_["max_iter"]
    assert compiled == [] and compiled_programs() == before


def test_a_first_fit_builds_one_program_and_prediction_one(iris):
    """The training loop is one program; the initial weights are NumPy's draws (init='mlp'), and the shuffle
    key's program is shared by every network (built here unless an earlier test built it); predict is one
    more for every size of 65 to 256 rows, and one for a single row (jaxnn.sklearn.prediction's buckets).
    A network no other test uses, so that nothing is built already."""
    estimator = NeuralNetClassifier((7, 3), solver="gd", max_iter=5, random_state=0, learning_rate_init=0.01)
    with compilations() as compiled:
        quietly(estimator, iris.x_train, iris.y_train)
    assert len([name for name in compiled if "_draw_shuffle_key" not in name]) == 1, compiled
    with compilations() as compiled:
        estimator.predict(iris.x_train)
        estimator.predict_proba(iris.x_train[:70])
    assert len(compiled) == 1, compiled
    with compilations() as compiled:
        estimator.predict_proba(iris.x_train[:1])
        estimator.predict(iris.x_train[-1:])
    assert len(compiled) == 1, compiled


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("init", ["glorot", "he", "normal", "small_normal", "uniform"])
def test_the_initial_weights_program_draws_model_inits_weights_bit_for_bit(init, dtype):
    from jaxnn.sklearn.initial_weights import start

    model = jaxnn.Sequential((jaxnn.Dense(6, "relu", init=init), jaxnn.Dense(3, "identity", init=init)))
    with jax.enable_x64(dtype == np.float64):
        for seed in (0, 3, 2**31 + 5, 2**32 - 1):
            params, shuffle_key = start(model, seed, 5, np.dtype(dtype))
            init_key, expected_key = training_keys(seed)
            expected = model.init(init_key, 5, dtype)
            for got, want in zip(jax.tree.leaves(params), jax.tree.leaves(expected), strict=True):
                assert got.dtype == dtype
                np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
            np.testing.assert_array_equal(jax.random.key_data(shuffle_key), jax.random.key_data(expected_key))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch_size", [None, 32], ids=["gd", "sgd_without_momentum"])
def test_plain_descent_with_an_l2_rate_equals_the_injected_optax_chain_bit_for_bit(iris, dtype, batch_size):
    """gd (and sgd without momentum) keep learning rate and L2 rate in a state of their own, so that the loop
    carries the layers folded; the arithmetic is that of optax's chain with injected rates, to the bit."""
    x, y = iris.x_train.astype(dtype), iris.y_train  # 112 rows: no padding
    k, learning_rate, alpha = 20, 0.1, 0.3
    solver = {"solver": "gd"} if batch_size is None else {"solver": "sgd", "momentum": 0.0, "batch_size": batch_size}
    estimator = NeuralNetClassifier(
        (10, 5), alpha=alpha, learning_rate_init=learning_rate, max_iter=k, n_iter_no_change=k, random_state=3,
        init="glorot", **solver,
    )  # fmt: skip
    quietly(estimator, x, y)

    def injected(rate, l2_rate):
        decay = optax.add_decayed_weights(l2_rate, mask=lambda params: [{"W": True, "b": False} for _ in params])
        return optax.chain(decay, optax.identity(), optax.scale(-rate))

    with jax.enable_x64(dtype == np.float64):
        init_key, shuffle_key = training_keys(3)
        model = _seed_network()
        params = jax.tree.map(lambda a: a.astype(dtype), model.init(init_key, 4, jnp.float32))  # float32 draws
        batch = len(x) if batch_size is None else batch_size
        optimizer = optax.inject_hyperparams(injected)(rate=learning_rate, l2_rate=alpha / batch)
        state = optimizer.init(params)
        rates = {name: jnp.asarray(value, dtype) for name, value in state.hyperparams.items()}
        core = jaxnn.fit(
            model, params, x, one_hot(y, 3).astype(dtype), loss="softmax_cross_entropy", epochs=k,
            optimizer=optimizer, opt_state=state._replace(hyperparams=rates), batch_size=batch_size, key=shuffle_key,
        )  # fmt: skip
    fitted = [*estimator.coefs_, *estimator.intercepts_]
    expected = [np.asarray(layer[name]) for name in ("W", "b") for layer in core.params]
    for got, want in zip(fitted, expected, strict=True):
        np.testing.assert_array_equal(got, want)


def test_fit_and_predict_turn_the_cache_on_for_the_process_unless_opted_out(tmp_path):
    """The estimators are entry points: a fit (and the first prediction) turns jaxnn's persistent compilation cache
    on for the rest of the process (jaxnn.compile_cache.enable_default), unless the user opted out or configured
    JAX's cache."""
    code = """
import json, jax, numpy as np
from jaxnn import NeuralNetClassifier
x = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
NeuralNetClassifier((4,), solver="gd", max_iter=3, random_state=0).fit(x, (x[:, 0] > 0).astype(int)).predict(x)
print(json.dumps([jax.config.jax_compilation_cache_dir, jax.config.jax_persistent_cache_min_compile_time_secs]))
"""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_COMPILATION", "JAXNN_"))}
    cache = tmp_path / "cache"
    for extra, expect_entries in (({}, True), ({"JAXNN_COMPILE_CACHE": "0"}, False)):
        env = {**environment, "JAXNN_CACHE_DIR": str(cache), **extra}
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        settings = json.loads(done.stdout.strip().splitlines()[-1])
        entries = sorted(path.name for path in cache.iterdir()) if cache.exists() else []
        if expect_entries:
            assert settings == [str(cache), 0.0]  # on, and left on
            assert any(name.startswith("jit__draw_shuffle_key") for name in entries), entries
            assert any(name.startswith("jit__network_predictions") for name in entries), entries
            shutil.rmtree(cache)
        else:
            assert settings == [None, 1.0]  # JAX's own defaults
            assert entries == []


# --------------------------------------------------------------------------------------------------
# Parameters.


def test_every_seed_activation_is_accepted_one_per_hidden_layer(iris):
    names = ["identity", "linear", "sigmoid", "tanh", "relu", "leaky_relu", "softmax", "binary_step"]
    estimator = quietly(
        NeuralNetClassifier((4,) * len(names), activation=names, random_state=0, max_iter=5, learning_rate_init=0.01),
        iris.x_train,
        iris.y_train,
    )
    assert estimator.n_layers_ == len(names) + 2
    assert [w.shape for w in estimator.coefs_] == [(4, 4)] * len(names) + [(4, 3)]
    assert np.all(np.isfinite(estimator.predict_proba(iris.x_test)))


def test_logistic_is_the_sigmoid(iris):
    fits = [
        quietly(
            NeuralNetClassifier((10, 5), activation=name, random_state=0, max_iter=5, learning_rate_init=0.01),
            iris.x_train,
            iris.y_train,
        )
        for name in ("logistic", ["sigmoid", "logistic"])
    ]
    for a, b in zip(fits[0].coefs_, fits[1].coefs_, strict=True):
        np.testing.assert_array_equal(a, b)


def test_an_optax_solver_is_used_as_given(iris):
    x, y = iris.x_train, iris.y_train
    common = dict(alpha=0.0, batch_size=32, max_iter=30, random_state=0)
    ours = quietly(
        NeuralNetClassifier(
            (10, 5), solver="sgd", learning_rate_init=0.05, momentum=0.9, nesterovs_momentum=False, **common
        ),
        x,
        y,
    )
    theirs = quietly(NeuralNetClassifier((10, 5), solver=optax.sgd(0.05, momentum=0.9), **common), x, y)
    for a, b in zip(ours.coefs_, theirs.coefs_, strict=True):
        np.testing.assert_array_equal(a, b)


def test_loss_override_picks_the_output_layer(iris):
    x, y = iris.x_train, iris.y_train
    categorical = NeuralNetClassifier(
        (10, 5), loss="categorical_cross_entropy", random_state=0, learning_rate_init=0.01, max_iter=500
    ).fit(x, y)
    assert categorical.out_activation_ == "softmax" and categorical.n_outputs_ == 3
    np.testing.assert_allclose(categorical.predict_proba(iris.x_test).sum(axis=1), 1.0, rtol=1e-12)
    assert categorical.score(iris.x_test, iris.y_test) >= 0.9

    two = y < 2
    binary = quietly(
        NeuralNetClassifier(
            (10, 5), loss="categorical_cross_entropy", max_iter=5, random_state=0, learning_rate_init=0.01
        ),
        x[two],
        y[two],
    )
    assert binary.out_activation_ == "softmax" and binary.n_outputs_ == 2
    with pytest.raises(ValueError, match=r"'binary_cross_entropy' is for two classes .* but the target has 3 classes"):
        NeuralNetClassifier(loss="binary_cross_entropy", learning_rate_init=0.01, max_iter=500).fit(x, y)
    with pytest.raises(ValueError, match="classification loss"):
        NeuralNetRegressor(loss="softmax_cross_entropy", learning_rate_init=0.01, max_iter=500).fit(x, x[:, 0])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"hidden_layer_sizes": (10, 0)}, "hidden_layer_sizes must be a positive integer or a sequence"),
        ({"hidden_layer_sizes": "10"}, "hidden_layer_sizes must be"),
        ({"activation": "swish"}, "activation must be one of"),
        (
            {"hidden_layer_sizes": (3, 3), "activation": ["relu"]},
            "activation lists 1 names but hidden_layer_sizes has 2",
        ),
        ({"solver": "bfgs"}, "solver must be 'lbfgs', 'gd', 'sgd', 'adam' or an optax.GradientTransformation"),
        ({"hidden_layer_sizes": ""}, "hidden_layer_sizes must be"),  # a str is a sequence: '' had meant ()
        ({"hidden_layer_sizes": np.array(3)}, "hidden_layer_sizes must be"),  # had been NumPy's 0-d TypeError
        ({"hidden_layer_sizes": b"\x05"}, "hidden_layer_sizes must be"),  # bytes are ints: had been one layer of 5
        # an array holding a name had passed `in SOLVERS` (or raised NumPy's ambiguous-truth error)
        ({"solver": np.array("sgd")}, "solver must be 'lbfgs', 'gd', 'sgd', 'adam' or an optax"),
        ({"solver": np.array(["adam", "gd"])}, "solver must be 'lbfgs', 'gd', 'sgd', 'adam' or an optax"),
        ({"learning_rate_init": 0.0}, "learning_rate_init must be a finite positive number"),
        ({"epsilon": np.inf}, r"epsilon must be a finite positive number \(not a bool\), got inf"),
        ({"alpha": -1.0}, "alpha must be a finite non-negative number"),
        ({"alpha": False}, r"alpha must be a finite non-negative number \(not a bool\), got False"),
        # had been Python's OverflowError; the value is shown cut to 80 characters, as elsewhere
        ({"momentum": 10**400}, r"momentum must be a finite non-negative number \(not a bool\), got 10{79}$"),
        ({"tol": -(10**400)}, "tol must be a finite non-negative number"),
        ({"max_iter": 0}, "max_iter must be a positive integer"),
        ({"batch_size": 0}, "batch_size must be 'auto' or a positive integer"),
        # checked as MLP checks it, also where the solver does not read it (gd trains on the full batch)
        ({"solver": "gd", "batch_size": "all"}, "batch_size must be 'auto' or a positive integer, got 'all'"),
        ({"validation_fraction": 1.0}, r"validation_fraction must be a number in \[0, 1\)"),
        ({"early_stopping": "yes"}, "early_stopping must be True or False"),
        ({"init": "xavier"}, "init must be one of"),
        ({"loss": 3}, "loss must be 'auto', one of"),
        ({"loss": "hinge"}, "unknown loss 'hinge'; choose 'auto' or one of: "),
        ({"verbose": "x"}, "verbose must be True, False or an integer >= 0, got 'x'"),
        ({"verbose": -1}, "verbose must be True, False or an integer >= 0, got -1"),
    ],
)
def test_bad_parameters_are_named_at_fit(params, message):
    x, y = np.random.default_rng(0).normal(size=(20, 3)), np.arange(20) % 2
    estimator = NeuralNetClassifier(**params)  # __init__ only stores: clone and set_params never fail
    assert clone(estimator).get_params()["max_iter"] == estimator.max_iter
    with pytest.raises(InvalidParameterError, match=message):  # scikit-learn's: a ValueError and a TypeError
        estimator.fit(x, y)


def test_max_iter_past_the_epoch_counter_is_refused_with_advice_that_fits_the_fit():
    """The loop counts epochs in 32 bits.  A fresh fit is told to lower max_iter (it had been told to refit with
    warm_start=False, which it already was); a continued one is also offered a fresh fit."""
    x, y = np.random.default_rng(0).normal(size=(20, 3)), np.arange(20) % 2
    with pytest.raises(ValueError, match=r"max_iter=4294967296 epochs pass the 32-bit epoch counter.*; lower max_iter"):
        NeuralNetClassifier((3,), max_iter=2**32).fit(x, y)
    fitted = quietly(NeuralNetClassifier((3,), max_iter=3, warm_start=True), x, y)
    advice = r"max_iter=4294967295 epochs after the 3 trained pass .*; refit with warm_start=False or lower max_iter"
    with pytest.raises(ValueError, match=advice):
        fitted.set_params(max_iter=2**32 - 1).fit(x, y)
    assert fitted.n_iter_ == 3  # refused before training: the fit is as it was


@pytest.mark.parametrize(
    "params", [{"tol": "a"}, {"max_iter": 0}, {"verbose": "x"}, {"verbose": -1}], ids=lambda p: repr(p)[1:-1]
)
def test_bad_parameters_raise_what_mlp_raises(params):
    x, y = np.random.default_rng(0).normal(size=(20, 3)), np.arange(20) % 2
    with pytest.raises(ValueError) as theirs:
        MLPClassifier((3,), **params).fit(x, y)
    with pytest.raises(ValueError) as ours:
        NeuralNetClassifier((3,), **params).fit(x, y)
    assert type(ours.value) is type(theirs.value) and isinstance(ours.value, TypeError)  # code catching TypeError
    for verbose in (True, np.bool_(False), 0, np.int64(2)):  # what MLP's verbose takes
        assert check_params(NeuralNetClassifier(verbose=verbose)).max_iter == 200


def test_hidden_layer_sizes_may_be_a_numpy_array_as_in_mlp():
    # scikit-learn's MLP takes any array-like; the dropout rule once asked a NumPy array for its truth value
    x, y = np.random.default_rng(0).normal(size=(20, 3)), np.arange(20) % 2
    net = quietly(NeuralNetClassifier(np.array([5, 3]), max_iter=2, learning_rate_init=0.01, random_state=0), x, y)
    assert [w.shape for w in net.coefs_] == [(3, 5), (5, 3), (3, 1)]
    net = quietly(NeuralNetClassifier(np.array([], dtype=int), max_iter=2, learning_rate_init=0.01), x, y)
    assert net.n_layers_ == 2


@pytest.mark.parametrize(
    "seed",
    [2**70, 2**32, -1, np.int64(-3), 1.5, "0", np.random.default_rng(0)],
    ids=["2**70", "2**32", "-1", "np.int64(-3)", "float", "text", "Generator"],
)
def test_random_state_outside_scikit_learns_range_is_named_at_fit(seed):
    x, y = np.random.default_rng(0).normal(size=(20, 3)), np.arange(20) % 2
    # scikit-learn's MLP and check_random_state accept ints in [0, 2**32 - 1] only
    with pytest.raises(ValueError, match=r"random_state must be an int in the range \[0, 4294967295\]"):
        NeuralNetClassifier((3,), max_iter=2, random_state=seed, learning_rate_init=0.01).fit(x, y)
    for seed in (0, 2**32 - 1, np.uint32(2**32 - 1), np.random.RandomState(0)):  # the edges of the range still fit
        quietly(NeuralNetClassifier((3,), max_iter=2, random_state=seed, learning_rate_init=0.01), x, y)


# --------------------------------------------------------------------------------------------------
# Methods and attributes.


@pytest.fixture(scope="module")
def fitted_iris(iris):
    return NeuralNetClassifier((10, 5), random_state=0, learning_rate_init=0.01, max_iter=500).fit(
        iris.x_train, IRIS_NAMES[iris.y_train]
    )


def test_attributes_follow_mlpclassifier(fitted_iris):
    net = fitted_iris
    np.testing.assert_array_equal(net.classes_, IRIS_NAMES)
    assert [w.shape for w in net.coefs_] == [(4, 10), (10, 5), (5, 3)]
    assert [b.shape for b in net.intercepts_] == [(10,), (5,), (3,)]
    assert all(isinstance(a, np.ndarray) for a in net.coefs_ + net.intercepts_)
    assert (net.n_layers_, net.n_outputs_, net.out_activation_, net.n_features_in_) == (4, 3, "softmax", 4)
    assert len(net.loss_curve_) == net.n_iter_ and net.loss_ == net.loss_curve_[-1]
    assert net.best_loss_ == min(net.loss_curve_)
    assert net.validation_scores_ is None and net.best_validation_score_ is None


def test_string_labels_predict_strings_and_probabilities_in_class_order(fitted_iris, iris):
    predicted = fitted_iris.predict(iris.x_test)
    assert predicted.dtype == IRIS_NAMES.dtype
    assert np.mean(predicted == IRIS_NAMES[iris.y_test]) >= 0.97
    probabilities = fitted_iris.predict_proba(iris.x_test)
    np.testing.assert_array_equal(fitted_iris.classes_[probabilities.argmax(axis=1)], predicted)
    np.testing.assert_allclose(np.exp(fitted_iris.predict_log_proba(iris.x_test)), probabilities, rtol=1e-12)


def test_two_classes_use_one_sigmoid_output_and_any_label_type(iris):
    two = iris.y_train > 0
    labels = np.where(iris.y_train[two] == 1, "no", "yes")
    net = NeuralNetClassifier((10, 5), random_state=0, learning_rate_init=0.01, max_iter=500).fit(
        iris.x_train[two], labels
    )
    assert (net.out_activation_, net.n_outputs_) == ("logistic", 1)
    np.testing.assert_array_equal(net.classes_, ["no", "yes"])
    probabilities = net.predict_proba(iris.x_test)
    assert probabilities.shape == (len(iris.x_test), 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert set(net.predict(iris.x_test)) <= {"no", "yes"}


@pytest.mark.parametrize("partial", [False, True])
def test_labels_held_as_python_objects_give_mlps_classes_dtype(iris, partial):
    """Strings in an object array (as a pandas Categorical or an object column arrives) are MLP's ``<U`` classes,
    and predictions of that dtype; labels of types that cannot be sorted together are a clear error."""
    labels = np.array(["setosa", "versicolor", "virginica"], dtype=object)[iris.y_train]
    options = dict(hidden_layer_sizes=(4,), max_iter=3, random_state=0)

    def fit(estimator):  # partial_fit never warns; a 3-epoch fit does
        if partial:
            return estimator.partial_fit(iris.x_train, labels, classes=np.unique(labels))
        return quietly(estimator, iris.x_train, labels)

    mlp, net = fit(MLPClassifier(**options)), fit(NeuralNetClassifier(**options))
    assert net.classes_.dtype == mlp.classes_.dtype == np.dtype("<U10")
    np.testing.assert_array_equal(net.classes_, mlp.classes_)
    assert net.predict(iris.x_test).dtype == mlp.predict(iris.x_test).dtype
    mixed = np.array([0, 1, 2, "other"], dtype=object)
    with pytest.raises(TypeError, match="classes mixes labels of types int, str, which cannot be sorted"):
        NeuralNetClassifier(**options).partial_fit(iris.x_train, iris.y_train, classes=mixed)


def test_a_fitted_estimator_survives_a_pickle_round_trip(fitted_iris, iris):
    restored = pickle.loads(pickle.dumps(fitted_iris))
    np.testing.assert_array_equal(restored.predict_proba(iris.x_test), fitted_iris.predict_proba(iris.x_test))
    np.testing.assert_array_equal(restored.predict(iris.x_test), fitted_iris.predict(iris.x_test))


def test_a_loaded_or_copied_estimators_weights_stay_read_only(fitted_iris, iris):
    """pickle, joblib and copy.deepcopy gave back writeable coefs_/intercepts_ (README: the fitted ones are read-only,
    so prediction keeps them placed); a layer the user made writeable before pickling stays writeable."""
    ensemble = NeuralNetRegressor((3,), n_ensemble=2, max_iter=3, random_state=0)
    quietly(ensemble, iris.x_train, iris.y_train.astype(float))
    joblib.dump(fitted_iris, buffer := io.BytesIO())
    loaded = [pickle.loads(pickle.dumps(fitted_iris)), joblib.load(io.BytesIO(buffer.getvalue()))]
    for restored in [*loaded, copy.deepcopy(fitted_iris)]:
        assert not any(array.flags.writeable for array in restored.coefs_ + restored.intercepts_)
        np.testing.assert_array_equal(restored.predict_proba(iris.x_test), fitted_iris.predict_proba(iris.x_test))
    restored = pickle.loads(pickle.dumps(ensemble))
    assert not any(a.flags.writeable for a in restored.ensemble_coefs_ + restored.ensemble_intercepts_)
    edited = copy.deepcopy(fitted_iris)
    edited.coefs_[0] = edited.coefs_[0].copy()
    restored = pickle.loads(pickle.dumps(edited))
    assert restored.coefs_[0].flags.writeable and not restored.coefs_[1].flags.writeable
    restored.coefs_[0][:] = 0  # an edit in place is still seen
    assert not np.array_equal(restored.predict_proba(iris.x_test), fitted_iris.predict_proba(iris.x_test))


def test_weights_kept_placed_cannot_change_behind_the_estimators_back(fitted_iris, iris, monkeypatch):
    """Prediction keeps the weights placed while the estimator holds the same read-only arrays.  Arrays that owned
    their memory (from_sklearn's, a pickle's, an ensemble's) could be made writeable again and edited in place, and a
    user's read-only view of a writeable array changes with it: predictions then ran on the old weights, or on a
    mix (jax.device_put aliases an aligned NumPy buffer on the CPU).  Those are placed again on every call now."""
    ensemble = NeuralNetRegressor((3,), n_ensemble=2, max_iter=3, random_state=0)
    quietly(ensemble, iris.x_train, iris.y_train.astype(float))
    estimators = [
        fitted_iris,
        pickle.loads(pickle.dumps(fitted_iris)),
        type(fitted_iris).from_sklearn(fitted_iris.to_sklearn()),
        ensemble,
    ]
    for estimator in estimators:
        arrays = estimator.ensemble_coefs_ if hasattr(estimator, "ensemble_coefs_") else estimator.coefs_
        for array in arrays:
            with pytest.raises(ValueError, match="cannot set WRITEABLE flag to True"):
                array.setflags(write=True)
    placements = []
    place = jaxnn.sklearn.prediction.placed
    monkeypatch.setattr(jaxnn.sklearn.prediction, "placed", lambda *a: placements.append(1) or place(*a))
    estimator = copy.deepcopy(fitted_iris)
    for _ in range(3):
        estimator.predict_proba(iris.x_test)
    assert len(placements) == 1  # the fitted arrays: placed once
    owners = [array.copy() for array in estimator.coefs_]
    views = [owner.view() for owner in owners]
    for view in views:
        view.setflags(write=False)
    estimator.coefs_ = views
    before = estimator.predict_proba(iris.x_test)
    for owner in owners:
        owner[...] = 0.0  # through the user's writeable array
    after = estimator.predict_proba(iris.x_test)
    np.testing.assert_allclose(after, estimator.to_sklearn().predict_proba(iris.x_test), rtol=1e-6)
    assert not np.allclose(before, after)


def test_finite_input_that_sums_past_its_range_predicts_without_a_warning_as_mlps(fitted_iris, iris):
    """The fast path's one-sum finiteness check warned of an overflow (and raised under np.errstate(all='raise'))
    where scikit-learn's own check, and MLP, say nothing."""
    huge = np.full((8, fitted_iris.n_features_in_), 1e307)  # each finite, their sum beyond float64's range
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        checked = jaxnn.sklearn.prediction.checked_input(fitted_iris, huge)
    np.testing.assert_array_equal(checked, huge.astype(checked.dtype))


def test_assigned_weights_of_other_shapes_are_named_at_predict(fitted_iris, iris):
    """coefs_ replaced by arrays of other shapes reached JAX's compiled program ('Argument types differ from the
    types for which this computation was compiled ... enable_x64 mode'); an appended layer, zip's 'argument 2 is
    shorter than argument 1'.  Each is a ValueError naming the layer and the shapes; predict, predict_proba and
    transform alike, an ensemble's too."""
    edits = {
        "other shape": lambda net: setattr(net, "coefs_", [np.zeros((2, 10)), *net.coefs_[1:]]),
        "appended layer": lambda net: net.coefs_.append(np.zeros((3, 3))),
        "layer dropped": lambda net: setattr(net, "intercepts_", net.intercepts_[:-1]),
    }
    messages = {
        "other shape": "layer 0 (10 units) expects W of shape (4, 10) and b of shape (10,), got W (2, 10)",
        "appended layer": "coefs_ holds 4 layers and intercepts_ 3, for a network of 3",
        "layer dropped": "coefs_ holds 3 layers and intercepts_ 2, for a network of 3",
    }
    for name, edit in edits.items():
        net = copy.deepcopy(fitted_iris)
        edit(net)
        for method in (net.predict, net.predict_proba):
            with pytest.raises(ValueError, match=re.escape("coefs_ and intercepts_ do not fit the network: ")):
                method(iris.x_test)
        with pytest.raises(ValueError, match=re.escape(messages[name])):
            net.predict(iris.x_test)
    net = copy.deepcopy(fitted_iris)
    net.coefs_ = [np.zeros((2, 10)), *net.coefs_[1:]]
    with pytest.raises(ValueError, match=re.escape("expects W of shape (4, 10) and b of shape (10,), got W (2, 10)")):
        net.transform(iris.x_test)
    ensemble = quietly(NeuralNetClassifier((3,), n_ensemble=2, max_iter=3, random_state=0), iris.x_train, iris.y_train)
    ensemble.ensemble_coefs_ = [ensemble.ensemble_coefs_[0][:, :, :2], ensemble.ensemble_coefs_[1]]
    with pytest.raises(ValueError, match=re.escape("ensemble_coefs_ and ensemble_intercepts_ do not fit")):
        ensemble.predict(iris.x_test)
    ensemble.ensemble_coefs_ = [ensemble.ensemble_coefs_[0][:1], ensemble.ensemble_coefs_[1]]
    with pytest.raises(ValueError, match=re.escape("hold [1, 2] members on their first axis")):
        ensemble.predict(iris.x_test)


def test_a_pickle_records_jaxnns_version_and_another_version_warns_on_loading(fitted_iris, iris):
    """As scikit-learn's ``_sklearn_version``: a pickle made by another jaxnn (simulated by another
    ``jaxnn.__version__`` while pickling), or by one from before versions were recorded, warns naming both
    versions; this version's loads silently."""
    state = fitted_iris.__getstate__()
    assert state["_jaxnn_version"] == jaxnn.__version__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pickle.loads(pickle.dumps(fitted_iris))  # the same version: no warning

    with pytest.MonkeyPatch.context() as patch:  # another jaxnn pickles it
        patch.setattr(jaxnn, "__version__", "0.0.1")
        data = pickle.dumps(fitted_iris)
    with pytest.warns(InconsistentJaxnnVersionWarning) as caught:
        restored = pickle.loads(data)
    message = str(caught[0].message)
    assert f"pickled by jaxnn 0.0.1 and is loaded by jaxnn {jaxnn.__version__}" in message
    assert "may not load completely, or predict as it did" in message
    assert caught[0].filename == __file__  # the line that loaded it
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(jaxnn, "__version__", "0.0.1")
        joblib.dump(fitted_iris, buffer := io.BytesIO())
    with pytest.warns(InconsistentJaxnnVersionWarning) as caught:
        joblib.load(io.BytesIO(buffer.getvalue()))  # joblib's unpickler runs in pickle.py: not the line named
    assert caught[0].filename == __file__
    assert "_jaxnn_version" not in restored.__dict__
    np.testing.assert_array_equal(restored.predict_proba(iris.x_test), fitted_iris.predict_proba(iris.x_test))

    unrecorded = {k: v for k, v in state.items() if k != "_jaxnn_version"}
    with pytest.warns(InconsistentJaxnnVersionWarning, match="pickled by a jaxnn from before pickles recorded their"):
        NeuralNetClassifier().__setstate__(unrecorded)


def test_a_pickle_from_before_a_parameter_existed_gets_its_default(iris):
    """A pickle made before ``scoring`` existed (jaxnn's pickles of early December lack it and record no version):
    it loads with the version warning and the parameter's default, so get_params, repr, partial_fit and a warm-start
    fit work (they failed with "'NeuralNetClassifier' object has no attribute 'scoring'") and predict as before."""
    net = quietly(NeuralNetClassifier((5,), random_state=0, solver="sgd", max_iter=5), iris.x_train, iris.y_train)
    old = {k: v for k, v in net.__getstate__().items() if k not in ("scoring", "_jaxnn_version", "_jaxnn_read_only")}
    loaded = NeuralNetClassifier.__new__(NeuralNetClassifier)
    with pytest.warns(InconsistentJaxnnVersionWarning, match="from before pickles recorded their version"):
        loaded.__setstate__(old)
    assert loaded.get_params()["scoring"] is None and "NeuralNetClassifier" in repr(loaded)
    np.testing.assert_array_equal(loaded.predict(iris.x_test), net.predict(iris.x_test))
    loaded.partial_fit(iris.x_train, iris.y_train)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        loaded.set_params(warm_start=True, max_iter=2).fit(iris.x_train, iris.y_train)
    assert np.isfinite(loaded.score(iris.x_test, iris.y_test))
    assert pickle.loads(pickle.dumps(loaded)).get_params()["scoring"] is None


def test_a_pickle_holds_no_jax_objects_and_partial_fit_continues_the_same(iris):
    """After predict (compiled programs and placed weights cached) the pickle names no JAX module, so it loads
    where JAX's devices differ; a loaded network's partial_fit continues exactly as the original's."""
    net = quietly(NeuralNetClassifier((5,), random_state=0, solver="sgd"), iris.x_train, iris.y_train)
    net.partial_fit(iris.x_train, iris.y_train)
    net.predict(iris.x_test)
    data = pickle.dumps(net)
    assert b"jax." not in data and b"jaxlib" not in data
    restored = pickle.loads(data)
    for network in (net, restored):
        network.partial_fit(iris.x_train, iris.y_train)
    np.testing.assert_array_equal(restored.coefs_[0], net.coefs_[0])
    np.testing.assert_array_equal(restored.predict_proba(iris.x_test), net.predict_proba(iris.x_test))


def test_predictions_do_not_depend_on_which_other_rows_are_predicted(fitted_iris, iris):
    x = np.vstack([iris.x_test] * 4)  # 152 rows; subsets land on many different padded sizes
    everything = fitted_iris.predict_proba(x)
    for size in (1, 15, 16, 17, 33, 100, 151):
        np.testing.assert_allclose(fitted_iris.predict_proba(x[:size]), everything[:size], rtol=1e-12, atol=1e-15)


def test_methods_before_fit_raise_not_fitted_error(iris):
    for estimator, methods in [
        (
            NeuralNetClassifier(learning_rate_init=0.01, max_iter=500),
            ("predict", "predict_proba", "predict_log_proba", "score"),
        ),
        (NeuralNetRegressor(learning_rate_init=0.01, max_iter=500, loss="auto"), ("predict", "score")),
    ]:
        for method in methods:
            args = (iris.x_test, iris.y_test) if method == "score" else (iris.x_test,)
            with pytest.raises(NotFittedError):
                getattr(estimator, method)(*args)


def test_partial_fit_trains_one_epoch_per_call(iris):
    x, y = iris.x_train, iris.y_train
    net = NeuralNetClassifier((10, 5), random_state=0, learning_rate_init=0.01, max_iter=500)
    with pytest.raises(
        ValueError, match=r"^classes must be passed on the first call to partial_fit\. jaxnn: .* needs classes="
    ):
        net.partial_fit(x, y)
    for _ in range(30):
        net.partial_fit(x, y, classes=[0, 1, 2])
    assert len(net.loss_curve_) == 30 and net.n_iter_ == 1
    assert net.loss_curve_[-1] < 0.5 * net.loss_curve_[0]
    with pytest.raises(ValueError, match=r"labels \[7\] that are not among the classes \[0, 1, 2\]"):
        net.partial_fit(x[:5], np.full(5, 7))
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping"):
        NeuralNetClassifier(early_stopping=True, learning_rate_init=0.01, max_iter=500).partial_fit(
            x, y, classes=[0, 1, 2]
        )


def test_a_first_partial_fit_names_the_labels_its_classes_miss(iris):
    net = NeuralNetClassifier((10, 5), random_state=0, learning_rate_init=0.01, max_iter=500)
    with pytest.raises(ValueError, match=r"y holds labels \[2\] that are not in classes=\[0, 1\]") as info:
        net.partial_fit(iris.x_train, iris.y_train, classes=[1, 0])
    assert "warm_start" not in str(info.value)  # there is nothing to refit on a first call
    assert not net.__sklearn_is_fitted__() and not hasattr(net, "classes_")


def test_early_stopping_keeps_the_weights_of_the_best_validation_epoch(iris):
    x, y = iris.x_train, iris.y_train
    net = NeuralNetClassifier(
        (10, 5), early_stopping=True, validation_fraction=0.2, random_state=5, learning_rate_init=0.01, max_iter=500
    ).fit(x, y)
    assert len(net.validation_scores_) == net.n_iter_
    assert net.best_validation_score_ == max(net.validation_scores_)
    assert net.best_loss_ is None
    # The held-out part is train_test_split(..., random_state=RandomState(random_state)); scikit-learn's MLP
    # stratifies only a single-output target (n_outputs_ == 1), so three classes are split unstratified.
    split = train_test_split(x, y, test_size=0.2, random_state=np.random.RandomState(5))
    x_val, y_val = split[1], split[3]
    assert net.score(x_val, y_val) == pytest.approx(net.best_validation_score_, abs=1e-12)


def test_verbose_prints_each_epoch_and_a_truncated_fit_warns(iris, capsys):
    net = NeuralNetClassifier((10, 5), solver="gd", max_iter=3, verbose=True, random_state=0, learning_rate_init=0.01)
    with pytest.warns(ConvergenceWarning, match="reached max_iter=3 epochs before the training loss stopped improving"):
        net.fit(iris.x_train, iris.y_train)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(",")[0] for line in lines] == ["Iteration 1", "Iteration 2", "Iteration 3"]


@pytest.mark.parametrize(
    ("options", "watched"),
    [({}, "Training loss"), ({"early_stopping": True}, "Validation score"), ({"solver": "sgd"}, "Training loss")],
)
def test_verbose_ends_a_fit_the_stopping_rule_ended_with_mlps_line(options, watched, capsys):
    x = np.random.default_rng(0).normal(size=(40, 2))
    settings = dict(tol=10.0, n_iter_no_change=2, max_iter=50, random_state=0, verbose=True, **options)
    net = NeuralNetClassifier((3,), **settings).fit(x, x[:, 0] > 0)
    MLPClassifier((3,), **settings).fit(x, x[:, 0] > 0)  # its lines follow the network's
    ours, mlps = np.split(np.array(capsys.readouterr().out.splitlines()), 2)
    stop = f"{watched} did not improve more than tol=10.000000 for 2 consecutive epochs. Stopping."
    assert net.n_iter_ == 4 and ours[-1] == stop and ours.tolist() == mlps.tolist()


@pytest.mark.parametrize("continuation", ["warm_start", "partial_fit"])
def test_verbose_numbers_each_continued_fits_epochs_from_one_as_mlp(continuation, capsys):
    """A fit that continues another prints its own epochs from "Iteration 1", as MLP does (and as n_iter_ counts
    them); they were numbered on from the earlier fits'."""
    x = np.random.default_rng(0).normal(size=(30, 3))
    y = (x[:, 0] > 0).astype(int)
    lines = []
    for estimator in (NeuralNetClassifier, MLPClassifier):
        net = estimator((3,), max_iter=2, random_state=0, verbose=True, warm_start=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for _ in range(2):
                net.fit(x, y) if continuation == "warm_start" else net.partial_fit(x, y, classes=[0, 1])
        lines.append([line.split(",")[0] for line in capsys.readouterr().out.splitlines()])
    ours, mlps = lines
    assert ours == mlps == (["Iteration 1", "Iteration 2"] * 2 if continuation == "warm_start" else ["Iteration 1"] * 2)


def _line_shapes(text: str) -> list[str]:
    """Verbose output with each line's trailing number (a loss, a score) blanked: the lines' shapes."""
    return [re.sub(r"(= |: )-?[\d.]+$", r"\g<1>#", line) for line in text.splitlines()]


@pytest.mark.parametrize("early_stopping", [False, True])
def test_verbose_prints_mlps_line_where_adaptive_lowers_the_rate(early_stopping, capsys):
    """sgd's learning_rate='adaptive' prints MLP's "… Setting learning rate to …" line after each epoch whose plateau
    divided the rate by 5, in MLP's order; the compiled loop does not report them (tol=10: every epoch is one
    without improvement, so both rates drop after every third epoch, whatever the losses)."""
    x = np.random.default_rng(0).normal(size=(40, 2))
    settings = dict(solver="sgd", learning_rate="adaptive", learning_rate_init=0.1, tol=10.0, n_iter_no_change=2)
    settings.update(max_iter=200, random_state=0, verbose=True, early_stopping=early_stopping)
    shapes = []
    for estimator in (NeuralNetClassifier, MLPClassifier):
        estimator((3,), **settings).fit(x, x[:, 0] > 0)
        shapes.append(_line_shapes(capsys.readouterr().out))
    ours, mlps = shapes
    watched = "Validation score" if early_stopping else "Training loss"
    lowered = [line for line in ours if line.endswith("Setting learning rate to 0.020000")]
    assert ours == mlps and lowered == [
        f"{watched} did not improve more than tol=10.000000 for 2 consecutive epochs. Setting learning rate to 0.020000"
    ]
    assert sum("Setting learning rate" in line for line in ours) == 8


# sgd's adaptive rate on a small problem where it is lowered at least twice (tol=1e-3 lets the losses decide)
DROPPING_RATE = dict(
    solver="sgd", learning_rate="adaptive", learning_rate_init=0.5, tol=1e-3, n_iter_no_change=3, batch_size=10,
    max_iter=300, random_state=0, verbose=True,
)  # fmt: skip


def test_verbose_rate_lines_are_the_drops_the_loop_made(capsys):
    """With a tol the losses decide, the printed drops are the loop's: k lines, and the fit ends at rate η₀ / 5**k."""
    from jaxnn.optimizers import learning_rate_of

    x = np.random.default_rng(0).normal(size=(60, 3))
    net = NeuralNetClassifier((4,), **DROPPING_RATE).fit(x, x[:, 0] + x[:, 1] ** 2 > 0.5)
    drops = [line for line in capsys.readouterr().out.splitlines() if "Setting learning rate" in line]
    assert len(drops) >= 2
    assert float(learning_rate_of(net._optimizer_state)) == pytest.approx(0.5 / 5 ** len(drops), rel=1e-5)


@pytest.mark.parametrize("early_stopping", [False, True])
def test_rate_drops_replays_mlps_adaptive_rule(early_stopping):
    """rate_drops on an MLP's own curve (loss_curve_, or validation_scores_) finds the epochs and rates of the
    "Setting learning rate to" lines that MLP printed while it trained."""
    x = np.random.default_rng(0).normal(size=(60, 3))
    mlp = MLPClassifier((4,), **DROPPING_RATE, early_stopping=early_stopping)
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        mlp.fit(x, x[:, 0] + x[:, 1] ** 2 > 0.5)
    printed, epoch = {}, -1
    for line in output.getvalue().splitlines():
        epoch += line.startswith("Iteration")
        if "Setting learning rate to" in line:
            printed[epoch] = line.rsplit(" ", 1)[1]
    curve = mlp.validation_scores_ if early_stopping else mlp.loss_curve_
    replayed = rate_drops(curve, maximize=early_stopping, tol=1e-3, n_iter_no_change=3, rate=0.5)
    assert len(printed) >= 2 and {i: f"{rate:f}" for i, rate in replayed.items()} == printed


@pytest.mark.parametrize(("solver", "learning_rate"), [("sgd", "adaptive"), ("sgd", "constant"), ("adam", "constant")])
def test_verbose_partial_fit_prints_mlps_plateau_lines(solver, learning_rate, capsys):
    """partial_fit prints MLP's lines for a plateau after the call's epoch: the rate lowered (adaptive), or
    "… Stopping." (MLP's partial_fit prints it and trains on at the next call)."""
    x = np.random.default_rng(0).normal(size=(40, 2))
    settings = dict(solver=solver, learning_rate=learning_rate, learning_rate_init=1e-4, tol=10.0, n_iter_no_change=1)
    shapes = []
    for estimator in (NeuralNetClassifier, MLPClassifier):
        net = estimator((3,), random_state=0, verbose=True, **settings)
        for _ in range(8):
            net.partial_fit(x, x[:, 0] > 0, classes=[False, True])
        shapes.append(_line_shapes(capsys.readouterr().out))
    ours, mlps = shapes
    assert ours == mlps and len(ours) > 8


@pytest.mark.parametrize("first", [True, False])
def test_warm_start_that_switches_early_stopping_has_a_fresh_fits_attributes_of_the_new_setting(first):
    """Switching early_stopping between warm_start fits changes the watched value: the attributes of the one
    no longer watched go (None, as a fresh fit of the new setting has them), the watched one starts with this fit
    (MLP's continued fit crashes on the switch, reading None as a number or list)."""
    x = np.random.default_rng(0).normal(size=(40, 2))
    net = quietly(
        NeuralNetClassifier((3,), warm_start=True, max_iter=5, random_state=0, early_stopping=first), x, x[:, 0] > 0
    )
    quietly(net.set_params(early_stopping=not first), x, x[:, 0] > 0)
    fresh = quietly(NeuralNetClassifier((3,), max_iter=5, random_state=0, early_stopping=not first), x, x[:, 0] > 0)
    assert len(net.loss_curve_) == 10
    for name in ("validation_scores_", "validation_loss_curve_", "best_validation_score_", "best_loss_"):
        assert (getattr(net, name) is None) == (getattr(fresh, name) is None), name
    if first:  # switched off: the best loss of this fit's epochs, the rule's own
        assert net.best_loss_ == min(net.loss_curve_[5:])
    else:
        assert len(net.validation_scores_) == len(net.validation_loss_curve_) == 5
        assert net.best_validation_score_ == max(net.validation_scores_)


def test_partial_fit_after_an_early_stopping_fit_drops_its_validation_attributes():
    x = np.random.default_rng(0).normal(size=(40, 2))
    net = quietly(NeuralNetClassifier((3,), max_iter=5, random_state=0, early_stopping=True), x, x[:, 0] > 0)
    net.set_params(early_stopping=False).partial_fit(x, x[:, 0] > 0)
    assert net.validation_scores_ is net.validation_loss_curve_ is net.best_validation_score_ is None
    assert net.best_loss_ == net.loss_curve_[-1]


def test_partial_fit_after_switching_early_stopping_off_counts_its_plateau_from_the_switch(capsys):
    """The plateau count of partial_fit (which lowers an adaptive rate) compares with the best training loss since
    the switch, as best_loss_ is: it compared with the whole curve, the early-stopping fit's epochs included, and
    lowered the rate after two calls that each improved on the one before."""
    x = np.random.default_rng(0).normal(size=(60, 2))
    settings = dict(solver="sgd", learning_rate="adaptive", learning_rate_init=0.1, momentum=0.0, tol=0.0)
    net = quietly(
        NeuralNetClassifier((8,), max_iter=30, early_stopping=True, n_iter_no_change=1, random_state=0, **settings),
        x,
        x[:, 0] > 0,
    )
    net.set_params(early_stopping=False, verbose=True)
    flipped = x[:, 0] <= 0  # a higher loss than the fit reached, falling with each call
    for _ in range(3):
        net.partial_fit(x, flipped)
    assert np.all(np.diff(net.loss_curve_[-3:]) < 0), net.loss_curve_[-3:]
    assert "Setting learning rate to" not in capsys.readouterr().out


def test_regressor_predicts_in_the_shape_of_y(iris):
    x = iris.x_train
    targets = np.column_stack([x[:, 0] - x[:, 1], x[:, 2] * 0.5])
    two = NeuralNetRegressor((10,), random_state=0, learning_rate_init=0.01, max_iter=500, loss="auto").fit(x, targets)
    assert two.predict(x).shape == (len(x), 2) and two.n_outputs_ == 2 and two.out_activation_ == "identity"
    assert two.score(x, targets) > 0.9
    one = quietly(
        NeuralNetRegressor((10,), random_state=0, max_iter=3, learning_rate_init=0.01, loss="auto"), x, targets[:, 0]
    )
    assert one.predict(x).shape == (len(x),)


# --------------------------------------------------------------------------------------------------
# Bad input: a clear ValueError/TypeError from the estimator, never a JAX traceback.


def _iris_like():
    return np.random.default_rng(0).normal(size=(30, 4)), np.arange(30) % 3


@pytest.mark.parametrize(
    ("make_input", "error", "message"),
    [
        (lambda x, y: (np.where(np.eye(30, 4) > 0, np.nan, x), y), ValueError, "Input X contains NaN"),
        (lambda x, y: (np.where(np.eye(30, 4) > 0, np.inf, x), y), ValueError, "Input X contains infinity"),
        (lambda x, y: (x[:0], y[:0]), ValueError, "0 sample"),
        (lambda x, y: (x[:, 0], y), ValueError, "Expected 2D array, got 1D array"),
        (lambda x, y: (x, y[:-1]), ValueError, "inconsistent numbers of samples"),
        (lambda x, y: (x, y + 0.5 * np.arange(30)), ValueError, r"(?s)Unknown label type: .*use NeuralNetRegressor"),
        (lambda x, y: (x + 1j, y), ValueError, "Complex data not supported"),
        (lambda x, y: (np.where(x > 0, "a", "b"), y), ValueError, "could not convert string to float"),
    ],
    ids=["nan", "inf", "empty", "1d", "lengths", "continuous_y", "complex", "strings"],
)
def test_bad_training_data_is_a_clear_error(make_input, error, message):
    x, y = make_input(*_iris_like())
    with pytest.raises(error, match=message):
        NeuralNetClassifier(max_iter=2, learning_rate_init=0.01).fit(x, y)


def test_bad_prediction_input_and_targets_are_clear_errors(fitted_iris):
    with pytest.raises(ValueError, match="X has 3 features, but NeuralNetClassifier is expecting 4 features"):
        fitted_iris.predict(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="Input y contains NaN"):
        NeuralNetRegressor(learning_rate_init=0.01, max_iter=500, loss="auto").fit(
            np.zeros((4, 2)), [1.0, np.nan, 2.0, 3.0]
        )
    with pytest.raises(TypeError, match=r"^Sparse data was passed for y, .* jaxnn: .*y\.toarray\(\)\.ravel\(\)"):
        NeuralNetRegressor(max_iter=2).fit(np.zeros((4, 2)), scipy.sparse.csr_matrix(np.ones((4, 1))))  # MLP's error
    with pytest.raises(ValueError, match=r"(?i)sample.weight.*zero"):
        NeuralNetRegressor(learning_rate_init=0.01, max_iter=500, loss="auto").fit(
            np.zeros((4, 2)), np.arange(4.0), sample_weight=np.zeros(4)
        )


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_sample_weights_subnormal_in_float32_are_refused_not_trained_on_as_zeros(solver):
    # The compiled loop flushed them to 0: adam took no step and reported an infinite loss_, lbfgs blamed X
    x = np.random.default_rng(0).normal(size=(8, 2)).astype(np.float32)
    estimator = NeuralNetClassifier(hidden_layer_sizes=(3,), max_iter=2, solver=solver)
    with pytest.raises(ValueError, match=r"the largest value of sample_weight is 1e-40, below float32's smallest"):
        estimator.fit(x, np.arange(8) % 2, sample_weight=np.full(8, 1e-40))
    assert not hasattr(estimator, "coefs_")


def test_weights_whose_normal_values_early_stopping_holds_out_name_the_rows_kept_for_training():
    """One normal weight among subnormal ones: the weights pass as a whole; where early_stopping holds that row out
    for validation the training rows' weights would flush to 0, and the error says it is about those rows."""
    x = np.random.default_rng(0).normal(size=(8, 2)).astype(np.float32)
    weight = np.full(8, 1e-39)
    weight[0] = 1.0
    outcomes = []
    for seed in range(8):
        net = NeuralNetRegressor((3,), max_iter=2, early_stopping=True, validation_fraction=0.5, random_state=seed)
        try:
            quietly(net, x, x[:, 0], sample_weight=weight)
            outcomes.append("trained")
        except ValueError as error:
            assert re.search(
                r"^the largest value of the sample weights of the rows early_stopping trains on \(validation_fraction "
                r"of the rows are held out\) is 1e-39, below float32's .*; multiply sample_weight by one constant .*"
                r"\(e.g. divide by the largest weight among the rows kept for training, not of all rows: that may be "
                r"held out; ",
                str(error),
            )
            outcomes.append("refused")
    assert set(outcomes) == {"trained", "refused"}


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
@pytest.mark.parametrize(
    "weight, message",
    [
        (1e40, r"sample_weight has values beyond float32's range \(largest 3.4e\+38\), X's dtype"),  # inf in float32
        (1e-50, r"sample_weight rounds to all zeros in float32, X's dtype"),  # scikit-learn: "at least one non-zero"
        (1e38, r"sample_weight sums to 7.9999997e\+38, beyond float32's range"),  # each fits, their sum did not
        # the sum fits float64's check to the last bit, but float32's own sum of the 8 numbers may round past it
        (np.finfo(np.float32).max / 8, r"sample_weight sums to 3.4028235e\+38, beyond float32's range"),
    ],
    ids=["too-large", "too-small", "sum-too-large", "sum-at-the-limit"],
)
def test_sample_weights_that_do_not_fit_float32_x_are_one_error_saying_how_to_rescale_them(solver, weight, message):
    x = np.random.default_rng(0).normal(size=(8, 2)).astype(np.float32)
    estimator = NeuralNetClassifier(hidden_layer_sizes=(3,), max_iter=2, solver=solver)
    advice = r": multiply sample_weight by one constant .* \(e.g. divide by its largest value; .*, or pass float64 X$"
    with pytest.raises(ValueError, match=message + ".*" + advice):
        estimator.fit(x, np.arange(8) % 2, sample_weight=np.full(8, weight))
    with pytest.raises(ValueError, match=r"sample_weight times class_weight has values beyond float32's range"):
        estimator.set_params(class_weight={0: 1e10}).fit(x, np.arange(8) % 2, sample_weight=np.full(8, 1e30))
    assert not hasattr(estimator, "coefs_")


@pytest.mark.parametrize(
    "class_weight, message",
    [
        ({0: 1e39, 1: 1e30}, r"sample_weight times class_weight has values beyond float32's range"),
        ({0: 1e-39, 1: 1e-39}, r"the largest value of sample_weight times class_weight is 1e-39, below float32's"),
        ({0: 1e-50, 1: 1e-50}, r"sample_weight times class_weight rounds to all zeros in float32"),
    ],
    ids=["too-large", "subnormal", "too-small"],
)
def test_class_weights_that_do_not_fit_float32_x_are_one_error_whose_advice_works(class_weight, message):
    """The product is what must fit: the advice names it, and taking it (dividing class_weight's values by the
    product's largest value) makes the fit train."""
    x = np.random.default_rng(0).normal(size=(8, 2)).astype(np.float32)
    y = np.arange(8) % 2
    estimator = NeuralNetClassifier(hidden_layer_sizes=(3,), max_iter=2, class_weight=class_weight)
    advice = (
        r"multiply sample_weight \(or every value of class_weight\) by one constant that brings the product "
        r"sample_weight × class_weight towards 1 \(e.g. divide by its largest value; "
    )
    with pytest.raises(ValueError, match=message + ".*" + advice):
        estimator.fit(x, y)
    largest = max(class_weight.values())
    quietly(estimator.set_params(class_weight={label: w / largest for label, w in class_weight.items()}), x, y)


@pytest.mark.parametrize("class_weight", [None, {0: 1.0, 1: 1.0}])
def test_a_class_whose_weights_flush_to_zero_in_x_dtype_leaves_one_class_and_is_refused(class_weight):
    """A class weighed only by weights that X's float32 flushes to 0 (here 1e-50 beside 1.0) weighs nothing: the fit
    would tell one class apart from nothing, and is refused (it trained on one class when the check read float64)."""
    x = np.random.default_rng(0).normal(size=(8, 2)).astype(np.float32)
    y = np.arange(8) % 2
    weight = np.where(y == 0, 1e-50, 1.0)
    name = "sample_weight" if class_weight is None else "sample_weight times class_weight"
    estimator = NeuralNetClassifier((3,), max_iter=2, class_weight=class_weight)
    with pytest.raises(ValueError, match=rf"^only one class \(1\) has non-zero {name}; a classifier"):
        estimator.fit(x, y, sample_weight=weight)
    quietly(estimator, x.astype(np.float64), y, sample_weight=weight)  # float64 keeps 1e-50: two classes weighted
    labels = np.array(["cat", "dog"])[y]  # a label as the user wrote it, not NumPy's repr (np.str_('dog'))
    with pytest.raises(ValueError, match=r"^only one class \('dog'\) has non-zero sample_weight"):
        NeuralNetClassifier((3,), max_iter=2).fit(x, labels, sample_weight=np.where(y == 0, 0.0, 1.0))


def test_following_the_whole_rescaling_advice_trains():
    """Weights whose sum passes float32's range, rescaled as the advice says — divided by their largest value, and
    alpha with them — train; a divergence under huge class-weighted weights names the product."""
    x = np.random.default_rng(0).normal(size=(8, 2)).astype(np.float32)
    y = np.arange(8) % 2
    weight, alpha = np.full(8, 1e38), 1e-4
    estimator = NeuralNetClassifier((3,), max_iter=2, alpha=alpha)
    with pytest.raises(ValueError, match=r"alpha by the same constant"):
        estimator.fit(x, y, sample_weight=weight)
    constant = 1 / weight.max()
    quietly(estimator.set_params(alpha=alpha * constant), x, y, sample_weight=weight * constant)
    regressor = NeuralNetRegressor(max_iter=5, random_state=0)
    target = 100.0 * (x[:, 0] > 0)
    with pytest.raises(ValueError, match=r"; sample_weight sums to 8e\+35, and the weighted mean loss"):
        regressor.fit(x, target, sample_weight=np.full(8, 1e35))
    classifier = NeuralNetClassifier((3,), max_iter=5, random_state=0, class_weight={0: 1e35, 1: 1e35})
    with pytest.raises(ValueError, match=r"training diverged") as error:
        classifier.set_params(learning_rate_init=1e20, solver="sgd").fit(x, y, sample_weight=np.full(8, 1.0))
    assert "; sample_weight times class_weight sums to 8e+35" in str(error.value)


def test_class_weights_multiply_sample_weight_in_float64_and_are_rounded_once():
    """As LogisticRegression: sample_weight × class_weight in float64, then the product in X's dtype; sample weights
    that are subnormal in float32 train once class_weight lifts them (they were flushed, before the product)."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 3)).astype(np.float32), np.arange(40) % 3
    weight, class_weight = rng.uniform(0.1, 3.0, 40), {0: 2.0, 1: 0.7, 2: 1.3}
    estimator = NeuralNetClassifier((3,), max_iter=2, random_state=0, class_weight=class_weight)
    quietly(estimator, x, y, sample_weight=weight)
    per_sample = np.array([class_weight[label] for label in y])
    once = (weight * per_sample).astype(np.float32)
    assert not np.array_equal(once, weight.astype(np.float32) * per_sample.astype(np.float32))  # rounding twice
    lone = quietly(NeuralNetClassifier((3,), max_iter=2, random_state=0), x, y, sample_weight=once)
    for got, want in zip(estimator.coefs_ + estimator.intercepts_, lone.coefs_ + lone.intercepts_, strict=True):
        np.testing.assert_array_equal(got, want)
    quietly(estimator.set_params(class_weight={0: 1e3, 1: 1e3, 2: 1e3}), x, y, sample_weight=np.full(40, 1e-39))


def test_a_fit_diverging_under_huge_sample_weights_says_to_rescale_them():
    """Σw·loss is added up before its division by Σw: with weights summing past float32's square root the weighted
    loss of an ordinary regression overflows (the weights alone; 1e30 times smaller they train)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3)).astype(np.float32)
    y = 100.0 * (x[:, 0] > 0)
    net = NeuralNetRegressor(max_iter=5, random_state=0)
    with pytest.raises(ValueError, match=r"training diverged in epoch 1") as error:
        net.fit(x, y, sample_weight=np.full(60, 1e35))
    assert re.search(
        r"; sample_weight sums to 6e\+36, and the weighted mean loss Σw·loss/Σw adds up w·loss before dividing, "
        r"which overflows float32 \(largest 3.4e\+38\) once a loss passes 56.7: multiply sample_weight by one "
        r"constant .*\(e.g. divide by its largest value; ",
        str(error.value),
    )
    quietly(net, x, y, sample_weight=np.full(60, 1e5))  # the same weights, rescaled
    with pytest.raises(ValueError, match="training diverged") as error:
        net.set_params(learning_rate_init=1e30, solver="sgd").fit(x, y)  # weights of 1: no word about them
    assert "sample_weight" not in str(error.value)


@pytest.mark.parametrize("fit", ["fit", "partial_fit"])
def test_a_regressor_y_of_numpy_text_is_numpys_error_with_advice_and_numeric_text_is_read_as_numbers(fit):
    x = np.random.default_rng(0).normal(size=(8, 2))
    with pytest.raises(ValueError, match=r"^could not convert string to float.* jaxnn: a regressor's y must hold"):
        getattr(NeuralNetRegressor(max_iter=2), fit)(x, np.array(["a", "b"] * 4))  # dtype <U1, as an object y
    with warnings.catch_warnings():  # two epochs: a truncated fit
        warnings.simplefilter("ignore", ConvergenceWarning)
        as_text = getattr(NeuralNetRegressor(max_iter=2, random_state=0), fit)(x, np.arange(8.0).astype(str))
        as_numbers = getattr(NeuralNetRegressor(max_iter=2, random_state=0), fit)(x, np.arange(8.0))
    np.testing.assert_array_equal(as_text.predict(x), as_numbers.predict(x))


def test_a_diverging_fit_is_an_error_that_leaves_the_estimator_as_it_was():
    x, y = load_iris(return_X_y=True)
    net = NeuralNetClassifier((10,), solver="gd", learning_rate_init=0.01, max_iter=50, random_state=0)
    with pytest.raises(ValueError, match=r"training diverged in epoch \d+.*Lower learning_rate_init"):
        quietly(clone(net).set_params(learning_rate_init=1e30), 100 * x, y)  # unscaled inputs, absurd step

    quietly(net, x, y)
    before = [w.copy() for w in net.coefs_], list(net.loss_curve_)
    with pytest.raises(ValueError, match="training diverged"):
        net.set_params(learning_rate_init=1e30).fit(100 * x, y)
    for kept, saved in zip(net.coefs_, before[0], strict=True):
        np.testing.assert_array_equal(kept, saved)
    assert net.loss_curve_ == before[1]


def _interrupt_when_storing(monkeypatch):
    """Ctrl-C where a fit has stored its new weights, ``n_iter_`` and curves but not yet ``t_`` or ``classes_``
    (the window where ``verbose`` prints every epoch's loss, or a ConvergenceWarning turned error raises)."""

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(jaxnn.sklearn.base.NeuralNetBase, "_store_schedule", interrupted)


@pytest.mark.parametrize("how", ["fit", "warm_start", "partial_fit"])
def test_a_fit_interrupted_while_storing_leaves_the_estimator_as_it_was(monkeypatch, how):
    """A KeyboardInterrupt passing through a fit leaves every attribute as before it: never the new coefs_ beside
    the old t_ (or an unfitted estimator with weights); then the same estimator fits as a fresh one does."""
    x, y = load_iris(return_X_y=True)
    net = NeuralNetClassifier((5,), max_iter=4, warm_start=how == "warm_start", random_state=0)
    if how != "fit":
        quietly(net, x, y)
    before = dict(vars(net))
    with monkeypatch.context() as patched:
        _interrupt_when_storing(patched)
        with pytest.raises(KeyboardInterrupt):
            quietly(net, x, y) if how != "partial_fit" else net.partial_fit(x, y)
    assert vars(net).keys() == before.keys()
    assert all(vars(net)[name] is value for name, value in before.items())
    continued = quietly(net, x, y) if how != "partial_fit" else net.partial_fit(x, y)
    fresh = NeuralNetClassifier((5,), max_iter=4, warm_start=how == "warm_start", random_state=0)
    if how != "fit":
        quietly(fresh, x, y)
    fresh = quietly(fresh, x, y) if how != "partial_fit" else fresh.partial_fit(x, y)
    np.testing.assert_array_equal(continued.predict_proba(x), fresh.predict_proba(x))
    assert continued.loss_curve_ == fresh.loss_curve_ and continued.t_ == fresh.t_


WIDER_FAILING_FITS = {  # a fit on twice the columns that fails: (parameters to set, X, y) from iris' x and y
    "diverging": lambda x, y: ({"learning_rate_init": 1e30, "max_iter": 50}, 100 * np.c_[x, x], y),
    "continuous-labels": lambda x, y: ({}, np.c_[x, x], x[:, 0]),
}


@pytest.mark.parametrize("failure", WIDER_FAILING_FITS)
@pytest.mark.parametrize("through_population", [False, True], ids=["fit", "fit_estimators"])
def test_a_failed_fit_on_other_columns_keeps_the_records_of_the_x_the_network_reads(failure, through_population):
    """scikit-learn's check of the new X records its width and column names before the fit fails; the estimator
    used to keep them beside the old network, so it refused the data it was fitted on."""
    pd = pytest.importorskip("pandas")
    x, y = load_iris(return_X_y=True)
    frame = pd.DataFrame(x, columns=["sepal length", "sepal width", "petal length", "petal width"])
    net = quietly(
        NeuralNetClassifier((10,), solver="gd", learning_rate_init=0.01, max_iter=5, random_state=0), frame, y
    )
    expected = net.predict_proba(frame)
    params, wider, targets = WIDER_FAILING_FITS[failure](x, y)
    net.set_params(**params)
    if through_population:
        (outcome,) = jaxnn.fit_estimators([net], [(wider, targets)])
        assert isinstance(outcome, ValueError)
    else:
        with pytest.raises(ValueError):
            net.fit(wider, targets)
    assert net.n_features_in_ == 4
    np.testing.assert_array_equal(net.feature_names_in_, frame.columns)
    np.testing.assert_array_equal(net.predict_proba(frame), expected)


def test_a_diverging_optax_solver_is_told_to_lower_its_own_rate_not_learning_rate_init():
    x = load_iris().data
    net = NeuralNetRegressor((10,), solver=optax.sgd(1e30), max_iter=5, random_state=0)
    with pytest.raises(ValueError, match=r"training diverged .*Lower the optax solver's learning rate, or standardise"):
        quietly(net, x, x[:, 0])  # learning_rate_init is not read: lowering it would change nothing


def test_a_regression_diverging_on_a_huge_target_advises_scaling_y_and_that_advice_works():
    x = np.random.default_rng(0).normal(size=(30, 3))
    y = 1e200 * (1.0 + x[:, 0])  # squared errors overflow float64 in the first epoch
    net = NeuralNetRegressor((5,), max_iter=5, random_state=0, learning_rate_init=0.01, loss="auto")
    with pytest.raises(ValueError, match=r"training diverged.*standardise X.*scale the target y.*MaxAbsScaler") as info:
        net.fit(x, y)
    assert not net.__sklearn_is_fitted__()
    # the advice is the fix: StandardScaler's variance of y overflows here, MaxAbsScaler's y / max|y| does not
    scaled = quietly(TransformedTargetRegressor(clone(net), transformer=MaxAbsScaler()), x, y)
    assert np.all(np.isfinite(scaled.predict(x))) and scaled.regressor_.__sklearn_is_fitted__()
    # a classifier's targets are labels: its divergence message says nothing about scaling y
    with pytest.raises(ValueError, match="training diverged") as classifier_info:
        quietly(
            NeuralNetClassifier((5,), solver="gd", learning_rate_init=1e30, random_state=0, max_iter=500),
            1e3 * x,
            x[:, 0] > 0,
        )
    assert "scale the target y" in str(info.value) and "target y" not in str(classifier_info.value)
    assert (
        "y reaches 2.8e+200, whose square overflows float64: even the loss at the starting weights is infinite"
        in str(info.value)
    )


def test_a_target_whose_square_overflows_float32_says_so_and_that_float64_x_fits():
    """y of 1e20 on float32 X made the first epoch's loss infinite: 'training diverged', with advice on the
    learning rate and X alone."""
    x = np.random.default_rng(0).normal(size=(30, 3)).astype(np.float32)
    y = 1e20 * (1.0 + x[:, 0])
    net = NeuralNetRegressor((5,), max_iter=5, random_state=0)
    with pytest.raises(ValueError, match="training diverged") as info:
        net.fit(x, y)
    assert "whose square overflows float32 (X's dtype, which the network trains in), so even the loss at the " in (
        str(info.value)
    )
    assert "pass X as float64, or scale the target y (sklearn.compose" in str(info.value)
    assert np.all(np.isfinite(quietly(net, x.astype(np.float64), y).predict(x)))
    with pytest.raises(ValueError) as modest:  # a divergence of its own: y is not named
        quietly(NeuralNetRegressor((5,), solver="sgd", learning_rate_init=1e8, random_state=0), x, 1e3 * y / 1e20)
    assert "whose square" not in str(modest.value) and "; for a regressor, scale the target y too" in str(modest.value)


@pytest.mark.parametrize("size", [3.8e39, 3.8e170], ids=["beyond-float32", "square-beyond-float64"])
def test_a_target_beyond_float32_on_float32_x_is_advised_what_works_at_its_size(size):
    """y beyond float32's range on float32 X: a scaled y cannot be predicted back in float32 (every prediction was
    inf), so the advice is float64 X, plus MaxAbsScaler where y's square overflows float64 too (float64 X alone
    diverged again there); each piece of advice, followed, fits finite predictions."""
    x = np.random.default_rng(0).normal(size=(30, 3)).astype(np.float32)
    y = size * (1.0 + 0.1 * x[:, 0].astype(np.float64))
    net = NeuralNetRegressor((5,), max_iter=5, random_state=0)
    with pytest.raises(ValueError, match="training diverged") as info:
        quietly(net, x, y)
    message = str(info.value)
    assert f"y reaches {np.max(y):.3g}, beyond float32's range (X's dtype, which the network trains and " in message
    assert "or scale the target y" not in message
    if size < 1e154:
        assert message.endswith("cannot be predicted back in it either): pass X as float64")
        fitted = quietly(net, x.astype(np.float64), y)
    else:
        assert "pass X as float64, and scale the target y, whose square overflows float64 too" in message
        fitted = quietly(TransformedTargetRegressor(clone(net), transformer=MaxAbsScaler()), x.astype(np.float64), y)
    assert np.all(np.isfinite(fitted.predict(x.astype(np.float64))))


def test_feature_names_are_recorded_from_dataframes(iris):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(iris.x_train, columns=["sepal_l", "sepal_w", "petal_l", "petal_w"])
    net = NeuralNetClassifier((10, 5), random_state=0, learning_rate_init=0.01, max_iter=500).fit(frame, iris.y_train)
    np.testing.assert_array_equal(net.feature_names_in_, frame.columns)
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        net.predict(iris.x_test)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # a few epochs
def test_fit_and_predict_under_jax_disable_jit_give_the_jitted_results():
    """predict ran an ahead-of-time compiled program, which JAX refuses under ``jax.disable_jit()`` (ValueError
    "Disable jit is not supported in the AOT path"): a user debugging op by op could not fit or predict."""
    X, y = load_iris(return_X_y=True)
    X = X[::5]
    jitted = NeuralNetClassifier(hidden_layer_sizes=(3,), max_iter=2, random_state=0).fit(X, y[::5])
    with jax.disable_jit():
        eager = NeuralNetClassifier(hidden_layer_sizes=(3,), max_iter=2, random_state=0).fit(X, y[::5])
        eager_proba = eager.predict_proba(X)
    np.testing.assert_allclose(eager_proba, jitted.predict_proba(X), rtol=1e-6)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # a few epochs
def test_early_stopping_fits_under_strict_type_promotion_as_under_the_standard_one():
    """The validation score (jaxnn.metrics, inside the compiled loop) compared int32 predicted labels with the
    int64 classes: with ``jax_numpy_dtype_promotion="strict"`` set by the user every such fit raised."""
    X, y = load_iris(return_X_y=True)
    settings = dict(hidden_layer_sizes=(3,), early_stopping=True, scoring="balanced_accuracy", max_iter=3)
    standard = NeuralNetClassifier(**settings, random_state=0).fit(X, y)
    with jax.numpy_dtype_promotion("strict"):
        strict = NeuralNetClassifier(**settings, random_state=0).fit(X, y)
    assert strict.validation_scores_ == standard.validation_scores_
    np.testing.assert_array_equal(strict.predict_proba(X), standard.predict_proba(X))


@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_nan_in_x_let_through_by_assume_finite_is_named_when_the_fit_diverges(solver):
    """Under scikit-learn's assume_finite=True the input checks let NaN through; the divergence message spoke of the
    learning rate and of scaling X alone."""
    x = np.random.default_rng(0).normal(size=(30, 3))
    x[3, 1] = np.nan
    with (
        sklearn.config_context(assume_finite=True),
        pytest.raises(ValueError, match=r"diverged|starting weights") as info,
    ):
        quietly(NeuralNetClassifier((4,), solver=solver, max_iter=5, random_state=0), x, np.arange(30) % 2)
    assert "X or y holds NaN or infinity, which scikit-learn's assume_finite=True let through unchecked" in str(
        info.value
    )
    with pytest.raises(ValueError, match="Input X contains NaN"):  # checked by default, so never this far
        quietly(NeuralNetClassifier((4,), solver=solver, max_iter=5, random_state=0), x, np.arange(30) % 2)
