"""A fitted network as a feature extractor: ``transform(X)`` gives the last hidden layer's activations,
``hidden_activations(X)`` those of every hidden layer (scikit-learn issue #8291).

The estimators are transformers (``TransformerMixin``: ``fit_transform(X, y)`` fits, then transforms), so a
network can be an intermediate step of a ``Pipeline``, e.g. ``make_pipeline(StandardScaler(),
NeuralNetClassifier((32, 8)), LogisticRegression())`` trains the network on ``y`` and the logistic regression on
its 8 hidden features.  ``get_feature_names_out()`` names them ``neuralnetclassifier0``, … (or
``neuralnetregressor0``, …).  The activations are computed as ``predict`` computes its outputs: in the dtype of
``X`` (float32, or float64 inside ``jax.enable_x64``), by one cached compiled program per network.  A network
without hidden layers has no features, and an ensemble's members have unrelated hidden units: both are a
``ValueError``.
"""

from __future__ import annotations

from functools import partial

import numpy as np
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from jaxnn.layers import Sequential
from jaxnn.sklearn.prediction import checked_input, compiled_outputs, placed

__all__ = ["HiddenFeatures", "hidden_layer_outputs"]


def _activations(hidden: Sequential, params, x):
    outputs = []
    for layer, layer_params in zip(hidden.layers, params, strict=True):
        x = layer.apply(layer_params, x)
        outputs.append(x)
    return outputs


def hidden_layer_outputs(hidden: Sequential, coefs, intercepts, x: np.ndarray) -> list[np.ndarray]:
    """Each layer of ``hidden``'s activations on ``x`` ``(n_samples, n_features)``, one array per layer (the
    prediction path's compiled program: :func:`jaxnn.sklearn.prediction.compiled_outputs`)."""
    n_layers = len(hidden.layers)
    return compiled_outputs(_activations, (hidden,), x, partial(placed, coefs[:n_layers], intercepts[:n_layers]))


class HiddenFeatures(ClassNamePrefixFeaturesOutMixin, TransformerMixin):
    """``transform``, ``hidden_activations`` and ``get_feature_names_out`` for the estimators."""

    def _hidden_network(self) -> Sequential:
        check_is_fitted(self)
        if hasattr(self, "ensemble_coefs_"):
            raise ValueError(
                "an ensemble (n_ensemble > 1) has no single set of hidden features: its members' hidden units are "
                "unrelated; refit with n_ensemble=1 to use the network as a transformer"
            )
        if len(self._model.layers) < 2:
            raise ValueError("the network has no hidden layer (hidden_layer_sizes=()), so no hidden features")
        return Sequential(self._model.layers[:-1])

    def hidden_activations(self, X) -> list[np.ndarray]:
        """The activations of every hidden layer on ``X``: a list of ``(n_samples, units)`` arrays, first hidden
        layer first (``transform(X)`` is the last of them)."""
        hidden = self._hidden_network()
        return hidden_layer_outputs(hidden, self.coefs_, self.intercepts_, checked_input(self, X))

    def transform(self, X) -> np.ndarray:
        """The last hidden layer's activations on ``X``, ``(n_samples, hidden_layer_sizes[-1])``: the features the
        output layer reads."""
        return self.hidden_activations(X)[-1]

    @property
    def _n_features_out(self) -> int:
        """The width of the last hidden layer (``get_feature_names_out``'s count)."""
        return self._hidden_network().layers[-1].units

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
