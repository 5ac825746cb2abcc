"""Public path of the scikit-learn estimators: only re-exports :class:`NeuralNetClassifier`,
:class:`NeuralNetRegressor` and :func:`fit_estimators` from :mod:`jaxnn.sklearn`, where they are defined and
documented (``from jaxnn import NeuralNetClassifier`` is the same class)."""

from jaxnn.sklearn.base import fit_estimators
from jaxnn.sklearn.estimators import NeuralNetClassifier, NeuralNetRegressor

__all__ = ["NeuralNetClassifier", "NeuralNetRegressor", "fit_estimators"]
