"""jaxnn's scikit-learn layer, split by job; its public names are reached as ``jaxnn.NeuralNetClassifier``,
``jaxnn.NeuralNetRegressor``, ``jaxnn.fit_estimators`` and ``jaxnn.model_selection.GridSearchCV``/
``RandomizedSearchCV``, and all five from this package too (``from jaxnn.sklearn import NeuralNetClassifier``).

The modules, each importing only those above it:

* :mod:`~jaxnn.sklearn.internals` — every private scikit-learn name jaxnn uses, behind a public name;
* :mod:`~jaxnn.sklearn.class_weights` — ``sample_weight`` checked, times ``class_weight``, in X's dtype;
* :mod:`~jaxnn.sklearn.initial_weights` — MLP's initial weights (``init='mlp'``) and jaxnn's initialisers;
* :mod:`~jaxnn.sklearn.constraints` — the hyper-parameter table, checked into a ``Config``;
* :mod:`~jaxnn.sklearn.targets` — data and targets: checks, sparse ``X``, class and multilabel encodings;
* :mod:`~jaxnn.sklearn.training` — runs planned and trained: the only door to jaxnn's training engine;
* :mod:`~jaxnn.sklearn.callbacks` — scikit-learn's callbacks (1.9+): the task trees of fits and searches;
* :mod:`~jaxnn.sklearn.fit_datasets` — ``fit_estimators``' ``datasets`` argument, checked;
* :mod:`~jaxnn.sklearn.prediction` — the compiled prediction path: ``X`` checked, in MLP's dtype, rows bucketed;
* :mod:`~jaxnn.sklearn.progress` — ``verbose`` output, in MLP's words;
* :mod:`~jaxnn.sklearn.pickling` — what an estimator's pickle holds: jaxnn's version, an optax solver cloudpickled;
* :mod:`~jaxnn.sklearn.base` — the estimators' shared fit and fitted attributes, and ``fit_estimators``;
* :mod:`~jaxnn.sklearn.features` — ``transform``/``hidden_activations``: a fitted network as a feature extractor;
* :mod:`~jaxnn.sklearn.bridge` — ``to_sklearn``/``from_sklearn``: to and from scikit-learn's fitted MLP;
* :mod:`~jaxnn.sklearn.estimators` — ``NeuralNetClassifier`` and ``NeuralNetRegressor``;
* :mod:`~jaxnn.sklearn.model_selection` — ``GridSearchCV`` and ``RandomizedSearchCV`` training populations.

Importing this package imports none of them (nor scikit-learn) until one of the five is first used.
"""

from __future__ import annotations

import importlib

_PUBLIC = {
    "NeuralNetClassifier": "jaxnn.sklearn.estimators",
    "NeuralNetRegressor": "jaxnn.sklearn.estimators",
    "fit_estimators": "jaxnn.sklearn.base",
    "GridSearchCV": "jaxnn.sklearn.model_selection",
    "RandomizedSearchCV": "jaxnn.sklearn.model_selection",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    """``from jaxnn.sklearn import NeuralNetClassifier`` (and the other public names above) loads the module that
    defines it, and scikit-learn, on first use (PEP 562); the same objects as ``jaxnn.NeuralNetClassifier``."""
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'jaxnn.sklearn' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})
