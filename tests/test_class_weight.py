"""NeuralNetClassifier's ``class_weight`` (scikit-learn issue #9113), with scikit-learn's meaning: multiplied into
``sample_weight`` as ``LogisticRegression`` does, so it equals the equivalent ``sample_weight`` fit bit for bit;
it changes only per-sample weights, so a search over it trains as one population."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_iris, make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler
from sklearn.utils.class_weight import compute_class_weight, compute_sample_weight

import jaxnn
from jaxnn import NeuralNetClassifier, NeuralNetRegressor, fit_estimators
from jaxnn.model_selection import GridSearchCV

X_IRIS = StandardScaler().fit_transform(load_iris().data).astype(np.float32)
Y_IRIS = load_iris().target
KEEP = np.r_[0:50, 50:80, 100:115]  # imbalanced: 50, 30 and 15 samples
X, Y = X_IRIS[KEEP], Y_IRIS[KEEP]
BASE = NeuralNetClassifier((8,), solver="adam", batch_size=32, max_iter=30, random_state=0)
REAL_TRAIN = jaxnn.engine.train


def _quietly(fit, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fit(*args, **kwargs)


def _assert_bitwise_equal(a, b):
    assert a.n_iter_ == b.n_iter_ and a.loss_curve_ == b.loss_curve_
    for ours, theirs in zip([*a.coefs_, *a.intercepts_], [*b.coefs_, *b.intercepts_], strict=True):
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_balanced_equals_the_equivalent_sample_weight_fit_bitwise(dtype):
    x = X.astype(dtype)
    balanced = _quietly(clone(BASE).set_params(class_weight="balanced").fit, x, Y)
    weighted = _quietly(clone(BASE).fit, x, Y, sample_weight=compute_sample_weight("balanced", Y))
    _assert_bitwise_equal(balanced, weighted)
    # with a sample_weight too: the class counts are weighted by it, as LogisticRegression's
    sw = 0.5 + 0.5 * (np.arange(len(Y)) % 4)  # exact in float32 too: the same weighted counts in both dtypes
    both = _quietly(clone(BASE).set_params(class_weight="balanced").fit, x, Y, sample_weight=sw)
    per_class = compute_class_weight("balanced", classes=np.unique(Y), y=Y, sample_weight=sw)
    _assert_bitwise_equal(both, _quietly(clone(BASE).fit, x, Y, sample_weight=sw * per_class[Y]))


def test_a_dict_weighs_its_classes_and_leaves_the_others_at_one():
    weights = {0: 0.5, 2: 3.0}
    weighted = _quietly(clone(BASE).set_params(class_weight=weights).fit, X, Y)
    expected = np.array([weights.get(label, 1.0) for label in Y])
    _assert_bitwise_equal(weighted, _quietly(clone(BASE).fit, X, Y, sample_weight=expected))
    labels = np.array(["a", "b", "c"])[Y]
    named = _quietly(clone(BASE).set_params(class_weight={"a": 0.5, "c": 3.0}).fit, X, labels)
    _assert_bitwise_equal(named, weighted)


def test_multilabel_class_weight_is_compute_sample_weights_and_partial_fit_takes_a_dict():
    x, y = make_multilabel_classification(n_samples=60, n_features=4, n_classes=3, random_state=0)
    balanced = _quietly(clone(BASE).set_params(class_weight="balanced").fit, x, y)
    _assert_bitwise_equal(balanced, _quietly(clone(BASE).fit, x, y, sample_weight=compute_sample_weight("balanced", y)))
    incremental = clone(BASE).set_params(class_weight={0: 2.0})
    reference = clone(BASE)
    for _ in range(2):
        incremental.partial_fit(X, Y, classes=[0, 1, 2])
        reference.partial_fit(X, Y, classes=[0, 1, 2], sample_weight=np.where(Y == 0, 2.0, 1.0))
    _assert_bitwise_equal(incremental, reference)


def test_balanced_class_weights_have_no_partial_fit_so_scikit_learns_checks_pass():
    # partial_fit refused 'balanced' with a ValueError, which failed three of scikit-learn's estimator checks that
    # call partial_fit; like 'lbfgs' and an ensemble, the estimator now has none (scikit-learn's checks skip it)
    from sklearn.utils.estimator_checks import (
        check_estimators_partial_fit_n_features,
        check_fit_score_takes_y,
        check_n_features_in_after_fitting,
    )

    balanced = clone(BASE).set_params(class_weight="balanced")
    assert not hasattr(balanced, "partial_fit") and hasattr(clone(BASE), "partial_fit")
    with pytest.raises(AttributeError) as error:
        balanced.partial_fit(X, Y, classes=[0, 1, 2])
    assert "'balanced' is not supported for partial_fit" in str(error.value.__cause__)  # available_if's reason
    with warnings.catch_warnings():  # the checks' 15-row data: batch_size clipped, max_iter reached
        warnings.simplefilter("ignore", (UserWarning, ConvergenceWarning))
        for check in (
            check_fit_score_takes_y,
            check_n_features_in_after_fitting,
            check_estimators_partial_fit_n_features,
        ):
            check("NeuralNetClassifier", clone(balanced))
    bound = clone(BASE).partial_fit  # taken while there was one: its call still refuses 'balanced'
    bound.__self__.set_params(class_weight="balanced")
    with pytest.raises(ValueError, match="'balanced' is not supported for partial_fit"):
        bound(X, Y, classes=[0, 1, 2])


def test_bad_class_weights_are_named():
    with pytest.raises(ValueError, match="class_weight must be None, 'balanced', a dict"):
        clone(BASE).set_params(class_weight="equal").fit(X, Y)
    with pytest.raises(ValueError, match=r"not in class_weight\. jaxnn: class_weight has labels \[7\] that are not"):
        clone(BASE).set_params(class_weight={7: 2.0}).fit(X, Y)
    with pytest.raises(ValueError, match=r"class_weight has labels \['1'\] that are not among the classes \[0, 1, 2\]"):
        clone(BASE).set_params(class_weight={"1": 2.0}).fit(X, Y)
    with pytest.raises(ValueError, match="list of dicts"):
        clone(BASE).set_params(class_weight=[{0: 1.0}]).fit(X, Y)
    # a negative weight trained silently (the loss is then unbounded below); NaN or None said "zero for every sample"
    for bad in ({0: 1.0, 1: -0.5}, {1: float("nan")}, {1: float("inf")}, {1: None}, {1: "2"}, [{0: 1.0}, {1: -1.0}]):
        with pytest.raises(
            ValueError, match=r"class_weight must be a dict \(or list of dicts\) of finite weights >= 0"
        ):
            clone(BASE).set_params(class_weight=bad).fit(X, Y)
    assert "class_weight" not in NeuralNetRegressor().get_params()
    assert NeuralNetClassifier((5,), "tanh", class_weight="balanced").get_params()["hidden_layer_sizes"] == (5,)


@pytest.fixture
def population_sizes(monkeypatch):
    sizes = []

    def counting_train(spec, members, *args, **kwargs):
        if len(members.keys) > 1:
            sizes.append(len(members.keys))
        return REAL_TRAIN(spec, members, *args, **kwargs)

    monkeypatch.setattr(jaxnn.engine, "train", counting_train)
    return sizes


def test_estimators_differing_in_class_weight_train_as_one_population(population_sizes):
    weights = [None, "balanced", {0: 0.2}, {1: 5.0, 2: 2.0}]
    estimators = [clone(BASE).set_params(class_weight=w) for w in weights]
    _quietly(fit_estimators, estimators, [(X, Y)] * len(weights))
    assert population_sizes == [len(weights)]
    for estimator, w in zip(estimators, weights, strict=True):
        lone = _quietly(clone(BASE).set_params(class_weight=w).fit, X, Y)
        assert estimator.n_iter_ == lone.n_iter_
        for ours, theirs in zip(estimator.coefs_, lone.coefs_, strict=True):
            np.testing.assert_allclose(ours, theirs, rtol=2e-5, atol=2e-6)  # test_estimator_population's bound


def test_a_search_over_class_weight_is_one_population(population_sizes):
    search = GridSearchCV(BASE, {"class_weight": [None, "balanced", {2: 4.0}]}, cv=3, scoring="balanced_accuracy")
    _quietly(search.fit, X, Y)
    assert population_sizes == [9]  # 3 candidates x 3 folds; the refit trains alone
    assert search.best_params_["class_weight"] in (None, "balanced", {2: 4.0})


def test_multilabel_class_weights_that_do_not_fit_y_are_named():
    # a tuple of dicts passed the check and failed in compute_sample_weight, naming that function; a dict keyed by a
    # label no column holds read "The classes, [1], are not in class_weight"
    x, y = make_multilabel_classification(n_samples=60, n_features=4, n_classes=2, random_state=0)
    as_tuple = _quietly(clone(BASE).set_params(class_weight=({0: 1.0, 1: 3.0}, {1: 2.0})).fit, x, y)
    as_list = _quietly(clone(BASE).set_params(class_weight=[{0: 1.0, 1: 3.0}, {1: 2.0}]).fit, x, y)
    _assert_bitwise_equal(as_tuple, as_list)
    with pytest.raises(ValueError, match=r"class_weight\[0\] has labels \[2\], but a multilabel column holds 0 and 1"):
        clone(BASE).set_params(class_weight=[{0: 1.0, 2: 3.0}, {1: 2.0}]).fit(x, y)
    with pytest.raises(ValueError, match="class_weight lists 1 dicts but y has 2 label columns"):
        clone(BASE).set_params(class_weight=[{1: 2.0}]).fit(x, y)
    with pytest.raises(ValueError, match="one dict per column"):
        clone(BASE).set_params(class_weight={1: 2.0}).fit(x, y)


def test_balanced_with_a_class_whose_sample_weights_are_all_zero_trains_the_other_classes():
    # the class's weighted count of 0 gave it an infinite weight, and 0 × inf made the fit refuse "sample_weight
    # times class_weight is zero for every sample" although two classes had weight
    x, y = X_IRIS[KEEP], Y_IRIS[KEEP]
    sample_weight = np.where(y == 0, 0.0, 1.0)
    balanced = _quietly(clone(BASE).set_params(class_weight="balanced").fit, x, y, sample_weight=sample_weight)
    with np.errstate(divide="ignore"):
        per_class = compute_class_weight("balanced", classes=np.array([0, 1, 2]), y=y, sample_weight=sample_weight)
    equivalent = sample_weight * np.where(np.isfinite(per_class), per_class, 0.0)[y]
    _assert_bitwise_equal(balanced, _quietly(clone(BASE).fit, x, y, sample_weight=equivalent))
    assert all(np.isfinite(c).all() for c in balanced.coefs_)


@pytest.mark.parametrize("missing_value", [0, 1])
def test_a_multilabel_column_holding_one_value_still_takes_its_dict(missing_value):
    """A rare label absent from a fold leaves its column all 0 (or a common one all 1): the column's dict keyed by
    0 and 1 still applies to the value the column holds, where jaxnn had refused it ("labels [1] that are not among
    the values [0]") and cross-validation had scored the folds nan."""
    x, y = make_multilabel_classification(n_samples=60, n_features=4, n_classes=3, random_state=0)
    y[:, 2] = 1 - missing_value
    class_weight = [{0: 1.0, 1: 3.0}, {1: 2.0}, {0: 0.5, 1: 4.0}]
    expected = compute_sample_weight(class_weight[:2], y[:, :2]) * class_weight[2][1 - missing_value]
    ours = _quietly(clone(BASE).set_params(class_weight=class_weight).fit, x, y)
    theirs = _quietly(clone(BASE).fit, x, y, sample_weight=expected)
    _assert_bitwise_equal(ours, theirs)


def test_multilabel_balanced_counts_are_weighted_by_sample_weight_as_for_one_label_per_sample():
    """'balanced' counts each class's samples by their sample_weight (compute_class_weight's sample_weight): so it
    did for one label per sample, while a multilabel y had counted every sample once whatever its weight."""
    x, y = make_multilabel_classification(n_samples=60, n_features=4, n_classes=2, random_state=1)
    sample_weight = np.random.default_rng(0).uniform(0.2, 3.0, size=len(y))
    expected = sample_weight.copy()
    for column in y.T:
        classes = np.unique(column)
        per_class = compute_class_weight("balanced", classes=classes, y=column, sample_weight=sample_weight)
        expected *= per_class[np.searchsorted(classes, column)]
    ours = _quietly(clone(BASE).set_params(class_weight="balanced").fit, x, y, sample_weight=sample_weight)
    theirs = _quietly(clone(BASE).fit, x, y, sample_weight=expected)
    np.testing.assert_allclose(ours.coefs_[0], theirs.coefs_[0], rtol=1e-6, atol=1e-7)
    unweighted = _quietly(clone(BASE).set_params(class_weight="balanced").fit, x, y)
    assert not np.allclose(ours.coefs_[0], unweighted.coefs_[0], rtol=1e-3)  # the weights changed the fit
