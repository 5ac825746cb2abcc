"""jaxnn's scikit-learn layer, split by job; its public names are reached as ``jaxnn.NeuralNetClassifier``,
``jaxnn.NeuralNetRegressor``, ``jaxnn.fit_estimators`` and ``jaxnn.model_selection.GridSearchCV``/
``RandomizedSearchCV``.

The modules, each importing only those above it:

* :mod:`~jaxnn.sklearn.internals` — every private scikit-learn name jaxnn uses, behind a public name;
* :mod:`~jaxnn.sklearn.class_weights` — the classifier's ``class_weight``, multiplied into ``sample_weight``;
* :mod:`~jaxnn.sklearn.initial_weights` — MLP's initial weights (``init='mlp'``) and jaxnn's initialisers;
* :mod:`~jaxnn.sklearn.constraints` — the hyper-parameter table, checked into a ``Config``;
* :mod:`~jaxnn.sklearn.targets` — data and targets: checks, sparse ``X``, class and multilabel encodings;
* :mod:`~jaxnn.sklearn.training` — runs planned and trained: the only door to jaxnn's training engine;
* :mod:`~jaxnn.sklearn.callbacks` — scikit-learn's callbacks (1.9+): the task trees of fits and searches;
* :mod:`~jaxnn.sklearn.base` — the estimators' shared fit and fitted attributes, and ``fit_estimators``;
* :mod:`~jaxnn.sklearn.features` — ``transform``/``hidden_activations``: a fitted network as a feature extractor;
* :mod:`~jaxnn.sklearn.bridge` — ``to_sklearn``/``from_sklearn``: to and from scikit-learn's fitted MLP;
* :mod:`~jaxnn.sklearn.estimators` — ``NeuralNetClassifier`` and ``NeuralNetRegressor``;
* :mod:`~jaxnn.sklearn.model_selection` — ``GridSearchCV`` and ``RandomizedSearchCV`` training populations.

Importing this package imports none of them (nor scikit-learn).
"""
