"""``jaxnn.estimators.fit_estimators`` and ``n_ensemble``: many estimators (or ensemble members) train as one
population, and each ends exactly as its lone ``fit`` would have: same attributes, warnings and errors.

The bound: a member's weights agree with its lone fit to rtol 2e-5 / atol 2e-6 in float32 (as
``tests/test_population.py``: a batched product may add in another order, so the last bits differ and grow
slowly with the epochs), and to rtol 1e-10 / atol 1e-12 in float64; ``n_iter_`` and the predicted classes
are identical.
"""

from __future__ import annotations

import copy
import warnings
from collections import Counter

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import jaxnn
import jaxnn.sklearn.base
import jaxnn.sklearn.training
from jaxnn import NeuralNetClassifier, NeuralNetRegressor, fit_estimators
from jaxnn.engine import compiled_programs
from jaxnn.sklearn.internals import InvalidParameterError

FLOAT32 = {"rtol": 2e-5, "atol": 2e-6}
FLOAT64 = {"rtol": 1e-10, "atol": 1e-12}

IRIS_X, IRIS_Y = load_iris(return_X_y=True)
P = 4  # members per population: one compiled population program per configuration


def _folds(x, y, *, dtype=np.float32):
    """Four cross-validation training folds (112 or 113 rows: padded to 112 and 120), each standardised
    on its own rows."""
    folds = []
    for train, _ in KFold(P, shuffle=True, random_state=0).split(x):
        folds.append((StandardScaler().fit_transform(x[train]).astype(dtype), y[train]))
    return folds


FOLDS = _folds(IRIS_X, IRIS_Y)


def _grid(base, rates, alphas, seeds):
    return [
        clone(base).set_params(learning_rate_init=rate, alpha=alpha, random_state=seed)
        for rate, alpha, seed in zip(rates, alphas, seeds, strict=True)
    ]


def _recorded(function, *args):
    """``function(*args)`` and the (category, message) of every warning it raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = function(*args)
    return result, Counter((w.category, str(w.message)) for w in caught)


def _lone_fits(estimators, datasets):
    """Unfitted copies of ``estimators`` fitted one by one, and the warnings they raised."""
    copies = [clone(estimator) for estimator in estimators]

    def fit_each():
        return [estimator.fit(*dataset) for estimator, dataset in zip(copies, datasets, strict=True)]

    return _recorded(fit_each)


REAL_TRAIN = jaxnn.engine.train


def _counting(sizes: list):
    """``jaxnn.engine.train`` that also records the member count of every population (of two or more) it
    trains: shows that members did train together, not one by one."""

    def counting_train(spec, members, *args, **kwargs):
        if len(members.keys) > 1:
            sizes.append(len(members.keys))
        return REAL_TRAIN(spec, members, *args, **kwargs)

    return counting_train


@pytest.fixture
def population_sizes(monkeypatch):
    """The member counts of the populations that ``fit_estimators`` trains during a test."""
    sizes = []
    monkeypatch.setattr(jaxnn.engine, "train", _counting(sizes))
    return sizes


def _public_attributes(estimator) -> list[str]:
    return sorted(name for name in vars(estimator) if name.endswith("_") and not name.startswith("_"))


def assert_same_fit(member, lone, tolerance=FLOAT32):
    """``member`` (from a population) holds what its lone fit holds, within the float rounding bound."""
    assert _public_attributes(member) == _public_attributes(lone)
    assert member.n_iter_ == lone.n_iter_
    for ours, theirs in zip([*member.coefs_, *member.intercepts_], [*lone.coefs_, *lone.intercepts_], strict=True):
        assert ours.dtype == theirs.dtype
        np.testing.assert_allclose(ours, theirs, **tolerance)
    np.testing.assert_allclose(member.loss_curve_, lone.loss_curve_, rtol=tolerance["rtol"])
    if lone.validation_scores_ is not None:
        np.testing.assert_allclose(member.validation_scores_, lone.validation_scores_, rtol=tolerance["rtol"])
    if lone.best_loss_ is not None:
        np.testing.assert_allclose(member.best_loss_, lone.best_loss_, rtol=tolerance["rtol"])


CLASSIFIER_CASES = {
    # full-batch descent: members differ in rate, penalty, seed, fold and (member 1) sample weights
    "gd-full-batch": NeuralNetClassifier((8,), solver="gd", learning_rate_init=0.1, max_iter=150, tol=1e-3),
    "adam-minibatch": NeuralNetClassifier(
        (8,), solver="adam", batch_size=32, max_iter=40, tol=1e-3, learning_rate_init=0.01
    ),
    "early-stopping": NeuralNetClassifier(
        (8,),
        solver="adam",
        batch_size=32,
        max_iter=40,
        early_stopping=True,
        validation_fraction=0.2,
        learning_rate_init=0.01,
    ),
    # sgd's schedules: their values (learning_rate_init, power_t, samples per epoch) per member
    "sgd-invscaling": NeuralNetClassifier(
        (8,),
        solver="sgd",
        learning_rate="invscaling",
        power_t=0.3,
        batch_size=32,
        max_iter=30,
        tol=1e-3,
        learning_rate_init=0.01,
    ),
    "sgd-adaptive-in-order": NeuralNetClassifier(
        (8,),
        solver="sgd",
        learning_rate="adaptive",
        shuffle=False,
        batch_size=32,
        max_iter=30,
        tol=1e-2,
        n_iter_no_change=2,
        learning_rate_init=0.01,
    ),
}
# adam at rate 0.3 with alpha 0.1 (the grid's last member) amplifies float32's last-bit differences past the
# float32 bound within 40 epochs (8e-6 on a weight of 0.16): that case is checked on float64 data, to 1e-10.
FLOAT64_CASES = {"adam-minibatch"}


@pytest.mark.parametrize("case", list(CLASSIFIER_CASES))
def test_every_classifier_equals_its_lone_fit(case, population_sizes):
    estimators = _grid(CLASSIFIER_CASES[case], [0.01, 0.03, 0.1, 0.3], [0.0, 1e-3, 1e-2, 1e-1], [0, 1, 2, 3])
    float64 = case in FLOAT64_CASES
    datasets = _folds(IRIS_X, IRIS_Y, dtype=np.float64) if float64 else list(FOLDS)
    x1, y1 = datasets[1]
    datasets[1] = (x1, y1, np.linspace(0.5, 2.0, len(y1)))
    lone, lone_warnings = _lone_fits(estimators, datasets)
    results, population_warnings = _recorded(fit_estimators, estimators, datasets)
    assert population_sizes == [P]
    assert population_warnings == lone_warnings  # ConvergenceWarning for the members that hit max_iter
    assert results == estimators  # fitted in place, returned
    for member, alone, (x, _, *_) in zip(estimators, lone, datasets, strict=True):
        assert_same_fit(member, alone, FLOAT64 if float64 else FLOAT32)
        np.testing.assert_array_equal(member.predict(x), alone.predict(x))
    iterations = [member.n_iter_ for member in estimators]
    if case == "gd-full-batch":  # the members stop on their own: some early, some at max_iter
        assert min(iterations) < 150 and max(iterations) == 150
        assert sum(count for (category, _), count in lone_warnings.items() if category is ConvergenceWarning) >= 1


def test_new_rates_penalties_seeds_and_folds_compile_nothing():
    base = CLASSIFIER_CASES["gd-full-batch"]
    estimators = _grid(base, [0.05, 0.07, 0.2, 0.02], [1e-4, 0.0, 0.03, 0.3], [10, 11, 12, 13])
    warm = _grid(base, [0.1] * P, [0.0] * P, [0] * P)
    folds = _folds(IRIS_X[::-1], IRIS_Y[::-1])  # other rows in each fold, the same padded sizes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fit_estimators(warm, FOLDS)  # the population program of this configuration, as an earlier test builds
        before = compiled_programs()
        results = fit_estimators(estimators, folds)
    assert compiled_programs() == before
    assert all(result is estimator for result, estimator in zip(results, estimators, strict=True))


def test_regressor_members_on_float64_data_equal_their_lone_fits(population_sizes):
    target = IRIS_X[:, 3]
    folds = _folds(IRIS_X[:, :3], target, dtype=np.float64)
    base = NeuralNetRegressor((6,), solver="gd", learning_rate_init=0.05, max_iter=60, loss="auto")
    estimators = _grid(base, [0.02, 0.05, 0.1, 0.2], [0.0, 1e-3, 1e-2, 1e-1], [0, 1, 2, 3])
    lone, lone_warnings = _lone_fits(estimators, folds)
    results, population_warnings = _recorded(fit_estimators, estimators, folds)
    assert population_sizes == [P] and population_warnings == lone_warnings and results == estimators
    for member, alone, (x, _) in zip(estimators, lone, folds, strict=True):
        assert member.coefs_[0].dtype == np.float64
        assert_same_fit(member, alone, FLOAT64)
        np.testing.assert_allclose(member.predict(x), alone.predict(x), **FLOAT64)


def test_a_diverging_member_returns_its_error_and_spares_the_others(population_sizes):
    base = CLASSIFIER_CASES["gd-full-batch"]
    estimators = _grid(base, [0.1, 1e9, 0.1, 0.2], [0.0] * P, [0, 1, 2, 3])
    datasets = list(FOLDS)
    datasets[1] = (datasets[1][0] * 100, datasets[1][1])
    with pytest.raises(ValueError, match="training diverged") as lone_error:
        clone(estimators[1]).fit(*datasets[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        lone = [clone(estimators[i]).fit(*datasets[i]) for i in (0, 2, 3)]
        results = fit_estimators(estimators, datasets)
    assert population_sizes == [P]
    assert isinstance(results[1], ValueError) and str(results[1]) == str(lone_error.value)
    assert not hasattr(estimators[1], "coefs_")  # left as it was: unfitted
    for i, alone in zip((0, 2, 3), lone, strict=True):
        assert results[i] is estimators[i]
        assert_same_fit(estimators[i], alone)


def test_an_lbfgs_ensemble_is_refused_with_the_parameters_as_lbfgs_with_dropout_is():
    """It was a plain ValueError from inside the fit, where lbfgs with dropout is the parameters' own
    InvalidParameterError; fit_estimators gives it back as that member's exception."""
    x, y = FOLDS[0]
    ensemble = NeuralNetClassifier((6,), solver="lbfgs", n_ensemble=2)
    with pytest.raises(InvalidParameterError, match=r"solver='lbfgs' trains one network, but n_ensemble=2; set"):
        ensemble.fit(x, y)
    (result,) = fit_estimators([ensemble], [(x, y)])
    assert isinstance(result, InvalidParameterError) and "n_ensemble=2" in str(result)


def test_mixed_configurations_fall_back_to_what_each_lone_fit_does(population_sizes):
    x, y = FOLDS[0]
    fitted = clone(CLASSIFIER_CASES["gd-full-batch"]).set_params(random_state=0, max_iter=5, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted = clone(fitted).fit(x, y)
        continued_alone = copy.deepcopy(fitted).fit(x, y)  # warm_start: five more epochs
    other_network = NeuralNetClassifier((5,), solver="gd", max_iter=20, random_state=1, learning_rate_init=0.01)
    bad_parameter = NeuralNetClassifier((8,), solver="gd", max_iter=20, learning_rate_init=-1.0)
    ridge = Ridge()
    repeated = NeuralNetClassifier((8,), solver="gd", max_iter=20, random_state=2, learning_rate_init=0.01)
    lbfgs = NeuralNetClassifier((8,), solver="lbfgs", max_iter=20, random_state=3, learning_rate_init=0.01)
    estimators = [fitted, other_network, bad_parameter, ridge, repeated, repeated, lbfgs]
    datasets = [(x, y), (x, y), (x, y), (x, y.astype(float)), (x, y), FOLDS[1], (x, y)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        results = fit_estimators(estimators, datasets)
        lone_other = clone(other_network).fit(x, y)
        lone_repeated = clone(repeated).fit(*FOLDS[1])  # the later fit of a repeated estimator wins
        lone_lbfgs = clone(lbfgs).fit(x, y)
    assert population_sizes == []  # no two estimators could train together
    assert results[0] is fitted and fitted.n_iter_ == 5 and len(fitted.loss_curve_) == 10
    assert_same_fit(fitted, continued_alone)
    assert_same_fit(other_network, lone_other)
    assert isinstance(results[2], ValueError)
    assert "learning_rate_init must be a finite positive number" in str(results[2])
    np.testing.assert_allclose(ridge.coef_, clone(ridge).fit(x, y.astype(float)).coef_)
    assert results[4] is results[5] is repeated
    assert_same_fit(repeated, lone_repeated)
    assert results[6] is lbfgs
    assert_same_fit(lbfgs, lone_lbfgs)


def test_population_data_above_the_byte_limit_train_in_several_calls(monkeypatch, population_sizes):
    base = NeuralNetClassifier((8,), solver="gd", learning_rate_init=0.1, max_iter=20)
    x, y = FOLDS[0]
    estimators = [clone(base).set_params(random_state=seed) for seed in range(9)]
    limited = [clone(estimator) for estimator in estimators]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fit_estimators(estimators, [(x, y)] * 9)  # one call: groups of CPU_GROUP on the CPU
        monkeypatch.setattr(jaxnn.sklearn.training, "POPULATION_BYTES", 1)  # calls of CPU_GROUP members, then one alone
        fit_estimators(limited, [(x, y)] * 9)
    assert population_sizes == [9, 8]  # then the ninth alone
    for ours, theirs in zip(limited, estimators, strict=True):
        assert_same_fit(ours, theirs)


def test_bad_datasets_are_a_clear_error():
    estimator = NeuralNetClassifier(learning_rate_init=0.01, max_iter=500)
    with pytest.raises(ValueError, match="1 estimators but 2 data sets"):
        fit_estimators([estimator], [(IRIS_X, IRIS_Y)] * 2)
    with pytest.raises(TypeError, match=r"datasets\[0\] must be a tuple \(X, y\) or \(X, y, sample_weight\)"):
        fit_estimators([estimator], [IRIS_X])
    # one estimator (or a Pipeline, whose steps iterate) in place of a list of them
    for lone in (estimator, make_pipeline(StandardScaler(), estimator), 3, "net"):
        with pytest.raises(TypeError, match=r"a list of estimators, got \w+; for one estimator pass \[estimator\]"):
            fit_estimators(lone, [(IRIS_X, IRIS_Y)])


def test_a_list_holding_something_other_than_an_estimator_is_a_type_error():
    """It came back as the AttributeError of its fit, as if a fit had failed."""
    with pytest.raises(TypeError, match=r"^fit_estimators takes estimators \(objects with a fit method\), got str$"):
        fit_estimators([NeuralNetClassifier(), "x"], [(IRIS_X, IRIS_Y)] * 2)


@pytest.mark.parametrize("datasets", [None, 3, (IRIS_X, IRIS_Y)], ids=["None", "number", "one-pair"])
def test_datasets_that_are_not_a_list_of_pairs_are_a_clear_error(datasets):
    """None or a number: a TypeError naming fit_estimators (it was Python's "'NoneType' object is not iterable");
    one (X, y) in place of a list of them: the error says to wrap it."""
    with pytest.raises(TypeError, match=r"a list of data sets.*, got .+; for one estimator pass \[\(X, y\)\]"):
        fit_estimators([NeuralNetClassifier()], datasets)


# --------------------------------------------------------------------------------------------------
# n_ensemble


ENSEMBLE_BASE = NeuralNetClassifier(
    (8,),
    solver="adam",
    batch_size=32,
    max_iter=30,
    tol=5e-3,
    n_iter_no_change=2,
    random_state=7,
    learning_rate_init=0.01,
)


@pytest.fixture(scope="module")
def ensemble():
    """An ensemble of four classifiers from random_state=7 and the lone fits of seeds 7, 8, 9, 10, each with
    the warnings it raised (some members stop early, the others reach max_iter)."""
    x, y = FOLDS[0]
    sizes = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(jaxnn.engine, "train", _counting(sizes))
        fitted, ensemble_warnings = _recorded(clone(ENSEMBLE_BASE).set_params(n_ensemble=4).fit, x, y)
    assert sizes == [4]  # one population
    lone, lone_warnings = _lone_fits(
        [clone(ENSEMBLE_BASE).set_params(random_state=7 + k) for k in range(4)], [(x, y)] * 4
    )
    return fitted, ensemble_warnings, lone, lone_warnings


def test_ensemble_members_equal_lone_fits_with_the_derived_seeds(ensemble):
    fitted, _, lone, _ = ensemble
    assert fitted.ensemble_seeds_.tolist() == [7, 8, 9, 10]
    assert fitted.ensemble_n_iter_.tolist() == [alone.n_iter_ for alone in lone]
    for k, alone in enumerate(lone):
        np.testing.assert_allclose(fitted.ensemble_loss_curves_[k], alone.loss_curve_, rtol=FLOAT32["rtol"])
        for stacked, single in zip(
            [*fitted.ensemble_coefs_, *fitted.ensemble_intercepts_], [*alone.coefs_, *alone.intercepts_], strict=True
        ):
            np.testing.assert_allclose(stacked[k], single, **FLOAT32)
    assert fitted.ensemble_validation_scores_ is None
    for name in ("coefs_", "intercepts_", "loss_curve_", "n_iter_"):  # no single network to describe
        assert not hasattr(fitted, name)


def test_an_ensemble_warns_once_naming_how_many_members_reached_max_iter(ensemble):
    _, ensemble_warnings, lone, lone_warnings = ensemble
    reached = sum(alone.n_iter_ == ENSEMBLE_BASE.max_iter for alone in lone)
    assert 0 < reached < 4 and sum(lone_warnings.values()) == reached
    [(category, message)] = ensemble_warnings
    assert category is ConvergenceWarning and message.endswith(f"({reached} of the 4 ensemble members)")


def test_ensemble_predictions_average_the_members(ensemble):
    fitted, _, lone, _ = ensemble
    x = FOLDS[1][0]
    members = fitted.predict_members(x)
    assert members.shape == (4, len(x), 3)
    np.testing.assert_allclose(members, np.stack([alone.predict_proba(x) for alone in lone]), **FLOAT32)
    np.testing.assert_allclose(fitted.predict_proba(x), members.mean(axis=0), rtol=1e-6)
    np.testing.assert_array_equal(fitted.predict(x), fitted.classes_[np.argmax(members.mean(axis=0), axis=1)])
    assert members.std(axis=0).max() > 0  # the members differ: the spread is there to see


def test_a_regression_ensemble_averages_its_members_and_one_member_is_a_plain_fit(population_sizes):
    x, _ = FOLDS[0]
    target = x[:, 0] - 0.5 * x[:, 1]
    base = NeuralNetRegressor((6,), solver="gd", learning_rate_init=0.05, max_iter=30, random_state=3, loss="auto")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted = clone(base).set_params(n_ensemble=2).fit(x, target)
        lone = [clone(base).set_params(random_state=3 + k).fit(x, target) for k in range(2)]
        single = clone(base).set_params(n_ensemble=2).fit(x, target).set_params(n_ensemble=1).fit(x, target)
    assert population_sizes == [2, 2]  # the two ensemble fits; lone fits and n_ensemble=1 train alone
    members = fitted.predict_members(x)
    assert members.shape == (2, len(x))
    np.testing.assert_allclose(members, np.stack([alone.predict(x) for alone in lone]), **FLOAT32)
    np.testing.assert_allclose(fitted.predict(x), members.mean(axis=0), rtol=1e-6)
    # n_ensemble=1 refits one network, exactly the default fit, and forgets the ensemble
    np.testing.assert_array_equal(single.coefs_[0], lone[0].coefs_[0])
    assert not any(name.startswith("ensemble_") for name in vars(single))
    assert single.predict_members(x).shape == (1, len(x))


def test_ensemble_seeds_wrap_round_at_two_to_the_32_and_early_stopping_keeps_each_members_scores(
    population_sizes,
):
    x, y = FOLDS[0]
    estimator = clone(CLASSIFIER_CASES["early-stopping"]).set_params(random_state=2**32 - 2, n_ensemble=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(x, y)
        lone = clone(estimator).set_params(n_ensemble=1, random_state=0).fit(x, y)
    assert population_sizes == [4]
    assert estimator.ensemble_seeds_.tolist() == [2**32 - 2, 2**32 - 1, 0, 1]
    assert len(estimator.ensemble_validation_scores_) == 4
    np.testing.assert_allclose(estimator.ensemble_validation_scores_[2], lone.validation_scores_, rtol=FLOAT32["rtol"])
    np.testing.assert_allclose(estimator.ensemble_coefs_[0][2], lone.coefs_[0], **FLOAT32)


def test_ensembles_refuse_partial_fit_warm_start_and_a_bad_size_and_diverge_like_one_network(ensemble):
    x, y = FOLDS[0]
    with pytest.raises(AttributeError) as error:  # available_if: not there, as for solver='lbfgs'
        clone(ENSEMBLE_BASE).set_params(n_ensemble=4).partial_fit(x, y, classes=[0, 1, 2])
    assert "partial_fit trains one network, but n_ensemble=4" in str(error.value.__cause__)
    fitted = copy.deepcopy(ensemble[0])
    with pytest.raises(ValueError, match="refit from scratch with warm_start=False"):
        fitted.set_params(warm_start=True).fit(x, y)
    with pytest.raises(AttributeError) as error:  # a fitted ensemble has no partial_fit, whatever n_ensemble says now
        fitted.set_params(n_ensemble=1).partial_fit(x, y)
    assert "this estimator holds a fitted ensemble" in str(error.value.__cause__)
    assert not hasattr(fitted, "partial_fit")
    for size in (0, 1.5, "2"):
        with pytest.raises(ValueError, match="n_ensemble must be a positive integer"):
            clone(ENSEMBLE_BASE).set_params(n_ensemble=size).fit(x, y)
    diverging = clone(ENSEMBLE_BASE).set_params(n_ensemble=4, learning_rate_init=1e30)
    with pytest.raises(ValueError, match=r"training diverged in epoch \d+ \(ensemble member of seed \d+\)"):
        diverging.fit(x * 100, y)
    assert not hasattr(diverging, "ensemble_coefs_")


def test_an_interrupted_population_leaves_each_estimator_as_it_was(monkeypatch):
    """Ctrl-C while the population trains: every estimator set up for it goes back to its attributes before
    :func:`fit_estimators` (the new X's n_features_in_ used to stay beside the old network, or none)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted = NeuralNetClassifier((5,), max_iter=3, random_state=0).fit(IRIS_X, IRIS_Y)
    fresh = NeuralNetClassifier((5,), max_iter=3, random_state=1)
    before = [dict(vars(fitted)), dict(vars(fresh))]

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(jaxnn.sklearn.base, "train_plans", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fit_estimators([fitted, fresh], [(IRIS_X[:, :3], IRIS_Y)] * 2)
    assert [vars(fitted), vars(fresh)] == before
    assert fitted.predict(IRIS_X).shape == (len(IRIS_X),)  # still reads 4 columns
