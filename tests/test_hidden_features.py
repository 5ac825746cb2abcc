"""The estimators as feature extractors (scikit-learn issue #8291): ``transform(X)`` is the last hidden layer's
activations, ``hidden_activations(X)`` every hidden layer's, and a fitted network is a Pipeline step.
(scikit-learn's transformer checks run in tests/test_estimators.py's ``test_scikit_learn_contract``.)"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import get_tags

from jaxnn import NeuralNetClassifier, NeuralNetRegressor

X_IRIS, Y_IRIS = load_iris(return_X_y=True)
NUMPY_ACTIVATIONS = {
    "relu": lambda z: np.maximum(z, 0),
    "tanh": np.tanh,
    "logistic": lambda z: 1 / (1 + np.exp(-z)),
    "identity": lambda z: z,
}


def _quietly(fit, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fit(*args, **kwargs)


def _numpy_hidden(estimator, X, activation):
    outputs, a = [], X
    for w, b in list(zip(estimator.coefs_, estimator.intercepts_, strict=True))[:-1]:
        a = NUMPY_ACTIVATIONS[activation](a @ w + b)
        outputs.append(a)
    return outputs


@pytest.mark.parametrize(
    ("activation", "dtype"),
    [("relu", np.float32), ("tanh", np.float64), ("logistic", np.float32), ("identity", np.float64)],
    ids=["relu-float32", "tanh-float64", "logistic-float32", "identity-float64"],
)  # every activation, and both dtypes
def test_hidden_activations_are_each_hidden_layers_output(activation, dtype):
    X = StandardScaler().fit_transform(X_IRIS).astype(dtype)
    clf = _quietly(NeuralNetClassifier((7, 5), activation=activation, max_iter=20, random_state=0).fit, X, Y_IRIS)
    layers = clf.hidden_activations(X)
    expected = _numpy_hidden(clf, X, activation)
    assert [a.shape for a in layers] == [(150, 7), (150, 5)]
    rtol, atol = (1e-5, 1e-6) if dtype == np.float32 else (1e-12, 1e-14)
    for ours, theirs in zip(layers, expected, strict=True):
        assert ours.dtype == dtype
        np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol)
    np.testing.assert_array_equal(clf.transform(X), layers[-1])
    np.testing.assert_array_equal(clf.transform(X[:3]), layers[-1][:3])  # rows do not depend on the others
    assert list(clf.get_feature_names_out()) == [f"neuralnetclassifier{i}" for i in range(5)]


def test_a_fitted_network_is_a_feature_extractor_in_a_pipeline():
    pipeline = make_pipeline(
        StandardScaler(),
        NeuralNetClassifier((16, 8), learning_rate_init=0.01, max_iter=500, random_state=0),
        LogisticRegression(max_iter=1000),
    )
    _quietly(pipeline.fit, X_IRIS, Y_IRIS)
    assert pipeline.score(X_IRIS, Y_IRIS) > 0.95
    network = pipeline[1]
    features = pipeline[:-1].transform(X_IRIS)
    np.testing.assert_array_equal(features, network.transform(pipeline[0].transform(X_IRIS)))
    assert pipeline[-1].n_features_in_ == 8
    assert list(pipeline[:-1].get_feature_names_out())[:2] == ["neuralnetclassifier0", "neuralnetclassifier1"]
    # fit_transform is fit then transform (TransformerMixin), for the regressor too
    X = StandardScaler().fit_transform(X_IRIS[:, :3])
    regressor = NeuralNetRegressor((6,), max_iter=30, random_state=0)
    transformed = _quietly(regressor.fit_transform, X, X_IRIS[:, 3])
    np.testing.assert_array_equal(transformed, regressor.transform(X))
    chained = make_pipeline(NeuralNetRegressor((6,), max_iter=30, random_state=0), Ridge())
    _quietly(chained.fit, X, X_IRIS[:, 3])
    assert chained[-1].coef_.shape == (6,)


FEATURE_METHODS = ("transform", "fit_transform", "hidden_activations", "get_feature_names_out", "set_output")


@pytest.mark.parametrize("estimator", [NeuralNetClassifier, NeuralNetRegressor])
def test_the_feature_methods_are_there_only_for_one_network_with_hidden_layers(estimator):
    """scikit-learn's available_if rule, read from the parameters before any fit: an ensemble and a network
    without hidden layers have no transform (hasattr is False; the AttributeError's cause says why) and are not
    tagged transformers, so scikit-learn's checks and meta-estimators do not take them for one."""
    assert all(hasattr(estimator(), method) for method in FEATURE_METHODS)
    assert get_tags(estimator()).transformer_tags is not None
    for params, reason in (
        ({"n_ensemble": 2}, "an ensemble (n_ensemble > 1) has no single set of hidden features"),
        ({"hidden_layer_sizes": ()}, "the network has no hidden layer (hidden_layer_sizes=())"),
    ):
        absent = estimator(**params)
        assert [method for method in FEATURE_METHODS if hasattr(absent, method)] == []
        assert get_tags(absent).transformer_tags is None
        with pytest.raises(AttributeError) as error:
            absent.transform  # noqa: B018 - the access is what is tested
        assert reason in str(error.value.__cause__)  # available_if chains the check's own error
    assert not hasattr(estimator(n_ensemble=2), "partial_fit")  # partial_fit continues one network


def test_what_has_no_hidden_features_is_a_clear_error():
    X = StandardScaler().fit_transform(X_IRIS)
    with pytest.raises(NotFittedError):
        NeuralNetClassifier().transform(X)
    no_hidden = _quietly(NeuralNetClassifier((), max_iter=5).fit, X, Y_IRIS)
    assert not hasattr(no_hidden, "transform")
    with pytest.raises(AttributeError, match="has no attribute 'transform'"):
        no_hidden.transform(X)
    # a fitted ensemble has no transform whatever the parameters say after the fit; fit_transform refits
    ensemble = _quietly(NeuralNetClassifier((4,), max_iter=5, n_ensemble=2).fit, X, Y_IRIS).set_params(n_ensemble=1)
    assert not hasattr(ensemble, "transform") and not hasattr(ensemble, "get_feature_names_out")
    assert hasattr(ensemble, "fit_transform") and get_tags(ensemble).transformer_tags is not None
    fitted = _quietly(NeuralNetClassifier((4,), max_iter=5).fit, X, Y_IRIS)
    with pytest.raises(ValueError, match="features"):
        fitted.transform(X[:, :2])


@pytest.mark.parametrize("estimator", [NeuralNetClassifier, NeuralNetRegressor])
def test_fit_transform_without_y_is_a_typeerror_that_asks_for_y(estimator):
    """Python's words for the missing y first (scikit-learn's supervised transformers give them, from fit), then
    why the network needs it; set_output still applies to fit_transform(X, y)."""
    with pytest.raises(
        TypeError,
        match=r"fit_transform\(\) missing 1 required positional argument: 'y'\. jaxnn: .*"
        r"trained on the targets y .*fit_transform\(X, y\)",
    ):
        estimator((4,)).fit_transform(X_IRIS)
    pandas = pytest.importorskip("pandas")
    frame = _quietly(estimator((4,), max_iter=2).set_output(transform="pandas").fit_transform, X_IRIS, Y_IRIS)
    assert isinstance(frame, pandas.DataFrame) and frame.shape == (150, 4)
