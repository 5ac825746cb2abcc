"""A fitted network as a feature extractor: ``transform(X)`` gives the last hidden layer's activations,
``hidden_activations(X)`` those of every hidden layer (scikit-learn issue #8291).

The estimators are transformers (``TransformerMixin``: ``fit_transform(X, y)`` fits, then transforms), so a
network can be an intermediate step of a ``Pipeline``, e.g. ``make_pipeline(StandardScaler(),
NeuralNetClassifier((32, 8)), LogisticRegression())`` trains the network on ``y`` and the logistic regression on
its 8 hidden features.  ``get_feature_names_out()`` names them ``neuralnetclassifier0``, … (or
``neuralnetregressor0``, …).  The activations are computed as ``predict`` computes its outputs, in the dtype
``predict`` uses (the wider of ``X``'s and the weights', as MLP promotes them), by one cached compiled program per
network.

A network without hidden layers (``hidden_layer_sizes=()``) has no features, and an ensemble's members
(``n_ensemble > 1``) have unrelated hidden units: for those ``transform``, ``fit_transform``,
``hidden_activations`` and ``get_feature_names_out`` are not there (scikit-learn's ``available_if`` rule, as
``partial_fit`` for ``solver='lbfgs'``: an ``AttributeError`` that says why, so ``hasattr`` is False), and the
estimator's tags do not claim a transformer.  The parameters decide, and a fitted ensemble or network without
hidden layers also has no ``transform`` until it is refitted (``fit_transform`` refits: only the parameters
decide it).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import numpy as np
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from jaxnn._checks import is_int
from jaxnn.layers import Sequential
from jaxnn.sklearn.prediction import check_weights, checked_input, compiled_outputs, placed

__all__ = ["HiddenFeatures", "hidden_layer_outputs", "why_no_hidden_features"]


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
    check_weights(hidden, coefs[:n_layers], intercepts[:n_layers], x.shape[1], ensemble=False)
    return compiled_outputs(_activations, (hidden,), x, partial(placed, coefs[:n_layers], intercepts[:n_layers]))


def why_no_hidden_features(estimator, *, fitted: bool = True) -> str | None:
    """Why ``estimator`` has no single set of hidden features, or None when it has them.

    Read from its parameters (``n_ensemble > 1``, ``hidden_layer_sizes=()``) and, with ``fitted`` and once it
    is fitted, from the fitted network too, so parameters set after ``fit`` add no features that the fitted
    network lacks (``fitted=False``: what a new fit would give, for ``fit_transform`` and the tags).  A
    parameter that is not valid is left for ``fit`` to refuse.
    """
    n_ensemble, sizes = estimator.n_ensemble, estimator.hidden_layer_sizes
    if (is_int(n_ensemble) and n_ensemble > 1) or (fitted and hasattr(estimator, "ensemble_coefs_")):
        return (
            "an ensemble (n_ensemble > 1) has no single set of hidden features: its members' hidden units are "
            "unrelated; set n_ensemble=1 to use the network as a transformer"
        )
    no_hidden_layer = isinstance(sizes, Sequence | np.ndarray) and len(sizes) == 0
    if no_hidden_layer or (fitted and getattr(estimator, "n_layers_", 3) < 3):
        return "the network has no hidden layer (hidden_layer_sizes=()), so no hidden features to transform into"
    return None


def _has_hidden_features(estimator) -> bool:
    """The ``available_if`` check of ``transform``, ``hidden_activations`` and ``get_feature_names_out``: True,
    or an ``AttributeError`` that says why not."""
    reason = why_no_hidden_features(estimator)
    if reason is not None:
        raise AttributeError(reason)
    return True


def _fits_hidden_features(estimator) -> bool:
    """The ``available_if`` check of ``fit_transform``, which refits: as :func:`_has_hidden_features`, from the
    parameters alone."""
    reason = why_no_hidden_features(estimator, fitted=False)
    if reason is not None:
        raise AttributeError(reason)
    return True


class HiddenFeatures(ClassNamePrefixFeaturesOutMixin, TransformerMixin):
    """``transform``, ``hidden_activations`` and ``get_feature_names_out`` for the estimators."""

    def _hidden_network(self) -> Sequential:
        """The fitted network's hidden layers (the feature methods' availability check has passed)."""
        check_is_fitted(self)
        return Sequential(self._model.layers[:-1])

    @available_if(_has_hidden_features)
    def hidden_activations(self, X) -> list[np.ndarray]:
        """The activations of every hidden layer on ``X``: a list of ``(n_samples, units)`` arrays, first hidden
        layer first (``transform(X)`` is the last of them).  NumPy arrays whatever ``set_output`` says: scikit-learn's
        ``set_output`` wraps ``transform`` and ``fit_transform`` only."""
        check_is_fitted(self)
        X = checked_input(self, X)
        state = self.__dict__  # one fit's network: a fit replaces the dict whole (NeuralNetBase._publish_network)
        hidden = Sequential(state["_model"].layers[:-1])
        return hidden_layer_outputs(hidden, state["coefs_"], state["intercepts_"], X)

    def transform(self, X) -> np.ndarray:
        """The last hidden layer's activations on ``X``, ``(n_samples, hidden_layer_sizes[-1])``: the features the
        output layer reads."""
        return self.hidden_activations(X)[-1]

    @available_if(_has_hidden_features)
    def get_feature_names_out(self, input_features=None):
        """The names of ``transform``'s columns: the class name in lower case and the unit's index."""
        return super().get_feature_names_out(input_features)

    @property
    def _n_features_out(self) -> int:
        """The width of the last hidden layer (``get_feature_names_out``'s count)."""
        return self._hidden_network().layers[-1].units

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if why_no_hidden_features(self, fitted=False) is None:
            tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        else:  # no transform: not a transformer (scikit-learn's checks then skip the transformer checks)
            tags.transformer_tags = None
        return tags


def _fit_transform(self, X, y=None, **fit_params) -> np.ndarray:
    """``fit(X, y, **fit_params).transform(X)`` (TransformerMixin's, whose set_output wrapper runs inside): the
    network learns its features from the targets, so without ``y`` this is the TypeError of a missing ``y``, in
    Python's words for the call (scikit-learn's supervised transformers give those, from ``fit``) and then
    jaxnn's."""
    if y is None:
        raise TypeError(
            f"{type(self).__name__}.fit_transform() missing 1 required positional argument: 'y'. jaxnn: the network "
            "is trained on the targets y before transform can give its hidden features; call fit_transform(X, y)"
        )
    return TransformerMixin.fit_transform(self, X, y, **fit_params)


# scikit-learn's set_output wraps transform and fit_transform as the class is made (TransformerMixin's
# __init_subclass__) and would hide a descriptor put there in the class body: made conditional after it, the
# availability check comes first and the set_output wrapper still runs inside it.
HiddenFeatures.transform = available_if(_has_hidden_features)(HiddenFeatures.transform)
HiddenFeatures.fit_transform = available_if(_fits_hidden_features)(_fit_transform)
