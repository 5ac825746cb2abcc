"""Estimators shared between threads: a ``predict`` that runs while another thread refits the same estimator sees
the old network or the new one whole, never new weights with the old model (``NeuralNetBase._publish_network``)."""

from __future__ import annotations

import numpy as np
import pytest

from jaxnn import NeuralNetClassifier
from jaxnn.sklearn import base

RNG = np.random.default_rng(0)
X = RNG.normal(size=(40, 3)).astype(np.float32)
Y = (X[:, 0] > 0).astype(int)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # 3 epochs, on purpose


@pytest.mark.parametrize(
    "before, after",
    [
        ({"hidden_layer_sizes": (5, 3)}, {"hidden_layer_sizes": (4,)}),  # another layer count
        ({"hidden_layer_sizes": (4,)}, {"hidden_layer_sizes": (4,), "n_ensemble": 2}),  # single network → ensemble
    ],
)
def test_a_predict_while_the_same_estimator_is_refitted_sees_one_whole_network(monkeypatch, before, after):
    """The refit stores its network while the prediction runs: deterministically, the prediction is made at the
    moment the fit builds its new network's predictor (where the fit used to have stored the new weights but not yet
    the new model, or forgotten the old ensemble's weights before storing the new network's)."""
    estimator = NeuralNetClassifier(max_iter=3, random_state=0, **before).fit(X, Y)
    old = estimator.predict_proba(X)
    fresh = NeuralNetClassifier(max_iter=3, random_state=0, **after).fit(X, Y).predict_proba(X)
    seen = []

    class PredictingMidFit(base.Predictor):  # what another thread's predict_proba would see at this point of the fit
        def __init__(self, *args):
            super().__init__(*args)
            try:
                seen.append(estimator.predict_proba(X))
            except Exception as error:  # before the fix: "the model has 3 layers but params has 2 entries", ...
                seen.append(error)

    monkeypatch.setattr(base, "Predictor", PredictingMidFit)
    estimator.set_params(**after).fit(X, Y)
    assert seen, "the fit built no predictor: the test no longer reaches the racy point"
    for result in seen:
        assert not isinstance(result, Exception), result
        assert np.array_equal(result, old) or np.array_equal(result, fresh)
    np.testing.assert_array_equal(estimator.predict_proba(X), fresh)
